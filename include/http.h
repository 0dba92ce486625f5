/* http.h - a FastCGI request, its arena, and the response writers. */
#ifndef IG_HTTP_H
#define IG_HTTP_H

#include <stddef.h>

#include <fcgiapp.h>
#include <json-c/json.h>

#include "arena.h"
#include "cfg.h"
#include "err.h"

#define HTTP_MAX_PARAMS 4

struct http_header {
	const char *name;
	const char *value;
	struct http_header *next;
};

struct http_req {
	FCGX_Request *fcgi;
	struct arena *arena;
	const struct cfg *cfg;
	const char *method;
	const char *path;		/* without the query string */
	const char *query;		/* "" when absent */
	const char *request_id;		/* nginx's $request_id, or generated */
	const char *content_type;	/* NULL when absent */
	const char *authorization;	/* NULL when absent */
	char *body;			/* NUL-terminated, body_len bytes */
	size_t body_len;
	const char *params[HTTP_MAX_PARAMS];	/* route {placeholders} */
	int nparams;
	struct http_header *headers;	/* extra response headers */
	const char *err_msg;		/* message for the error response */
	/* a further member of the error object, e.g. "budget" and its JSON
	 * text (http_send_error); NULL for none */
	const char *err_extra_name, *err_extra_json;
	int responded;
	int status;			/* status sent, for the access log */
	char spawn_job[37];		/* job to hand to an executor after the
					 * response is finished; "" for none */
};

/*
 * Reads the request line, headers and body (at most cfg->max_body_bytes).
 * IG_ETOO_LARGE when the body is larger (the rest is drained so the server
 * sees a clean answer), IG_EVALIDATION when CONTENT_LENGTH is malformed or
 * the body is shorter or longer than it says. Everything lives in r->arena.
 */
enum ig_err http_req_read(struct http_req *r, FCGX_Request *f,
    struct arena *a, const struct cfg *c);
/* A FastCGI parameter, or NULL. */
const char *http_param(const struct http_req *r, const char *name);
/* Adds a response header (copied into the arena). Can't fail but on OOM,
 * where the header is dropped and logged. */
void http_add_header(struct http_req *r, const char *name, const char *value);
/* Records why the request failed and returns e, for `return http_fail(…)`. */
enum ig_err http_fail(struct http_req *r, enum ig_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sends status and obj (not consumed) as JSON. Once per request. */
void http_send_json(struct http_req *r, int status, struct json_object *obj);
/* Sends status and text with the given Content-Type. Once per request. */
void http_send_text(struct http_req *r, int status, const char *type,
    const char *text);
/* Sends status and an already-encoded JSON text. Once per request. */
void http_send_json_text(struct http_req *r, int status, const char *json);
/* The query parameter name, percent-decoded (arena), or NULL when absent;
 * a value that decodes to a NUL or invalid escape counts as absent and
 * sets *bad when bad is not NULL. */
const char *http_query_param(struct http_req *r, const char *name, int *bad);
/* 1 when the request's Content-Type is application/json (any params). */
int http_is_json(const struct http_req *r);
/* Sends the error body {"error":{"code","message"}} of e, plus
 * r->err_extra_name when set; adds Retry-After to 503 and 429 when the
 * handler did not. */
void http_send_error(struct http_req *r, enum ig_err e, const char *message);
/*
 * The wait preference of a Prefer header hdr (RFC 7240; may be NULL): 1
 * with *n seconds when it asks for wait=N (N a whole number, at most max:
 * larger is max) or a bare wait (max); 0 when it does not, when max <= 0,
 * or when the first wait's value is not a whole number (wait=abc,
 * wait=-1: a preference not understood is ignored, not an error).
 */
int http_prefer_wait(const char *hdr, long max, long *n);
/* Validates a CONTENT_LENGTH value; -1 when malformed. */
long long http_parse_content_length(const char *s);

#endif
