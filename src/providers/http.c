/*
 * http.c - the remote providers' shared client: one libcurl easy handle
 * per provider, timeouts, a reply size cap, the classification of HTTP
 * statuses and transport errors (SPEC §6), artifacts (base64, URL, raw
 * bytes) and the redaction of secrets from what a provider said.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "base64.h"
#include "log.h"
#include "prov_http.h"
#include "clock.h"

#define PROV_MAX_DELAY_MS (86400L * 1000)	/* any longer hint is a day */
#define PROV_REDACTED "[redacted]"

/* A reply body being read, refused past max. */
struct http_buf {
	char *data;
	size_t len, cap, max;
	int too_big;
};

/* What the header callback keeps of the last response's headers. */
struct http_hdrs {
	long retry_after_ms;
	char content_type[96];
	time_t now;
};

int
prov_http_open(struct prov_http *h, const struct cfg *c, const char *name,
    const char *secret, char *err, size_t errlen)
{
	memset(h, 0, sizeof(*h));
	snprintf(h->name, sizeof(h->name), "%s", name);
	h->timeout_ms = c->provider_timeout_ms > 0 ? c->provider_timeout_ms : 120000;
	h->max_bytes = c->provider_max_bytes > 0 ? (size_t)c->provider_max_bytes :
	    (size_t)32 << 20;
	if (secret != NULL) {
		h->secret = strdup(secret);
		if (h->secret == NULL)
			goto oom;
	}
	h->curl = curl_easy_init();
	if (h->curl == NULL)
		goto oom;
	return 0;
oom:
	prov_http_close(h);
	snprintf(err, errlen, "IMAGEGEN_PROVIDER: cannot make an HTTP client for %s",
	    name);
	return -1;
}

void
prov_http_close(struct prov_http *h)
{
	if (h == NULL)
		return;
	if (h->curl != NULL)
		curl_easy_cleanup(h->curl);
	if (h->secret != NULL) {
		/* The key is not left in freed memory. */
		memset(h->secret, 0, strlen(h->secret));
		free(h->secret);
	}
	memset(h, 0, sizeof(*h));
}

void
prov_http_reply_free(struct prov_http_reply *r)
{
	if (r == NULL)
		return;
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* ---- messages ---------------------------------------------------------- */

/* Replaces [at, at + n) of s (size bytes, NUL-terminated) with rep,
 * truncating the tail if it no longer fits. Returns the index just past
 * the replacement (never beyond the terminator). */
static size_t
splice(char *s, size_t size, size_t at, size_t n, const char *rep)
{
	size_t len = strlen(s), rl = strlen(rep), tail = len - at - n;

	if (at + rl >= size) {
		/* Not even the replacement fits: cut s at the secret. */
		s[at] = '\0';
		return at;
	}
	if (at + rl + tail >= size)
		tail = size - 1 - at - rl;
	memmove(s + at + rl, s + at + n, tail);
	memcpy(s + at, rep, rl);
	s[at + rl + tail] = '\0';
	return at + rl;
}

static int
key_char(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '_';
}

void
prov_redact(char *s, size_t size, const char *secret)
{
	size_t i, n, sl = secret != NULL ? strlen(secret) : 0;
	char *p;

	if (s == NULL || size == 0)
		return;
	/* The exact key, wherever it is. Four characters at least, so a
	 * silly test key does not eat the message. */
	for (i = 0; sl >= 4; ) {
		p = strstr(s + i, secret);
		if (p == NULL)
			break;
		i = splice(s, size, (size_t)(p - s), sl, PROV_REDACTED);
	}
	/* Anything shaped like a key: Google's "AIza" + 35, OpenAI's "sk-"
	 * + 16 or more, at the start of a word. */
	for (i = 0; s[i] != '\0'; i++) {
		if (i > 0 && key_char((unsigned char)s[i - 1]))
			continue;
		if (strncmp(s + i, "AIza", 4) == 0) {
			for (n = 4; key_char((unsigned char)s[i + n]); n++)
				;
			if (n >= 39)
				i = splice(s, size, i, n, PROV_REDACTED) - 1;
		} else if (strncmp(s + i, "sk-", 3) == 0) {
			for (n = 3; key_char((unsigned char)s[i + n]); n++)
				;
			if (n >= 19)
				i = splice(s, size, i, n, PROV_REDACTED) - 1;
		}
	}
}

/* Makes s one line of valid UTF-8: control characters become spaces,
 * bytes that are not part of a well-formed sequence become '?', and a
 * sequence cut by truncation at the end is dropped. In place. */
static void
one_line_utf8(char *s)
{
	unsigned char *p = (unsigned char *)s;
	size_t i = 0, k, n;
	unsigned c;

	while (p[i] != '\0') {
		c = p[i];
		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				p[i] = ' ';
			i++;
			continue;
		}
		n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 :
		    c >= 0xf0 && c <= 0xf4 ? 4 : 0;
		for (k = 1; k < n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				break;
		}
		/* No overlongs, surrogates or code points past U+10FFFF. */
		if (n != 0 && k == n &&
		    !(c == 0xe0 && p[i + 1] < 0xa0) &&
		    !(c == 0xed && p[i + 1] > 0x9f) &&
		    !(c == 0xf0 && p[i + 1] < 0x90) &&
		    !(c == 0xf4 && p[i + 1] > 0x8f)) {
			i += n;
			continue;
		}
		if (n != 0 && p[i + k] == '\0') {
			p[i] = '\0';	/* cut short by truncation */
			return;
		}
		p[i++] = '?';
	}
}

