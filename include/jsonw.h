/* jsonw.h - JSON text appended to a growing buffer in an arena. */
#ifndef IG_JSONW_H
#define IG_JSONW_H

#include <stddef.h>

#include "arena.h"

/* A writer: fill with jw_* calls, then take the text with jw_finish().
 * Out of memory is remembered, not reported per call. */
struct jsonw {
	struct arena *a;
	char *buf;
	size_t len, cap;
	int oom;
};

/* Starts an empty text of about hint bytes in a. Can't fail. */
void jw_init(struct jsonw *w, struct arena *a, size_t hint);
/* Appends n bytes as they are (punctuation, numbers, literals). */
void jw_raw(struct jsonw *w, const char *s, size_t n);
/* Appends a NUL-terminated s as it is. */
void jw_lit(struct jsonw *w, const char *s);
/* Appends s (n bytes of UTF-8) as a JSON string: quotes, backslashes and
 * control characters escaped, everything else copied. */
void jw_str(struct jsonw *w, const char *s, size_t n);
/* Appends `"key":`, preceded by a comma unless the text ends in `{` or
 * `[` (or is empty). */
void jw_key(struct jsonw *w, const char *key);
/* The NUL-terminated text (arena) and its length in *len (may be NULL),
 * or NULL when memory ran out. */
char *jw_finish(struct jsonw *w, size_t *len);

#endif
