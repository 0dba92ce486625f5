/*
 * test_gemini.c - the remote providers without a network: Gemini's aspect
 * ratio and image size choice, its request body, reply parsing of canned
 * replies (thought parts, text before the image, blocks, usage → cost),
 * error bodies → classified code and retry delay; the shared
 * classification table, Retry-After and Duration parsing, redaction, and
 * the OpenAI size and error mapping.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "base64.h"
#include "cu_main.h"
#include "prov_remote.h"

#define EPS 1e-9
#define FLASH "gemini-2.5-flash-image"
#define PRO "gemini-3-pro-image-preview"

/* The 3x2 PNG of test_base64.c, and a JPEG header, in base64. */
#define PNG_B64 "iVBORw0KGgoAAAANSUhEUgAAAAMAAAACCAIAAAASFvFNAAAAEElEQVR4nGP4z8AAQQxwF" \
	"gBB0gX7h/C5SAAAAABJRU5ErkJggg=="
#define JPEG_B64 "/9j/4AAQSkZJRgABAQAAAQABAAD/wAARCAAEAAUDASIAAhEBAxEB/9k="
#define TEXT_B64 "aGVsbG8sIEkgYW0gbm90IGFuIGltYWdlIGF0IGFsbA=="
#define KEY "AIzaSyTESTKEY-0123456789abcdefghijklmnop"	/* 39 chars */

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
res_init(struct prov_result *r)
{
	memset(r, 0, sizeof(*r));
	r->cost_usd = -1;
	r->input_tokens = r->output_tokens = -1;
}

/* ---- aspect ratio and size ---------------------------------------------- */

static void
test_gemini_aspect_ratio_choice(void)
{
	static const struct { int w, h; const char *want; } v[] = {
		{ 1024, 1024, "1:1" }, { 64, 64, "1:1" }, { 4096, 4096, "1:1" },
		{ 1100, 1000, "1:1" }, { 1000, 1100, "1:1" },
		{ 1150, 1000, "5:4" }, { 1000, 800, "5:4" }, { 800, 1000, "4:5" },
		{ 1024, 768, "4:3" }, { 768, 1024, "3:4" }, { 1440, 1080, "4:3" },
		{ 96, 128, "3:4" },
		{ 1200, 800, "3:2" }, { 800, 1200, "2:3" }, { 1536, 1024, "3:2" },
		{ 3000, 2000, "3:2" }, { 1024, 1536, "2:3" },
		{ 1920, 1080, "16:9" }, { 1080, 1920, "9:16" }, { 1280, 720, "16:9" },
		{ 1366, 768, "16:9" }, { 1792, 1024, "16:9" }, { 320, 192, "16:9" },
		{ 512, 256, "16:9" }, { 720, 1280, "9:16" },
		{ 2560, 1080, "21:9" }, { 2048, 858, "21:9" }, { 3440, 1440, "21:9" },
		/* past the table: the nearest end */
		{ 4096, 64, "21:9" }, { 64, 4096, "9:16" }, { 256, 1024, "9:16" },
		/* nonsense sizes do not crash */
		{ 0, 100, "1:1" }, { 100, 0, "1:1" }, { -5, -5, "1:1" },
	};
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		const char *got = gemini_aspect_ratio(v[i].w, v[i].h);

		if (strcmp(got, v[i].want) != 0)
			printf("\n  %dx%d: got %s, want %s", v[i].w, v[i].h, got,
			    v[i].want);
		CU_ASSERT_STRING_EQUAL(got, v[i].want);
	}
}

static void
test_gemini_image_size_choice(void)
{
	static const struct { const char *model; int w, h; const char *want; } v[] = {
		{ FLASH, 1024, 1024, NULL }, { FLASH, 4096, 4096, NULL },
		{ "gemini-2.5-flash-image-preview", 2048, 2048, NULL },
		{ PRO, 64, 64, "1K" }, { PRO, 1024, 1024, "1K" },
		{ PRO, 1024, 512, "1K" }, { PRO, 1025, 500, "2K" },
		{ PRO, 1920, 1080, "2K" }, { PRO, 2048, 2048, "2K" },
		{ PRO, 2049, 64, "4K" }, { PRO, 64, 2049, "4K" },
		{ PRO, 4096, 2304, "4K" },
		{ "gemini-3-pro-image", 3000, 3000, "4K" },
		{ "gemini-3.1-flash-image-preview", 1500, 1000, "2K" },
		{ "some-gateway-model", 4096, 4096, NULL }, { NULL, 1024, 1024, NULL },
	};
	size_t i;
	const char *got;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		got = gemini_image_size(v[i].model, v[i].w, v[i].h);
		if (v[i].want == NULL) {
			CU_ASSERT_PTR_NULL(got);
		} else if (got == NULL) {
			CU_FAIL("image size missing");
		} else {
			CU_ASSERT_STRING_EQUAL(got, v[i].want);
		}
	}
}

/* ---- the request -------------------------------------------------------- */

static json_object *
path(json_object *o, const char *a, const char *b)
{
	json_object *v = NULL;

	if (json_object_object_get_ex(o, a, &v) && b != NULL)
		json_object_object_get_ex(v, b, &v);
	return v;
}

