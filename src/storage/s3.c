/*
 * s3.c - the S3 backend: path-style requests signed with AWS Signature
 * Version 4 (src/storage/sigv4.c), for AWS S3, MinIO, Cloudflare R2 and
 * Supabase Storage's S3 endpoint (SPEC §7).
 *
 *   upload  PUT    {S3_ENDPOINT}/{bucket}/{path}  (If-None-Match: *)
 *   read    GET    {S3_ENDPOINT}/{bucket}/{path}
 *   delete  DELETE {S3_ENDPOINT}/{bucket}/{path}
 *   setup   PUT    {S3_ENDPOINT}/{bucket}, then PUT …/{bucket}?policy with
 *           a public-read policy (s3:GetObject for everyone)
 *   public  {IMAGEGEN_PUBLIC_BASE_URL}/{bucket}/{path} when given; else
 *           the endpoint itself (path style), or for Supabase's
 *           …/storage/v1/s3 endpoint its …/storage/v1/object/public.
 *
 * Every request signs host, x-amz-content-sha256 (the real SHA-256 of the
 * body, never UNSIGNED-PAYLOAD), x-amz-date, x-amz-security-token when
 * S3_SESSION_TOKEN is set, and the request's own headers (content-type,
 * cache-control, if-none-match, content-md5). The endpoint may carry a
 * path (Supabase: /storage/v1/s3); it is part of what is signed.
 *
 * Errors are S3's XML <Error><Code>…: SlowDown, InternalError,
 * ServiceUnavailable, RequestTimeout, OperationAborted,
 * ConditionalRequestConflict, HTTP 408, 429, 5xx (but 501) and transport
 * failures are STOR_TEMPORARY; the rest (SignatureDoesNotMatch,
 * AccessDenied, NoSuchBucket, EntityTooLarge, PreconditionFailed: the key
 * exists, …) STOR_ERROR.
 *
 * One HTTP client (httpc) per process, made in open() (after fork); no
 * redirects, http(s) only, IMAGEGEN_PROVIDER_TIMEOUT_MS per request,
 * response bodies bounded. Keys are never logged, and wiped on close.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "httpc.h"
#include "s3_endpoint.h"
#include "log.h"
#include "secret.h"
#include "sigv4.h"
#include "storage.h"
#include "text.h"

#define S3_MAX_OBJECT (50L << 20)	/* a picture; S3's own limit is 5 GiB */
#define S3_ERR_BODY_MAX 16384		/* an XML answer */
#define S3_MAX_EXTRA 4			/* a request's own signed headers */
/* A request's header lines: four signed always or by configuration, the
 * request's own, Authorization. */
#define S3_MAX_LINES (5 + S3_MAX_EXTRA)

struct s3_st {
	struct httpc http;
	struct s3_endpoint ep;	/* S3_ENDPOINT in parts */
	char *access_key;
	char *secret_key;	/* secret */
	char *session_token;	/* secret; NULL when none */
	char *region;
	long timeout_ms;
	int no_conditional;	/* the endpoint answered If-None-Match with 501 */
};

static enum stor_err
s3_status_class(const struct storage_answer *a)
{
	static const char *const temporary[] = {
		"SlowDown", "InternalError", "ServiceUnavailable",
		"RequestTimeout", "OperationAborted",
		"ConditionalRequestConflict", NULL
	};
	size_t i;

	for (i = 0; temporary[i] != NULL; i++)
		if (strcmp(a->code, temporary[i]) == 0)
			return STOR_TEMPORARY;
	if (a->status == 408 || a->status == 429 ||
	    (a->status >= 500 && a->status != 501 && a->status != 505))
		return STOR_TEMPORARY;
	return STOR_ERROR;
}

/* The text of the first <tag>…</tag> in xml into out, made one line
 * (text_clean); "" when there is none. */
static void
s3_xml_text(const char *xml, const char *tag, char *out, size_t outlen)
{
	char open[32], close[32];
	const char *b, *e = NULL;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	b = strstr(xml, open);
	if (b != NULL) {
		b += strlen(open);
		e = strstr(b, close);
	}
	out[0] = '\0';
	if (e != NULL)
		text_clean(out, outlen, b, (size_t)(e - b));
}

