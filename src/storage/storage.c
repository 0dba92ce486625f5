/* storage.c - the backend table, object paths and public URLs (SPEC §7),
 * and the HTTP call the remote backends share. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "hex.h"
#include "httpc.h"
#include "uuid.h"
#include "log.h"
#include "storage.h"


/* A new backend is one file and one entry here (and its line in
 * Makefile.am): storage_open(), the configuration loader (its settings)
 * and --help need no other change. */
extern const struct storage_ops storage_local;
extern const struct storage_ops storage_supabase;
extern const struct storage_ops storage_s3;

static const struct storage_ops *const backends[] = {
	&storage_local,
	&storage_supabase,
	&storage_s3,
	NULL
};

const struct storage_ops *
storage_find(const char *name)
{
	size_t i;

	for (i = 0; name != NULL && backends[i] != NULL; i++)
		if (strcmp(backends[i]->name, name) == 0)
			return backends[i];
	return NULL;
}

size_t
storage_backends(struct settings_backend *out, size_t max)
{
	size_t i;

	for (i = 0; backends[i] != NULL; i++) {
		if (i >= max)
			continue;
		memset(&out[i], 0, sizeof(out[i]));
		out[i].name = backends[i]->name;
		out[i].about = backends[i]->about;
		out[i].rows = backends[i]->settings;
		out[i].conf_size = backends[i]->conf_size;
		out[i].default_if = backends[i]->default_if;
		out[i].check = backends[i]->check;
	}
	return i;
}

