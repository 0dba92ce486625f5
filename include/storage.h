/* storage.h - where pictures go, behind one interface (SPEC §7). */
#ifndef IG_STORAGE_H
#define IG_STORAGE_H

#include <stddef.h>

#include "cfg.h"
#include "httpc.h"
#include "settings.h"

enum stor_err {
	STOR_OK = 0,
	STOR_TEMPORARY,		/* worth retrying: timeouts, 5xx, EAGAIN */
	STOR_ERROR,		/* permanent: refused, too large, bad type */
};

struct storage;

struct storage_ops {
	const char *name;		/* its IMAGEGEN_STORAGE value */
	const char *about;		/* one line for --help and the docs */
	/* Its settings (settings.h; struct settings_backend says how they
	 * are read and when it is the default), read by cfg_load(). */
	const struct setting *settings;
	size_t conf_size;
	const char *const *default_if;
	int (*check)(const struct cfg *c, const void *conf, char *err,
	    size_t errlen);
	/* After fork: reads its settings from c and its conf,
	 * c->storage_conf (NULL for a cfg not made by cfg_load(): all
	 * unset). 0, or -1 with err naming the variable at fault. */
	int (*open)(struct storage *s, const struct cfg *c, char *err,
	    size_t errlen);
	void (*close)(struct storage *s);
	/* Stores data at path (relative to the bucket), never overwriting.
	 * msg gets a one-line reason on failure (no secrets). */
	enum stor_err (*put)(struct storage *s, const char *path,
	    const unsigned char *data, size_t len, const char *mime, char *msg,
	    size_t msglen);
	/* Reads the object (at most max bytes) into a malloc'd *data (caller
	 * frees); a missing object or one over max is STOR_ERROR. */
	enum stor_err (*get)(struct storage *s, const char *path, size_t max,
	    unsigned char **data, size_t *len, char *msg, size_t msglen);
	/* Removes the object; a missing object is STOR_OK. */
	enum stor_err (*del)(struct storage *s, const char *path, char *msg,
	    size_t msglen);
	/* Creates the bucket (public read); harmless when it exists. */
	enum stor_err (*setup)(struct storage *s, char *msg, size_t msglen);
	/* The URLs the backend serves the bucket's objects at, from the
	 * configuration alone (no state, no network, no secret): sets
	 * public_base when the operator did not (public_base_url_set) and
	 * adds each other URL form with storage_add_url_form(). May be
	 * NULL. 0, or -1 with err naming the setting. */
	int (*urls)(struct storage *s, const struct cfg *c, char *err,
	    size_t errlen);
};

#define STORAGE_URL_FORMS 4	/* URL prefixes one bucket may be read at */
#define STORAGE_URL_MAX 640	/* a prefix: a public base, a bucket, '/' */
#define STORAGE_PATH_MAX 1024	/* the longest object path (a buffer: + 1) */

struct storage {
	const struct storage_ops *ops;
	char bucket[64];		/* IMAGEGEN_BUCKET, default asset-images */
	char public_base[512];		/* IMAGEGEN_PUBLIC_BASE_URL, no trailing / */
	/* Each prefix ("{public_base}/{bucket}/" first) that an object
	 * path follows in a URL of this bucket's objects. */
	char url_forms[STORAGE_URL_FORMS][STORAGE_URL_MAX];
	size_t n_url_forms;
	void *state;
};

/* The storage table's row named name, or NULL. */
const struct storage_ops *storage_find(const char *name);
/* Fills out[0..max) with the table's rows as the configuration loader
 * sees them; returns how many there are (may exceed max). */
size_t storage_backends(struct settings_backend *out, size_t max);

/* Opens the backend the configuration names (IMAGEGEN_STORAGE; by default
 * the one its default_if chooses). 0, or -1 with err naming the
 * variable. */
int storage_open(struct storage *s, const struct cfg *c, char *err,
    size_t errlen);
/*
 * Only the URL side of storage_open(): the backend, bucket, public base
 * and URL forms, no connection and no secret, so that a responder can
 * tell a URL of the bucket (storage_path_of_url) and make public URLs.
 * Put, get, delete and setup need storage_open(). 0, or -1 with err.
 * Nothing to close.
 */
int storage_urls(struct storage *s, const struct cfg *c, char *err,
    size_t errlen);
/* For a backend's urls(): adds the URL prefix that fmt makes (ending in
 * '/', exact, no query) to s's URL forms; one already there is not added
 * twice. 0, or -1 with err when it does not fit. */
