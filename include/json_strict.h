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

#endif
