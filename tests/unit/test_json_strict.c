/* test_json_strict.c - duplicate members and malformed JSON. */
#include <string.h>

#include "cu_main.h"
#include "json_strict.h"

static int
check(const char *s)
{
	return json_no_duplicate_members(s, strlen(s));
}

static void
test_json_strict_accepts_plain_json(void)
{
	CU_ASSERT_EQUAL(check("{}"), 0);
	CU_ASSERT_EQUAL(check("{\"a\":1,\"b\":[1,2,{\"a\":2}],\"c\":{\"a\":null}}"), 0);
	CU_ASSERT_EQUAL(check(" {\"x\" : \"\\u00e9\\n\", \"y\": -1.5e+3, \"z\": true} "), 0);
	CU_ASSERT_EQUAL(check("{\"e\":\"\\ud83d\\ude00\"}"), 0);
}

static void
test_json_strict_rejects_duplicates(void)
{
	CU_ASSERT_EQUAL(check("{\"sub\":\"a\",\"sub\":\"b\"}"), -1);
	/* the same name spelled with an escape */
	CU_ASSERT_EQUAL(check("{\"sub\":\"a\",\"s\\u0075b\":\"b\"}"), -1);
	CU_ASSERT_EQUAL(check("{\"a\":{\"x\":1,\"x\":2}}"), -1);
	CU_ASSERT_EQUAL(check("[{\"k\":1,\"k\":1}]"), -1);
}

static void
test_json_strict_rejects_malformed(void)
{
	char deep[100];

	CU_ASSERT_EQUAL(check(""), -1);
	CU_ASSERT_EQUAL(check("{"), -1);
	CU_ASSERT_EQUAL(check("{\"a\":1,}"), -1);
	CU_ASSERT_EQUAL(check("{\"a\" 1}"), -1);
	CU_ASSERT_EQUAL(check("{\"a\":01}"), -1);
	CU_ASSERT_EQUAL(check("{\"a\":1} x"), -1);
	CU_ASSERT_EQUAL(check("{\"a\":\"\\x\"}"), -1);
	CU_ASSERT_EQUAL(check("{\"a\":\"\\udc00\"}"), -1);	/* lone low surrogate */
	CU_ASSERT_EQUAL(check("{\"a\":\"\x01\"}"), -1);
	memset(deep, '[', sizeof(deep) - 1);
	deep[sizeof(deep) - 1] = '\0';
	CU_ASSERT_EQUAL(check(deep), -1);
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "accepts_plain_json", test_json_strict_accepts_plain_json },
		{ "rejects_duplicates", test_json_strict_rejects_duplicates },
		{ "rejects_malformed", test_json_strict_rejects_malformed },
		CU_TEST_INFO_NULL
	};

	return cu_run("json_strict", tests);
}
