/* test_webhooks.c - the webhook fields of a generate body, the URL policy
 * at creation, and the delivery retry schedule. */
#include <string.h>

#include "cfg.h"
#include "cu_main.h"
#include "jobreq.h"
#include "urlpolicy.h"
#include "webhooks.h"

#define P_ID "7f9c2ba4-e88f-4272-8c7a-4ad2a2d4b1a7"

/* jobreq_parse() of a master_asset body with extra members; *jr filled. */
static enum ig_err
parse(struct arena *a, const char *extra, struct job_request *jr,
    const char **msg)
{
	char body[4096];

	snprintf(body, sizeof(body), "{\"projectId\":\"" P_ID "\","
	    "\"jobType\":\"master_asset\",\"prompt\":\"p\"%s%s}",
	    extra[0] != '\0' ? "," : "", extra);
	*msg = NULL;
	return jobreq_parse(a, body, strlen(body), NULL, NULL, jr, msg);
}

static void
test_webhooks_fields_parsed(void)
{
	struct arena *a = arena_new(4096);
	struct job_request jr;
	const char *msg;
	char fp[65];

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_EQUAL(parse(a, "", &jr, &msg), IG_OK);
	CU_ASSERT_PTR_NULL(jr.webhook);
	CU_ASSERT_PTR_NULL(jr.webhook_events);
	memcpy(fp, jr.fingerprint, sizeof(fp));
	CU_ASSERT_EQUAL(parse(a, "\"webhook\":\"https://example.com/h\"", &jr,
	    &msg), IG_OK);
	CU_ASSERT_STRING_EQUAL(jr.webhook, "https://example.com/h");
	CU_ASSERT_STRING_EQUAL(jr.webhook_events, "{completed}");
	/* another request for idempotency */
	CU_ASSERT_NOT_EQUAL(strcmp(fp, jr.fingerprint), 0);
	CU_ASSERT_EQUAL(parse(a, "\"webhook\":\"https://example.com/h\","
	    "\"webhookEventsFilter\":[\"completed\",\"start\"]", &jr, &msg), IG_OK);
	CU_ASSERT_STRING_EQUAL(jr.webhook_events, "{start,completed}");
	CU_ASSERT_EQUAL(parse(a, "\"webhook\":\"https://example.com/h\","
	    "\"webhookEventsFilter\":[\"start\"]", &jr, &msg), IG_OK);
	CU_ASSERT_STRING_EQUAL(jr.webhook_events, "{start}");
	CU_ASSERT_EQUAL(parse(a, "\"webhook\":null", &jr, &msg), IG_OK);
	CU_ASSERT_PTR_NULL(jr.webhook);
	arena_free(a);
}

static void
test_webhooks_fields_refused(void)
{
	static const char *const bad[] = {
		"\"webhook\":5",
		"\"webhook\":\"\"",
		"\"webhook\":\"https://example.com/a b\"",
		"\"webhook\":\"https://example.com/\\u00e9\"",
		"\"webhookEventsFilter\":[\"start\"]",
		"\"webhook\":\"https://e.com/\",\"webhookEventsFilter\":[]",
		"\"webhook\":\"https://e.com/\",\"webhookEventsFilter\":\"start\"",
		"\"webhook\":\"https://e.com/\",\"webhookEventsFilter\":[\"started\"]",
		"\"webhook\":\"https://e.com/\",\"webhookEventsFilter\":[\"start\",\"start\"]",
		"\"webhook\":\"https://e.com/\",\"webhookEventsFilter\":[1]",
		"\"webhook\":\"https://e.com/\",\"webhookEventsFilter\":"
		    "[\"start\",\"completed\",\"start\"]",
	};
	struct arena *a = arena_new(4096);
	struct job_request jr;
	char extra[2200];
	const char *msg;
	size_t i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_EQUAL(parse(a, bad[i], &jr, &msg), IG_EVALIDATION);
		CU_ASSERT_PTR_NOT_NULL(msg);
		if (msg != NULL)
			CU_ASSERT_PTR_NOT_NULL(strstr(msg, "webhook"));
	}
	/* 2048 characters pass, 2049 do not */
	memcpy(extra, "\"webhook\":\"https://e.com/", 25);
	memset(extra + 25, 'a', 2048 - 14);
	memcpy(extra + 25 + 2048 - 14, "\"", 2);
	CU_ASSERT_EQUAL(parse(a, extra, &jr, &msg), IG_OK);
	CU_ASSERT_EQUAL(strlen(jr.webhook), 2048);
	memset(extra + 25, 'a', 2048 - 13);
	memcpy(extra + 25 + 2048 - 13, "\"", 2);
	CU_ASSERT_EQUAL(parse(a, extra, &jr, &msg), IG_EVALIDATION);
	arena_free(a);
}

