/*
 * prov_remote.c - what the remote providers share: their open, close and
 * generate around one httpc client each (timeouts, a reply size cap), the
 * classification of HTTP statuses and transport errors (SPEC §6), the
 * download of an artifact URL and the redaction of secrets from what a
 * provider said. The artifact checks are in prov_artifact.c.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"
#include "httpc.h"
#include "log.h"
#include "prov_remote.h"
#include "secret.h"
#include "text.h"
#include "settings.h"
#include "urlpolicy.h"

#define PROV_MAX_DELAY_MS (86400L * 1000)	/* any longer hint is a day */
#define PROV_REDACTED "[redacted]"

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
	text_clean(res->message, sizeof(res->message), res->message,
	    sizeof(res->message));
}

void
prov_msg_http(struct prov_result *res, const char *name, long status,
    const char *body, size_t len)
{
	char snippet[201];
	size_t n = body != NULL ? (len < 200 ? len : 200) : 0;

	memcpy(snippet, body != NULL ? body : "", n);
	snippet[n] = '\0';
	prov_msg(res, NULL, "%s: HTTP %ld%s%s", name, status, n != 0 ? ": " : "",
	    snippet);
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

/*
 * Performs req on h's client: the configured timeout, or what is left
 * before deadline_ms when that is less; the reply capped at max_bytes,
 * compressed replies decoded; under the outbound URL policy when pol is
 * not NULL (a URL from a reply, not the operator's endpoint). PROV_OK
 * with the answer (any status) in *rep and its Retry-After in
 * *retry_after_ms, or a classified failure with res->message. what names
 * the call in messages. Free rep with httpc_reply_free() either way.
 */
static enum prov_err
prov_http_call(struct prov_http *h, const struct urlpol *pol, const char *what,
    long long deadline_ms, struct httpc_req *req, struct httpc_reply *rep,
    long *retry_after_ms, struct prov_result *res)
{
	long long left;
	int by_deadline = 0;
	time_t now;
	enum httpc_err e;

	memset(rep, 0, sizeof(*rep));
	req->timeout_ms = h->timeout_ms;
	if (deadline_ms != 0) {
		left = deadline_ms - clock_mono_ms();
		if (left <= 0) {
			prov_msg(res, h, "%s: the job's deadline passed before %s",
			    h->name, what);
			return PROV_TIMEOUT;
		}
		if (left < req->timeout_ms) {
			req->timeout_ms = (long)left;
			by_deadline = 1;
		}
	}
	req->max_bytes = h->max_bytes;
	req->flags = HTTPC_DECODE | HTTPC_LENGTH_CAP;
	req->user_agent = "imagegen/1";
	/* An HTTP-date in Retry-After counts from when we asked. */
	now = time(NULL);
	e = pol != NULL ? urlpol_fetch(pol, &h->client, req, rep) :
	    httpc_perform(&h->client, req, rep);
	switch (e) {
	case HTTPC_OK:
		*retry_after_ms = prov_retry_after_ms(rep->retry_after, now);
		return PROV_OK;
	case HTTPC_NOMEM:
		prov_msg(res, h, "%s: out of memory", h->name);
		return PROV_PROVIDER_ERROR;
	case HTTPC_TOO_BIG:
		prov_msg(res, h, "%s: %s: reply larger than %zu bytes", h->name,
		    what, h->max_bytes);
		return PROV_PROVIDER_ERROR;
	case HTTPC_TIMEOUT:
		prov_msg(res, h, "%s: %s: no complete answer within %ld ms%s",
		    h->name, what, req->timeout_ms,
		    by_deadline ? " (the job's deadline)" : "");
		return PROV_TIMEOUT;
	case HTTPC_REFUSED:
		/* The provider named a URL we will not fetch: its artifact is
		 * bad, and asking again will not change it. */
		prov_msg(res, h, "%s: artifact URL %s: %s", h->name, rep->error,
		    rep->detail);
		return PROV_PROVIDER_ERROR;
	default:
		prov_msg(res, h, "%s: %s: %s%s%s", h->name, what, rep->error,
		    rep->detail[0] != '\0' ? ": " : "", rep->detail);
		/* What is neither a broken connection nor a refused reply
		 * may still clear up: the runner retries it. */
		return e == HTTPC_PERMANENT ? PROV_PROVIDER_ERROR : PROV_TEMPORARY;
	}
}

enum prov_err
prov_http_fetch(struct prov_http *h, const char *url, long long deadline_ms,
    struct prov_result *res)
{
	struct httpc_req req;
	struct httpc_reply rep;
	long retry_after_ms = 0;
	enum prov_err e;

	memset(&req, 0, sizeof(req));
	memset(&rep, 0, sizeof(rep));
	if (h == NULL || h->client.curl == NULL) {
		prov_msg(res, h, "provider HTTP client is not open");
		return PROV_PROVIDER_ERROR;
	}
	if (url == NULL) {
		prov_msg(res, h, "%s: the image URL is missing", h->name);
		return PROV_PROVIDER_ERROR;
	}
	/* Scheme, host, every address and redirect: the policy's. */
	req.method = "GET";
	req.url = url;
	req.max_redirs = PROV_URL_MAX_REDIRS;
	e = prov_http_call(h, &h->policy, "image download", deadline_ms, &req,
	    &rep, &retry_after_ms, res);
	if (e != PROV_OK)
		goto out;
	if (rep.status < 200 || rep.status >= 300) {
		e = prov_http_class(rep.status);
		/* The model's answer is there; a 4xx on its file is not our
		 * request's fault. */
		if (e == PROV_INVALID_REQUEST || e == PROV_AUTH_ERROR)
			e = PROV_PROVIDER_ERROR;
		prov_msg(res, h, "%s: image download: HTTP %ld", h->name,
		    rep.status);
		if (e == PROV_RATE_LIMIT || e == PROV_TEMPORARY)
			res->retry_after_ms = retry_after_ms;
		goto out;
	}
	e = prov_artifact_take((unsigned char *)rep.body, rep.len, res);
	rep.body = NULL;
	if (e != PROV_OK) {
		prov_msg(res, h, "%s: the downloaded file is not a whole PNG, "
		    "JPEG or WebP (%zu bytes%s%s)", h->name, rep.len,
		    rep.content_type[0] != '\0' ? ", " : "", rep.content_type);
	}
out:
	httpc_reply_free(&rep);
	return e;
}

/* ---- the remote providers ---------------------------------------------- */

void
prov_remote_close(struct provider *p)
{
	struct prov_http *h = p->state;

	if (h == NULL)
		return;
	httpc_close(&h->client);
	urlpol_free(&h->policy);
	secret_free(h->secret);
	secret_free(h->key_header);
	free(h->url);
	free(h);
	p->state = NULL;
}

const struct setting prov_remote_settings[] = {
	{ "NANO_BANANA_API_KEY", SET_STR, NULL, 0, 0,
	  offsetof(struct prov_remote_conf, api_key), SET_SECRET | SET_NEEDED,
	  NULL, NULL,
	  "the model API's key (secret; redacted from every stored message)" },
	{ "NANO_BANANA_MODEL", SET_STR, "gemini-2.5-flash-image", 0, 0,
	  offsetof(struct prov_remote_conf, model), 0, NULL, NULL,
	  "recorded on jobs; the price table prices it (one it lacks is refused "
	  "unless `IMAGEGEN_PRICE_PER_IMAGE_USD` is set)" },
	{ NULL, 0, NULL, 0, 0, 0, 0, NULL, NULL, NULL }
};

const struct prov_remote_conf *
prov_remote_conf(const struct cfg *c)
{
	static const struct prov_remote_conf none;

	return c->provider_conf != NULL ? c->provider_conf : &none;
}

const char *
prov_remote_model(const void *conf)
{
	const struct prov_remote_conf *rc = conf;

	return rc->model;
}

int
prov_remote_open(struct provider *p, const struct cfg *c,
    const struct prov_api *api, char *err, size_t errlen)
{
	const char *key = api->key;
	struct prov_http *h;
	char why[256];
	size_t i, n;
	int rc = -1;

	if (key == NULL || key[0] == '\0') {
		snprintf(err, errlen, "%s is not set (needed by IMAGEGEN_PROVIDER=%s)",
		    api->key_var != NULL ? api->key_var : "NANO_BANANA_API_KEY",
		    api->name);
		goto out;
	}
	if (api->model_rule != NULL) {
		snprintf(err, errlen, "NANO_BANANA_MODEL: %s, got '%.64s'",
		    api->model_rule, api->model);
		goto out;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		goto oom;
	p->state = h;
	snprintf(h->name, sizeof(h->name), "%s", api->name);
	h->wire = api->wire;
	h->timeout_ms = c->provider_timeout_ms > 0 ? c->provider_timeout_ms : 120000;
	h->max_bytes = c->provider_max_bytes > 0 ? (size_t)c->provider_max_bytes :
	    (size_t)32 << 20;
	if (urlpol_parse(&h->policy, c->fetch_allow, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "IMAGEGEN_FETCH_ALLOW: %s", why);
		goto out;
	}
	h->secret = strdup(key);
	if (h->secret == NULL || httpc_open(&h->client) != 0) {
		snprintf(err, errlen, "IMAGEGEN_PROVIDER: cannot make an HTTP "
		    "client for %s", api->name);
		goto out;
	}
	for (i = 0, n = 1; api->url[i] != NULL; i++)
		n += strlen(api->url[i]);
	h->url = malloc(n);
	if (h->url == NULL)
		goto oom;
	for (i = 0, n = 0; api->url[i] != NULL; i++) {
		memcpy(h->url + n, api->url[i], strlen(api->url[i]));
		n += strlen(api->url[i]);
	}
	h->url[n] = '\0';
	n = strlen(api->key_prefix) + strlen(key) + 1;
	h->key_header = malloc(n);
	if (h->key_header == NULL)
		goto oom;
	snprintf(h->key_header, n, "%s%s", api->key_prefix, key);
	snprintf(p->model, sizeof(p->model), "%s", api->model);
	rc = 0;
	goto out;
oom:
	snprintf(err, errlen, "IMAGEGEN_PROVIDER: out of memory");
out:
	if (rc != 0)
		prov_remote_close(p);
	return rc;
}

enum prov_err
prov_remote_call(struct prov_http *h, const char *method, const char *url,
    const char *body, size_t len, long long deadline_ms,
    struct prov_http_reply *rep, struct prov_result *res)
{
	const char *headers[3];
	struct httpc_req req;
	struct httpc_reply hr;
	enum prov_err e;

	memset(rep, 0, sizeof(*rep));
	memset(&req, 0, sizeof(req));
	headers[0] = "Content-Type: application/json";
	headers[1] = h->key_header;
	headers[2] = NULL;
	req.method = method;
	req.url = url != NULL ? url : h->url;
	req.headers = headers;
	req.body = body;
	req.len = len;
	/* The operator's own endpoint: not subject to the URL policy. */
	e = prov_http_call(h, NULL, "request", deadline_ms, &req, &hr,
	    &rep->retry_after_ms, res);
	if (e == PROV_OK) {
		rep->status = hr.status;
		rep->body = hr.body;
		rep->len = hr.len;
		hr.body = NULL;
	}
	httpc_reply_free(&hr);
	return e;
}

void
prov_remote_reply_free(struct prov_http_reply *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

enum prov_err
prov_remote_generate(struct provider *p, const struct prov_request *req,
    struct prov_result *res)
{
	struct prov_http *h = p->state;
	const struct prov_wire *w = h->wire;
	struct prov_http_reply rep;
	char *body;
	enum prov_err e;

	memset(&rep, 0, sizeof(rep));
	if (req->source != NULL && w->no_inpaint != NULL) {
		prov_msg(res, NULL, "%s: %s", h->name, w->no_inpaint);
		return PROV_INVALID_REQUEST;
	}
	body = w->request(req, p->model);
	if (body == NULL) {
		prov_msg(res, NULL, "%s: out of memory building the request",
		    h->name);
		return PROV_PROVIDER_ERROR;
	}
	e = prov_remote_call(h, "POST", NULL, body, strlen(body), req->deadline_ms,
	    &rep, res);
	free(body);
	if (e != PROV_OK)
		goto out;
	if (rep.status < 200 || rep.status >= 300)
		e = w->on_error(rep.status, rep.body, rep.len, rep.retry_after_ms,
		    res);
	else
		e = w->on_reply(p, req, &rep, res);
out:
	/* Whatever the API echoed, the key does not leave this function. */
	prov_redact(res->message, sizeof(res->message), h->secret);
	prov_remote_reply_free(&rep);
	return e;
}