void
s3_parse_error(struct storage_answer *a)
{
	/* An error answer's <Code> and <Message>, when it came whole. */
	a->code[0] = a->message[0] = '\0';
	if (a->rep.body != NULL && !a->rep.over) {
		s3_xml_text(a->rep.body, "Code", a->code, sizeof(a->code));
		s3_xml_text(a->rep.body, "Message", a->message,
		    sizeof(a->message));
	}
	a->fails_as = s3_status_class(a);
}

/*
 * One signed request: method to {prefix}/{bucket}/{key} (key not yet
 * encoded; NULL for the bucket itself) with query (NULL for none), extra
 * signed headers (n of them), and a body (NULL for none; PUT and POST
 * always send one). The answer goes into a (its reply freed first), its
 * body bounded by max; an error answer's <Code> and <Message> are read
 * into it, and its class (storage_fail()). STOR_OK when an HTTP answer
 * came (its status in a), else the failure, classified, with msg set.
 */
static enum stor_err
s3_call(struct storage *s, const char *method, const char *key,
    const char *query, const struct sigv4_header *extra, size_t n,
    const void *body, size_t len, size_t max, struct storage_answer *a,
    char *msg, size_t msglen)
{
	struct s3_st *st = s->state;
	struct sigv4_header h[S3_MAX_LINES];
	struct sigv4_request r;
	struct sigv4_key k;
	struct httpc_req req;
	const char *hdrs[S3_MAX_LINES + 2];
	char *lines[S3_MAX_LINES] = { NULL };
	char date[17], hash[65];
	char *full = NULL, *enc = NULL, *url = NULL, *authz = NULL;
	size_t nh = 0, i;
	int has_ctype = 0;
	enum stor_err rc = STOR_TEMPORARY;

	if (n > S3_MAX_EXTRA || sigv4_amz_date(time(NULL), date) != 0 ||
	    sigv4_sha256_hex(body != NULL ? body : "", body != NULL ? len : 0,
	    hash) != 0) {
		snprintf(msg, msglen, "cannot sign the request");
		goto out;
	}
	full = text_printf("%s/%s%s%s", st->ep.prefix, s->bucket,
	    key != NULL ? "/" : "", key != NULL ? key : "");
	enc = full != NULL ? sigv4_uri_encode(full, strlen(full), 1) : NULL;
	url = enc != NULL ? text_printf("%s%s%s%s", st->ep.origin, enc,
	    query != NULL ? "?" : "", query != NULL ? query : "") : NULL;
	if (url == NULL)
		goto oom;

	h[nh++] = (struct sigv4_header){ "host", st->ep.host };
	h[nh++] = (struct sigv4_header){ "x-amz-content-sha256", hash };
	h[nh++] = (struct sigv4_header){ "x-amz-date", date };
	if (st->session_token != NULL)
		h[nh++] = (struct sigv4_header){ "x-amz-security-token",
		    st->session_token };
	for (i = 0; i < n; i++) {
		h[nh++] = extra[i];
		if (strcmp(extra[i].name, "content-type") == 0)
			has_ctype = 1;
	}
	/* S3 signs keys as they are: no normalize_path. */
	r = (struct sigv4_request){ .method = method, .path = full,
	    .query = query, .headers = h, .nheaders = nh, .payload_hash = hash };
	k = (struct sigv4_key){ .access_key = st->access_key,
	    .secret_key = st->secret_key, .region = st->region, .service = "s3" };
	authz = sigv4_authorization(&r, &k, date);
	if (authz == NULL) {
		snprintf(msg, msglen, "cannot sign the request");
		goto out;
	}
	h[nh++] = (struct sigv4_header){ "Authorization", authz };
	for (i = 0; i < nh; i++) {
		lines[i] = text_printf("%s: %s", h[i].name, h[i].value);
		if (lines[i] == NULL)
			goto oom;
		hdrs[i] = lines[i];
	}
	/* No form type curl would add to a body: an object keeps exactly
	 * the type it was given. */
	hdrs[nh] = has_ctype ? NULL : "Content-Type:";
	hdrs[nh + 1] = NULL;

	req = (struct httpc_req){ .method = method, .url = url, .headers = hdrs,
	    .timeout_ms = st->timeout_ms, .max_bytes = max };
	/* Always a body for PUT and POST, empty or not: S3 wants a
	 * Content-Length. */
	if (strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0) {
		req.body = body != NULL ? body : "";
		req.len = body != NULL ? len : 0;
	}
	rc = storage_http(&st->http, &req, "s3", a, msg, msglen);
	if (rc == STOR_OK && (a->status < 200 || a->status >= 300))
		s3_parse_error(a);
	goto out;
oom:
	snprintf(msg, msglen, "out of memory");
	rc = STOR_TEMPORARY;
out:
	/* The lines may hold the session token. */
	for (i = 0; i < S3_MAX_LINES; i++)
		secret_free(lines[i]);
	free(full);
	free(enc);
	free(url);
	free(authz);
	return rc;
}