static void
test_gemini_request_body(void)
{
	static const unsigned char src[] = "source-bytes", mask[] = "mask!";
	struct prov_request rq;
	json_object *root, *parts, *p, *gc, *mods;
	unsigned char *dec;
	size_t dl;
	char *body;

	memset(&rq, 0, sizeof(rq));
	rq.job_type = "inpaint";
	rq.prompt = "Edit the provided image: \"quotes\" and\nnewlines";
	rq.width = 1920;
	rq.height = 1080;
	rq.source = src;
	rq.source_len = sizeof(src) - 1;
	rq.source_mime = "image/jpeg";
	rq.mask = mask;
	rq.mask_len = sizeof(mask) - 1;
	rq.mask_mime = "image/png";
	body = gemini_request_json(&rq, PRO);
	CU_ASSERT_PTR_NOT_NULL_FATAL(body);
	root = json_tokener_parse(body);
	CU_ASSERT_PTR_NOT_NULL_FATAL(root);
	parts = path(json_object_array_get_idx(path(root, "contents", NULL), 0),
	    "parts", NULL);
	CU_ASSERT_EQUAL_FATAL(json_object_array_length(parts), 3);
	CU_ASSERT_STRING_EQUAL(json_object_get_string(path(
	    json_object_array_get_idx(parts, 0), "text", NULL)), rq.prompt);
	p = json_object_array_get_idx(parts, 1);
	CU_ASSERT_STRING_EQUAL(json_object_get_string(path(p, "inline_data",
	    "mime_type")), "image/jpeg");
	CU_ASSERT_EQUAL(base64_decode(json_object_get_string(path(p, "inline_data",
	    "data")), strlen(json_object_get_string(path(p, "inline_data", "data"))),
	    64, &dec, &dl), 0);
	CU_ASSERT(dl == rq.source_len && memcmp(dec, src, dl) == 0);
	free(dec);
	p = json_object_array_get_idx(parts, 2);
	CU_ASSERT_STRING_EQUAL(json_object_get_string(path(p, "inline_data",
	    "mime_type")), "image/png");
	gc = path(root, "generationConfig", NULL);
	mods = path(gc, "responseModalities", NULL);
	CU_ASSERT_EQUAL(json_object_array_length(mods), 1);
	CU_ASSERT_STRING_EQUAL(json_object_get_string(
	    json_object_array_get_idx(mods, 0)), "IMAGE");
	CU_ASSERT_STRING_EQUAL(json_object_get_string(path(gc, "imageConfig",
	    NULL) != NULL ? path(path(gc, "imageConfig", NULL), "aspectRatio",
	    NULL) : NULL), "16:9");
	CU_ASSERT_STRING_EQUAL(json_object_get_string(path(path(gc, "imageConfig",
	    NULL), "imageSize", NULL)), "2K");
	json_object_put(root);
	free(body);

	/* Flash: no imageSize; no source: the text part alone. */
	memset(&rq, 0, sizeof(rq));
	rq.prompt = "a fox";
	rq.width = 768;
	rq.height = 1024;
	body = gemini_request_json(&rq, FLASH);
	CU_ASSERT_PTR_NOT_NULL_FATAL(body);
	root = json_tokener_parse(body);
	CU_ASSERT_PTR_NOT_NULL_FATAL(root);
	parts = path(json_object_array_get_idx(path(root, "contents", NULL), 0),
	    "parts", NULL);
	CU_ASSERT_EQUAL(json_object_array_length(parts), 1);
	gc = path(path(root, "generationConfig", NULL), "imageConfig", NULL);
	CU_ASSERT_STRING_EQUAL(json_object_get_string(path(gc, "aspectRatio",
	    NULL)), "3:4");
	CU_ASSERT_PTR_NULL(path(gc, "imageSize", NULL));
	json_object_put(root);
	free(body);
}

/* ---- replies ------------------------------------------------------------ */

static enum prov_err
parse(const char *json, const char *model, struct prov_result *r)
{
	res_init(r);
	return gemini_parse_reply(json, strlen(json), model, 1024, 1024, 1 << 20, r);
}

/* A real-format reply: a thought, a thought image, a text part, then the
 * image; usage with a modality breakdown. */
