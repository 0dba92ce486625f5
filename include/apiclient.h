/*
 * apiclient.h - the command line as a client of the HTTP API (SPEC §8):
 * where the service is and who the caller is (flags, IMAGEGEN_URL and
 * IMAGEGEN_TOKEN, else a scripts/up tree's var/stack.env), and one call
 * at a time over httpc with the token, bounded replies and the API's
 * error shape read back. Used by imagegen generate and imagegen jobs
 * (cmd_generate.c); it never touches the database.
 */
#ifndef IG_APICLIENT_H
#define IG_APICLIENT_H

#include <stddef.h>
#include <time.h>

#include "httpc.h"

#define API_RETRY_AFTER_MAX	30	/* seconds waited for one Retry-After, at most */

#define API_REPLY_MAX	(4L * 1024 * 1024)	/* an API answer's cap */
#define API_IMAGE_MAX	(64L * 1024 * 1024)	/* an --output image's cap */
#define API_CALL_MS	30000L			/* one request, at most */
#define API_VALUE_MAX	4096			/* a stack.env value's cap */

/* What a scripts/up tree's var/stack.env says that the client uses. Each
 * member is "" when the file does not set it. */
struct api_stack_env {
	char url[API_VALUE_MAX];	/* IMAGEGEN_URL */
	char token[API_VALUE_MAX];	/* DEMO_TOKEN (wiped by api_conf_free) */
	char project[64];		/* DEMO_PROJECT_ID */
	char branch[64];		/* DEMO_BRANCH_ID */
};

/* Where to send requests and as whom; from api_conf_load(). */
struct api_conf {
	char *url;		/* base URL, no trailing '/'; malloc'd */
	char *token;		/* the bearer token; malloc'd, wiped on free */
	char *ca_file;		/* a certificate to trust (var/tls/cert.pem of
				 * the stack.env used), or NULL */
	int insecure;		/* --insecure: no certificate checks */
	/* From the stack.env used (for generate's defaults), else "". */
	char project[64], branch[64];
	char env_path[4096];	/* the stack.env used, or "" */
};

/* What became of one call. */
enum api_res {
	API_OK = 0,		/* an answer with a 2xx status */
	API_HTTP,		/* an answer with another status */
	API_NET,		/* no (whole) answer: connection, timeout, cap */
	API_NOMEM,
};

struct api_reply {
	long status;		/* 0 when no answer came */
	char *body;		/* NUL-terminated; NULL when empty. Owned. */
	size_t len;
	long retry_after;	/* Retry-After in seconds, 0..30; -1 none */
	/* For a non-2xx answer: the error's code and message from the API's
	 * {"error":{…}} (one line each), both "" when the body is not that;
	 * for API_NET: "" and what went wrong. */
	char code[64];
	char message[512];
};

/* A client: one httpc handle. */
struct api {
	struct httpc h;
	const struct api_conf *conf;
	char *auth;		/* "Authorization: Bearer …", wiped on close */
};

/*
 * Parses stack.env text (len bytes) into *se: shell KEY=VALUE lines as
 * scripts/up writes them ('…' quoting with '\'' for a quote, "…" without
 * expansions, backslash escapes, an optional "export ", comments, blank
 * lines), read without a shell: nothing is expanded or run. A line this
 * cannot read that way (a $ or ` to expand, an unterminated quote, a
 * second word, a value past API_VALUE_MAX) is skipped; the number of
 * skipped lines is returned and the first one's number put in *bad_line
 * (may be NULL). Keys other than the four of api_stack_env are ignored;
 * the last of a key wins. Can't fail.
 */
int api_stack_env_parse(const char *text, size_t len, struct api_stack_env *se,
    int *bad_line);

/*
 * Fills *c from, in order: url_opt/token_opt (--url/--token), the
 * environment (IMAGEGEN_URL, IMAGEGEN_TOKEN) and, only when no URL was
 * given either way, the first var/stack.env found: ./var/stack.env, then
 * the one beside the binary's directory (BIN/../var/stack.env, a build
 * tree's). A stack.env is used only when owned by the caller (or root)
 * and writable by no one else; its IMAGEGEN_URL comes with its
 * DEMO_TOKEN (when no token was given), DEMO_PROJECT_ID, DEMO_BRANCH_ID
 * and its var/tls/cert.pem as the certificate to trust. 0, or -1 with one
 * line in err: no URL or no token, a URL that is not http(s)://, a token
 * that is not one line of printable ASCII. A stack.env refused or with
 * lines skipped is a warning on stderr. Free with api_conf_free().
 */
int api_conf_load(struct api_conf *c, const char *url_opt,
    const char *token_opt, int insecure, char *err, size_t errlen);
/* Frees what api_conf_load() made (the token wiped); accepts zeroed. */
void api_conf_free(struct api_conf *c);

/* 0, or -1 (out of memory, libcurl). Close with api_close(). */
int api_open(struct api *a, const struct api_conf *c);
/* Accepts a zeroed client. */
void api_close(struct api *a);

/*
 * One request to the API: method, path (from "/api/…"), a JSON body or
 * NULL, an Idempotency-Key or NULL; with the token, Accept and, for a
 * body, Content-Type. tries > 1 sends it again (the same key) after a
 * lost connection or timeout and after 409 IDEMPOTENCY_IN_FLIGHT, 429,
 * 502, 503 and 504, waiting Retry-After (at most 30 s) or 0.5, 1, 2 s;
 * callers pass 1 for a request that must not be sent twice; each wait
 * is a line on stderr. The reply
 * (*rep, overwritten; free with api_reply_free()) as api_res says.
 */
enum api_res api_call(struct api *a, const char *method, const char *path,
    const char *body, const char *idem_key, int tries, long timeout_ms,
    struct api_reply *rep);
/* Frees and zeroes rep; accepts a zeroed reply. */
void api_reply_free(struct api_reply *rep);

/*
 * A Retry-After value in seconds at time now: delay-seconds or an HTTP-date
 * (read by curl_getdate(); one past is 0), clamped to API_RETRY_AFTER_MAX
 * (30) however large; 1 for a value that is neither, -1 for none ("" or NULL).
 */
long api_retry_after_s(const char *v, time_t now);

/*
 * url made absolute: as it is when it starts with http:// or https://,
 * against the base URL's scheme, host and port when it starts with one
 * '/'. malloc'd (caller frees); NULL for anything else or out of memory.
 */
char *api_abs_url(const struct api_conf *c, const char *url);

/*
 * Downloads url (absolute, http(s), no token sent; the stack's
 * certificate trusted only for the API's own origin; up to 3 redirects,
 * at most API_IMAGE_MAX bytes) into path: written to a temporary file
 * beside it, flushed, then renamed over it, so path is the whole image
 * or untouched. 0, or -1 with one line in err.
 */
int api_download(struct api *a, const char *url, const char *path,
    char *err, size_t errlen);

/* A random (version 4) UUID in out, for an Idempotency-Key. 0, or -1
 * when the system has no randomness to give. */
int api_uuid4(char out[37]);

/* s percent-encoded for a query string into out (outlen bytes); -1 when
 * it does not fit. */
int api_query_escape(char *out, size_t outlen, const char *s);

#endif