void
prov_msg(struct prov_result *res, const struct prov_http *h,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(res->message, sizeof(res->message), fmt, ap);
	va_end(ap);
	prov_redact(res->message, sizeof(res->message),
	    h != NULL ? h->secret : NULL);
	one_line_utf8(res->message);
}

/* ---- JSON replies ------------------------------------------------------ */

struct json_object *
prov_json_parse(const char *body, size_t len)
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
prov_json_get(struct json_object *o, const char *key, int type)
{
	json_object *v;

	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, (json_type)type))
		return NULL;
	return v;
}

const char *
prov_json_str(struct json_object *o, const char *key)
{
	json_object *v = prov_json_get(o, key, json_type_string);

	return v != NULL ? json_object_get_string(v) : NULL;
}

size_t
prov_json_strlen(struct json_object *o, const char *key)
{
	json_object *v = prov_json_get(o, key, json_type_string);

	return v != NULL ? (size_t)json_object_get_string_len(v) : 0;
}

long
prov_json_count(struct json_object *o, const char *key)
{
	json_object *v = prov_json_get(o, key, json_type_int);
	int64_t n;

	if (v == NULL)
		return -1;
	n = json_object_get_int64(v);
	return n < 0 || n > 1000000000 ? -1 : (long)n;
}

/* ---- classification ---------------------------------------------------- */

enum prov_err
prov_http_class(long status)
{
	if (status >= 200 && status < 300)
		return PROV_OK;
	if (status == 401 || status == 403)
		return PROV_AUTH_ERROR;
	if (status == 408)
		return PROV_TIMEOUT;
	if (status == 429)
		return PROV_RATE_LIMIT;
	if (status >= 400 && status < 500)
		return PROV_INVALID_REQUEST;
	if (status >= 500 && status < 600)
		return PROV_TEMPORARY;
	return PROV_PROVIDER_ERROR;
}

/* The class of a transport failure. A refused redirect, scheme or size is
 * the reply's fault and will not change on a retry; the rest (DNS,
 * connect, reset, TLS handshake, an empty reply) may. */
static enum prov_err
curl_class(CURLcode cc)
{
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		return PROV_TIMEOUT;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_TOO_MANY_REDIRECTS:
	case CURLE_FILESIZE_EXCEEDED:
	case CURLE_BAD_CONTENT_ENCODING:
	case CURLE_PEER_FAILED_VERIFICATION:
		return PROV_PROVIDER_ERROR;
	default:
		return PROV_TEMPORARY;
	}
}