int storage_add_url_form(struct storage *s, char *err, size_t errlen,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void storage_close(struct storage *s);
enum stor_err storage_put(struct storage *s, const char *path,
    const unsigned char *data, size_t len, const char *mime, char *msg,
    size_t msglen);
enum stor_err storage_delete(struct storage *s, const char *path, char *msg,
    size_t msglen);
/* Reads an object of this bucket (path checked as for put). */
enum stor_err storage_get(struct storage *s, const char *path, size_t max,
    unsigned char **data, size_t *len, char *msg, size_t msglen);
/*
 * The object path a URL of this bucket names, asking the backend's URL
 * forms: one of them exactly (byte for byte, as a prefix), then the
 * path, percent-decoded, which storage_path_ok() must accept (so no "..",
 * no query, no fragment, no encoded NUL or '%'), written into out
 * (outlen bytes; STORAGE_PATH_MAX + 1 hold any path we store). 0, or
 * -1 (out empty) when the URL is not of this bucket or does not fit.
 *   local     {IMAGEGEN_PUBLIC_BASE_URL}/{bucket}/…, and nginx's own
 *             /storage/v1/object/public/{bucket}/…
 *   supabase  {SUPABASE_URL}/storage/v1/object/public/{bucket}/…, and
 *             {IMAGEGEN_PUBLIC_BASE_URL}/{bucket}/… when it is set
 *   s3        the endpoint path style {S3_ENDPOINT}/{bucket}/… and virtual
 *             host style {scheme}://{bucket}.{host}/… (only for an endpoint
 *             with no path whose host is a name), Supabase's public
 *             object URLs for its S3 endpoint, and
 *             {IMAGEGEN_PUBLIC_BASE_URL}/{bucket}/… when it is set
 */
int storage_path_of_url(const struct storage *s, const char *url, char *out,
    size_t outlen);
/* Creates the bucket (public read); harmless when it exists. */
enum stor_err storage_setup(struct storage *s, char *msg, size_t msglen);
/* "{public_base}/{bucket}/{path}" into out; -1 when it does not fit. */
int storage_public_url(const struct storage *s, const char *path, char *out,
    size_t outlen);

/*
 * The object path of SPEC §7 for a job, into out:
 *   project_{p}/branch_{b}/master-assets/{asset}_{ts}_{rand}.{ext}
 *   project_{p}/branch_{b}/scene_{s}/shot_{h}/start_frame_{ts}_{rand}.{ext}
 *   … end_frame_ …; inpaint: project_{p}/branch_{b}/inpaint/{asset}_{ts}_{rand}.{ext}
 * asset is asset_id, or the job id when the job has none. ts is unix
 * milliseconds; rand 8 random hex digits; ext from mime (png, jpg, webp).
 * Every id must be a UUID. 0, or -1 when an id is not a UUID, the type or
 * mime is unknown, or out is too small.
 */
int storage_path_for(char *out, size_t outlen, const char *job_type,
    const char *project_id, const char *branch_id, const char *job_id,
    const char *asset_id, const char *scene_id, const char *shot_id,
    long long ts_ms, const char *mime);
/* 1 when path is a relative object path we could have made: segments of
 * [A-Za-z0-9._-], no empty, "." or ".." segment, at most 1024 bytes. */
int storage_path_ok(const char *path);

/* ---- for the HTTP backends (supabase, s3) ----------------------------- */

/* What a request of an HTTP backend came back with. Zeroed before the
 * first call; free the reply with httpc_reply_free(&a->rep). */
struct storage_answer {
	struct httpc_reply rep;
	long http;		/* the HTTP status */
	long status;		/* the one that decides: the HTTP status, or
				 * the one the body names (Supabase's) */
	char code[64];		/* the error's name in the body, one line */
	char message[200];	/* and its message, one line */
	enum stor_err fails_as;	/* a failure's class, by the backend's rules */
};

/* Makes an HTTP backend's client (after fork) and its timeout per
 * request, IMAGEGEN_PROVIDER_TIMEOUT_MS (120 s by default). 0, or -1 with
 * err naming the backend. */
int storage_http_open(struct httpc *c, long *timeout_ms,
    const struct cfg *cfg, const char *name, char *err, size_t errlen);
/*
 * Performs req on c into a->rep (a's earlier reply freed and a zeroed
 * first; the user agent is set here), a->http and a->status its status.
 * STOR_OK when an answer came, of any status, whole or cut at
 * req->max_bytes (a->rep.over); otherwise msg says "who METHOD: what
 * failed" and the failure is STOR_TEMPORARY (out of memory, a timeout, a
 * refused, reset or broken connection) or STOR_ERROR (anything else).
 * Free a->rep with httpc_reply_free() either way.
 */
enum stor_err storage_http(struct httpc *c, struct httpc_req *req,
    const char *who, struct storage_answer *a, char *msg, size_t msglen);
/* msg for a failed request: "what: 409 Duplicate: The resource already
 * exists" (a's status, code and message); returns a->fails_as. */
enum stor_err storage_fail(const struct storage_answer *a, const char *what,
    char *msg, size_t msglen);
/*
 * What a get() makes of its request's result rc and answer a (whose
 * reply is freed here): rc when no answer came; for a 2xx answer its body
 * as *data (malloc'd, caller frees; one byte for an empty object) and
 * *len, or STOR_ERROR when the body was cut at max, STOR_TEMPORARY out of
 * memory; for another "no such object" (404) or "read failed", as by
 * storage_fail(). msg says why.
 */
enum stor_err storage_http_got(struct storage_answer *a, enum stor_err rc,
    size_t max, unsigned char **data, size_t *len, char *msg, size_t msglen);
/* For a put(), before anything is sent: 1 when 1 <= len <= max, else 0
 * with msg. */
int storage_http_size_ok(size_t len, long max, char *msg, size_t msglen);
/* What a put() makes of rc and a (its reply freed here): a 2xx answer is
 * STOR_OK, another why (the backend's reason) as by storage_fail(),
 * logged as func's ("upload of path: msg"); rc when no answer came. */
enum stor_err storage_http_stored(struct storage_answer *a, enum stor_err rc,
    const char *why, const char *func, const char *path, char *msg,
    size_t msglen);
/* What a del() makes of rc and a (its reply freed here): a 2xx answer,
 * or a 404 (the object is gone), is STOR_OK, another "delete failed" as
 * by storage_fail(); rc when no answer came. */
enum stor_err storage_http_deleted(struct storage_answer *a, enum stor_err rc,
    char *msg, size_t msglen);

#endif
