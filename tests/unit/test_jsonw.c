/* test_jsonw.c - the JSON writer: escaping, keys and commas, growth. */
#include <string.h>

#include <json-c/json.h>

#include "arena.h"
#include "cu_main.h"
#include "jsonw.h"

static void
test_jsonw_escapes(void)
{
	struct arena *a = arena_new(256);
	const char in[] = "a\"b\\c\n\r\t\b\f\x01\x1f/\xc3\xa9\xe2\x80\xa8z";
	struct jsonw w;
	struct json_object *o;
	char *s;

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	jw_init(&w, a, 0);
	jw_str(&w, in, sizeof(in) - 1);
	s = jw_finish(&w, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(s, "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f/"
	    "\xc3\xa9\xe2\x80\xa8z\"");
	/* and a JSON parser reads back exactly the bytes written */
	o = json_tokener_parse(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_EQUAL(json_object_get_string_len(o), (int)sizeof(in) - 1);
	CU_ASSERT_EQUAL(memcmp(json_object_get_string(o), in, sizeof(in) - 1), 0);
	json_object_put(o);
	arena_free(a);
}

static void
test_jsonw_embedded_nul_is_escaped(void)
{
	struct arena *a = arena_new(256);
	struct jsonw w;
	char *s;

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	jw_init(&w, a, 0);
	jw_str(&w, "x\0y", 3);
	s = jw_finish(&w, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(s, "\"x\\u0000y\"");
	arena_free(a);
}

static void
test_jsonw_keys_and_commas(void)
{
	struct arena *a = arena_new(256);
	struct jsonw w;
	size_t len;
	char *s;

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	jw_init(&w, a, 8);
	jw_lit(&w, "{");
	jw_key(&w, "a");
	jw_lit(&w, "1");
	jw_key(&w, "b");
	jw_lit(&w, "{");
	jw_key(&w, "c");
	jw_lit(&w, "[");
	jw_lit(&w, "]");
	jw_key(&w, "d");
	jw_lit(&w, "null");
	jw_lit(&w, "}");
	jw_key(&w, "e\"");
	jw_str(&w, "", 0);
	jw_lit(&w, "}");
	s = jw_finish(&w, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(s, "{\"a\":1,\"b\":{\"c\":[],\"d\":null},\"e\\\"\":\"\"}");
	CU_ASSERT_EQUAL(len, strlen(s));
	arena_free(a);
}

static void
test_jsonw_grows_past_its_hint(void)
{
	struct arena *a = arena_new(128);
	char big[5000];
	struct jsonw w;
	size_t len;
	char *s;

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	memset(big, 'q', sizeof(big));
	big[100] = '\n';
	jw_init(&w, a, 16);
	jw_lit(&w, "[");
	jw_str(&w, big, sizeof(big));
	jw_lit(&w, ",");
	jw_str(&w, big, sizeof(big));
	jw_lit(&w, "]");
	s = jw_finish(&w, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	/* 2 × (5000 bytes, one of them escaped to two, and quotes) + 3 */
	CU_ASSERT_EQUAL(len, 2 * (5000 + 1 + 2) + 3);
	CU_ASSERT_EQUAL(s[0], '[');
	CU_ASSERT_EQUAL(s[len - 1], ']');
	CU_ASSERT_EQUAL(memcmp(s + 1 + 1 + 100, "\\n", 2), 0);
	arena_free(a);
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "escapes", test_jsonw_escapes },
		{ "embedded_nul_is_escaped", test_jsonw_embedded_nul_is_escaped },
		{ "keys_and_commas", test_jsonw_keys_and_commas },
		{ "grows_past_its_hint", test_jsonw_grows_past_its_hint },
		CU_TEST_INFO_NULL
	};

	return cu_run("jsonw", tests);
}