long
prov_retry_after_ms(const char *value, time_t now)
{
	struct tm tm;
	const char *p, *end;
	long long v = 0;
	time_t t;

	if (value == NULL)
		return 0;
	while (*value == ' ' || *value == '\t')
		value++;
	for (p = value; *p >= '0' && *p <= '9'; p++) {
		if (v < 86400)
			v = v * 10 + (*p - '0');
	}
	if (p != value) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p != '\0')
			return 0;
		return v >= 86400 ? PROV_MAX_DELAY_MS : (long)(v * 1000);
	}
	/* IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT". */
	memset(&tm, 0, sizeof(tm));
	end = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (end == NULL)
		return 0;
	while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
		end++;
	if (*end != '\0')
		return 0;
	t = timegm(&tm);
	if (t == (time_t)-1 || t <= now)
		return 0;
	if (t - now >= 86400)
		return PROV_MAX_DELAY_MS;
	return (long)(t - now) * 1000;
}

long
prov_duration_ms(const char *s)
{
	long long sec = 0, frac = 0, scale = 1;
	const char *p = s;
	int digits = 0;

	if (s == NULL)
		return -1;
	for (; *p >= '0' && *p <= '9'; p++, digits++) {
		if (sec < 86400)
			sec = sec * 10 + (*p - '0');
	}
	if (*p == '.') {
		p++;
		for (; *p >= '0' && *p <= '9'; p++, digits++) {
			if (scale < 1000000000LL) {
				frac = frac * 10 + (*p - '0');
				scale *= 10;
			}
		}
	}
	if (digits == 0 || *p != 's' || p[1] != '\0')
		return -1;
	if (sec >= 86400)
		return PROV_MAX_DELAY_MS;
	/* Round the fraction up to whole ms: never wait less than asked. */
	return (long)(sec * 1000 + (frac * 1000 + scale - 1) / scale);
}

/* ---- transport --------------------------------------------------------- */

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *user)
{
	struct http_buf *b = user;
	size_t n = size * nmemb, cap;
	char *d;

	if (n > b->max - b->len) {
		b->too_big = 1;
		return 0;	/* aborts the transfer: CURLE_WRITE_ERROR */
	}
	if (b->len + n + 1 > b->cap) {
		cap = b->cap != 0 ? b->cap : 16384;
		while (cap < b->len + n + 1)
			cap = cap > b->max ? b->max + 1 : cap * 2;
		d = realloc(b->data, cap);
		if (d == NULL)
			return 0;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/* Keeps Retry-After and Content-Type of the last response: a status line
 * (after a redirect or an interim 1xx) starts over. */
static size_t
on_header(char *ptr, size_t size, size_t nmemb, void *user)
{
	struct http_hdrs *hd = user;
	size_t n = size * nmemb, k, vl;
	char val[128];
	const char *v;

	if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
		hd->retry_after_ms = 0;
		hd->content_type[0] = '\0';
		return n;
	}
	for (k = 0; k < n && ptr[k] != ':'; k++)
		;
	if (k == n)
		return n;
	v = ptr + k + 1;
	vl = n - k - 1;
	while (vl > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' ||
	    v[vl - 1] == ' '))
		vl--;
	if (vl >= sizeof(val))
		vl = sizeof(val) - 1;
	memcpy(val, v, vl);
	val[vl] = '\0';
	if (k == 11 && strncasecmp(ptr, "Retry-After", 11) == 0)
		hd->retry_after_ms = prov_retry_after_ms(val, hd->now);
	else if (k == 12 && strncasecmp(ptr, "Content-Type", 12) == 0) {
		if (vl >= sizeof(hd->content_type))
			vl = sizeof(hd->content_type) - 1;
		memcpy(hd->content_type, val, vl);
		hd->content_type[vl] = '\0';
	}
	return n;
}

/*
 * The common part of a call: timeouts from the configuration and the
 * deadline, the size cap, the callbacks. Performs it; PROV_OK with the
 * status in *status, or a classified failure with res->message. what
 * names the call in messages.
 */
static enum prov_err
http_perform(struct prov_http *h, const char *what, long long deadline_ms,
    struct http_buf *b, struct http_hdrs *hd, long *status,
    struct prov_result *res)
{
	CURL *curl = h->curl;
	long long left = 0;
	long total = h->timeout_ms, connect;
	int by_deadline = 0;
	char errbuf[CURL_ERROR_SIZE] = "";
	CURLcode cc;