static void
test_gemini_reply_skips_thoughts_and_text(void)
{
	static const char reply[] =
	    "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":["
	    "{\"text\":\"Planning the composition\",\"thought\":true},"
	    "{\"inlineData\":{\"mimeType\":\"image/jpeg\",\"data\":\"" JPEG_B64 "\"},"
	    "\"thought\":true},"
	    "{\"text\":\"Here is your fox.\"},"
	    "{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"" PNG_B64 "\"}},"
	    "{\"inlineData\":{\"mimeType\":\"image/jpeg\",\"data\":\"" JPEG_B64 "\"}}"
	    "]},\"finishReason\":\"STOP\",\"index\":0}],"
	    "\"usageMetadata\":{\"promptTokenCount\":10,\"candidatesTokenCount\":1300,"
	    "\"totalTokenCount\":1310,\"candidatesTokensDetails\":["
	    "{\"modality\":\"TEXT\",\"tokenCount\":10},"
	    "{\"modality\":\"IMAGE\",\"tokenCount\":1290}],"
	    "\"promptTokensDetails\":[{\"modality\":\"TEXT\",\"tokenCount\":10}]},"
	    "\"modelVersion\":\"gemini-2.5-flash-image\",\"responseId\":\"abc\"}";
	struct prov_result r;

	CU_ASSERT_EQUAL_FATAL(parse(reply, FLASH, &r), PROV_OK);
	CU_ASSERT_EQUAL(r.len, 73);	/* the PNG, not the thought's JPEG */
	CU_ASSERT(r.data != NULL && r.data[0] == 0x89 && r.data[1] == 'P');
	CU_ASSERT_EQUAL(r.input_tokens, 10);
	CU_ASSERT_EQUAL(r.output_tokens, 1300);
	/* 10 in at $0.30/M, 10 text out at $2.50/M, 1290 image at $30/M */
	CU_ASSERT_DOUBLE_EQUAL(r.cost_usd, (10 * 0.30 + 10 * 2.50 + 1290 * 30) / 1e6,
	    EPS);
	prov_result_free(&r);
}

static void
test_gemini_reply_usage_to_cost(void)
{
	static const char pro[] =
	    "{\"candidates\":[{\"content\":{\"parts\":["
	    "{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"" PNG_B64 "\"}}"
	    "]},\"finishReason\":\"STOP\"}],"
	    "\"usageMetadata\":{\"promptTokenCount\":20,\"candidatesTokenCount\":1120,"
	    "\"thoughtsTokenCount\":200,\"candidatesTokensDetails\":"
	    "[{\"modality\":\"IMAGE\",\"tokenCount\":1120}]}}";
	/* no breakdown: the candidates' tokens are the image's */
	static const char flat[] =
	    "{\"candidates\":[{\"content\":{\"parts\":["
	    "{\"inline_data\":{\"mime_type\":\"image/png\",\"data\":\"" PNG_B64 "\"}}"
	    "]},\"finishReason\":\"STOP\"}],"
	    "\"usageMetadata\":{\"promptTokenCount\":5,\"candidatesTokenCount\":1290}}";
	static const char none[] =
	    "{\"candidates\":[{\"content\":{\"parts\":["
	    "{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"" PNG_B64 "\"}}"
	    "]}}]}";
	struct prov_result r;

	CU_ASSERT_EQUAL_FATAL(parse(pro, PRO, &r), PROV_OK);
	CU_ASSERT_DOUBLE_EQUAL(r.cost_usd, (20 * 2.0 + 200 * 12.0 + 1120 * 120.0) / 1e6,
	    EPS);
	CU_ASSERT_EQUAL(r.output_tokens, 1320);
	prov_result_free(&r);
	CU_ASSERT_EQUAL_FATAL(parse(flat, FLASH, &r), PROV_OK);
	CU_ASSERT_DOUBLE_EQUAL(r.cost_usd, (5 * 0.30 + 1290 * 30.0) / 1e6, EPS);
	prov_result_free(&r);
	/* no usage: the estimate */
	CU_ASSERT_EQUAL_FATAL(parse(none, FLASH, &r), PROV_OK);
	CU_ASSERT_DOUBLE_EQUAL(r.cost_usd, 0.039, EPS);
	CU_ASSERT_EQUAL(r.input_tokens, -1);
	prov_result_free(&r);
	/* a model without prices: unknown (cfg_load() refuses such a model
	 * unless IMAGEGEN_PRICE_PER_IMAGE_USD prices it), usage still read */
	CU_ASSERT_EQUAL_FATAL(parse(flat, "gemini-9-ultra-image", &r), PROV_OK);
	CU_ASSERT(r.cost_usd < 0);
	CU_ASSERT_EQUAL(r.input_tokens, 5);
	prov_result_free(&r);
	/* the table itself */
	CU_ASSERT_DOUBLE_EQUAL(prov_cost_from_usage("gemini", FLASH, 0, 0, 0, 1290),
	    0.0387, EPS);
	CU_ASSERT_DOUBLE_EQUAL(prov_cost_from_usage("gemini", PRO, 0, 0, 0, 2000), 0.24,
	    EPS);
	CU_ASSERT_DOUBLE_EQUAL(prov_cost_from_usage("openai", "gpt-image-1", 50, 100, 0,
	    4160), (50 * 5.0 + 100 * 10.0 + 4160 * 40.0) / 1e6, EPS);
	CU_ASSERT_DOUBLE_EQUAL(prov_cost_from_usage("local", "local-renderer-1", 9, 9,
	    9, 9), 0.0, EPS);
	CU_ASSERT(prov_cost_from_usage("openai", "some-gateway-model", 1, 1, 1, 1) < 0);
	CU_ASSERT(prov_cost_from_usage(NULL, NULL, 1, 1, 1, 1) < 0);
}

static void
test_gemini_reply_blocks(void)
{
	static const struct { const char *json; enum prov_err e; const char *msg; } v[] = {
		{ "{\"promptFeedback\":{\"blockReason\":\"SAFETY\",\"safetyRatings\":[]},"
		  "\"usageMetadata\":{\"promptTokenCount\":8,\"totalTokenCount\":8}}",
		  PROV_CONTENT_POLICY, "gemini: the prompt was blocked: SAFETY" },
		{ "{\"promptFeedback\":{\"blockReason\":\"PROHIBITED_CONTENT\","
		  "\"blockReasonMessage\":\"no\"}}",
		  PROV_CONTENT_POLICY, "gemini: the prompt was blocked: PROHIBITED_CONTENT: no" },
		{ "{\"promptFeedback\":{\"blockReason\":\"OTHER\"},\"candidates\":[]}",
		  PROV_CONTENT_POLICY, "gemini: the prompt was blocked: OTHER" },
		{ "{\"candidates\":[{\"finishReason\":\"IMAGE_SAFETY\",\"finishMessage\":"
		  "\"Unable to show the generated image.\"}]}",
		  PROV_CONTENT_POLICY, "gemini: the image was blocked: IMAGE_SAFETY: "
		  "Unable to show the generated image." },
		{ "{\"candidates\":[{\"finishReason\":\"SAFETY\",\"safetyRatings\":"
		  "[{\"category\":\"HARM_CATEGORY_DANGEROUS_CONTENT\","
		  "\"probability\":\"HIGH\",\"blocked\":true}]}]}",
		  PROV_CONTENT_POLICY, "gemini: the image was blocked: SAFETY" },
		{ "{\"candidates\":[{\"finishReason\":\"PROHIBITED_CONTENT\"}]}",
		  PROV_CONTENT_POLICY, NULL },
		{ "{\"candidates\":[{\"finishReason\":\"IMAGE_PROHIBITED_CONTENT\"}]}",
		  PROV_CONTENT_POLICY, NULL },
		{ "{\"candidates\":[{\"finishReason\":\"RECITATION\"}]}",
		  PROV_CONTENT_POLICY, NULL },
		/* a blocked candidate's parts are not read */
		{ "{\"candidates\":[{\"finishReason\":\"IMAGE_SAFETY\",\"content\":{\"parts\":"
		  "[{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"" PNG_B64 "\"}}]}}]}",
		  PROV_CONTENT_POLICY, NULL },
		{ "{\"candidates\":[{\"finishReason\":\"NO_IMAGE\"}]}",
		  PROV_NO_IMAGE, "gemini: no image in the reply (finishReason NO_IMAGE)" },
		{ "{\"candidates\":[{\"finishReason\":\"IMAGE_OTHER\"}]}",
		  PROV_NO_IMAGE, NULL },
		{ "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"I can only "
		  "describe it.\"}]},\"finishReason\":\"STOP\"}]}",
		  PROV_NO_IMAGE, "gemini: no image in the reply (finishReason STOP); "
		  "the model said: I can only describe it." },
		/* only a thought image */
		{ "{\"candidates\":[{\"content\":{\"parts\":[{\"thought\":true,"
		  "\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"" PNG_B64 "\"}}]},"
		  "\"finishReason\":\"STOP\"}]}",
		  PROV_NO_IMAGE, NULL },
		{ "{\"candidates\":[]}", PROV_NO_IMAGE, "gemini: the reply has no candidates" },
		{ "{}", PROV_NO_IMAGE, "gemini: the reply has no candidates" },
		/* unreadable */
		{ "{\"candidates\":[", PROV_PROVIDER_ERROR, NULL },
		{ "not json", PROV_PROVIDER_ERROR, NULL },
		{ "[1,2]", PROV_PROVIDER_ERROR, NULL },
		{ "{} trailing", PROV_PROVIDER_ERROR, NULL },
		{ "{\"candidates\":[{\"content\":{\"parts\":[{\"inlineData\":{\"mimeType\":"
		  "\"image/png\",\"data\":\"" TEXT_B64 "\"}}]},\"finishReason\":\"STOP\"}]}",
		  PROV_PROVIDER_ERROR, "gemini: the image is not a whole PNG, JPEG or WebP "
		  "(31 bytes)" },
		{ "{\"candidates\":[{\"content\":{\"parts\":[{\"inlineData\":{\"mimeType\":"
		  "\"image/png\",\"data\":\"iVBORw0KGgoAAAANSUhEUgAAAAMAAAACCAIAAAAS\"}}]},"
		  "\"finishReason\":\"STOP\"}]}",
		  PROV_PROVIDER_ERROR, NULL },
		{ "{\"candidates\":[{\"content\":{\"parts\":[{\"inlineData\":{\"mimeType\":"
		  "\"image/png\",\"data\":\"iVBORw0KGgoAAAANSUhEUgAAAAMAAAACCAIAAAASFv\"}}]},"
		  "\"finishReason\":\"STOP\"}]}",
		  PROV_PROVIDER_ERROR, NULL },
	};
	struct prov_result r;
	enum prov_err e;
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		e = parse(v[i].json, FLASH, &r);
		if (e != v[i].e || (v[i].msg != NULL && strcmp(r.message, v[i].msg) != 0))
			printf("\n  case %zu: %s: %s", i, prov_err_code(e), r.message);
		CU_ASSERT_EQUAL(e, v[i].e);
		CU_ASSERT_PTR_NULL(r.data);
		CU_ASSERT(r.message[0] != '\0');
		if (v[i].msg != NULL)
			CU_ASSERT_STRING_EQUAL(r.message, v[i].msg);
		prov_result_free(&r);
	}
}

