/*
 * supabase.c - the Supabase Storage backend: its REST API with the service
 * role key (SPEC §7).
 *
 *   upload  POST   {SUPABASE_URL}/storage/v1/object/{bucket}/{path}
 *   read    GET    {SUPABASE_URL}/storage/v1/object/{bucket}/{path}
 *   delete  DELETE {SUPABASE_URL}/storage/v1/object/{bucket}/{path}
 *   bucket  POST   {SUPABASE_URL}/storage/v1/bucket  {"id","name","public"}
 *   public  {SUPABASE_URL}/storage/v1/object/public/{bucket}/{path}
 *           (unless IMAGEGEN_PUBLIC_BASE_URL names another place)
 *
 * Every request carries the key twice, as Supabase's gateway and Storage
 * each want it: "Authorization: Bearer {key}" and "apikey: {key}".
 *
 * Storage answers most errors as HTTP 400 with the real status in the JSON
 * body, e.g. 400 {"statusCode":"409","error":"Duplicate","message":"The
 * resource already exists"}; only a 500 comes as a 500 (and a few as 429
 * or 544). So the status that decides is the body's statusCode when it has
 * one, else the HTTP status: 409 duplicate, 413 too large, 415 type not
 * allowed, 404 no bucket (or object), 401/403 refused key are permanent
 * (STOR_ERROR); 408, 423, 429 and 5xx but 501/505, and transport failures
 * (timeouts, refused or reset connections), are STOR_TEMPORARY, which the
 * executor retries with backoff.
 *
 * One curl easy handle per process, made in open() (after fork); no
 * redirects, http(s) only, IMAGEGEN_PROVIDER_TIMEOUT_MS per request,
 * response bodies bounded. The key is never logged and is wiped on close.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <openssl/crypto.h>

#include "log.h"
#include "storage.h"

#define SUPA_MAX_OBJECT (50L << 20)	/* Supabase's default upload limit */
#define SUPA_ERR_BODY_MAX 16384		/* an error or JSON answer */
#define SUPA_CONNECT_MS 10000L

struct supa_st {
	CURL *curl;
	char *base;		/* {SUPABASE_URL}/storage/v1 */
	char *auth_hdr;		/* "Authorization: Bearer {key}" (secret) */
	char *apikey_hdr;	/* "apikey: {key}" (secret) */
	long timeout_ms;
};

/* A response body, at most max bytes (more sets over and stops). */
struct supa_body {
	unsigned char *p;
	size_t len, cap, max;
	int over;
};

/* What came back: the HTTP status, the status that decides (the body's
 * statusCode or the HTTP one) and the error's name and message. */
struct supa_answer {
	long http;
	long status;
	char code[64];
	char message[200];
};

static size_t
supa_on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct supa_body *b = ud;
	size_t n = size * nmemb, ncap;
	unsigned char *np;

	if (n > b->max - b->len) {
		b->over = 1;
		return 0;	/* curl stops with CURLE_WRITE_ERROR */
	}
	if (b->len + n + 1 > b->cap) {
		ncap = b->cap ? b->cap : 4096;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		if (ncap > b->max + 1)
			ncap = b->max + 1;
		np = realloc(b->p, ncap);
		if (np == NULL)
			return 0;
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, ptr, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

/* Transport failures that may clear up within the executor's retries. */
static enum stor_err
supa_curl_class(CURLcode cc)
{
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_OUT_OF_MEMORY:
		return STOR_TEMPORARY;
	default:
		return STOR_ERROR;
	}
}

static enum stor_err
supa_status_class(long status)
{
	if (status == 408 || status == 423 || status == 429 ||
	    (status >= 500 && status != 501 && status != 505))
		return STOR_TEMPORARY;
	return STOR_ERROR;
}

/* Copies s into out, at most outlen - 1 bytes, control characters made
 * spaces: a server's text goes into one log line. */
static void
supa_copy_text(char *out, size_t outlen, const char *s)
{
	size_t i;

	if (outlen == 0)
		return;
	for (i = 0; s != NULL && s[i] != '\0' && i + 1 < outlen; i++)
		out[i] = (unsigned char)s[i] < 32 || s[i] == 127 ? ' ' : s[i];
	out[i] = '\0';
}