	if (deadline_ms != 0) {
		left = deadline_ms - clock_mono_ms();
		if (left <= 0) {
			prov_msg(res, h, "%s: the job's deadline passed before %s",
			    h->name, what);
			return PROV_TIMEOUT;
		}
		if (left < total) {
			total = (long)left;
			by_deadline = 1;
		}
	}
	connect = total < PROV_HTTP_CONNECT_MS ? total : PROV_HTTP_CONNECT_MS;
	b->max = h->max_bytes;
	hd->now = time(NULL);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, connect);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, total);
	curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->max_bytes);
	curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, hd);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "imagegen/1");
	cc = curl_easy_perform(curl);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
	if (cc == CURLE_OK) {
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
		return PROV_OK;
	}
	if (b->too_big || cc == CURLE_FILESIZE_EXCEEDED) {
		prov_msg(res, h, "%s: %s: reply larger than %zu bytes", h->name,
		    what, h->max_bytes);
		return PROV_PROVIDER_ERROR;
	}
	if (cc == CURLE_OPERATION_TIMEDOUT) {
		prov_msg(res, h, "%s: %s: no complete answer within %ld ms%s",
		    h->name, what, total, by_deadline ? " (the job's deadline)" : "");
		return PROV_TIMEOUT;
	}
	prov_msg(res, h, "%s: %s: %s%s%s", h->name, what, curl_easy_strerror(cc),
	    errbuf[0] != '\0' ? ": " : "", errbuf);
	return curl_class(cc);
}

enum prov_err
prov_http_post(struct prov_http *h, const char *url,
    const char *const *headers, const char *body, size_t len,
    long long deadline_ms, struct prov_http_reply *rep, struct prov_result *res)
{
	struct http_buf b = { NULL, 0, 0, 0, 0 };
	struct http_hdrs hd;
	struct curl_slist *sl = NULL, *t;
	enum prov_err e = PROV_PROVIDER_ERROR;
	long status = 0;
	size_t i;

	memset(rep, 0, sizeof(*rep));
	memset(&hd, 0, sizeof(hd));
	if (h == NULL || h->curl == NULL) {
		prov_msg(res, h, "provider HTTP client is not open");
		return PROV_PROVIDER_ERROR;
	}
	/* No "Expect: 100-continue" round trip before a large body. */
	sl = curl_slist_append(NULL, "Expect:");
	for (i = 0; sl != NULL && headers != NULL && headers[i] != NULL; i++) {
		t = curl_slist_append(sl, headers[i]);
		if (t == NULL) {
			curl_slist_free_all(sl);
			sl = NULL;
			break;
		}
		sl = t;
	}
	if (sl == NULL) {
		prov_msg(res, h, "%s: out of memory", h->name);
		goto out;
	}
	curl_easy_reset(h->curl);
	curl_easy_setopt(h->curl, CURLOPT_URL, url);
	curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, sl);
	curl_easy_setopt(h->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	e = http_perform(h, "request", deadline_ms, &b, &hd, &status, res);
	/* The handle must not keep pointers into this call's memory. */
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, NULL);
	if (e != PROV_OK)
		goto out;
	rep->status = status;
	rep->body = b.data;
	rep->len = b.len;
	b.data = NULL;
	rep->retry_after_ms = hd.retry_after_ms;
	snprintf(rep->content_type, sizeof(rep->content_type), "%s",
	    hd.content_type);
out:
	curl_slist_free_all(sl);
	free(b.data);
	return e;
}

/* ---- artifacts --------------------------------------------------------- */

static uint32_t
le32(const unsigned char *p)
{
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[1] << 8 | p[0];
}

int
prov_image_whole(const unsigned char *d, size_t n)
{
	static const unsigned char iend[12] = {
		0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82
	};
	const char *mime;
	int w, h;

	if (d == NULL || image_sniff(d, n, &mime, &w, &h) != 0)
		return 0;
	if (strcmp(mime, "image/png") == 0)
		return n >= 8 + 25 + 12 && memcmp(d + n - 12, iend, 12) == 0;
	if (strcmp(mime, "image/jpeg") == 0) {
		/* EOI last; encoders may pad the file with zero bytes. */
		while (n > 4 && d[n - 1] == 0)
			n--;
		return d[n - 2] == 0xff && d[n - 1] == 0xd9;
	}
	/* WebP: the RIFF payload is the file, plus a pad byte when odd. */
	return (size_t)le32(d + 4) + 8 == n ||
	    ((le32(d + 4) & 1) != 0 && (size_t)le32(d + 4) + 9 == n);
}