int
storage_urls(struct storage *s, const struct cfg *c, char *err, size_t errlen)
{
	const struct storage_ops *ops = NULL;
	const char *name, *bucket, *base;
	int rc = -1;

	memset(s, 0, sizeof(*s));
	name = c->storage != NULL ? c->storage : "local";
	bucket = c->bucket != NULL ? c->bucket : "asset-images";
	base = c->public_base_url != NULL ? c->public_base_url :
	    "/storage/v1/object/public";
	ops = storage_find(name);
	if (ops == NULL) {
		snprintf(err, errlen,
		    "IMAGEGEN_STORAGE: backend '%.40s' is not available in this build",
		    name);
		goto out;
	}
	/* The bucket becomes a directory and a URL segment: one safe
	 * segment, whatever the configuration loader let through. */
	if (strlen(bucket) >= sizeof(s->bucket) || strchr(bucket, '/') != NULL ||
	    !storage_path_ok(bucket)) {
		snprintf(err, errlen, "IMAGEGEN_BUCKET: not a valid bucket name");
		goto out;
	}
	if (strlen(base) >= sizeof(s->public_base)) {
		snprintf(err, errlen,
		    "IMAGEGEN_PUBLIC_BASE_URL: longer than %zu bytes",
		    sizeof(s->public_base) - 1);
		goto out;
	}
	memcpy(s->bucket, bucket, strlen(bucket) + 1);
	memcpy(s->public_base, base, strlen(base) + 1);
	/* The backend may set its own public base (when the operator named
	 * none) and add the other URL forms it serves; the public one,
	 * storage_public_url()'s, is always a form. */
	s->ops = ops;
	if (ops->urls != NULL && ops->urls(s, c, err, errlen) != 0)
		goto out;
	if (storage_add_url_form(s, err, errlen, "%s/%s/", s->public_base,
	    s->bucket) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		memset(s, 0, sizeof(*s));
	return rc;
}

int
storage_add_url_form(struct storage *s, char *err, size_t errlen,
    const char *fmt, ...)
{
	char form[STORAGE_URL_MAX];
	va_list ap;
	size_t i;
	int n, rc = -1;

	va_start(ap, fmt);
	n = vsnprintf(form, sizeof(form), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(form)) {
		snprintf(err, errlen, "storage %s: a public URL is longer than %zu "
		    "bytes", s->ops != NULL ? s->ops->name : "?", sizeof(form) - 1);
		goto out;
	}
	for (i = 0; i < s->n_url_forms; i++)
		if (strcmp(s->url_forms[i], form) == 0)
			break;
	if (i == s->n_url_forms) {
		if (s->n_url_forms >= STORAGE_URL_FORMS) {
			snprintf(err, errlen, "storage %s: too many URL forms",
			    s->ops != NULL ? s->ops->name : "?");
			goto out;
		}
		memcpy(s->url_forms[s->n_url_forms++], form, (size_t)n + 1);
	}
	rc = 0;
out:
	return rc;
}

int
storage_open(struct storage *s, const struct cfg *c, char *err,
    size_t errlen)
{
	/* storage_urls() leaves s zeroed when it fails. */
	if (storage_urls(s, c, err, errlen) != 0)
		return -1;
	if (s->ops->open != NULL && s->ops->open(s, c, err, errlen) != 0) {
		memset(s, 0, sizeof(*s));
		return -1;
	}
	log_info("storage %s, bucket %s", s->ops->name, s->bucket);
	return 0;
}

void
storage_close(struct storage *s)
{
	if (s == NULL)
		return;
	if (s->ops != NULL && s->ops->close != NULL)
		s->ops->close(s);
	memset(s, 0, sizeof(*s));
}

/* The file extension for a mime type we store, or NULL. */
static const char *
storage_ext(const char *mime)
{
	static const struct { const char *mime, *ext; } exts[] = {
		{ "image/png", "png" },
		{ "image/jpeg", "jpg" },
		{ "image/webp", "webp" },
	};
	size_t i;

	if (mime == NULL)
		return NULL;
	for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
		if (strcmp(mime, exts[i].mime) == 0)
			return exts[i].ext;
	return NULL;
}

/* 0 when is_open (the backend has the call) and path is an object path
 * storage_path_ok() accepts; else -1 with msg. */
static int
storage_ready(int is_open, const char *path, char *msg, size_t msglen)
{
	if (!is_open) {
		snprintf(msg, msglen, "storage is not open");
		return -1;
	}
	if (!storage_path_ok(path)) {
		snprintf(msg, msglen, "invalid object path");
		return -1;
	}
	return 0;
}

enum stor_err
storage_put(struct storage *s, const char *path, const unsigned char *data,
    size_t len, const char *mime, char *msg, size_t msglen)
{
	if (storage_ready(s != NULL && s->ops != NULL && s->ops->put != NULL,
	    path, msg, msglen) != 0)
		return STOR_ERROR;
	if (data == NULL && len != 0) {
		snprintf(msg, msglen, "no data");
		return STOR_ERROR;
	}
	/* The bucket holds pictures only; a backend may send mime on. */
	if (storage_ext(mime) == NULL) {
		snprintf(msg, msglen, "unsupported type");
		return STOR_ERROR;
	}
	return s->ops->put(s, path, data, len, mime, msg, msglen);
}

enum stor_err
storage_delete(struct storage *s, const char *path, char *msg, size_t msglen)
{
	if (storage_ready(s != NULL && s->ops != NULL && s->ops->del != NULL,
	    path, msg, msglen) != 0)
		return STOR_ERROR;
	return s->ops->del(s, path, msg, msglen);
}

/* Also -1 for a path storage_path_ok() refuses: it goes into the URL as
 * is, and only the characters it allows need no escaping. */
enum stor_err
storage_get(struct storage *s, const char *path, size_t max,
    unsigned char **data, size_t *len, char *msg, size_t msglen)
{
	*data = NULL;
	*len = 0;
	if (storage_ready(1, path, msg, msglen) != 0)
		return STOR_ERROR;
	return s->ops->get(s, path, max, data, len, msg, msglen);
}

int
storage_path_of_url(const struct storage *s, const char *url, char *out,
    size_t outlen)
{
	const char *rest = NULL;
	size_t i, n, fl, best = 0;
	int hi, lo, rc = -1;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	if (s == NULL || url == NULL)
		goto out;
	/* The longest form that matches: when one form is a prefix of
	 * another, the longer one is what the URL meant. */
	for (i = 0; i < s->n_url_forms; i++) {
		fl = strlen(s->url_forms[i]);
		if (fl > best && strncmp(url, s->url_forms[i], fl) == 0) {
			rest = url + fl;
			best = fl;
		}
	}
	if (rest == NULL)
		goto out;
	/* Decoded once, then checked: "%2e%2e" is "..", refused like it,
	 * and what decodes to '%' is not decoded again. */
	for (n = 0; *rest != '\0'; n++) {
		if (n + 1 >= outlen)
			goto out;
		if (*rest == '%') {
			hi = hex_digit(rest[1]);
			lo = hi < 0 ? -1 : hex_digit(rest[2]);
			if (lo < 0 || (hi == 0 && lo == 0))
				goto out;
			out[n] = (char)(hi << 4 | lo);
			rest += 3;
		} else {
			out[n] = *rest++;
		}
	}
	out[n] = '\0';
	if (storage_path_ok(out))
		rc = 0;
out:
	if (rc != 0)
		out[0] = '\0';
	return rc;
}

enum stor_err
storage_setup(struct storage *s, char *msg, size_t msglen)
{
	return s->ops->setup(s, msg, msglen);
}

int
storage_public_url(const struct storage *s, const char *path, char *out,
    size_t outlen)
{
	int n;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	if (!storage_path_ok(path))
		return -1;
	n = snprintf(out, outlen, "%s/%s/%s", s->public_base, s->bucket, path);
	if (n < 0 || (size_t)n >= outlen) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

/* An id that goes into a path: NULL and "" are "none" (0); a UUID copied
 * in lower case, as Postgres prints it, into out[37] (1); anything else
 * refused (-1). */
static int
storage_id(const char *id, char out[37])
{
	size_t i;

	if (id == NULL || id[0] == '\0')
		return 0;
	if (!uuid_valid(id))
		return -1;
	for (i = 0; i < 36; i++)
		out[i] = (char)tolower((unsigned char)id[i]);
	out[36] = '\0';
	return 1;
}

int
storage_path_for(char *out, size_t outlen, const char *job_type,
    const char *project_id, const char *branch_id, const char *job_id,
    const char *asset_id, const char *scene_id, const char *shot_id,
    long long ts_ms, const char *mime)
{
	char project[37], branch[37], job[37], asset[37], scene[37], shot[37];
	unsigned char rnd[4];
	char rand_hex[9];
	const char *ext, *name, *dir;
	int n = -1, has_job, has_asset, has_scene, has_shot, rc = -1;

	if (out == NULL || outlen == 0)
		return -1;
	out[0] = '\0';
	ext = storage_ext(mime);
	if (job_type == NULL || ext == NULL || ts_ms < 0)
		goto out;
	/* Every id given is checked, used here or not: a bad one is a bug
	 * upstream that we would rather see than paper over. */
	has_job = storage_id(job_id, job);
	has_asset = storage_id(asset_id, asset);
	has_scene = storage_id(scene_id, scene);
	has_shot = storage_id(shot_id, shot);
	if (storage_id(project_id, project) != 1 ||
	    storage_id(branch_id, branch) != 1 || has_job < 0 ||
	    has_asset < 0 || has_scene < 0 || has_shot < 0)
		goto out;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		log_warn("RAND_bytes failed");
		goto out;
	}
	snprintf(rand_hex, sizeof(rand_hex), "%02x%02x%02x%02x", rnd[0], rnd[1],
	    rnd[2], rnd[3]);
	if (strcmp(job_type, "master_asset") == 0 ||
	    strcmp(job_type, "inpaint") == 0) {
		dir = strcmp(job_type, "inpaint") == 0 ? "inpaint" :
		    "master-assets";
		if (has_asset == 1)
			name = asset;
		else if (has_job == 1)
			name = job;
		else
			goto out;
		n = snprintf(out, outlen, "project_%s/branch_%s/%s/%s_%lld_%s.%s",
		    project, branch, dir, name, ts_ms, rand_hex, ext);
	} else if (strcmp(job_type, "start_frame") == 0 ||
	    strcmp(job_type, "end_frame") == 0) {
		if (has_scene != 1 || has_shot != 1)
			goto out;
		n = snprintf(out, outlen,
		    "project_%s/branch_%s/scene_%s/shot_%s/%s_%lld_%s.%s",
		    project, branch, scene, shot, job_type, ts_ms, rand_hex, ext);
	} else {
		goto out;
	}
	if (n < 0 || (size_t)n >= outlen || n > STORAGE_PATH_MAX)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		out[0] = '\0';
	return rc;
}

int
storage_path_ok(const char *path)
{
	size_t i, seg = 0, seglen = 0;

	if (path == NULL || path[0] == '\0')
		return 0;
	for (i = 0; path[i] != '\0'; i++) {
		char ch = path[i];

		if (i >= STORAGE_PATH_MAX)
			return 0;
		if (ch == '/') {
			/* empty, "." or ".." segment */
			if (seglen == 0 || (seglen <= 2 &&
			    strncmp(path + seg, "..", seglen) == 0))
				return 0;
			seg = i + 1;
			seglen = 0;
			continue;
		}
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		    ch == '-'))
			return 0;
		seglen++;
	}
	if (seglen == 0 || (seglen <= 2 && strncmp(path + seg, "..", seglen) == 0))
		return 0;
	return 1;
}