/* ---- errors ------------------------------------------------------------- */

static void
test_gemini_error_bodies(void)
{
	static const struct {
		long status;
		const char *body;
		long header_ms;
		enum prov_err e;
		long retry_ms;
		const char *msg;
	} v[] = {
		{ 400, "{\"error\":{\"code\":400,\"message\":\"Request contains an invalid "
		  "argument.\",\"status\":\"INVALID_ARGUMENT\"}}", 0,
		  PROV_INVALID_REQUEST, 0,
		  "gemini: HTTP 400 INVALID_ARGUMENT: Request contains an invalid argument." },
		{ 400, "{\"error\":{\"code\":400,\"message\":\"API key not valid. Please pass "
		  "a valid API key.\",\"status\":\"INVALID_ARGUMENT\",\"details\":[{\"@type\":"
		  "\"type.googleapis.com/google.rpc.ErrorInfo\",\"reason\":\"API_KEY_INVALID\","
		  "\"domain\":\"googleapis.com\"}]}}", 0, PROV_AUTH_ERROR, 0, NULL },
		{ 400, "{\"error\":{\"code\":400,\"message\":\"User location is not "
		  "supported\",\"status\":\"FAILED_PRECONDITION\"}}", 0,
		  PROV_INVALID_REQUEST, 0, NULL },
		{ 401, "{\"error\":{\"code\":401,\"message\":\"no\",\"status\":"
		  "\"UNAUTHENTICATED\"}}", 0, PROV_AUTH_ERROR, 0, NULL },
		{ 403, "{\"error\":{\"code\":403,\"message\":\"Method doesn't allow "
		  "unregistered callers\",\"status\":\"PERMISSION_DENIED\"}}", 0,
		  PROV_AUTH_ERROR, 0, NULL },
		{ 404, "{\"error\":{\"code\":404,\"message\":\"models/x is not found\","
		  "\"status\":\"NOT_FOUND\"}}", 0, PROV_INVALID_REQUEST, 0, NULL },
		{ 429, "{\"error\":{\"code\":429,\"message\":\"You exceeded your current "
		  "quota\",\"status\":\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":"
		  "\"type.googleapis.com/google.rpc.QuotaFailure\",\"violations\":[]},"
		  "{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\","
		  "\"retryDelay\":\"13s\"}]}}", 0, PROV_RATE_LIMIT, 13000,
		  "gemini: HTTP 429 RESOURCE_EXHAUSTED: You exceeded your current quota" },
		/* RetryInfo wins over the header */
		{ 429, "{\"error\":{\"code\":429,\"message\":\"slow down\",\"status\":"
		  "\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":"
		  "\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"1.5s\"}]}}",
		  7000, PROV_RATE_LIMIT, 1500, NULL },
		{ 429, "{\"error\":{\"code\":429,\"message\":\"slow down\",\"status\":"
		  "\"RESOURCE_EXHAUSTED\"}}", 2000, PROV_RATE_LIMIT, 2000, NULL },
		{ 500, "{\"error\":{\"code\":500,\"message\":\"An internal error has "
		  "occurred.\",\"status\":\"INTERNAL\"}}", 0, PROV_TEMPORARY, 0, NULL },
		{ 503, "{\"error\":{\"code\":503,\"message\":\"The model is overloaded.\","
		  "\"status\":\"UNAVAILABLE\"}}", 3000, PROV_TEMPORARY, 3000, NULL },
		{ 504, "{\"error\":{\"code\":504,\"message\":\"Deadline expired\","
		  "\"status\":\"DEADLINE_EXCEEDED\"}}", 0, PROV_TEMPORARY, 0, NULL },
		{ 502, "<html><body>Bad Gateway</body>\n</html>", 0, PROV_TEMPORARY, 0,
		  "gemini: HTTP 502: <html><body>Bad Gateway</body> </html>" },
		{ 408, "", 0, PROV_TIMEOUT, 0, "gemini: HTTP 408" },
		{ 418, "{\"error\":\"not an object\"}", 0, PROV_INVALID_REQUEST, 0, NULL },
		/* retry hints are ignored on permanent errors */
		{ 400, "{\"error\":{\"code\":400,\"message\":\"x\",\"status\":"
		  "\"INVALID_ARGUMENT\",\"details\":[{\"@type\":"
		  "\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"5s\"}]}}",
		  9000, PROV_INVALID_REQUEST, 0, NULL },
	};
	struct prov_result r;
	enum prov_err e;
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		res_init(&r);
		e = gemini_parse_error(v[i].status, v[i].body, strlen(v[i].body),
		    v[i].header_ms, &r);
		if (e != v[i].e || r.retry_after_ms != v[i].retry_ms)
			printf("\n  case %zu: %s %ld: %s", i, prov_err_code(e),
			    r.retry_after_ms, r.message);
		CU_ASSERT_EQUAL(e, v[i].e);
		CU_ASSERT_EQUAL(r.retry_after_ms, v[i].retry_ms);
		if (v[i].msg != NULL)
			CU_ASSERT_STRING_EQUAL(r.message, v[i].msg);
		CU_ASSERT(r.message[0] != '\0');
	}
}

