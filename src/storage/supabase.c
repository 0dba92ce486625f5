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
 * One HTTP client (httpc) per process, made in open() (after fork); no
 * redirects, http(s) only, IMAGEGEN_PROVIDER_TIMEOUT_MS per request,
 * response bodies bounded. The key is never logged and is wiped on close.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "httpc.h"
#include "log.h"
#include "secret.h"
#include "storage.h"
#include "supabase.h"
#include "text.h"

#define SUPA_MAX_OBJECT (50L << 20)	/* Supabase's default upload limit */
#define SUPA_ERR_BODY_MAX 16384		/* an error or JSON answer */
#define SUPA_MAX_EXTRA 3		/* a request's own header lines */

/* The header line of a JSON request body. */
static const char *const supa_json_hdr[] = {
	"Content-Type: application/json", NULL
};

struct supa_st {
	struct httpc http;
	char *base;		/* {SUPABASE_URL}/storage/v1 */
	char *auth_hdr;		/* "Authorization: Bearer {key}" (secret) */
	char *apikey_hdr;	/* "apikey: {key}" (secret) */
	long timeout_ms;
};

static enum stor_err
supa_status_class(long status)
{
	if (status == 408 || status == 423 || status == 429 ||
	    (status >= 500 && status != 501 && status != 505))
		return STOR_TEMPORARY;
	return STOR_ERROR;
}

void
supa_parse_error(struct storage_answer *a)
{
	struct json_object *o = NULL, *v;
	const char *s;
	long n;
	char *end;

	a->status = a->http;
	a->code[0] = a->message[0] = '\0';
	a->fails_as = supa_status_class(a->status);
	/* An error answer longer than its bound was cut: its JSON is then
	 * lost, and the HTTP status decides. */
	if (a->rep.body == NULL || a->rep.len == 0 || a->rep.over)
		return;
	o = json_tokener_parse(a->rep.body);
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
		text_clean(a->code, sizeof(a->code), json_object_get_string(v),
		    SIZE_MAX);
	if (json_object_object_get_ex(o, "message", &v) &&
	    json_object_is_type(v, json_type_string))
		text_clean(a->message, sizeof(a->message),
		    json_object_get_string(v), SIZE_MAX);
out:
	a->fails_as = supa_status_class(a->status);
	json_object_put(o);
}

/*
 * One request: method to {base}/{what fmt makes} with the key headers,
 * extra (NULL-ended, at most SUPA_MAX_EXTRA; may be NULL) and a body
 * (NULL for none). Bucket and path hold only URL-safe bytes (storage.c
 * checks). The answer goes into a (its reply freed first), its body
 * bounded by max; an error answer that came whole is read into it, and
 * its class (storage_fail()). STOR_OK when an HTTP answer came (whatever
 * its status, in a), else the failure, classified, with msg set.
 */
static enum stor_err __attribute__((format(printf, 10, 11)))
supa_call(struct supa_st *st, const char *method, const char *const *extra,
    const void *body, size_t len, size_t max, struct storage_answer *a,
    char *msg, size_t msglen, const char *fmt, ...)
{
	const char *hdrs[2 + SUPA_MAX_EXTRA + 1];
	struct httpc_req req;
	char *what, *url;
	va_list ap;
	size_t i;
	enum stor_err rc;

	va_start(ap, fmt);
	what = text_vprintf(fmt, ap);
	va_end(ap);
	url = what != NULL ? text_printf("%s/%s", st->base, what) : NULL;
	free(what);
	if (url == NULL) {
		snprintf(msg, msglen, "out of memory");
		return STOR_TEMPORARY;
	}
	hdrs[0] = st->auth_hdr;
	hdrs[1] = st->apikey_hdr;
	for (i = 0; extra != NULL && extra[i] != NULL && i < SUPA_MAX_EXTRA; i++)
		hdrs[2 + i] = extra[i];
	hdrs[2 + i] = NULL;
	req = (struct httpc_req){ .method = method, .url = url, .headers = hdrs,
	    .body = body, .len = len, .timeout_ms = st->timeout_ms,
	    .max_bytes = max };
	rc = storage_http(&st->http, &req, "supabase storage", a, msg, msglen);
	if (rc == STOR_OK && (a->http < 200 || a->http >= 300))
		supa_parse_error(a);
	free(url);
	return rc;
}

