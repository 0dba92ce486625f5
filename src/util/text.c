/* text.c - text made fit for one line; formatted strings on the heap. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

/* The length of a UTF-8 sequence that starts with c, or 0 when c starts
 * none (a continuation byte, 0xc0, 0xc1, 0xf5 and up). */
static size_t
text_seq_len(unsigned c)
{
	if (c >= 0xc2 && c <= 0xdf)
		return 2;
	if (c >= 0xe0 && c <= 0xef)
		return 3;
	if (c >= 0xf0 && c <= 0xf4)
		return 4;
	return 0;
}

size_t
text_clean(char *out, size_t outlen, const char *s, size_t n)
{
	unsigned char *p = (unsigned char *)out;
	size_t i = 0, k, len, m = 0;
	unsigned c;

	if (outlen == 0)
		return 0;
	while (s != NULL && m < n && m + 1 < outlen && s[m] != '\0')
		m++;
	if (m > 0)
		memmove(out, s, m);
	out[m] = '\0';
	while (p[i] != '\0') {
		c = p[i];
		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				p[i] = ' ';
			i++;
			continue;
		}
		len = text_seq_len(c);
		for (k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				break;
		}
		/* No overlongs, surrogates or code points past U+10FFFF. */
		if (len != 0 && k == len &&
		    !(c == 0xe0 && p[i + 1] < 0xa0) &&
		    !(c == 0xed && p[i + 1] > 0x9f) &&
		    !(c == 0xf0 && p[i + 1] < 0x90) &&
		    !(c == 0xf4 && p[i + 1] > 0x8f)) {
			i += len;
			continue;
		}
		if (len != 0 && p[i + k] == '\0') {
			p[i] = '\0';	/* cut short by truncation */
			return i;
		}
		p[i++] = '?';
	}
	return i;
}

char *
text_vprintf(const char *fmt, va_list ap)
{
	char *s = NULL;

	/* glibc's (the build defines _GNU_SOURCE): s is undefined on error. */
	if (vasprintf(&s, fmt, ap) < 0)
		return NULL;
	return s;
}

char *
text_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = text_vprintf(fmt, ap);
	va_end(ap);
	return s;
}