/* ---- for the HTTP backends ---------------------------------------------- */

int
storage_http_open(struct httpc *c, long *timeout_ms, const struct cfg *cfg,
    const char *name, char *err, size_t errlen)
{
	*timeout_ms = cfg->provider_timeout_ms > 0 ? cfg->provider_timeout_ms :
	    120000;
	if (httpc_open(c) != 0) {
		snprintf(err, errlen, "IMAGEGEN_STORAGE=%s: cannot make an HTTP client",
		    name);
		return -1;
	}
	return 0;
}

enum stor_err
storage_http(struct httpc *c, struct httpc_req *req, const char *who,
    struct storage_answer *a, char *msg, size_t msglen)
{
	enum httpc_err e;

	httpc_reply_free(&a->rep);
	memset(a, 0, sizeof(*a));
	req->user_agent = "imagegen-storage/1";
	e = httpc_perform(c, req, &a->rep);
	a->http = a->status = a->rep.status;
	switch (e) {
	case HTTPC_OK:
	case HTTPC_TOO_BIG:	/* an answer all the same: its status decides */
		return STOR_OK;
	case HTTPC_NOMEM:
		snprintf(msg, msglen, "out of memory");
		return STOR_TEMPORARY;
	default:
		snprintf(msg, msglen, "%s %s: %s", who, req->method, a->rep.error);
		/* Only what may clear up within the executor's retries is
		 * worth them. */
		return e == HTTPC_TIMEOUT || e == HTTPC_TEMPORARY ?
		    STOR_TEMPORARY : STOR_ERROR;
	}
}

