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

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "content_length", test_http_content_length },
		CU_TEST_INFO_NULL
	};

	return cu_run("http", tests);
}
