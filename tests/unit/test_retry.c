/* test_retry.c - the executor's retry policy and its failure codes. */
#include <string.h>

#include "cu_main.h"
#include "exec_fail.h"
#include "provider.h"
#include "retry.h"

static void
test_retry_doubled_is_capped(void)
{
	CU_ASSERT_EQUAL(retry_doubled(500, 8000), 1000);
	CU_ASSERT_EQUAL(retry_doubled(4000, 8000), 8000);
	CU_ASSERT_EQUAL(retry_doubled(6000, 8000), 8000);
	CU_ASSERT_EQUAL(retry_doubled(8000, 8000), 8000);
	CU_ASSERT_EQUAL(retry_doubled(RETRY_DB_BACKOFF_MS, RETRY_DB_BACKOFF_MAX_MS), 400);
}

static void
test_retry_jittered_within_half(void)
{
	long long w;
	int i, above = 0;

	for (i = 0; i < 200; i++) {
		w = retry_jittered(1000);
		CU_ASSERT(w >= 1000);
		CU_ASSERT(w < 1500);
		if (w > 1000)
			above++;
	}
	CU_ASSERT(above > 0);	/* it does spread the waiters */
	CU_ASSERT_EQUAL(retry_jittered(0), 0);
}

static void
test_retry_provider_only_transient_errors(void)
{
	static const enum prov_err never[] = { PROV_OK, PROV_AUTH_ERROR,
		PROV_INVALID_REQUEST, PROV_CONTENT_POLICY, PROV_NO_IMAGE,
		PROV_PROVIDER_ERROR };
	static const enum prov_err transient[] = { PROV_RATE_LIMIT, PROV_TEMPORARY,
		PROV_TIMEOUT };
	size_t i;

	for (i = 0; i < sizeof(never) / sizeof(never[0]); i++)
		CU_ASSERT_FALSE(retry_provider_again(never[i], 1));
	for (i = 0; i < sizeof(transient) / sizeof(transient[0]); i++) {
		CU_ASSERT_TRUE(retry_provider_again(transient[i], 1));
		CU_ASSERT_TRUE(retry_provider_again(transient[i], RETRY_GEN_MAX_TRIES - 1));
		/* at most RETRY_GEN_MAX_TRIES calls per attempt */
		CU_ASSERT_FALSE(retry_provider_again(transient[i], RETRY_GEN_MAX_TRIES));
	}
	CU_ASSERT_EQUAL(RETRY_GEN_MAX_TRIES, 4);
}

static void
test_retry_provider_wait_honours_retry_after(void)
{
	long long w;

	CU_ASSERT_EQUAL(retry_provider_wait(3000, 500), 3000);
	CU_ASSERT_EQUAL(retry_provider_wait(1, 8000), 1);
	w = retry_provider_wait(0, 500);
	CU_ASSERT(w >= 500 && w < 750);
	w = retry_provider_wait(-1, 2000);
	CU_ASSERT(w >= 2000 && w < 3000);
}

static void
test_retry_deadline(void)
{
	/* a wait reaching the deadline is not taken */
	CU_ASSERT_TRUE(retry_passes_deadline(1000, 500, 1500));
	CU_ASSERT_TRUE(retry_passes_deadline(1000, 600, 1500));
	CU_ASSERT_FALSE(retry_passes_deadline(1000, 499, 1500));
	/* 0: no deadline */
	CU_ASSERT_FALSE(retry_passes_deadline(1000, 1000000, 0));
	/* a call that ended within the slack hit the deadline */
	CU_ASSERT_TRUE(retry_at_deadline(5000, 5000));
	CU_ASSERT_TRUE(retry_at_deadline(5000 - RETRY_DEADLINE_SLACK_MS, 5000));
	CU_ASSERT_FALSE(retry_at_deadline(5000 - RETRY_DEADLINE_SLACK_MS - 1, 5000));
}