/* Checks buf (n bytes, malloc'd, owned from here) and gives it to res. */
static enum prov_err
artifact_take(unsigned char *buf, size_t n, struct prov_result *res)
{
	if (!prov_image_whole(buf, n)) {
		free(buf);
		prov_msg(res, NULL, "the image is not a whole PNG, JPEG or WebP "
		    "(%zu bytes)", n);
		return PROV_PROVIDER_ERROR;
	}
	free(res->data);
	res->data = buf;
	res->len = n;
	return PROV_OK;
}

enum prov_err
prov_artifact_b64(const char *b64, size_t n, size_t max,
    struct prov_result *res)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	int rc;

	if (b64 == NULL || n == 0) {
		prov_msg(res, NULL, "the image data is empty");
		return PROV_PROVIDER_ERROR;
	}
	rc = base64_decode(b64, n, max, &buf, &len);
	if (rc == -2) {
		prov_msg(res, NULL, "the image is larger than %zu bytes", max);
		return PROV_PROVIDER_ERROR;
	}
	if (rc != 0) {
		prov_msg(res, NULL, rc == -3 ? "out of memory decoding the image" :
		    "the image data is not valid base64 (%zu characters)", n);
		return PROV_PROVIDER_ERROR;
	}
	return artifact_take(buf, len, res);
}

enum prov_err
prov_artifact_bytes(const unsigned char *data, size_t n, size_t max,
    struct prov_result *res)
{
	unsigned char *buf;

	if (data == NULL || n == 0) {
		prov_msg(res, NULL, "the image data is empty");
		return PROV_PROVIDER_ERROR;
	}
	if (n > max) {
		prov_msg(res, NULL, "the image is larger than %zu bytes", max);
		return PROV_PROVIDER_ERROR;
	}
	buf = malloc(n);
	if (buf == NULL) {
		prov_msg(res, NULL, "out of memory copying the image");
		return PROV_PROVIDER_ERROR;
	}
	memcpy(buf, data, n);
	return artifact_take(buf, n, res);
}

enum prov_err
prov_http_fetch(struct prov_http *h, const char *url, long long deadline_ms,
    struct prov_result *res)
{
	struct http_buf b = { NULL, 0, 0, 0, 0 };
	struct http_hdrs hd;
	enum prov_err e;
	long status = 0;

	memset(&hd, 0, sizeof(hd));
	if (h == NULL || h->curl == NULL) {
		prov_msg(res, h, "provider HTTP client is not open");
		return PROV_PROVIDER_ERROR;
	}
	if (url == NULL || (strncasecmp(url, "https://", 8) != 0 &&
	    strncasecmp(url, "http://", 7) != 0)) {
		prov_msg(res, h, "%s: the image URL is not http(s)", h->name);
		return PROV_PROVIDER_ERROR;
	}
	curl_easy_reset(h->curl);
	curl_easy_setopt(h->curl, CURLOPT_URL, url);
	curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h->curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h->curl, CURLOPT_MAXREDIRS, (long)PROV_URL_MAX_REDIRS);
	curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
	e = http_perform(h, "image download", deadline_ms, &b, &hd, &status, res);
	if (e != PROV_OK)
		goto out;
	if (status < 200 || status >= 300) {
		e = prov_http_class(status);
		/* The model's answer is there; a 4xx on its file is not our
		 * request's fault. */
		if (e == PROV_INVALID_REQUEST || e == PROV_AUTH_ERROR)
			e = PROV_PROVIDER_ERROR;
		prov_msg(res, h, "%s: image download: HTTP %ld", h->name, status);
		if (e == PROV_RATE_LIMIT || e == PROV_TEMPORARY)
			res->retry_after_ms = hd.retry_after_ms;
		goto out;
	}
	e = artifact_take((unsigned char *)b.data, b.len, res);
	b.data = NULL;
	if (e != PROV_OK) {
		prov_msg(res, h, "%s: the downloaded file is not a whole PNG, "
		    "JPEG or WebP (%zu bytes%s%s)", h->name, b.len,
		    hd.content_type[0] != '\0' ? ", " : "", hd.content_type);
	}
out:
	free(b.data);
	return e;
}