/* The key a provider echoes never reaches the job's message. */
static void
test_error_message_redacts_the_key(void)
{
	char body[512], msg[64];
	struct prov_result r;

	snprintf(body, sizeof(body), "{\"error\":{\"code\":400,\"message\":\"API key "
	    "not valid: %s. Please pass a valid API key.\",\"status\":"
	    "\"INVALID_ARGUMENT\"}}", KEY);
	res_init(&r);
	gemini_parse_error(400, body, strlen(body), 0, &r);
	CU_ASSERT_PTR_NULL(strstr(r.message, KEY));
	CU_ASSERT_PTR_NULL(strstr(r.message, "AIza"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.message, "[redacted]"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.message, "Please pass a valid API key."));

	/* Exact keys of any shape, several times, and at the end of a buffer
	 * too small for the replacement. */
	snprintf(msg, sizeof(msg), "k=s3cr3t-value; again s3cr3t-value!");
	prov_redact(msg, sizeof(msg), "s3cr3t-value");
	CU_ASSERT_STRING_EQUAL(msg, "k=[redacted]; again [redacted]!");
	snprintf(msg, sizeof(msg), "abcd");
	prov_redact(msg, sizeof(msg), "abcd");
	CU_ASSERT_STRING_EQUAL(msg, "[redacted]");
	snprintf(msg, 8, "xx1234");
	prov_redact(msg, 8, "1234");
	CU_ASSERT_STRING_EQUAL(msg, "xx");
	snprintf(msg, sizeof(msg), "Bearer sk-proj-ABCDEFGHIJKLMNOPQRST done");
	prov_redact(msg, sizeof(msg), NULL);
	CU_ASSERT_STRING_EQUAL(msg, "Bearer [redacted] done");
	/* Short words that merely look alike stay. */
	snprintf(msg, sizeof(msg), "task-sk-1 AIzaShort desk-sk-abc");
	prov_redact(msg, sizeof(msg), "");
	CU_ASSERT_STRING_EQUAL(msg, "task-sk-1 AIzaShort desk-sk-abc");
}

