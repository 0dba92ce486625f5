/* test_http.c - request parsing helpers. */
#include "cu_main.h"
#include "http.h"

static void
test_http_content_length(void)
{
	CU_ASSERT_EQUAL(http_parse_content_length(NULL), 0);
	CU_ASSERT_EQUAL(http_parse_content_length(""), 0);
	CU_ASSERT_EQUAL(http_parse_content_length("0"), 0);
	CU_ASSERT_EQUAL(http_parse_content_length("1048576"), 1048576);
	CU_ASSERT_EQUAL(http_parse_content_length("-1"), -1);
	CU_ASSERT_EQUAL(http_parse_content_length("12a"), -1);
	CU_ASSERT_EQUAL(http_parse_content_length(" 12"), -1);
	CU_ASSERT_EQUAL(http_parse_content_length("99999999999999999999999"), -1);
}

/* Prefer: wait (RFC 7240): N, clamped; bare wait is the max; a value
 * that is not a whole number ignores the preference. */
static void
test_http_prefer_wait(void)
{
	long n = -7;

	CU_ASSERT_EQUAL(http_prefer_wait(NULL, 60, &n), 0);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(http_prefer_wait("", 60, &n), 0);
	CU_ASSERT_EQUAL(http_prefer_wait("wait=5", 60, &n), 1);
	CU_ASSERT_EQUAL(n, 5);
	CU_ASSERT_EQUAL(http_prefer_wait("WAIT = 7", 60, &n), 1);
	CU_ASSERT_EQUAL(n, 7);
	CU_ASSERT_EQUAL(http_prefer_wait("wait=\"9\"", 60, &n), 1);
	CU_ASSERT_EQUAL(n, 9);
	CU_ASSERT_EQUAL(http_prefer_wait("wait", 60, &n), 1);
	CU_ASSERT_EQUAL(n, 60);
	CU_ASSERT_EQUAL(http_prefer_wait("wait=600", 60, &n), 1);
	CU_ASSERT_EQUAL(n, 60);
	CU_ASSERT_EQUAL(http_prefer_wait("wait=999999999", 60, &n), 1);
	CU_ASSERT_EQUAL(n, 60);
	/* ten digits and more: clamped to the max too, not ignored */
	CU_ASSERT_EQUAL(http_prefer_wait("wait=1234567890", 60, &n), 1);
	CU_ASSERT_EQUAL(n, 60);
	CU_ASSERT_EQUAL(http_prefer_wait("wait=99999999999999999999999999", 60, &n), 1);
	CU_ASSERT_EQUAL(n, 60);
	CU_ASSERT_EQUAL(http_prefer_wait("wait=0000000000005", 60, &n), 1);
	CU_ASSERT_EQUAL(n, 5);
	CU_ASSERT_EQUAL(http_prefer_wait("wait=12345678901x", 60, &n), 0);
	CU_ASSERT_EQUAL(http_prefer_wait("wait=0", 60, &n), 1);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(http_prefer_wait("respond-async, wait=10", 60, &n), 1);
	CU_ASSERT_EQUAL(n, 10);
	CU_ASSERT_EQUAL(http_prefer_wait("return=minimal; foo=\"a,wait=3\", wait=4", 60, &n), 1);
	CU_ASSERT_EQUAL(n, 4);
	CU_ASSERT_EQUAL(http_prefer_wait("wait=2;x=y", 60, &n), 1);
	CU_ASSERT_EQUAL(n, 2);
	/* only the first instance counts */
	CU_ASSERT_EQUAL(http_prefer_wait("wait=3, wait=8", 60, &n), 1);
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_EQUAL(http_prefer_wait("wait=abc, wait=8", 60, &n), 0);
	/* not understood: ignored */
	CU_ASSERT_EQUAL(http_prefer_wait("wait=abc", 60, &n), 0);
	CU_ASSERT_EQUAL(http_prefer_wait("wait=-1", 60, &n), 0);
	CU_ASSERT_EQUAL(http_prefer_wait("wait=1.5", 60, &n), 0);
	CU_ASSERT_EQUAL(http_prefer_wait("wait=", 60, &n), 0);
	CU_ASSERT_EQUAL(http_prefer_wait("wait=\"5", 60, &n), 0);
	CU_ASSERT_EQUAL(http_prefer_wait("waiting=5", 60, &n), 0);
	CU_ASSERT_EQUAL(http_prefer_wait("nowait=5", 60, &n), 0);
	CU_ASSERT_EQUAL(http_prefer_wait("respond-async", 60, &n), 0);
	/* waits off */
	CU_ASSERT_EQUAL(http_prefer_wait("wait=5", 0, &n), 0);
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "content_length", test_http_content_length },
		{ "prefer_wait", test_http_prefer_wait },
		CU_TEST_INFO_NULL
	};

	return cu_run("http", tests);
}
