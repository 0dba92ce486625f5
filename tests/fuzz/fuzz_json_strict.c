/*
 * fuzz_json_strict.c - json_no_duplicate_members(), the strict reader in
 * front of json-c for tokens, over any text; where it accepts, json-c
 * must parse the same text and json_strict_str() read its members.
 */
#include <stdint.h>
#include <stdlib.h>

#include <json-c/json.h>

#include "harness.h"
#include "json_strict.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_quiet();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *o;
	struct json_tokener *tk;
	size_t len;
	char *s;

	if (json_no_duplicate_members((const char *)data, size) != 0)
		return 0;
	/* accepted: read it the way jwt.c does, from a NUL-terminated copy */
	s = fz_strndup(data, size);
	tk = json_tokener_new_ex(32);
	if (tk == NULL)
		abort();
	json_tokener_set_flags(tk, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tk, s, (int)size);
	if (o != NULL && json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, key, val) {
			(void)val;
			(void)json_strict_str(o, key, &len);
		}
		(void)json_strict_str(o, "sub", NULL);
	}
	json_object_put(o);
	json_tokener_free(tk);
	free(s);
	return 0;
}