static void
test_classification_table(void)
{
	static const struct { long status; enum prov_err e; } v[] = {
		{ 200, PROV_OK }, { 201, PROV_OK }, { 204, PROV_OK },
		{ 400, PROV_INVALID_REQUEST }, { 401, PROV_AUTH_ERROR },
		{ 403, PROV_AUTH_ERROR }, { 404, PROV_INVALID_REQUEST },
		{ 408, PROV_TIMEOUT }, { 413, PROV_INVALID_REQUEST },
		{ 422, PROV_INVALID_REQUEST }, { 429, PROV_RATE_LIMIT },
		{ 500, PROV_TEMPORARY }, { 502, PROV_TEMPORARY },
		{ 503, PROV_TEMPORARY }, { 504, PROV_TEMPORARY },
		{ 599, PROV_TEMPORARY }, { 100, PROV_PROVIDER_ERROR },
		{ 301, PROV_PROVIDER_ERROR }, { 0, PROV_PROVIDER_ERROR },
		{ 600, PROV_PROVIDER_ERROR }, { -1, PROV_PROVIDER_ERROR },
	};
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		CU_ASSERT_EQUAL(prov_http_class(v[i].status), v[i].e);
	/* Only these three are retried (SPEC §6). */
	CU_ASSERT(prov_err_retryable(PROV_RATE_LIMIT));
	CU_ASSERT(prov_err_retryable(PROV_TEMPORARY));
	CU_ASSERT(prov_err_retryable(PROV_TIMEOUT));
	CU_ASSERT(!prov_err_retryable(PROV_AUTH_ERROR));
	CU_ASSERT(!prov_err_retryable(PROV_INVALID_REQUEST));
	CU_ASSERT(!prov_err_retryable(PROV_CONTENT_POLICY));
	CU_ASSERT(!prov_err_retryable(PROV_NO_IMAGE));
	CU_ASSERT(!prov_err_retryable(PROV_PROVIDER_ERROR));
}

static void
test_retry_after_and_duration(void)
{
	time_t now = 1700000000;	/* Tue, 14 Nov 2023 22:13:20 GMT */

	CU_ASSERT_EQUAL(prov_retry_after_ms("1", now), 1000);
	CU_ASSERT_EQUAL(prov_retry_after_ms("120", now), 120000);
	CU_ASSERT_EQUAL(prov_retry_after_ms(" 3 ", now), 3000);
	CU_ASSERT_EQUAL(prov_retry_after_ms("0", now), 0);
	CU_ASSERT_EQUAL(prov_retry_after_ms("99999999999", now), 86400000L);
	CU_ASSERT_EQUAL(prov_retry_after_ms("-1", now), 0);
	CU_ASSERT_EQUAL(prov_retry_after_ms("1.5", now), 0);
	CU_ASSERT_EQUAL(prov_retry_after_ms("soon", now), 0);
	CU_ASSERT_EQUAL(prov_retry_after_ms("", now), 0);
	CU_ASSERT_EQUAL(prov_retry_after_ms(NULL, now), 0);
	CU_ASSERT_EQUAL(prov_retry_after_ms("Tue, 14 Nov 2023 22:13:25 GMT", now), 5000);
	CU_ASSERT_EQUAL(prov_retry_after_ms("Tue, 14 Nov 2023 22:13:20 GMT", now), 0);
	CU_ASSERT_EQUAL(prov_retry_after_ms("Mon, 13 Nov 2023 22:13:25 GMT", now), 0);
	CU_ASSERT_EQUAL(prov_retry_after_ms("Tue, 14 Nov 2023 22:13:25 PST", now), 0);

	CU_ASSERT_EQUAL(prov_duration_ms("13s"), 13000);
	CU_ASSERT_EQUAL(prov_duration_ms("1s"), 1000);
	CU_ASSERT_EQUAL(prov_duration_ms("0s"), 0);
	CU_ASSERT_EQUAL(prov_duration_ms("0.5s"), 500);
	CU_ASSERT_EQUAL(prov_duration_ms("1.5s"), 1500);
	CU_ASSERT_EQUAL(prov_duration_ms("1.0001s"), 1001);	/* rounded up */
	CU_ASSERT_EQUAL(prov_duration_ms("53.123456789s"), 53124);
	CU_ASSERT_EQUAL(prov_duration_ms("999999999s"), 86400000L);
	CU_ASSERT_EQUAL(prov_duration_ms("13"), -1);
	CU_ASSERT_EQUAL(prov_duration_ms("s"), -1);
	CU_ASSERT_EQUAL(prov_duration_ms("-1s"), -1);
	CU_ASSERT_EQUAL(prov_duration_ms("1ms"), -1);
	CU_ASSERT_EQUAL(prov_duration_ms("1s "), -1);
	CU_ASSERT_EQUAL(prov_duration_ms(""), -1);
	CU_ASSERT_EQUAL(prov_duration_ms(NULL), -1);
}

