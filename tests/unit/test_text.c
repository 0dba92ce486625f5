/* test_text.c - util's text cleaner, heap strings, JSON getters and
 * secret wiper (text.c, jsonr.c, secret.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cu_main.h"
#include "jsonr.h"
#include "secret.h"
#include "text.h"

static void
test_text_clean_control_characters_become_spaces(void)
{
	char out[32];

	CU_ASSERT_EQUAL(text_clean(out, sizeof(out), "a\nb\tc\x7f" "d\x01", 64), 8);
	CU_ASSERT_STRING_EQUAL(out, "a b c d ");
	CU_ASSERT_EQUAL(text_clean(out, sizeof(out), NULL, 5), 0);
	CU_ASSERT_STRING_EQUAL(out, "");
}

static void
test_text_clean_clips_to_n_and_outlen(void)
{
	char out[6];

	CU_ASSERT_EQUAL(text_clean(out, sizeof(out), "abcdefgh", 3), 3);
	CU_ASSERT_STRING_EQUAL(out, "abc");
	CU_ASSERT_EQUAL(text_clean(out, sizeof(out), "abcdefgh", SIZE_MAX), 5);
	CU_ASSERT_STRING_EQUAL(out, "abcde");
	/* stops at a NUL before n */
	CU_ASSERT_EQUAL(text_clean(out, sizeof(out), "ab\0cd", 5), 2);
	CU_ASSERT_STRING_EQUAL(out, "ab");
	CU_ASSERT_EQUAL(text_clean(out, 0, "ab", 2), 0);
}

static void
test_text_clean_keeps_valid_utf8_and_marks_the_rest(void)
{
	char out[64];

	text_clean(out, sizeof(out), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
	    SIZE_MAX);
	CU_ASSERT_STRING_EQUAL(out, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	/* a stray continuation, an overlong, a surrogate, past U+10FFFF */
	text_clean(out, sizeof(out), "a\x80" "b\xc0\xaf" "c\xed\xa0\x80" "d\xf4\x90\x80\x80" "e",
	    SIZE_MAX);
	CU_ASSERT_STRING_EQUAL(out, "a?b??c???d????e");
	/* a sequence broken in the middle */
	text_clean(out, sizeof(out), "x\xe2\x82y", SIZE_MAX);
	CU_ASSERT_STRING_EQUAL(out, "x??y");
}

static void
test_text_clean_drops_a_sequence_cut_at_the_end(void)
{
	char out[5];

	/* "ab€" needs 5 bytes and a NUL: the euro sign is cut, so dropped */
	CU_ASSERT_EQUAL(text_clean(out, sizeof(out), "ab\xe2\x82\xac", SIZE_MAX), 2);
	CU_ASSERT_STRING_EQUAL(out, "ab");
	CU_ASSERT_EQUAL(text_clean(out, sizeof(out), "\xc3\xa9\xc3\xa9", 3), 2);
	CU_ASSERT_STRING_EQUAL(out, "\xc3\xa9");
}

static void
test_text_clean_in_place(void)
{
	char s[] = "one\r\ntwo\xff";

	CU_ASSERT_EQUAL(text_clean(s, sizeof(s), s, sizeof(s)), 9);
	CU_ASSERT_STRING_EQUAL(s, "one  two?");
}

static void
test_text_printf(void)
{
	char *s = text_printf("%s: %d", "Name", 42);

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(s, "Name: 42");
	free(s);
	s = text_printf("%s", "");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(s, "");
	free(s);
}

static void
test_jsonr_whole_value_only(void)
{
	const char ok[] = "{\"a\":1}", padded[] = "{\"a\":1} x",
	    cut[] = "{\"a\":";
	struct json_object *o;

	o = jr_parse(ok, sizeof(ok) - 1);
	CU_ASSERT_PTR_NOT_NULL(o);
	json_object_put(o);
	CU_ASSERT_PTR_NULL(jr_parse(padded, sizeof(padded) - 1));
	CU_ASSERT_PTR_NULL(jr_parse(cut, sizeof(cut) - 1));
	CU_ASSERT_PTR_NULL(jr_parse(NULL, 3));
	CU_ASSERT_PTR_NULL(jr_parse(ok, 0));
}

static void
test_jsonr_members_by_type(void)
{
	const char body[] = "{\"s\":\"a\\u0000b\",\"n\":7,\"neg\":-1,"
	    "\"big\":2000000000,\"o\":{\"x\":\"y\"},\"f\":1.5}";
	struct json_object *o = jr_parse(body, sizeof(body) - 1);

	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_STRING_EQUAL(jr_str(o, "s"), "a");
	CU_ASSERT_EQUAL(jr_strlen(o, "s"), 3);
	CU_ASSERT_EQUAL(jr_strlen(o, "n"), 0);
	CU_ASSERT_PTR_NULL(jr_str(o, "n"));
	CU_ASSERT_PTR_NULL(jr_str(o, "absent"));
	CU_ASSERT_EQUAL(jr_count(o, "n"), 7);
	CU_ASSERT_EQUAL(jr_count(o, "neg"), -1);
	CU_ASSERT_EQUAL(jr_count(o, "big"), -1);
	CU_ASSERT_EQUAL(jr_count(o, "f"), -1);
	CU_ASSERT_STRING_EQUAL(jr_str(jr_get(o, "o", json_type_object), "x"), "y");
	CU_ASSERT_PTR_NULL(jr_get(o, "o", json_type_array));
	/* not an object, or none: NULL, not a crash */
	CU_ASSERT_PTR_NULL(jr_str(jr_get(o, "n", json_type_int), "x"));
	CU_ASSERT_PTR_NULL(jr_get(NULL, "x", json_type_object));
	CU_ASSERT_EQUAL(jr_count(NULL, "x"), -1);
	json_object_put(o);
}

static void
test_secret_free_accepts_null_and_frees(void)
{
	char *s = strdup("sk-not-a-real-key");
	unsigned char *b = malloc(4);

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	memcpy(b, "\0\1\0\2", 4);
	secret_free(s);
	secret_free_n(b, 4);
	secret_free(NULL);
	secret_free_n(NULL, 10);
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "clean_control_characters_become_spaces",
		    test_text_clean_control_characters_become_spaces },
		{ "clean_clips_to_n_and_outlen", test_text_clean_clips_to_n_and_outlen },
		{ "clean_keeps_valid_utf8_and_marks_the_rest",
		    test_text_clean_keeps_valid_utf8_and_marks_the_rest },
		{ "clean_drops_a_sequence_cut_at_the_end",
		    test_text_clean_drops_a_sequence_cut_at_the_end },
		{ "clean_in_place", test_text_clean_in_place },
		{ "printf", test_text_printf },
		{ "jsonr_whole_value_only", test_jsonr_whole_value_only },
		{ "jsonr_members_by_type", test_jsonr_members_by_type },
		{ "secret_free_accepts_null_and_frees",
		    test_secret_free_accepts_null_and_frees },
		CU_TEST_INFO_NULL
	};

	return cu_run("text", tests);
}