/* Reads Storage's error JSON out of body into a (status stays the HTTP
 * one when the body has no usable statusCode). */
static void
supa_parse_error(const struct supa_body *body, struct supa_answer *a)
{
	struct json_object *o = NULL, *v;
	const char *s;
	long n;
	char *end;

	a->status = a->http;
	a->code[0] = a->message[0] = '\0';
	if (body->p == NULL || body->len == 0)
		return;
	o = json_tokener_parse((const char *)body->p);
	if (o == NULL || !json_object_is_type(o, json_type_object))
		goto out;
	if (json_object_object_get_ex(o, "statusCode", &v)) {
		/* a string in Storage's answers; a number from older ones */
		if (json_object_is_type(v, json_type_int)) {
			n = (long)json_object_get_int64(v);
		} else if (json_object_is_type(v, json_type_string)) {
			s = json_object_get_string(v);
			n = strtol(s, &end, 10);
			if (end == s || *end != '\0')
				n = 0;
		} else {
			n = 0;
		}
		if (n >= 100 && n <= 599)
			a->status = n;
	}
	/* "error" is the old name ("Duplicate"), "code" the new one
	 * ("KeyAlreadyExists"); either names the failure. */
	if ((json_object_object_get_ex(o, "error", &v) ||
	    json_object_object_get_ex(o, "code", &v)) &&
	    json_object_is_type(v, json_type_string))
		supa_copy_text(a->code, sizeof(a->code), json_object_get_string(v));
	if (json_object_object_get_ex(o, "message", &v) &&
	    json_object_is_type(v, json_type_string))
		supa_copy_text(a->message, sizeof(a->message),
		    json_object_get_string(v));
out:
	json_object_put(o);
}

/* The key headers, "Expect:" (no 100-continue wait) and extra (NULL
 * ended, may be NULL) as a curl list; NULL out of memory. */
static struct curl_slist *
supa_headers(const struct supa_st *st, const char *const *extra)
{
	const char *fixed[] = { st->auth_hdr, st->apikey_hdr, "Expect:" };
	struct curl_slist *l = NULL, *n;
	size_t i, nextra = 0;

	while (extra != NULL && extra[nextra] != NULL)
		nextra++;
	for (i = 0; i < 3 + nextra; i++) {
		n = curl_slist_append(l, i < 3 ? fixed[i] : extra[i - 3]);
		if (n == NULL) {
			curl_slist_free_all(l);
			return NULL;
		}
		l = n;
	}
	return l;
}

/*
 * One request: method to url with the key headers, extra (may be NULL),
 * and a body (NULL for none). The response body goes into out (bounded by
 * out->max). STOR_OK when an HTTP answer came (whatever its status, in
 * a), else the transport failure, classified, with msg set.
 */
static enum stor_err
supa_call(struct supa_st *st, const char *method, const char *url,
    const char *const *extra, const void *body, size_t len,
    struct supa_body *out, struct supa_answer *a, char *msg, size_t msglen)
{
	struct curl_slist *hdrs;
	CURLcode cc;
	enum stor_err rc = STOR_ERROR;

