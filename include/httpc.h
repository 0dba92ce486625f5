/*
 * httpc.h - the one libcurl client behind the remote providers and the
 * remote storage backends: one handle per process, made after fork, one
 * request at a time, http(s) only, no redirects unless asked, timeouts,
 * a bounded reply body, the last response's Retry-After and Content-Type,
 * and transport failures sorted into classes that each caller maps to its
 * own errors (PROV_*, STOR_*).
 */
#ifndef IG_HTTPC_H
#define IG_HTTPC_H

#include <stddef.h>

#define HTTPC_CONNECT_MS 10000L		/* connect timeout cap, one call */

/* Request flags. */
#define HTTPC_DECODE	0x1	/* ask for compressed replies, decode them */
#define HTTPC_LENGTH_CAP 0x2	/* refuse a reply whose Content-Length is
				 * past max_bytes before reading it */
#define HTTPC_FILE	0x4	/* file:// URLs too (a local key set); never
				 * as a redirect's target */

/* What became of a request, whoever asked. */
enum httpc_err {
	HTTPC_OK = 0,		/* an answer of any status, its body whole */
	HTTPC_TOO_BIG,		/* an answer, its body past max_bytes (over) */
	HTTPC_NOMEM,		/* out of memory before anything was sent */
	HTTPC_TIMEOUT,		/* no whole answer within timeout_ms */
	HTTPC_TEMPORARY,	/* the connection failed or broke: DNS, connect,
				 * reset, TLS handshake, an empty or cut reply */
	HTTPC_PERMANENT,	/* the same on a retry: scheme, URL, redirects,
				 * content encoding, the server's certificate */
	HTTPC_UNKNOWN,		/* any other libcurl failure: callers differ */
	HTTPC_REFUSED,		/* the outbound URL policy refused the URL, a
				 * redirect or the address (urlpolicy.h) */
};

/* One client; zeroed is closed. */
struct httpc {
	void *curl;			/* CURL *, reused between calls */
};

struct httpc_req {
	const char *method;		/* "GET", "HEAD", "POST", "PUT", "DELETE" */
	const char *url;
	const char *const *headers;	/* "Name: value" lines, NULL-ended, or
					 * NULL; "Name:" drops one curl adds */
	const void *body;		/* sent (len bytes) when not NULL */
	size_t len;
	long timeout_ms;		/* the whole call, connecting included */
	size_t max_bytes;		/* the reply body's cap */
	long max_redirs;		/* redirects followed (http(s)); 0: none */
	unsigned flags;			/* HTTPC_DECODE, HTTPC_LENGTH_CAP,
					 * HTTPC_FILE */
	const char *user_agent;
	/* When not NULL, called with the CURL handle after httpc's own
	 * options, before the transfer: the outbound URL policy adds its
	 * checks there. */
	void (*prepare)(void *curl, void *arg);
	void *prepare_arg;
	long connect_ms;		/* connect timeout; 0: the smaller of
					 * timeout_ms and HTTPC_CONNECT_MS */
};

struct httpc_reply {
	long status;			/* the last response's; 0 when none */
	char *body;			/* NUL-terminated, malloc'd; NULL when empty */
	size_t len;
	int over;			/* the body passed max_bytes and was cut */
	char retry_after[128];		/* the last response's header, "" if none */
	char content_type[96];		/* likewise */
	char *location;			/* a 3xx not followed: its absolute
					 * target, malloc'd; NULL when none */
	const char *error;		/* on failure: what went wrong (static) */
	char detail[256];		/* on failure: libcurl's details, or "" */
};

/*
 * Once in each main, before any fork: libcurl's global state
 * (curl_global_init), which every other function here assumes. 0, or -1
 * when libcurl cannot start (out of memory, its TLS library failing).
 */
int httpc_init_main(void);
/* At a main's end, after httpc_init_main() and the last httpc_close().
 * Can't fail. */
void httpc_cleanup_main(void);
/* 0, or -1 when libcurl cannot make a handle. */
int httpc_open(struct httpc *c);
/* Accepts a zeroed or closed client. */
void httpc_close(struct httpc *c);

/*
 * Performs req on c's handle into *rep, which is overwritten (free an
 * earlier reply first). HTTPC_OK or HTTPC_TOO_BIG with rep->status set
 * when an answer came; otherwise the class of the failure, with
 * rep->error and rep->detail. Free rep with httpc_reply_free() either way.
 */
enum httpc_err httpc_perform(struct httpc *c, const struct httpc_req *req,
    struct httpc_reply *rep);
/* Frees the body and zeroes rep; accepts a zeroed reply. */
void httpc_reply_free(struct httpc_reply *rep);

#endif