enum stor_err
storage_fail(const struct storage_answer *a, const char *what, char *msg,
    size_t msglen)
{
	snprintf(msg, msglen, "%s: %ld%s%s%s%s", what, a->status,
	    a->code[0] ? " " : "", a->code, a->message[0] ? ": " : "", a->message);
	return a->fails_as;
}

enum stor_err
storage_http_got(struct storage_answer *a, enum stor_err rc, size_t max,
    unsigned char **data, size_t *len, char *msg, size_t msglen)
{
	struct httpc_reply *rep = &a->rep;

	if (rc != STOR_OK)
		goto out;
	if (a->http < 200 || a->http >= 300) {
		rc = storage_fail(a, a->status == 404 ? "no such object" :
		    "read failed", msg, msglen);
		goto out;
	}
	if (rep->over) {
		snprintf(msg, msglen, "object larger than %zu bytes", max);
		rc = STOR_ERROR;
		goto out;
	}
	if (rep->body == NULL)
		rep->body = malloc(1);	/* an empty object */
	if (rep->body == NULL) {
		snprintf(msg, msglen, "out of memory");
		rc = STOR_TEMPORARY;
		goto out;
	}
	*data = (unsigned char *)rep->body;
	*len = rep->len;
	rep->body = NULL;
out:
	httpc_reply_free(rep);
	return rc;
}

int
storage_http_size_ok(size_t len, long max, char *msg, size_t msglen)
{
	if (len == 0 || len > (size_t)max) {
		snprintf(msg, msglen, "object of %zu bytes: outside 1 to %ld bytes",
		    len, max);
		return 0;
	}
	return 1;
}

enum stor_err
storage_http_stored(struct storage_answer *a, enum stor_err rc,
    const char *why, const char *func, const char *path, char *msg,
    size_t msglen)
{
	if (rc == STOR_OK && (a->http < 200 || a->http >= 300)) {
		rc = storage_fail(a, why, msg, msglen);
		log_msg(IG_LOG_WARN, func, "upload of %s: %s", path, msg);
	}
	httpc_reply_free(&a->rep);
	return rc;
}

enum stor_err
storage_http_deleted(struct storage_answer *a, enum stor_err rc, char *msg,
    size_t msglen)
{
	if (rc == STOR_OK && (a->http < 200 || a->http >= 300) && a->status != 404)
		rc = storage_fail(a, "delete failed", msg, msglen);
	httpc_reply_free(&a->rep);
	return rc;
}