static const char *
s3_object_reason(const struct storage_answer *a)
{
	if (a->status == 412 || strcmp(a->code, "PreconditionFailed") == 0)
		return "object already exists";
	if (strcmp(a->code, "NoSuchBucket") == 0)
		return "bucket not found (run imagegen setup-bucket)";
	if (a->status == 413 || strcmp(a->code, "EntityTooLarge") == 0)
		return "object too large";
	if (a->status == 401 || a->status == 403)
		return "refused (check S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_REGION)";
	return "upload failed";
}

static enum stor_err
s3_put(struct storage *s, const char *path, const unsigned char *data,
    size_t len, const char *mime, char *msg, size_t msglen)
{
	struct s3_st *st = s->state;
	struct storage_answer a = { 0 };
	struct sigv4_header h[3];
	size_t nh;
	enum stor_err rc;

	/* Checked here, before anything is sent. */
	if (!storage_http_size_ok(len, S3_MAX_OBJECT, msg, msglen))
		return STOR_ERROR;
	for (;;) {
		nh = 0;
		h[nh++] = (struct sigv4_header){ "content-type", mime };
		h[nh++] = (struct sigv4_header){ "cache-control", "max-age=3600" };
		/* Never overwrite: S3 (since 2024), MinIO and R2 refuse a PUT
		 * onto an existing key with 412. */
		if (!st->no_conditional)
			h[nh++] = (struct sigv4_header){ "if-none-match", "*" };
		rc = s3_call(s, "PUT", path, NULL, h, nh, data, len, S3_ERR_BODY_MAX,
		    &a, msg, msglen);
		if (rc != STOR_OK || a.status != 501 || st->no_conditional)
			break;
		/* An endpoint without conditional writes: the key carries a
		 * timestamp and 32 random bits, so go on without. */
		log_warn("S3_ENDPOINT does not implement If-None-Match (%s); "
		    "uploading without it", a.code);
		st->no_conditional = 1;
	}
	return storage_http_stored(&a, rc, s3_object_reason(&a), __func__, path,
	    msg, msglen);
}

static enum stor_err
s3_del(struct storage *s, const char *path, char *msg, size_t msglen)
{
	struct storage_answer a = { 0 };
	enum stor_err rc;

	/* S3 answers 204 for a missing key; some others 404. */
	rc = s3_call(s, "DELETE", path, NULL, NULL, 0, NULL, 0, S3_ERR_BODY_MAX,
	    &a, msg, msglen);
	return storage_http_deleted(&a, rc, msg, msglen);
}

static enum stor_err
s3_get(struct storage *s, const char *path, size_t max, unsigned char **data,
    size_t *len, char *msg, size_t msglen)
{
	struct storage_answer a = { 0 };
	enum stor_err rc;

	rc = s3_call(s, "GET", path, NULL, NULL, 0, NULL, 0, max, &a, msg,
	    msglen);
	return storage_http_got(&a, rc, max, data, len, msg, msglen);
}

/* The bucket's public-read policy (s3:GetObject for everyone), with its
 * Content-MD5, which S3 requires of PutBucketPolicy. */
