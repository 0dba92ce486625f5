/* json_strict.h - the checks json-c does not make. */
#ifndef IG_JSON_STRICT_H
#define IG_JSON_STRICT_H

#include <stddef.h>

/*
 * 0 when no object in the JSON text s (n bytes) has the same member name
 * twice (names compared after unescaping); -1 when one does, or when the
 * text is not well-formed, nests deeper than 32, or has a member name over
 * 256 bytes. json-c keeps the last of duplicate members silently; a token
 * whose claims could be read two ways is refused instead.
 */
int json_no_duplicate_members(const char *s, size_t n);

struct json_object;

/*
 * The string member name of the json-c object o; NULL when o has no such
 * member or it is not a string. When len is not NULL, *len gets the
 * string's length in bytes, which is more than strlen() of the result
 * when the string holds a NUL: callers that must not read a shorter
 * string than was sent compare the two. The text is o's.
 */
const char *json_strict_str(struct json_object *o, const char *name,
    size_t *len);

#endif
