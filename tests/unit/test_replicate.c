/*
 * test_replicate.c - the replicate provider without a network: its create
 * body (input, aspect ratio, inpaint inputs by URL or data: URL, the
 * webhook and its filter), problem-details errors → classified codes and
 * Retry-After, failed predictions (NSFW/safety → CONTENT_POLICY), the
 * prediction id check and the price row.
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cu_main.h"
#include "prov_remote.h"

static json_object *
body_of(const struct prov_request *req, const char *webhook)
{
	char *s = replicate_request_json(req, webhook);
	json_object *o;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	o = json_tokener_parse(s);
	free(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	return o;
}

static const char *
path_str(json_object *o, const char *a, const char *b)
{
	json_object *x = NULL, *y = NULL;

	if (!json_object_object_get_ex(o, a, &x))
		return NULL;
	if (b == NULL)
		return json_object_get_string(x);
	if (!json_object_object_get_ex(x, b, &y))
		return NULL;
	return json_object_get_string(y);
}

static void
test_request_body(void)
{
	struct prov_request req;
	json_object *o, *imgs = NULL, *in = NULL, *flt = NULL;

	memset(&req, 0, sizeof(req));
	req.prompt = "a fox";
	req.width = 1344;
	req.height = 768;
	o = body_of(&req, NULL);
	CU_ASSERT_STRING_EQUAL(path_str(o, "input", "prompt"), "a fox");
	CU_ASSERT_STRING_EQUAL(path_str(o, "input", "aspect_ratio"), "16:9");
	CU_ASSERT_STRING_EQUAL(path_str(o, "input", "output_format"), "png");
	CU_ASSERT_PTR_NULL(path_str(o, "input", "image_input"));
	CU_ASSERT_PTR_NULL(path_str(o, "webhook", NULL));
	json_object_put(o);

	/* inpaint: the stored source by URL, the mask's bytes as data: */
	req.source_url = "https://example.test/storage/v1/object/public/a/b.png";
	req.source = (const unsigned char *)"x";
	req.source_len = 1;
	req.mask = (const unsigned char *)"abc";
	req.mask_len = 3;
	req.mask_mime = "image/png";
	o = body_of(&req, "https://svc.test/api/webhooks/nano-banana");
	json_object_object_get_ex(o, "input", &in);
	CU_ASSERT_FATAL(json_object_object_get_ex(in, "image_input", &imgs));
	CU_ASSERT_EQUAL_FATAL(json_object_array_length(imgs), 2);
	CU_ASSERT_STRING_EQUAL(json_object_get_string(
	    json_object_array_get_idx(imgs, 0)), req.source_url);
	CU_ASSERT_STRING_EQUAL(json_object_get_string(
	    json_object_array_get_idx(imgs, 1)), "data:image/png;base64,YWJj");
	CU_ASSERT_STRING_EQUAL(path_str(o, "webhook", NULL),
	    "https://svc.test/api/webhooks/nano-banana");
	CU_ASSERT_FATAL(json_object_object_get_ex(o, "webhook_events_filter", &flt));
	CU_ASSERT_EQUAL(json_object_array_length(flt), 1);
	CU_ASSERT_STRING_EQUAL(json_object_get_string(
	    json_object_array_get_idx(flt, 0)), "completed");
	json_object_put(o);
}

static void
test_errors_classified(void)
{
	static const struct {
		long status;
		const char *body;
		enum prov_err e;
		const char *words;
	} cases[] = {
		{ 401, "{\"title\":\"Unauthenticated\",\"detail\":\"You did not pass "
		  "a valid authentication token\",\"status\":401}", PROV_AUTH_ERROR,
		  "Unauthenticated: You did not pass" },
		{ 403, "{\"detail\":\"forbidden\"}", PROV_AUTH_ERROR, "forbidden" },
		{ 422, "{\"title\":\"Input validation failed\",\"detail\":\"- "
		  "input.prompt: required\",\"status\":422}", PROV_INVALID_REQUEST,
		  "Input validation failed" },
		{ 404, "{\"title\":\"Not found\"}", PROV_INVALID_REQUEST, "Not found" },
		{ 429, "{\"title\":\"Request was throttled.\",\"status\":429}",
		  PROV_RATE_LIMIT, "throttled" },
		{ 500, "oops", PROV_TEMPORARY, "HTTP 500: oops" },
		{ 503, "", PROV_TEMPORARY, "HTTP 503" },
	};
	struct prov_result res;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&res, 0, sizeof(res));
		CU_ASSERT_EQUAL(replicate_parse_error(cases[i].status, cases[i].body,
		    strlen(cases[i].body), 1000, &res), cases[i].e);
		CU_ASSERT_PTR_NOT_NULL(strstr(res.message, cases[i].words));
		CU_ASSERT_EQUAL(strncmp(res.message, "replicate: ", 11), 0);
		CU_ASSERT_EQUAL(res.retry_after_ms,
		    prov_err_retryable(cases[i].e) ? 1000 : 0);
	}
}

