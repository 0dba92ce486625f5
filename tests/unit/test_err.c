/* test_err.c - the error enum's HTTP mapping. */
#include <string.h>

#include "cu_main.h"
#include "err.h"

static void
test_err_every_code_mapped(void)
{
	int e;

	for (e = IG_EVALIDATION; e < IG_ERR_COUNT; e++) {
		CU_ASSERT(err_http_status((enum ig_err)e) >= 400);
		CU_ASSERT(strlen(err_code((enum ig_err)e)) > 0);
		CU_ASSERT(strlen(err_message((enum ig_err)e)) > 0);
		CU_ASSERT_STRING_NOT_EQUAL(
		    err_reason_phrase(err_http_status((enum ig_err)e)), "Unknown");
	}
}

/* SPEC §3's table, row by row. */
static void
test_err_spec_table(void)
{
	static const struct { enum ig_err e; int status; const char *code; } t[] = {
		{ IG_EVALIDATION, 400, "VALIDATION_ERROR" },
		{ IG_EUNAUTHORIZED, 401, "UNAUTHORIZED" },
		{ IG_EBUDGET, 402, "BUDGET_EXCEEDED" },
		{ IG_EFORBIDDEN, 403, "FORBIDDEN" },
		{ IG_ENOTFOUND, 404, "NOT_FOUND" },
		{ IG_EMETHOD, 405, "METHOD_NOT_ALLOWED" },
		{ IG_EIDEM_IN_FLIGHT, 409, "IDEMPOTENCY_IN_FLIGHT" },
		{ IG_ETOO_LARGE, 413, "PAYLOAD_TOO_LARGE" },
		{ IG_EMEDIA_TYPE, 415, "UNSUPPORTED_MEDIA_TYPE" },
		{ IG_EIDEM_REUSED, 422, "IDEMPOTENCY_KEY_REUSED" },
		{ IG_ERATE_LIMITED, 429, "RATE_LIMITED" },
		{ IG_EINTERNAL, 500, "INTERNAL" },
		{ IG_EUNAVAILABLE, 503, "SERVICE_UNAVAILABLE" },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		CU_ASSERT_EQUAL(err_http_status(t[i].e), t[i].status);
		CU_ASSERT_STRING_EQUAL(err_code(t[i].e), t[i].code);
	}
}

static void
test_err_out_of_range_is_internal(void)
{
	CU_ASSERT_EQUAL(err_http_status((enum ig_err)999), 500);
	CU_ASSERT_STRING_EQUAL(err_code((enum ig_err)-1), "INTERNAL");
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "every_code_mapped", test_err_every_code_mapped },
		{ "spec_table", test_err_spec_table },
		{ "out_of_range_is_internal", test_err_out_of_range_is_internal },
		CU_TEST_INFO_NULL
	};

	return cu_run("err", tests);
}
