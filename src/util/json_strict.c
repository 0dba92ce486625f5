/* json_strict.c - a small JSON scanner that refuses duplicate members, and
 * the string getter that tells an embedded NUL. */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "json_strict.h"

#define JS_MAX_DEPTH 32
#define JS_MAX_NAME 256
#define JS_MAX_MEMBERS 256

struct js {
	const char *p, *end;
	int depth;
};

struct name {
	char buf[JS_MAX_NAME];
	size_t len;
};

static int js_value(struct js *j);

static void
js_ws(struct js *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
	    *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static int
js_hex4(struct js *j, unsigned *out)
{
	unsigned v = 0;
	int i;
	char c;

	if (j->end - j->p < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		c = *j->p++;
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static int
js_put(struct name *n, unsigned char c)
{
	if (n == NULL)
		return 0;
	if (n->len == JS_MAX_NAME)
		return -1;
	n->buf[n->len++] = (char)c;
	return 0;
}

static int
js_put_utf8(struct name *n, unsigned cp)
{
	if (cp < 0x80)
		return js_put(n, (unsigned char)cp);
	if (cp < 0x800)
		return js_put(n, (unsigned char)(0xC0 | cp >> 6)) |
		    js_put(n, (unsigned char)(0x80 | (cp & 0x3F)));
	if (cp < 0x10000)
		return js_put(n, (unsigned char)(0xE0 | cp >> 12)) |
		    js_put(n, (unsigned char)(0x80 | ((cp >> 6) & 0x3F))) |
		    js_put(n, (unsigned char)(0x80 | (cp & 0x3F)));
	return js_put(n, (unsigned char)(0xF0 | cp >> 18)) |
	    js_put(n, (unsigned char)(0x80 | ((cp >> 12) & 0x3F))) |
	    js_put(n, (unsigned char)(0x80 | ((cp >> 6) & 0x3F))) |
	    js_put(n, (unsigned char)(0x80 | (cp & 0x3F)));
}

/* A string at j->p (the opening quote), unescaped into n when not NULL. */
static int
js_string(struct js *j, struct name *n)
{
	unsigned cp, lo;
	unsigned char c;

	if (n != NULL)
		n->len = 0;
	if (j->p >= j->end || *j->p != '"')
		return -1;
	j->p++;
	while (j->p < j->end) {
		c = (unsigned char)*j->p++;
		if (c == '"')
			return 0;
		if (c < 0x20)
			return -1;
		if (c != '\\') {
			if (js_put(n, c) != 0)
				return -1;
			continue;
		}
		if (j->p >= j->end)
			return -1;
		c = (unsigned char)*j->p++;
		switch (c) {
		case '"': case '\\': case '/':
			if (js_put(n, c) != 0)
				return -1;
			break;
		case 'b': if (js_put(n, '\b') != 0) return -1; break;
		case 'f': if (js_put(n, '\f') != 0) return -1; break;
		case 'n': if (js_put(n, '\n') != 0) return -1; break;
		case 'r': if (js_put(n, '\r') != 0) return -1; break;
		case 't': if (js_put(n, '\t') != 0) return -1; break;
		case 'u':
			if (js_hex4(j, &cp) != 0)
				return -1;
			if (cp >= 0xDC00 && cp <= 0xDFFF)
				return -1;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u')
					return -1;
				j->p += 2;
				if (js_hex4(j, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
					return -1;
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			}
			if (js_put_utf8(n, cp) != 0)
				return -1;
			break;
		default:
			return -1;
		}
	}
	return -1;
}

static int
js_digits(struct js *j)
{
	const char *s = j->p;

	while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
		j->p++;
	return j->p > s ? 0 : -1;
}

static int
js_number(struct js *j)
{
	if (*j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++;
	else if (js_digits(j) != 0)
		return -1;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (js_digits(j) != 0)
			return -1;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (js_digits(j) != 0)
			return -1;
	}
	return 0;
}

static int
js_literal(struct js *j, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
		return -1;
	j->p += n;
	return 0;
}

static int
js_object(struct js *j)
{
	struct name *names = NULL;
	int count = 0, i, rc = -1;

	j->p++;			/* '{' */
	js_ws(j);
	if (j->p < j->end && *j->p == '}') {
		j->p++;
		return 0;
	}
	names = malloc(sizeof(*names) * JS_MAX_MEMBERS);
	if (names == NULL)
		return -1;
	for (;;) {
		if (count == JS_MAX_MEMBERS)
			goto out;
		js_ws(j);
		if (js_string(j, &names[count]) != 0)
			goto out;
		for (i = 0; i < count; i++)
			if (names[i].len == names[count].len &&
			    memcmp(names[i].buf, names[count].buf, names[i].len) == 0)
				goto out;
		count++;
		js_ws(j);
		if (j->p >= j->end || *j->p++ != ':')
			goto out;
		if (js_value(j) != 0)
			goto out;
		js_ws(j);
		if (j->p >= j->end)
			goto out;
		if (*j->p == '}') {
			j->p++;
			break;
		}
		if (*j->p++ != ',')
			goto out;
	}
	rc = 0;
out:
	free(names);
	return rc;
}

static int
js_array(struct js *j)
{
	j->p++;			/* '[' */
	js_ws(j);
	if (j->p < j->end && *j->p == ']') {
		j->p++;
		return 0;
	}
	for (;;) {
		if (js_value(j) != 0)
			return -1;
		js_ws(j);
		if (j->p >= j->end)
			return -1;
		if (*j->p == ']') {
			j->p++;
			return 0;
		}
		if (*j->p++ != ',')
			return -1;
	}
}

static int
js_value(struct js *j)
{
	int rc;

	js_ws(j);
	if (j->p >= j->end)
		return -1;
	if (++j->depth > JS_MAX_DEPTH)
		return -1;
	switch (*j->p) {
	case '{': rc = js_object(j); break;
	case '[': rc = js_array(j); break;
	case '"': rc = js_string(j, NULL); break;
	case 't': rc = js_literal(j, "true"); break;
	case 'f': rc = js_literal(j, "false"); break;
	case 'n': rc = js_literal(j, "null"); break;
	default:
		rc = (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) ?
		    js_number(j) : -1;
	}
	j->depth--;
	return rc;
}

int
json_no_duplicate_members(const char *s, size_t n)
{
	struct js j = { s, s + n, 0 };

	if (js_value(&j) != 0)
		return -1;
	js_ws(&j);
	return j.p == j.end ? 0 : -1;
}

const char *
json_strict_str(struct json_object *o, const char *name, size_t *len)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, name, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	if (len != NULL)
		*len = (size_t)json_object_get_string_len(v);
	return json_object_get_string(v);
}