/* ---- openai ------------------------------------------------------------- */

static void
test_openai_size_and_errors(void)
{
	static const struct { const char *model; int w, h; const char *want; } sz[] = {
		{ "gpt-image-1", 1024, 1024, "1024x1024" },
		{ "gpt-image-1", 1920, 1080, "1536x1024" },
		{ "gpt-image-1", 720, 1280, "1024x1536" },
		{ "gpt-image-1", 64, 64, "1024x1024" },
		{ "dall-e-3", 1920, 1080, "1792x1024" },
		{ "dall-e-2", 200, 100, "256x256" },
		{ "dall-e-2", 600, 600, "1024x1024" },
		{ "gemini-2.5-flash-image", 1344, 768, "1344x768" },
		{ NULL, 64, 4096, "64x4096" },
	};
	static const struct {
		long status;
		const char *body;
		long hdr;
		enum prov_err e;
		long retry;
	} ev[] = {
		{ 400, "{\"error\":{\"message\":\"Your request was rejected as a result "
		  "of our safety system.\",\"type\":\"image_generation_user_error\","
		  "\"param\":null,\"code\":\"content_policy_violation\"}}", 0,
		  PROV_CONTENT_POLICY, 0 },
		{ 400, "{\"error\":{\"message\":\"Rejected by the moderation system\","
		  "\"type\":\"invalid_request_error\",\"code\":\"moderation_blocked\"}}", 0,
		  PROV_CONTENT_POLICY, 0 },
		{ 400, "{\"error\":{\"message\":\"Invalid size\",\"type\":"
		  "\"invalid_request_error\",\"param\":\"size\",\"code\":null}}", 0,
		  PROV_INVALID_REQUEST, 0 },
		{ 401, "{\"error\":{\"message\":\"Incorrect API key provided\",\"type\":"
		  "\"invalid_request_error\",\"code\":\"invalid_api_key\"}}", 0,
		  PROV_AUTH_ERROR, 0 },
		{ 429, "{\"error\":{\"message\":\"Rate limit reached\",\"type\":"
		  "\"requests\",\"code\":\"rate_limit_exceeded\"}}", 1000,
		  PROV_RATE_LIMIT, 1000 },
		{ 500, "{\"error\":{\"message\":\"The server had an error\",\"type\":"
		  "\"server_error\"}}", 0, PROV_TEMPORARY, 0 },
		{ 503, "upstream connect error", 2000, PROV_TEMPORARY, 2000 },
		{ 200, "{\"error\":{\"message\":\"gateway said no\"}}", 0,
		  PROV_PROVIDER_ERROR, 0 },
	};
	struct prov_result r;
	char out[32];
	size_t i;

	for (i = 0; i < sizeof(sz) / sizeof(sz[0]); i++) {
		openai_size(sz[i].model, sz[i].w, sz[i].h, out, sizeof(out));
		CU_ASSERT_STRING_EQUAL(out, sz[i].want);
	}
	for (i = 0; i < sizeof(ev) / sizeof(ev[0]); i++) {
		res_init(&r);
		CU_ASSERT_EQUAL(openai_parse_error(ev[i].status, ev[i].body,
		    strlen(ev[i].body), ev[i].hdr, &r), ev[i].e);
		CU_ASSERT_EQUAL(r.retry_after_ms, ev[i].retry);
		CU_ASSERT(strncmp(r.message, "openai: HTTP ", 13) == 0);
	}
}

/* A 2xx images answer: the image in base64, or its URL handed back for
 * the caller to download, usage to tokens; an error object or no image. */