static void
test_failed_predictions(void)
{
	struct prov_result res;

	memset(&res, 0, sizeof(res));
	CU_ASSERT_EQUAL(replicate_outcome("succeeded", NULL, "abc", &res), PROV_OK);
	CU_ASSERT_EQUAL(replicate_outcome("failed", "NSFW content detected.",
	    "abc", &res), PROV_CONTENT_POLICY);
	CU_ASSERT_PTR_NOT_NULL(strstr(res.message, "prediction abc failed: NSFW"));
	CU_ASSERT_EQUAL(replicate_outcome("failed", "The input or output was "
	    "flagged as sensitive (E005)", "abc", &res), PROV_CONTENT_POLICY);
	CU_ASSERT_EQUAL(replicate_outcome("failed", "blocked by the Safety filter",
	    "abc", &res), PROV_CONTENT_POLICY);
	CU_ASSERT_EQUAL(replicate_outcome("failed", "CUDA out of memory", "abc",
	    &res), PROV_PROVIDER_ERROR);
	CU_ASSERT_EQUAL(replicate_outcome("failed", NULL, "abc", &res),
	    PROV_PROVIDER_ERROR);
	CU_ASSERT_EQUAL(replicate_outcome("canceled", NULL, "abc", &res),
	    PROV_PROVIDER_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(res.message, "canceled at Replicate"));
	CU_ASSERT_FALSE(replicate_policy_refusal(NULL));
	CU_ASSERT_FALSE(replicate_policy_refusal("timeout"));
}

static void
test_prediction_id(void)
{
	CU_ASSERT_TRUE(replicate_id_ok("gm3qorzdhgbfurvjtvhg6dckhu"));
	CU_ASSERT_FALSE(replicate_id_ok(""));
	CU_ASSERT_FALSE(replicate_id_ok(NULL));
	CU_ASSERT_FALSE(replicate_id_ok("../secret"));
	CU_ASSERT_FALSE(replicate_id_ok("abc?x=1"));
	CU_ASSERT_FALSE(replicate_id_ok(
	    "a1234567890123456789012345678901234567890123456789012345678901234"));
}

static void
test_webhook_read(void)
{
	char id[128];
	const char *ended = "{\"id\":\"abc123\",\"status\":\"succeeded\","
	    "\"output\":\"https://replicate.delivery/x.png\"}";
	const char *running = "{\"id\":\"abc123\",\"status\":\"processing\"}";

	CU_ASSERT_EQUAL(replicate_webhook_read(ended, strlen(ended), id,
	    sizeof(id)), 1);
	CU_ASSERT_STRING_EQUAL(id, "abc123");
	CU_ASSERT_EQUAL(replicate_webhook_read(running, strlen(running), id,
	    sizeof(id)), 0);
	CU_ASSERT_EQUAL(replicate_webhook_read("{\"status\":\"failed\"}", 19, id,
	    sizeof(id)), -1);
	CU_ASSERT_EQUAL(replicate_webhook_read("{\"id\":\"../x\",\"status\":"
	    "\"failed\"}", 31, id, sizeof(id)), -1);
	CU_ASSERT_EQUAL(replicate_webhook_read("not json", 8, id, sizeof(id)), -1);
	CU_ASSERT_EQUAL(replicate_webhook_read(NULL, 0, id, sizeof(id)), -1);
}

static void
test_price_row(void)
{
	CU_ASSERT_DOUBLE_EQUAL(prov_cost_estimate("replicate", "google/nano-banana",
	    1024, 1024), 0.039, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(prov_cost_estimate("replicate", "google/nano-banana",
	    4096, 4096), 0.039, 1e-9);
	CU_ASSERT(prov_cost_estimate("replicate", "someone/else", 1024, 1024) < 0);
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "request_body", test_request_body },
		{ "errors_classified", test_errors_classified },
		{ "failed_predictions", test_failed_predictions },
		{ "prediction_id", test_prediction_id },
		{ "webhook_read", test_webhook_read },
		{ "price_row", test_price_row },
		CU_TEST_INFO_NULL
	};

	return cu_run("replicate", tests);
}