static void
test_webhooks_policy_at_creation(void)
{
	static const char *const refused[] = {
		"http://169.254.169.254/", "https://169.254.169.254/latest",
		"https://127.0.0.1/", "https://127.0.0.1:8443/x", "https://[::1]/",
		"https://10.0.0.1/", "https://192.168.1.1/", "https://[fd00::1]/",
		"https://[::ffff:127.0.0.1]/", "https://127.1/", "https://2130706433/",
		"https://0x7f000001/", "http://example.com/",
		"https://user:pw@example.com/", "ftp://example.com/", "not a url",
	};
	struct urlpol strict, allow;
	char why[256], err[256];
	size_t i;

	memset(&strict, 0, sizeof(strict));
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		why[0] = '\0';
		CU_ASSERT_EQUAL(jobreq_check_webhook(&strict, refused[i], why,
		    sizeof(why)), -1);
		CU_ASSERT(why[0] != '\0');
	}
	CU_ASSERT_EQUAL(jobreq_check_webhook(&strict, "https://example.com/h?t=1",
	    why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(jobreq_check_webhook(&strict, "https://93.184.216.34/h",
	    why, sizeof(why)), 0);
	/* the test allow-list lets the local receiver through */
	CU_ASSERT_EQUAL_FATAL(urlpol_parse(&allow, "127.0.0.1", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(jobreq_check_webhook(&allow, "http://127.0.0.1:9999/hook",
	    why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(jobreq_check_webhook(&allow, "https://127.0.0.1/", why,
	    sizeof(why)), 0);
	CU_ASSERT_EQUAL(jobreq_check_webhook(&allow, "https://169.254.169.254/",
	    why, sizeof(why)), -1);
	urlpol_free(&allow);
}

static void
test_webhooks_backoff_schedule(void)
{
	static const long long want[] = { 5000LL, 300000LL, 1800000LL,
		7200000LL, 18000000LL, 36000000LL, 50400000LL };
	struct cfg c;
	long long w;
	int i;

	memset(&c, 0, sizeof(c));
	for (i = 1; i <= 7; i++) {
		w = wh_backoff_ms(&c, i);
		CU_ASSERT(w >= want[i - 1]);
		CU_ASSERT(w < want[i - 1] * 3 / 2);
	}
	CU_ASSERT_EQUAL(wh_backoff_ms(&c, 8), -1);
	CU_ASSERT_EQUAL(wh_backoff_ms(&c, 0), -1);
	c.test_webhook_backoff = "300,300,600000";
	CU_ASSERT_EQUAL(wh_backoff_ms(&c, 1), 300);
	CU_ASSERT_EQUAL(wh_backoff_ms(&c, 2), 300);
	CU_ASSERT_EQUAL(wh_backoff_ms(&c, 3), 600000);
	CU_ASSERT_EQUAL(wh_backoff_ms(&c, 4), -1);
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "webhook fields parsed", test_webhooks_fields_parsed },
		{ "webhook fields refused", test_webhooks_fields_refused },
		{ "URL policy at creation", test_webhooks_policy_at_creation },
		{ "backoff schedule", test_webhooks_backoff_schedule },
		CU_TEST_INFO_NULL
	};

	return cu_run("webhooks", tests);
}