/* A storage wait that would pass the deadline is shortened to leave one
 * last call, not given up on halfway (test_temporary_errors_exhausted_
 * fail_at_uploading gave up 2.3 s into a 5 s deadline). */
static void
test_retry_fit_wait_tries_again_near_deadline(void)
{
	CU_ASSERT_EQUAL(retry_fit_wait(1000, 400, 5000), 400);
	CU_ASSERT_EQUAL(retry_fit_wait(1000, 400, 0), 400);
	CU_ASSERT_EQUAL(retry_fit_wait(2300, 2900, 5000), 5000 - 2300 - RETRY_LAST_CALL_MS);
	CU_ASSERT_EQUAL(retry_fit_wait(4400, 2000, 5000), -1);
	CU_ASSERT_EQUAL(retry_fit_wait(5000 - RETRY_LAST_CALL_MS - RETRY_PUT_BACKOFF_MS,
	    4000, 5000), RETRY_PUT_BACKOFF_MS);
}

static void
test_retry_attempts_left(void)
{
	CU_ASSERT_TRUE(retry_attempts_left(1, 3));
	CU_ASSERT_TRUE(retry_attempts_left(2, 3));
	CU_ASSERT_FALSE(retry_attempts_left(3, 3));
	CU_ASSERT_FALSE(retry_attempts_left(4, 3));
}

static void
test_exec_fail_codes_are_the_stored_strings(void)
{
	CU_ASSERT_STRING_EQUAL(exec_fail_code(EXEC_FAIL_STORAGE_ERROR), "STORAGE_ERROR");
	CU_ASSERT_STRING_EQUAL(exec_fail_code(EXEC_FAIL_WORKER_LOST), "WORKER_LOST");
	CU_ASSERT_STRING_EQUAL(exec_fail_code(EXEC_FAIL_JOB_TIMEOUT), "JOB_TIMEOUT");
	CU_ASSERT_STRING_EQUAL(exec_fail_code(EXEC_FAIL_EXECUTOR_STOPPED),
	    "EXECUTOR_STOPPED");
	CU_ASSERT_STRING_EQUAL(exec_fail_code(EXEC_FAIL_PERSIST_ERROR), "PERSIST_ERROR");
	CU_ASSERT_STRING_EQUAL(exec_fail_code(EXEC_FAIL_COUNT), "WORKER_LOST");
	CU_ASSERT_STRING_EQUAL(exec_fail_stage(EXEC_FAIL_PERSIST_ERROR), "persisting");
	CU_ASSERT_PTR_NULL(exec_fail_stage(EXEC_FAIL_WORKER_LOST));
	CU_ASSERT_PTR_NULL(exec_fail_stage(EXEC_FAIL_COUNT));
	CU_ASSERT_STRING_EQUAL(exec_fail_message(EXEC_FAIL_EXECUTOR_STOPPED),
	    "the executor was told to stop");
	CU_ASSERT_STRING_EQUAL(exec_fail_message(EXEC_FAIL_PERSIST_ERROR),
	    "the completed job could not be recorded");
	CU_ASSERT_PTR_NULL(exec_fail_message(EXEC_FAIL_STORAGE_ERROR));
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "retry_doubled_is_capped", test_retry_doubled_is_capped },
		{ "retry_jittered_within_half", test_retry_jittered_within_half },
		{ "retry_provider_only_transient_errors",
		    test_retry_provider_only_transient_errors },
		{ "retry_provider_wait_honours_retry_after",
		    test_retry_provider_wait_honours_retry_after },
		{ "retry_fit_wait_tries_again_near_deadline",
		    test_retry_fit_wait_tries_again_near_deadline },
		{ "retry_deadline", test_retry_deadline },
		{ "retry_attempts_left", test_retry_attempts_left },
		{ "exec_fail_codes_are_the_stored_strings",
		    test_exec_fail_codes_are_the_stored_strings },
		CU_TEST_INFO_NULL
	};

	return cu_run("retry", tests);
}
