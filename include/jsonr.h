/*
 * jsonr.h - reading JSON that came from elsewhere (json-c): one whole
 * value, and the members of an object by name and type. The reading
 * side of jsonw.h.
 */
#ifndef IG_JSONR_H
#define IG_JSONR_H

#include <stddef.h>

struct json_object;

/* The JSON value that is exactly body (len bytes), NULL when it is not
 * one well-formed value. Caller puts it with json_object_put(). */
struct json_object *jr_parse(const char *body, size_t len);
/* Members of an object, NULL (or -1, 0) when o is not an object or the
 * member is absent or of another type (json_type is a json-c
 * json_type). jr_count: a non-negative integer up to 1e9; jr_strlen: the
 * byte length (strings may hold NUL bytes). Owned by o. Can't fail. */
struct json_object *jr_get(struct json_object *o, const char *key,
    int json_type);
const char *jr_str(struct json_object *o, const char *key);
size_t jr_strlen(struct json_object *o, const char *key);
long jr_count(struct json_object *o, const char *key);

#endif
