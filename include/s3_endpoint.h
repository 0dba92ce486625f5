/* s3_endpoint.h - the S3 backend's settings, S3_ENDPOINT in parts, and its
 * object URLs (src/storage/s3_endpoint.c; used by src/storage/s3.c). */
#ifndef IG_S3_ENDPOINT_H
#define IG_S3_ENDPOINT_H

#include <stddef.h>

#include "cfg.h"
#include "storage.h"

/* The S3 backend's own settings: its conf (c->storage_conf when
 * IMAGEGEN_STORAGE=s3), declared here for s3_endpoint.c and the unit
 * suites. */
struct s3_conf {
	char *endpoint;		/* S3_ENDPOINT, no trailing / */
	char *region;		/* S3_REGION */
	char *access_key;	/* S3_ACCESS_KEY_ID */
	char *secret_key;	/* S3_SECRET_ACCESS_KEY (secret) */
	char *session_token;	/* S3_SESSION_TOKEN (secret, optional) */
};

/* c's storage conf as a struct s3_conf; an empty one (all unset) when c
 * has none. Can't fail. */
const struct s3_conf *s3_conf(const struct cfg *c);

struct s3_endpoint {
	char *origin;		/* "http://127.0.0.1:9000": scheme, authority */
	char *host;		/* the authority, lower case: the Host header */
	char *prefix;		/* the endpoint's path ("" or "/storage/v1/s3") */
};

/* Splits the endpoint "scheme://authority[/path]" into ep (a trailing '/'
 * of the path dropped). 0, or -1 with err when it is not one (not http(s),
 * userinfo, a query or a fragment, no host) or memory ran out; free ep
 * with s3_endpoint_free() either way. */
int s3_endpoint_parse(struct s3_endpoint *ep, const char *url, char *err,
    size_t errlen);
/* Frees ep's strings and zeroes it; accepts a zeroed one. */
void s3_endpoint_free(struct s3_endpoint *ep);
/*
 * The bucket's objects are read at the endpoint, path style
 * ({S3_ENDPOINT}/{bucket}/{path}) and, for an endpoint with a host name
 * and no path, virtual-host style ({scheme}://{bucket}.{host}/{path});
 * Supabase's S3 endpoint (…/storage/v1/s3) also serves them publicly at
 * …/storage/v1/object/public/{bucket}/{path}. The public base, unless
 * IMAGEGEN_PUBLIC_BASE_URL names one, is Supabase's public one for its S3
 * endpoint, else the endpoint itself (path style).
 */
int s3_endpoint_urls(struct storage *s, const struct cfg *c, char *err,
    size_t errlen);

/*
 * Reads an S3 error answer (a->status not 2xx, a->rep its reply, NUL-
 * terminated): the <Code> and <Message> of its XML into a->code and
 * a->message, one line each ("" when absent, or when the body was cut at
 * its bound), and a->fails_as, STOR_TEMPORARY or STOR_ERROR by S3's
 * codes and the status (src/storage/s3.c). Can't fail.
 */
void s3_parse_error(struct storage_answer *a);

#endif
