/* http.c - reading a FastCGI request and writing JSON answers. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/rand.h>

#include "hex.h"
#include "http.h"
#include "log.h"

/* How much of an oversized body we read and throw away so that the server
 * on the other end sees our answer instead of a broken pipe. nginx bounds
 * bodies itself (client_max_body_size); this bounds a direct client. */
#define HTTP_DRAIN_MAX (64LL << 20)

long long
http_parse_content_length(const char *s)
{
	long long v = 0;

	if (s == NULL || *s == '\0')
		return 0;
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		if (v > (LLONG_MAX - 9) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

const char *
http_param(const struct http_req *r, const char *name)
{
	return FCGX_GetParam(name, r->fcgi->envp);
}

/* nginx's $request_id is 32 hex digits; anything else is replaced. */
static int
request_id_ok(const char *s)
{
	size_t n = 0;

	if (s == NULL)
		return 0;
	for (; s[n] != '\0'; n++)
		if (!(isalnum((unsigned char)s[n]) || s[n] == '-'))
			return 0;
	return n > 0 && n <= 64;
}

static const char *
request_id_new(struct arena *a)
{
	unsigned char raw[16];
	char *s;

	s = arena_alloc(a, 33);
	if (s == NULL)
		return "-";
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		memset(raw, 0, sizeof(raw));
	hex_encode(raw, sizeof(raw), s);
	return s;
}

static void
drain(FCGX_Stream *in)
{
	char scratch[8192];
	long long total = 0;
	int n;

	while (total < HTTP_DRAIN_MAX) {
		n = FCGX_GetStr(scratch, sizeof(scratch), in);
		if (n <= 0)
			break;
		total += n;
	}
}

enum ig_err
http_req_read(struct http_req *r, FCGX_Request *f, struct arena *a,
    const struct cfg *c)
{
	const char *v, *uri, *q;
	long long clen;
	int n;

	memset(r, 0, sizeof(*r));
	r->fcgi = f;
	r->arena = a;
	r->cfg = c;
	r->query = "";

	v = http_param(r, "REQUEST_ID");
	r->request_id = request_id_ok(v) ? v : request_id_new(a);
	r->method = http_param(r, "REQUEST_METHOD");
	if (r->method == NULL)
		r->method = "GET";
	v = http_param(r, "QUERY_STRING");
	if (v != NULL)
		r->query = v;
	uri = http_param(r, "DOCUMENT_URI");
	if (uri == NULL || *uri == '\0') {
		uri = http_param(r, "REQUEST_URI");
		if (uri != NULL && (q = strchr(uri, '?')) != NULL)
			uri = arena_strndup(a, uri, (size_t)(q - uri));
	}
	r->path = uri != NULL && *uri == '/' ? uri : "/";
	r->content_type = http_param(r, "CONTENT_TYPE");
	if (r->content_type != NULL && *r->content_type == '\0')
		r->content_type = NULL;
	r->authorization = http_param(r, "HTTP_AUTHORIZATION");

	clen = http_parse_content_length(http_param(r, "CONTENT_LENGTH"));
	if (clen < 0)
		return http_fail(r, IG_EVALIDATION, "malformed Content-Length");
	if ((unsigned long long)clen > c->max_body_bytes) {
		drain(f->in);
		return http_fail(r, IG_ETOO_LARGE,
		    "request body is larger than %zu bytes", c->max_body_bytes);
	}
	r->body = arena_alloc(a, (size_t)clen + 1);
	if (r->body == NULL)
		return http_fail(r, IG_EINTERNAL, "out of memory");
	n = clen > 0 ? FCGX_GetStr(r->body, (int)clen, f->in) : 0;
	if (n < 0 || n != clen) {
		r->body[0] = '\0';
		return http_fail(r, IG_EVALIDATION,
		    "request body is shorter than its Content-Length");
	}
	r->body[n] = '\0';
	r->body_len = (size_t)n;
	if (FCGX_GetChar(f->in) != EOF) {
		drain(f->in);
		return http_fail(r, IG_EVALIDATION,
		    "request body is longer than its Content-Length");
	}
	return IG_OK;
}

void
http_add_header(struct http_req *r, const char *name, const char *value)
{
	struct http_header *h = arena_alloc(r->arena, sizeof(*h));

	if (h == NULL) {
		log_error("out of memory adding header %s", name);
		return;
	}
	h->name = arena_strdup(r->arena, name);
	h->value = arena_strdup(r->arena, value);
	if (h->name == NULL || h->value == NULL) {
		log_error("out of memory adding header %s", name);
		return;
	}
	h->next = r->headers;
	r->headers = h;
}

enum ig_err
http_fail(struct http_req *r, enum ig_err e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	r->err_msg = arena_vprintf(r->arena, fmt, ap);
	va_end(ap);
	return e;
}

static int
has_header(const struct http_req *r, const char *name)
{
	const struct http_header *h;

	for (h = r->headers; h != NULL; h = h->next)
		if (strcasecmp(h->name, name) == 0)
			return 1;
	return 0;
}

static void
send_typed(struct http_req *r, int status, const char *type, const char *body,
    size_t len)
{
	const struct http_header *h;
	FCGX_Stream *out = r->fcgi->out;
	char head[1024];
	int n;

	if (r->responded) {
		log_error("second response for one request (status %d) dropped",
		    status);
		return;
	}
	r->responded = 1;
	r->status = status;
	/* libfcgi's FCGX_FPrintF has its own formatter (no %zu): format here. */
	n = snprintf(head, sizeof(head), "Status: %d %s\r\n"
	    "Content-Type: %s\r\n"
	    "Cache-Control: no-store\r\n"
	    "X-Request-Id: %s\r\n"
	    "Content-Length: %zu\r\n",
	    status, err_reason_phrase(status), type, r->request_id, len);
	FCGX_PutStr(head, n, out);
	for (h = r->headers; h != NULL; h = h->next) {
		FCGX_PutS(h->name, out);
		FCGX_PutStr(": ", 2, out);
		FCGX_PutS(h->value, out);
		FCGX_PutStr("\r\n", 2, out);
	}
	FCGX_PutStr("\r\n", 2, out);
	if (strcmp(r->method, "HEAD") != 0 && len > 0)
		FCGX_PutStr(body, (int)len, out);
}

static void
send_raw(struct http_req *r, int status, const char *body, size_t len)
{
	send_typed(r, status, "application/json; charset=utf-8", body, len);
}

void
http_send_text(struct http_req *r, int status, const char *type,
    const char *text)
{
	send_typed(r, status, type, text, strlen(text));
}

void
http_send_json(struct http_req *r, int status, struct json_object *obj)
{
	const char *s;
	size_t len;

	s = json_object_to_json_string_length(obj,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (s == NULL) {
		static const char oom[] =
		    "{\"error\":{\"code\":\"INTERNAL\",\"message\":\"out of memory\"}}";

		send_raw(r, 500, oom, sizeof(oom) - 1);
		return;
	}
	send_raw(r, status, s, len);
}

void
http_send_json_text(struct http_req *r, int status, const char *json)
{
	send_raw(r, status, json, strlen(json));
}

const char *
http_query_param(struct http_req *r, const char *name, int *bad)
{
	const char *p = r->query, *amp, *eq;
	size_t nlen = strlen(name), i, o;
	char *v;
	int hi, lo;

	while (*p != '\0') {
		amp = strchr(p, '&');
		if (amp == NULL)
			amp = p + strlen(p);
		eq = memchr(p, '=', (size_t)(amp - p));
		if (eq != NULL && (size_t)(eq - p) == nlen && memcmp(p, name, nlen) == 0) {
			v = arena_alloc(r->arena, (size_t)(amp - eq));
			if (v == NULL)
				return NULL;
			for (i = 1, o = 0; eq + i < amp; i++) {
				if (eq[i] == '+') {
					v[o++] = ' ';
				} else if (eq[i] == '%') {
					hi = eq + i + 2 < amp ? hex_digit(eq[i + 1]) : -1;
					lo = hi >= 0 ? hex_digit(eq[i + 2]) : -1;
					if (lo < 0 || (hi == 0 && lo == 0)) {
						if (bad != NULL)
							*bad = 1;
						return NULL;
					}
					v[o++] = (char)(hi << 4 | lo);
					i += 2;
				} else {
					v[o++] = eq[i];
				}
			}
			v[o] = '\0';
			return v;
		}
		p = *amp == '&' ? amp + 1 : amp;
	}
	return NULL;
}

int
http_is_json(const struct http_req *r)
{
	const char *ct = r->content_type;
	size_t n = sizeof("application/json") - 1;

	if (ct == NULL || strncasecmp(ct, "application/json", n) != 0)
		return 0;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

void
http_send_error(struct http_req *r, enum ig_err e, const char *message)
{
	struct json_object *root, *err;

	if ((e == IG_EUNAVAILABLE || e == IG_ERATE_LIMITED) &&
	    !has_header(r, "Retry-After"))
		http_add_header(r, "Retry-After", "1");
	root = json_object_new_object();
	err = json_object_new_object();
	if (root == NULL || err == NULL) {
		json_object_put(root);
		json_object_put(err);
		http_send_json(r, 500, NULL);
		return;
	}
	json_object_object_add(err, "code", json_object_new_string(err_code(e)));
	json_object_object_add(err, "message", json_object_new_string(
	    message != NULL ? message : err_message(e)));
	if (r->err_extra_name != NULL && r->err_extra_json != NULL) {
		struct json_object *x = json_tokener_parse(r->err_extra_json);

		if (x != NULL)
			json_object_object_add(err, r->err_extra_name, x);
		else
			log_error("error member %s: not JSON", r->err_extra_name);
	}
	json_object_object_add(root, "error", err);
	http_send_json(r, err_http_status(e), root);
	json_object_put(root);
}

/* RFC 9110 tchar */
static int
is_tchar(int ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= 'A' && ch <= 'Z') || (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

int
http_prefer_wait(const char *hdr, long max, long *n)
{
	const char *p = hdr, *name, *val;
	size_t nlen, vlen, i;
	long v;
	int quoted;

	*n = 0;
	if (hdr == NULL || max <= 0)
		return 0;
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		name = p;
		while (is_tchar((unsigned char)*p))
			p++;
		nlen = (size_t)(p - name);
		while (*p == ' ' || *p == '\t')
			p++;
		val = NULL;
		vlen = 0;
		quoted = 0;
		if (*p == '=') {
			p++;
			while (*p == ' ' || *p == '\t')
				p++;
			if (*p == '"') {
				quoted = 1;
				val = ++p;
				while (*p != '\0' && *p != '"' && *p != '\\')
					p++;
				vlen = (size_t)(p - val);
				if (*p == '"')
					p++;
				else
					quoted = -1;	/* unterminated or escaped */
			} else {
				val = p;
				while (is_tchar((unsigned char)*p))
					p++;
				vlen = (size_t)(p - val);
			}
		}
		if (nlen == 4 && strncasecmp(name, "wait", 4) == 0) {
			/* Only the first instance counts (RFC 7240 §2); a value
			 * that is not a whole number ignores the preference. */
			if (val == NULL) {
				*n = max;
				return 1;
			}
			if (quoted < 0 || vlen == 0)
				return 0;
			/* any number of digits: past max it is clamped, so
			 * the sum stops growing there (no overflow) */
			for (v = 0, i = 0; i < vlen; i++) {
				if (val[i] < '0' || val[i] > '9')
					return 0;
				if (v <= max && v < LONG_MAX / 10)
					v = v * 10 + (val[i] - '0');
			}
			*n = v < max ? v : max;
			return 1;
		}
		/* the rest of this preference: parameters, up to a comma
		 * outside quotes */
		for (quoted = 0; *p != '\0' && (quoted || *p != ','); p++) {
			if (*p == '"')
				quoted = !quoted;
			else if (quoted && *p == '\\' && p[1] != '\0')
				p++;
		}
	}
	return 0;
}