static enum stor_err
s3_put_policy(struct storage *s, int *unsupported, char *msg, size_t msglen)
{
	struct storage_answer a = { 0 };
	struct sigv4_header h[2];
	unsigned char md5[16];
	char policy[512], md5b64[32];
	int tries;
	enum stor_err rc = STOR_ERROR;

	*unsupported = 0;
	snprintf(policy, sizeof(policy),
	    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"PublicRead\","
	    "\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":[\"s3:GetObject\"],"
	    "\"Resource\":[\"arn:aws:s3:::%s/*\"]}]}", s->bucket);
	if (EVP_Digest(policy, strlen(policy), md5, NULL, EVP_md5(), NULL) != 1) {
		snprintf(msg, msglen, "MD5 of the policy failed");
		goto out;
	}
	EVP_EncodeBlock((unsigned char *)md5b64, md5, sizeof(md5));
	h[0] = (struct sigv4_header){ "content-md5", md5b64 };
	h[1] = (struct sigv4_header){ "content-type", "application/json" };
	for (tries = 0; tries < 2; tries++) {
		rc = s3_call(s, "PUT", NULL, "policy", h, 2, policy, strlen(policy),
		    S3_ERR_BODY_MAX, &a, msg, msglen);
		if (rc != STOR_OK || (a.status >= 200 && a.status < 300))
			goto out;
		if (a.status == 501 || strcmp(a.code, "NotImplemented") == 0) {
			/* R2, and some S3 look-alikes: no bucket policies. */
			*unsupported = 1;
			rc = STOR_OK;
			goto out;
		}
		if (tries > 0 || a.status != 403)
			break;
		/* AWS: new buckets block public policies. This bucket holds
		 * only public pictures: lift the block, then try once more. */
		log_info("bucket %s: removing its public access block", s->bucket);
		rc = s3_call(s, "DELETE", NULL, "publicAccessBlock", NULL, 0, NULL, 0,
		    S3_ERR_BODY_MAX, &a, msg, msglen);
		if (rc != STOR_OK)
			goto out;
	}
	rc = storage_fail(&a, "public-read policy refused", msg, msglen);
out:
	httpc_reply_free(&a.rep);
	return rc;
}

static enum stor_err
s3_setup(struct storage *s, char *msg, size_t msglen)
{
	struct s3_st *st = s->state;
	struct storage_answer a = { 0 };
	struct sigv4_header h[1];
	char conf[256];
	size_t nh = 0;
	int unsupported = 0;
	enum stor_err rc;

	conf[0] = '\0';
	/* us-east-1 is the default location and refuses being named. */
	if (strcmp(st->region, "us-east-1") != 0 && strcmp(st->region, "auto") != 0) {
		snprintf(conf, sizeof(conf),
		    "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		    "<LocationConstraint>%s</LocationConstraint></CreateBucketConfiguration>",
		    st->region);
		h[nh++] = (struct sigv4_header){ "content-type", "application/xml" };
	}
	rc = s3_call(s, "PUT", NULL, NULL, h, nh, conf[0] ? conf : NULL,
	    strlen(conf), S3_ERR_BODY_MAX, &a, msg, msglen);
	if (rc != STOR_OK)
		goto out;
	if (a.status >= 200 && a.status < 300) {
		log_info("bucket %s created", s->bucket);
	} else if (strcmp(a.code, "BucketAlreadyOwnedByYou") == 0) {
		log_info("bucket %s exists", s->bucket);
	} else if (a.status == 409) {
		/* BucketAlreadyExists: ours (some servers say so for their
		 * own) or another account's. A HEAD tells. */
		rc = s3_call(s, "HEAD", NULL, NULL, NULL, 0, NULL, 0,
		    S3_ERR_BODY_MAX, &a, msg, msglen);
		if (rc != STOR_OK)
			goto out;
		if (a.status < 200 || a.status >= 300) {
			snprintf(msg, msglen,
			    "bucket %s exists and is not ours (HEAD: %ld): choose another IMAGEGEN_BUCKET",
			    s->bucket, a.status);
			rc = STOR_ERROR;
			goto out;
		}
		log_info("bucket %s exists", s->bucket);
	} else {
		rc = storage_fail(&a, a.status == 403 ?
		    "bucket creation refused (check S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_REGION)" :
		    "bucket creation failed", msg, msglen);
		goto out;
	}
	rc = s3_put_policy(s, &unsupported, msg, msglen);
	if (rc == STOR_OK && unsupported)
		log_warn("bucket %s: the endpoint has no bucket policies; make the "
		    "bucket publicly readable with the provider's own settings "
		    "(R2: a public r2.dev or custom domain, then IMAGEGEN_PUBLIC_BASE_URL)",
		    s->bucket);
	else if (rc == STOR_OK)
		log_info("bucket %s: public-read policy set", s->bucket);
out:
	httpc_reply_free(&a.rep);
	return rc;
}

static void
s3_close(struct storage *s)
{
	struct s3_st *st = s->state;

	if (st == NULL)
		return;
	httpc_close(&st->http);
	s3_endpoint_free(&st->ep);
	free(st->access_key);
	secret_free(st->secret_key);
	secret_free(st->session_token);
	free(st->region);
	free(st);
	s->state = NULL;
}

static int
s3_open(struct storage *s, const struct cfg *c, char *err, size_t errlen)
{
	const struct s3_conf *sc = s3_conf(c);
	struct s3_st *st = NULL;
	int rc = -1;

	if (sc->endpoint == NULL || sc->access_key == NULL ||
	    sc->secret_key == NULL) {
		snprintf(err, errlen, "%s is not set (needed by IMAGEGEN_STORAGE=s3)",
		    sc->endpoint == NULL ? "S3_ENDPOINT" : sc->access_key == NULL ?
		    "S3_ACCESS_KEY_ID" : "S3_SECRET_ACCESS_KEY");
		goto out;
	}
	/* Each goes into a header line. */
	if (strpbrk(sc->access_key, "\r\n/ ") != NULL ||
	    (sc->session_token != NULL &&
	    strpbrk(sc->session_token, "\r\n") != NULL)) {
		snprintf(err, errlen, "%s: contains a space, '/' or a line break",
		    strpbrk(sc->access_key, "\r\n/ ") != NULL ? "S3_ACCESS_KEY_ID" :
		    "S3_SESSION_TOKEN");
		goto out;
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		goto oom;
	s->state = st;		/* s3_close() frees it on failure */
	if (s3_endpoint_parse(&st->ep, sc->endpoint, err, errlen) != 0)
		goto out;
	st->access_key = strdup(sc->access_key);
	st->secret_key = strdup(sc->secret_key);
	st->region = strdup(sc->region != NULL ? sc->region : "us-east-1");
	if (st->access_key == NULL || st->secret_key == NULL || st->region == NULL)
		goto oom;
	if (sc->session_token != NULL) {
		st->session_token = strdup(sc->session_token);
		if (st->session_token == NULL)
			goto oom;
	}
	rc = storage_http_open(&st->http, &st->timeout_ms, c, "s3", err, errlen);
	goto out;
oom:
	snprintf(err, errlen, "IMAGEGEN_STORAGE=s3: out of memory");
out:
	if (rc != 0)
		s3_close(s);
	return rc;
}

static const struct setting s3_settings[] = {
	{ "S3_ENDPOINT", SET_STR, NULL, 0, 0, offsetof(struct s3_conf, endpoint),
	  SET_HTTP | SET_STRIP | SET_NEEDED, NULL, NULL,
	  "the S3 backend's path-style endpoint URL" },
	{ "S3_REGION", SET_STR, "us-east-1", 0, 0, offsetof(struct s3_conf, region),
	  0, NULL, NULL, "the signing region" },
	{ "S3_ACCESS_KEY_ID", SET_STR, NULL, 0, 0,
	  offsetof(struct s3_conf, access_key), SET_NEEDED, NULL, NULL,
	  "the access key id" },
	{ "S3_SECRET_ACCESS_KEY", SET_STR, NULL, 0, 0,
	  offsetof(struct s3_conf, secret_key), SET_SECRET | SET_NEEDED, NULL,
	  NULL, "the secret key (secret)" },
	{ "S3_SESSION_TOKEN", SET_STR, NULL, 0, 0,
	  offsetof(struct s3_conf, session_token), SET_SECRET, NULL, NULL,
	  "a session token (secret, optional)" },
	{ NULL, 0, NULL, 0, 0, 0, 0, NULL, NULL, NULL }
};

const struct storage_ops storage_s3 = {
	.name = "s3",
	.about = "SigV4: AWS, MinIO, R2, Supabase's S3 endpoint; public base the "
	    "endpoint, and the bucket is read at `S3_ENDPOINT/BUCKET/…`, and at "
	    "`SCHEME://BUCKET.HOST/…` with the endpoint's own scheme when "
	    "`S3_ENDPOINT` has no path and its host is a name, not an address",
	.settings = s3_settings,
	.conf_size = sizeof(struct s3_conf),
	.open = s3_open,
	.close = s3_close,
	.put = s3_put,
	.get = s3_get,
	.del = s3_del,
	.setup = s3_setup,
	.urls = s3_endpoint_urls,
};