/* The reason for a permanent status of an object request. */
static const char *
supa_object_reason(const struct storage_answer *a)
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
	struct storage_answer a = { 0 };
	char ctype[96];
	const char *extra[4];
	enum stor_err rc;

	/* Checked here, before anything is sent. */
	if (!storage_http_size_ok(len, SUPA_MAX_OBJECT, msg, msglen))
		return STOR_ERROR;
	snprintf(ctype, sizeof(ctype), "Content-Type: %s", mime);
	extra[0] = ctype;
	extra[1] = "Cache-Control: max-age=3600";
	extra[2] = "x-upsert: false";	/* never overwrite */
	extra[3] = NULL;
	rc = supa_call(st, "POST", extra, data, len, SUPA_ERR_BODY_MAX, &a, msg,
	    msglen, "object/%s/%s", s->bucket, path);
	return storage_http_stored(&a, rc, supa_object_reason(&a), __func__, path,
	    msg, msglen);
}

static enum stor_err
supa_del(struct storage *s, const char *path, char *msg, size_t msglen)
{
	struct storage_answer a = { 0 };
	enum stor_err rc;

	/* A missing object (or bucket) is what a delete wants. */
	rc = supa_call(s->state, "DELETE", NULL, NULL, 0, SUPA_ERR_BODY_MAX, &a,
	    msg, msglen, "object/%s/%s", s->bucket, path);
	return storage_http_deleted(&a, rc, msg, msglen);
}

static enum stor_err
supa_get(struct storage *s, const char *path, size_t max, unsigned char **data,
    size_t *len, char *msg, size_t msglen)
{
	struct storage_answer a = { 0 };
	enum stor_err rc;

	rc = supa_call(s->state, "GET", NULL, NULL, 0, max, &a, msg, msglen,
	    "object/%s/%s", s->bucket, path);
	return storage_http_got(&a, rc, max, data, len, msg, msglen);
}

/* Makes an existing bucket public: PUT /bucket/{id} {"public":true}. */
static enum stor_err
supa_make_public(struct storage *s, char *msg, size_t msglen)
{
	struct storage_answer a = { 0 };
	const char *req = "{\"public\":true}";
	enum stor_err rc;

	rc = supa_call(s->state, "PUT", supa_json_hdr, req, strlen(req),
	    SUPA_ERR_BODY_MAX, &a, msg, msglen, "bucket/%s", s->bucket);
	if (rc == STOR_OK && (a.http < 200 || a.http >= 300))
		rc = storage_fail(&a, "bucket exists but could not be made public",
		    msg, msglen);
	httpc_reply_free(&a.rep);
	return rc;
}

static enum stor_err
supa_setup(struct storage *s, char *msg, size_t msglen)
{
	struct supa_st *st = s->state;
	struct storage_answer a = { 0 };
	char req[512];
	enum stor_err rc;

	snprintf(req, sizeof(req),
	    "{\"id\":\"%s\",\"name\":\"%s\",\"public\":true,"
	    "\"allowed_mime_types\":[\"image/png\",\"image/jpeg\",\"image/webp\"]}",
	    s->bucket, s->bucket);
	rc = supa_call(st, "POST", supa_json_hdr, req, strlen(req),
	    SUPA_ERR_BODY_MAX, &a, msg, msglen, "bucket");
	if (rc != STOR_OK)
		goto out;
	if (a.http >= 200 && a.http < 300) {
		log_info("bucket %s created (public)", s->bucket);
		goto out;
	}
	if (a.status == 409) {
		/* There already: harmless, but it must be public too. */
		log_info("bucket %s exists; making sure it is public", s->bucket);
		rc = supa_make_public(s, msg, msglen);
		goto out;
	}
	rc = storage_fail(&a, a.status == 401 || a.status == 403 ?
	    "bucket creation refused (check SUPABASE_SERVICE_ROLE_KEY)" :
	    "bucket creation failed", msg, msglen);
out:
	httpc_reply_free(&a.rep);
	return rc;
}

static void
supa_close(struct storage *s)
{
	struct supa_st *st = s->state;

	if (st == NULL)
		return;
	httpc_close(&st->http);
	free(st->base);
	secret_free(st->auth_hdr);
	secret_free(st->apikey_hdr);
	free(st);
	s->state = NULL;
}

