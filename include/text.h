/*
 * text.h - what another program said (a server's error message, a
 * formatted log line) made fit for one line of a log or of an error
 * reply; formatted strings on the heap.
 */
#ifndef IG_TEXT_H
#define IG_TEXT_H

#include <stdarg.h>
#include <stddef.h>

/*
 * Copies at most n bytes of s (fewer when a NUL comes first; s NULL is
 * "") into out, at most outlen - 1 of them, and makes the copy one line
 * of valid UTF-8: control characters (below 0x20, and 0x7f) become
 * spaces, bytes that are not part of a well-formed sequence (overlong,
 * surrogate, past U+10FFFF, cut) become '?', and a sequence cut short by
 * the end of the copy is dropped. out may be s (cleaned in place).
 * Returns the length of out (NUL-terminated when outlen > 0). Can't fail.
 */
size_t text_clean(char *out, size_t outlen, const char *s, size_t n);
/* The string fmt makes, malloc'd (caller frees); NULL out of memory. */
char *text_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *text_vprintf(const char *fmt, va_list ap)
    __attribute__((format(printf, 1, 0)));

#endif