	memset(a, 0, sizeof(*a));
	curl_easy_reset(st->curl);
	hdrs = supa_headers(st, extra);
	if (hdrs == NULL) {
		snprintf(msg, msglen, "out of memory");
		rc = STOR_TEMPORARY;
		goto out;
	}
	curl_easy_setopt(st->curl, CURLOPT_URL, url);
	curl_easy_setopt(st->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(st->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(st->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(st->curl, CURLOPT_CONNECTTIMEOUT_MS,
	    st->timeout_ms < SUPA_CONNECT_MS ? st->timeout_ms : SUPA_CONNECT_MS);
	curl_easy_setopt(st->curl, CURLOPT_TIMEOUT_MS, st->timeout_ms);
	curl_easy_setopt(st->curl, CURLOPT_USERAGENT, "imagegen-storage/1");
	curl_easy_setopt(st->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(st->curl, CURLOPT_WRITEFUNCTION, supa_on_body);
	curl_easy_setopt(st->curl, CURLOPT_WRITEDATA, out);
	if (body != NULL) {
		curl_easy_setopt(st->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(st->curl, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)len);
	}
	if (strcmp(method, "GET") != 0)
		curl_easy_setopt(st->curl, CURLOPT_CUSTOMREQUEST, method);
	cc = curl_easy_perform(st->curl);
	curl_easy_getinfo(st->curl, CURLINFO_RESPONSE_CODE, &a->http);
	if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && out->over)) {
		snprintf(msg, msglen, "supabase storage %s: %s", method,
		    curl_easy_strerror(cc));
		rc = supa_curl_class(cc);
		goto out;
	}
	a->status = a->http;
	rc = STOR_OK;
out:
	/* The list holds the key: its strings are freed, not kept. */
	curl_slist_free_all(hdrs);
	return rc;
}

/* msg for a failed request: "what: 409 Duplicate: The resource already
 * exists", and the class of a's status. */
static enum stor_err
supa_fail(const struct supa_answer *a, const char *what, char *msg,
    size_t msglen)
{
	snprintf(msg, msglen, "%s: %ld%s%s%s%s", what, a->status,
	    a->code[0] ? " " : "", a->code, a->message[0] ? ": " : "", a->message);
	return supa_status_class(a->status);
}

/* "{base}/{mid}/{bucket}/{path}" (path may be NULL), malloc'd; NULL out
 * of memory. Bucket and path hold only URL-safe bytes (storage.c checks). */
static char *
supa_url(const struct supa_st *st, const char *mid, const char *bucket,
    const char *path)
{
	size_t n = strlen(st->base) + strlen(mid) + strlen(bucket) +
	    (path != NULL ? strlen(path) : 0) + 4;
	char *u = malloc(n);

	if (u != NULL)
		snprintf(u, n, "%s/%s/%s%s%s", st->base, mid, bucket,
		    path != NULL ? "/" : "", path != NULL ? path : "");
	return u;
}

/* The reason for a permanent status of an object request. */
static const char *
supa_object_reason(const struct supa_answer *a)
{
	switch (a->status) {
	case 409:
		return "object already exists";
	case 413:
		return "object too large for the bucket";
	case 415:
		return "type not allowed by the bucket";
	case 404:
		return "bucket not found (run imagegen setup-bucket)";
	case 401:
	case 403:
		return "refused (check SUPABASE_SERVICE_ROLE_KEY and the storage policies)";
	default:
		return "upload failed";
	}
}

static enum stor_err
supa_put(struct storage *s, const char *path, const unsigned char *data,
    size_t len, const char *mime, char *msg, size_t msglen)
{
	struct supa_st *st = s->state;
	struct supa_body body = { .max = SUPA_ERR_BODY_MAX };
	struct supa_answer a;
	char ctype[96];
	const char *extra[4];
	char *url = NULL;
	enum stor_err rc = STOR_ERROR;

	/* Checked here, before anything is sent. */
	if (len == 0 || len > (size_t)SUPA_MAX_OBJECT) {
		snprintf(msg, msglen, "object of %zu bytes: outside 1 to %ld bytes",
		    len, SUPA_MAX_OBJECT);
		goto out;
	}
	snprintf(ctype, sizeof(ctype), "Content-Type: %s", mime);
	extra[0] = ctype;
	extra[1] = "Cache-Control: max-age=3600";
	extra[2] = "x-upsert: false";	/* never overwrite */
	extra[3] = NULL;
	url = supa_url(st, "object", s->bucket, path);
	if (url == NULL) {
		snprintf(msg, msglen, "out of memory");
		rc = STOR_TEMPORARY;
		goto out;
	}
	rc = supa_call(st, "POST", url, extra, data, len, &body, &a, msg, msglen);
	if (rc != STOR_OK)
		goto out;
	if (a.http >= 200 && a.http < 300)
		goto out;
	supa_parse_error(&body, &a);
	rc = supa_fail(&a, supa_object_reason(&a), msg, msglen);
	log_warn("upload of %s: %s", path, msg);
out:
	free(url);
	free(body.p);
	return rc;
}

static enum stor_err
supa_del(struct storage *s, const char *path, char *msg, size_t msglen)
{
	struct supa_st *st = s->state;
	struct supa_body body = { .max = SUPA_ERR_BODY_MAX };
	struct supa_answer a;
	char *url = NULL;
	enum stor_err rc = STOR_TEMPORARY;

	url = supa_url(st, "object", s->bucket, path);
	if (url == NULL) {
		snprintf(msg, msglen, "out of memory");
		goto out;
	}
	rc = supa_call(st, "DELETE", url, NULL, NULL, 0, &body, &a, msg, msglen);
	if (rc != STOR_OK || (a.http >= 200 && a.http < 300))
		goto out;
	supa_parse_error(&body, &a);
	/* A missing object (or bucket) is what a delete wants. */
	if (a.status == 404)
		goto out;
	rc = supa_fail(&a, "delete failed", msg, msglen);
out:
	free(url);
	free(body.p);
	return rc;
}

static enum stor_err
supa_get(struct storage *s, const char *path, size_t max, unsigned char **data,
    size_t *len, char *msg, size_t msglen)
{
	struct supa_st *st = s->state;
	struct supa_body body = { .max = max };
	struct supa_answer a;
	char *url = NULL;
	enum stor_err rc = STOR_TEMPORARY;

	url = supa_url(st, "object", s->bucket, path);
	if (url == NULL) {
		snprintf(msg, msglen, "out of memory");
		goto out;
	}
	rc = supa_call(st, "GET", url, NULL, NULL, 0, &body, &a, msg, msglen);
	if (rc != STOR_OK)
		goto out;
	if (a.http >= 200 && a.http < 300) {
		if (body.over) {
			snprintf(msg, msglen, "object larger than %zu bytes", max);
			rc = STOR_ERROR;
			goto out;
		}
		if (body.p == NULL)
			body.p = malloc(1);	/* an empty object */
		if (body.p == NULL) {
			snprintf(msg, msglen, "out of memory");
			rc = STOR_TEMPORARY;
			goto out;
		}
		*data = body.p;
		*len = body.len;
		body.p = NULL;
		goto out;
	}
	/* An error answer longer than max was cut: its JSON is then lost,
	 * and the HTTP status decides. */
	if (!body.over)
		supa_parse_error(&body, &a);
	else
		a.status = a.http;
	rc = supa_fail(&a, a.status == 404 ? "no such object" : "read failed",
	    msg, msglen);
out:
	free(url);
	free(body.p);
	return rc;
}

/* Makes an existing bucket public: PUT /bucket/{id} {"public":true}. */
static enum stor_err
supa_make_public(struct storage *s, char *msg, size_t msglen)
{
	static const char *const json_hdr[] = {
		"Content-Type: application/json", NULL
	};
	struct supa_st *st = s->state;
	struct supa_body body = { .max = SUPA_ERR_BODY_MAX };
	struct supa_answer a;
	const char *req = "{\"public\":true}";
	char *url = supa_url(st, "bucket", s->bucket, NULL);
	enum stor_err rc = STOR_TEMPORARY;

	if (url == NULL) {
		snprintf(msg, msglen, "out of memory");
		goto out;
	}
	rc = supa_call(st, "PUT", url, json_hdr, req, strlen(req), &body, &a, msg,
	    msglen);
	if (rc != STOR_OK || (a.http >= 200 && a.http < 300))
		goto out;
	supa_parse_error(&body, &a);
	rc = supa_fail(&a, "bucket exists but could not be made public", msg,
	    msglen);
out:
	free(url);
	free(body.p);
	return rc;
}

static enum stor_err
supa_setup(struct storage *s, char *msg, size_t msglen)
{
	static const char *const json_hdr[] = {
		"Content-Type: application/json", NULL
	};
	struct supa_st *st = s->state;
	struct supa_body body = { .max = SUPA_ERR_BODY_MAX };
	struct supa_answer a;
	char req[512], url[1024];
	enum stor_err rc;

	snprintf(url, sizeof(url), "%s/bucket", st->base);
	snprintf(req, sizeof(req),
	    "{\"id\":\"%s\",\"name\":\"%s\",\"public\":true,"
	    "\"allowed_mime_types\":[\"image/png\",\"image/jpeg\",\"image/webp\"]}",
	    s->bucket, s->bucket);
	rc = supa_call(st, "POST", url, json_hdr, req, strlen(req), &body, &a, msg,
	    msglen);
	if (rc != STOR_OK)
		goto out;
	if (a.http >= 200 && a.http < 300) {
		log_info("bucket %s created (public)", s->bucket);
		goto out;
	}
	supa_parse_error(&body, &a);
	if (a.status == 409) {
		/* There already: harmless, but it must be public too. */
		log_info("bucket %s exists; making sure it is public", s->bucket);
		rc = supa_make_public(s, msg, msglen);
		goto out;
	}
	rc = supa_fail(&a, a.status == 401 || a.status == 403 ?
	    "bucket creation refused (check SUPABASE_SERVICE_ROLE_KEY)" :
	    "bucket creation failed", msg, msglen);
out:
	free(body.p);
	return rc;
}

static void
supa_free_secret(char *p)
{
	if (p != NULL) {
		OPENSSL_cleanse(p, strlen(p));
		free(p);
	}
}

static void
supa_close(struct storage *s)
{
	struct supa_st *st = s->state;

	if (st == NULL)
		return;
	if (st->curl != NULL)
		curl_easy_cleanup(st->curl);
	free(st->base);
	supa_free_secret(st->auth_hdr);
	supa_free_secret(st->apikey_hdr);
	free(st);
	s->state = NULL;
}

/* "{prefix}{key}", malloc'd; NULL out of memory. */
static char *
supa_header(const char *prefix, const char *key)
{
	size_t n = strlen(prefix) + strlen(key) + 1;
	char *h = malloc(n);

	if (h != NULL)
		snprintf(h, n, "%s%s", prefix, key);
	return h;
}

static int
supa_open(struct storage *s, const struct cfg *c, char *err, size_t errlen)
{
	struct supa_st *st = NULL;
	size_t ulen;
	int n, rc = -1;

	if (c->supabase_url == NULL || c->service_role_key == NULL) {
		snprintf(err, errlen, "%s is not set (needed by IMAGEGEN_STORAGE=supabase)",
		    c->supabase_url == NULL ? "SUPABASE_URL" : "SUPABASE_SERVICE_ROLE_KEY");
		goto out;
	}
	/* The key goes into a header line: no line breaks in it. */
	if (strpbrk(c->service_role_key, "\r\n") != NULL) {
		snprintf(err, errlen, "SUPABASE_SERVICE_ROLE_KEY: contains a line break");
		goto out;
	}
	ulen = strlen(c->supabase_url);
	while (ulen > 0 && c->supabase_url[ulen - 1] == '/')
		ulen--;
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		goto oom;
	st->base = malloc(ulen + sizeof("/storage/v1"));
	if (st->base == NULL)
		goto oom;
	memcpy(st->base, c->supabase_url, ulen);
	memcpy(st->base + ulen, "/storage/v1", sizeof("/storage/v1"));
	st->auth_hdr = supa_header("Authorization: Bearer ", c->service_role_key);
	st->apikey_hdr = supa_header("apikey: ", c->service_role_key);
	if (st->auth_hdr == NULL || st->apikey_hdr == NULL)
		goto oom;
	st->timeout_ms = c->provider_timeout_ms > 0 ? c->provider_timeout_ms :
	    120000;
	st->curl = curl_easy_init();
	if (st->curl == NULL) {
		snprintf(err, errlen, "IMAGEGEN_STORAGE=supabase: curl_easy_init failed");
		goto out;
	}
	/* Public objects are served by Storage itself unless the operator
	 * named another place (a CDN, a proxy). */
	if (!c->public_base_url_set) {
		n = snprintf(s->public_base, sizeof(s->public_base),
		    "%s/object/public", st->base);
		if (n < 0 || (size_t)n >= sizeof(s->public_base)) {
			snprintf(err, errlen, "SUPABASE_URL: longer than %zu bytes",
			    sizeof(s->public_base) - sizeof("/storage/v1/object/public"));
			goto out;
		}
	}
	s->state = st;
	st = NULL;
	rc = 0;
	goto out;
oom:
	snprintf(err, errlen, "IMAGEGEN_STORAGE=supabase: out of memory");
out:
	if (st != NULL) {
		s->state = st;
		supa_close(s);
	}
	return rc;
}

const struct storage_ops storage_supabase = {
	.name = "supabase",
	.open = supa_open,
	.close = supa_close,
	.put = supa_put,
	.get = supa_get,
	.del = supa_del,
	.setup = supa_setup,
};