static int
supa_open(struct storage *s, const struct cfg *c, char *err, size_t errlen)
{
	static const struct supa_conf none;
	const struct supa_conf *sc = c->storage_conf != NULL ? c->storage_conf :
	    &none;
	struct supa_st *st = NULL;
	size_t ulen;
	int rc = -1;

	if (c->project_url == NULL || sc->service_role_key == NULL) {
		snprintf(err, errlen, "%s is not set (needed by IMAGEGEN_STORAGE=supabase)",
		    c->project_url == NULL ? "SUPABASE_URL" : "SUPABASE_SERVICE_ROLE_KEY");
		goto out;
	}
	/* The key goes into a header line: no line breaks in it. */
	if (strpbrk(sc->service_role_key, "\r\n") != NULL) {
		snprintf(err, errlen, "SUPABASE_SERVICE_ROLE_KEY: contains a line break");
		goto out;
	}
	ulen = strlen(c->project_url);
	while (ulen > 0 && c->project_url[ulen - 1] == '/')
		ulen--;
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		goto oom;
	s->state = st;		/* supa_close() frees it on failure */
	st->base = malloc(ulen + sizeof("/storage/v1"));
	if (st->base == NULL)
		goto oom;
	memcpy(st->base, c->project_url, ulen);
	memcpy(st->base + ulen, "/storage/v1", sizeof("/storage/v1"));
	st->auth_hdr = text_printf("Authorization: Bearer %s", sc->service_role_key);
	st->apikey_hdr = text_printf("apikey: %s", sc->service_role_key);
	if (st->auth_hdr == NULL || st->apikey_hdr == NULL)
		goto oom;
	rc = storage_http_open(&st->http, &st->timeout_ms, c, "supabase", err,
	    errlen);
	goto out;
oom:
	snprintf(err, errlen, "IMAGEGEN_STORAGE=supabase: out of memory");
out:
	if (rc != 0)
		supa_close(s);
	return rc;
}

/*
 * Public objects are served by Storage itself, at
 * {SUPABASE_URL}/storage/v1/object/public/{bucket}/{path}: the public
 * base unless the operator named another place (a CDN, a proxy), and a
 * URL of the bucket either way.
 */
static int
supa_urls(struct storage *s, const struct cfg *c, char *err, size_t errlen)
{
	size_t ulen;
	int n, rc = -1;

	if (c->project_url == NULL) {
		snprintf(err, errlen,
		    "SUPABASE_URL is not set (needed by IMAGEGEN_STORAGE=supabase)");
		goto out;
	}
	ulen = strlen(c->project_url);
	while (ulen > 0 && c->project_url[ulen - 1] == '/')
		ulen--;
	if (ulen > sizeof(s->public_base) - sizeof("/storage/v1/object/public")) {
		snprintf(err, errlen, "SUPABASE_URL: longer than %zu bytes",
		    sizeof(s->public_base) - sizeof("/storage/v1/object/public"));
		goto out;
	}
	if (!c->public_base_url_set) {
		n = snprintf(s->public_base, sizeof(s->public_base),
		    "%.*s/storage/v1/object/public", (int)ulen, c->project_url);
		if (n < 0 || (size_t)n >= sizeof(s->public_base)) {
			/* can't be: the length is checked above */
			snprintf(err, errlen, "SUPABASE_URL: too long for a public URL");
			goto out;
		}
	}
	rc = storage_add_url_form(s, err, errlen,
	    "%.*s/storage/v1/object/public/%s/", (int)ulen, c->project_url,
	    s->bucket);
out:
	return rc;
}

static const struct setting supa_settings[] = {
	{ "SUPABASE_URL", SET_STR, NULL, 0, 0, offsetof(struct supa_conf, url),
	  SET_HTTP | SET_NEEDED, NULL, NULL,
	  "the project URL (the same as the token checks' above)" },
	{ "SUPABASE_SERVICE_ROLE_KEY", SET_STR, NULL, 0, 0,
	  offsetof(struct supa_conf, service_role_key), SET_SECRET | SET_NEEDED, NULL,
	  NULL, "the backend's key (secret; sent as `Authorization` and `apikey`)" },
	{ NULL, 0, NULL, 0, 0, 0, 0, NULL, NULL, NULL }
};

/* The default backend when both are given. */
static const char *const supa_default_if[] = {
	"SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY", NULL
};

const struct storage_ops storage_supabase = {
	.name = "supabase",
	.about = "the Storage REST API; public base "
	    "`$SUPABASE_URL/storage/v1/object/public`, and that URL form of the "
	    "bucket is read whatever `IMAGEGEN_PUBLIC_BASE_URL` is",
	.settings = supa_settings,
	.conf_size = sizeof(struct supa_conf),
	.default_if = supa_default_if,
	.open = supa_open,
	.close = supa_close,
	.put = supa_put,
	.get = supa_get,
	.del = supa_del,
	.setup = supa_setup,
	.urls = supa_urls,
};