static void
test_openai_reply_bodies(void)
{
	static const char b64[] = "{\"created\":1,\"data\":[{\"b64_json\":\""
	    PNG_B64 "\"}],\"usage\":{\"input_tokens\":50,\"output_tokens\":"
	    "40,\"input_tokens_details\":{\"text_tokens\":10,\"image_tokens\":"
	    "40}}}";
	static const char url[] = "{\"data\":[{\"url\":"
	    "\"https://img.example/a.png\"}]}";
	static const char err[] = "{\"error\":{\"message\":\"rejected\","
	    "\"type\":\"image_generation_user_error\",\"code\":"
	    "\"content_policy_violation\"}}";
	struct prov_result r;
	char *u = NULL;

	res_init(&r);
	CU_ASSERT_EQUAL(openai_parse_reply(200, b64, strlen(b64), "gpt-image-1",
	    1024, 1024, 1 << 20, &u, &r), PROV_OK);
	CU_ASSERT_PTR_NULL(u);
	CU_ASSERT_PTR_NOT_NULL(r.data);
	CU_ASSERT(r.len > 0);
	CU_ASSERT_EQUAL(r.input_tokens, 50);
	CU_ASSERT_EQUAL(r.output_tokens, 40);
	prov_result_free(&r);
	res_init(&r);
	CU_ASSERT_EQUAL(openai_parse_reply(200, b64, strlen(b64), "gpt-image-1",
	    1024, 1024, 16, &u, &r), PROV_PROVIDER_ERROR);
	CU_ASSERT_PTR_NULL(r.data);
	CU_ASSERT(strncmp(r.message, "openai: ", 8) == 0);
	res_init(&r);
	CU_ASSERT_EQUAL(openai_parse_reply(200, url, strlen(url), "dall-e-3",
	    1024, 1024, 1 << 20, &u, &r), PROV_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(u);
	CU_ASSERT_STRING_EQUAL(u, "https://img.example/a.png");
	CU_ASSERT_PTR_NULL(r.data);
	free(u);
	u = NULL;
	res_init(&r);
	CU_ASSERT_EQUAL(openai_parse_reply(200, err, strlen(err), "gpt-image-1",
	    1024, 1024, 1 << 20, &u, &r), PROV_CONTENT_POLICY);
	CU_ASSERT_PTR_NULL(u);
	res_init(&r);
	CU_ASSERT_EQUAL(openai_parse_reply(200, "{\"data\":[]}", 11,
	    "gpt-image-1", 1024, 1024, 1 << 20, &u, &r), PROV_NO_IMAGE);
	res_init(&r);
	CU_ASSERT_EQUAL(openai_parse_reply(200, "[1]", 3, "gpt-image-1", 1024,
	    1024, 1 << 20, &u, &r), PROV_PROVIDER_ERROR);
	CU_ASSERT_PTR_NULL(u);
}

/* ---- the providers through the vtable, offline ---------------------------- */

static void
test_remote_providers_open_and_fail_fast(void)
{
	struct prov_request rq;
	struct prov_result r;
	struct prov_remote_conf rc;
	struct provider p;
	struct cfg c;
	char err[256] = "";
	long long t0;

	memset(&c, 0, sizeof(c));
	memset(&rc, 0, sizeof(rc));
	c.provider = "gemini";
	c.provider_conf = &rc;
	rc.api_key = KEY;
	rc.model = "bad model/name";
	CU_ASSERT_EQUAL(prov_open(&p, &c, err, sizeof(err)), -1);
	CU_ASSERT(strncmp(err, "NANO_BANANA_MODEL:", 18) == 0);
	CU_ASSERT_PTR_NULL(strstr(err, KEY));

	/* Port 1 on loopback refuses at once: a connection error. */
	rc.model = "models/" PRO;
	rc.api_url = "http://127.0.0.1:1/v1beta";
	c.provider_timeout_ms = 2000;
	c.provider_max_bytes = 1 << 20;
	CU_ASSERT_EQUAL_FATAL(prov_open(&p, &c, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(p.ops->name, "gemini");
	CU_ASSERT_STRING_EQUAL(p.model, PRO);
	memset(&rq, 0, sizeof(rq));
	rq.job_type = "master_asset";
	rq.prompt = "a fox";
	rq.width = rq.height = 1024;
	t0 = now_ms();
	CU_ASSERT_EQUAL(prov_generate(&p, &rq, &r), PROV_TEMPORARY);
	CU_ASSERT(now_ms() - t0 < 2000);
	CU_ASSERT(strncmp(r.message, "gemini: request: ", 17) == 0);
	CU_ASSERT_PTR_NULL(strstr(r.message, KEY));
	prov_result_free(&r);
	/* A deadline already passed: TIMEOUT without a call. */
	rq.deadline_ms = now_ms() - 1;
	CU_ASSERT_EQUAL(prov_generate(&p, &rq, &r), PROV_TIMEOUT);
	prov_result_free(&r);
	prov_close(&p);

	c.provider = "openai";
	rc.model = "gpt-image-1";
	rc.api_url = "http://127.0.0.1:1/v1";
	CU_ASSERT_EQUAL_FATAL(prov_open(&p, &c, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(p.ops->name, "openai");
	rq.deadline_ms = 0;
	CU_ASSERT_EQUAL(prov_generate(&p, &rq, &r), PROV_TEMPORARY);
	prov_result_free(&r);
	/* inpaint is refused, not silently drawn afresh */
	rq.job_type = "inpaint";
	rq.source = (const unsigned char *)"x";
	rq.source_len = 1;
	CU_ASSERT_EQUAL(prov_generate(&p, &rq, &r), PROV_INVALID_REQUEST);
	prov_result_free(&r);
	prov_close(&p);

	rc.api_key = NULL;
	CU_ASSERT_EQUAL(prov_open(&p, &c, err, sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "NANO_BANANA_API_KEY is not set (needed by "
	    "IMAGEGEN_PROVIDER=openai)");
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "gemini_aspect_ratio_choice", test_gemini_aspect_ratio_choice },
		{ "gemini_image_size_choice", test_gemini_image_size_choice },
		{ "gemini_request_body", test_gemini_request_body },
		{ "gemini_reply_skips_thoughts_and_text",
		    test_gemini_reply_skips_thoughts_and_text },
		{ "gemini_reply_usage_to_cost", test_gemini_reply_usage_to_cost },
		{ "gemini_reply_blocks", test_gemini_reply_blocks },
		{ "gemini_error_bodies", test_gemini_error_bodies },
		{ "error_message_redacts_the_key", test_error_message_redacts_the_key },
		{ "classification_table", test_classification_table },
		{ "retry_after_and_duration", test_retry_after_and_duration },
		{ "openai_size_and_errors", test_openai_size_and_errors },
		{ "openai_reply_bodies", test_openai_reply_bodies },
		{ "remote_providers_open_and_fail_fast",
		    test_remote_providers_open_and_fail_fast },
		CU_TEST_INFO_NULL
	};

	return cu_run("gemini", tests);
}
