/* jsonw.c - JSON text appended to a growing buffer in an arena. */
#include <string.h>

#include "jsonw.h"

void
jw_init(struct jsonw *w, struct arena *a, size_t hint)
{
	w->a = a;
	w->len = 0;
	w->oom = 0;
	w->cap = hint < 64 ? 64 : hint;
	w->buf = arena_alloc(a, w->cap);
	if (w->buf == NULL)
		w->oom = 1;
}

/* Room for n more bytes and a NUL; 0, or -1 (w->oom set). The old buffer
 * stays in the arena until it is reset. */
static int
reserve(struct jsonw *w, size_t n)
{
	size_t cap;
	char *nb;

	if (w->oom)
		return -1;
	if (w->len + n + 1 <= w->cap)
		return 0;
	cap = w->cap;
	while (cap < w->len + n + 1) {
		if (cap > ((size_t)-1) / 2) {
			w->oom = 1;
			return -1;
		}
		cap *= 2;
	}
	nb = arena_alloc(w->a, cap);
	if (nb == NULL) {
		w->oom = 1;
		return -1;
	}
	memcpy(nb, w->buf, w->len);
	w->buf = nb;
	w->cap = cap;
	return 0;
}

void
jw_raw(struct jsonw *w, const char *s, size_t n)
{
	if (reserve(w, n) != 0)
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

void
jw_lit(struct jsonw *w, const char *s)
{
	jw_raw(w, s, strlen(s));
}

void
jw_str(struct jsonw *w, const char *s, size_t n)
{
	static const char hexd[] = "0123456789abcdef";
	size_t i, run = 0;
	unsigned char ch;
	char esc[6];

	/* At worst every byte becomes \u00XX: reserve once. */
	if (n > (((size_t)-1) - 2) / 6 || reserve(w, n * 6 + 2) != 0) {
		w->oom = 1;
		return;
	}
	w->buf[w->len++] = '"';
	for (i = 0; i < n; i++) {
		ch = (unsigned char)s[i];
		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		memcpy(w->buf + w->len, s + run, i - run);
		w->len += i - run;
		run = i + 1;
		esc[0] = '\\';
		switch (ch) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hexd[ch >> 4];
			esc[5] = hexd[ch & 15];
			memcpy(w->buf + w->len, esc, 6);
			w->len += 6;
			continue;
		}
		memcpy(w->buf + w->len, esc, 2);
		w->len += 2;
	}
	memcpy(w->buf + w->len, s + run, n - run);
	w->len += n - run;
	w->buf[w->len++] = '"';
}

void
jw_key(struct jsonw *w, const char *key)
{
	if (w->len > 0 && !w->oom && w->buf[w->len - 1] != '{' &&
	    w->buf[w->len - 1] != '[')
		jw_raw(w, ",", 1);
	jw_str(w, key, strlen(key));
	jw_raw(w, ":", 1);
}

char *
jw_finish(struct jsonw *w, size_t *len)
{
	if (w->oom || reserve(w, 0) != 0)
		return NULL;
	w->buf[w->len] = '\0';
	if (len != NULL)
		*len = w->len;
	return w->buf;
}
