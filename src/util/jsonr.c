/* jsonr.c - reading JSON that came from elsewhere (json-c). */
#include <stdint.h>

#include <json-c/json.h>

#include "jsonr.h"

struct json_object *
jr_parse(const char *body, size_t len)
{
	json_tokener *tok;
	json_object *o = NULL;

	if (body == NULL || len == 0 || len > (size_t)INT32_MAX)
		return NULL;
	tok = json_tokener_new();
	if (tok == NULL)
		return NULL;
	o = json_tokener_parse_ex(tok, body, (int)len);
	/* One value and nothing after it: a truncated or padded reply is
	 * not read as whatever prefix parses. */
	if (o != NULL && (json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len)) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

struct json_object *
jr_get(struct json_object *o, const char *key, int type)
{
	json_object *v;

	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, (json_type)type))
		return NULL;
	return v;
}

const char *
jr_str(struct json_object *o, const char *key)
{
	json_object *v = jr_get(o, key, json_type_string);

	return v != NULL ? json_object_get_string(v) : NULL;
}

size_t
jr_strlen(struct json_object *o, const char *key)
{
	json_object *v = jr_get(o, key, json_type_string);

	return v != NULL ? (size_t)json_object_get_string_len(v) : 0;
}

long
jr_count(struct json_object *o, const char *key)
{
	json_object *v = jr_get(o, key, json_type_int);
	int64_t n;

	if (v == NULL)
		return -1;
	n = json_object_get_int64(v);
	return n < 0 || n > 1000000000 ? -1 : (long)n;
}
