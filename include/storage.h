/* storage.h - where pictures go, behind one interface (SPEC §7). */
#ifndef IG_STORAGE_H
#define IG_STORAGE_H

#include <stddef.h>

#include "cfg.h"

enum stor_err {
	STOR_OK = 0,
	STOR_TEMPORARY,		/* worth retrying: timeouts, 5xx, EAGAIN */
	STOR_ERROR,		/* permanent: refused, too large, bad type */
};

struct storage;

struct storage_ops {
	const char *name;		/* "local", "supabase", "s3" */
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
};

struct storage {
	const struct storage_ops *ops;
	char bucket[64];		/* IMAGEGEN_BUCKET, default asset-images */
	char public_base[512];		/* IMAGEGEN_PUBLIC_BASE_URL, no trailing / */
	void *state;
};

/* Opens the backend the configuration names (IMAGEGEN_STORAGE; default
 * supabase when SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY are set, else
 * local). 0, or -1 with err naming the variable. */
int storage_open(struct storage *s, const struct cfg *c, char *err,
    size_t errlen);
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
 * The object path a public URL of this bucket names: exactly
 * "{public_base}/{bucket}/" then a path storage_path_ok accepts. NULL
 * otherwise. The result points into url.
 */
const char *storage_path_of_url(const struct storage *s, const char *url);
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

struct httpc;
struct httpc_req;
struct httpc_reply;

/* Makes an HTTP backend's client (after fork) and its timeout per
 * request, IMAGEGEN_PROVIDER_TIMEOUT_MS (120 s by default). 0, or -1 with
 * err naming the backend. */
int storage_http_open(struct httpc *c, long *timeout_ms,
    const struct cfg *cfg, const char *name, char *err, size_t errlen);
/*
 * Performs req on c into *rep (the user agent is set here). STOR_OK when
 * an answer came, of any status, whole or cut at req->max_bytes
 * (rep->over); otherwise msg says "who METHOD: what failed" and the
 * failure is STOR_TEMPORARY (out of memory, a timeout, a refused, reset
 * or broken connection) or STOR_ERROR (anything else). Free rep with
 * httpc_reply_free() either way.
 */
enum stor_err storage_http(struct httpc *c, struct httpc_req *req,
    const char *who, struct httpc_reply *rep, char *msg, size_t msglen);
/*
 * Gives a get() the body of a 2xx answer: *data (malloc'd, caller frees;
 * one byte for an empty object) and *len, taken out of rep. STOR_ERROR
 * when the body was cut at max, STOR_TEMPORARY out of memory, with msg.
 */
enum stor_err storage_http_body(struct httpc_reply *rep, size_t max,
    unsigned char **data, size_t *len, char *msg, size_t msglen);
/* Frees a key, a token or a line holding one, wiped first (it is not left
 * in freed memory). Accepts NULL. */
void storage_free_secret(char *p);

extern const struct storage_ops storage_local;
extern const struct storage_ops storage_supabase;
extern const struct storage_ops storage_s3;

#endif
