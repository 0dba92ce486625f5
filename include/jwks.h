/* jwks.h - signing keys from a JSON Web Key Set, fetched and cached. */
#ifndef IG_JWKS_H
#define IG_JWKS_H

#include "jwt.h"

#define JWKS_MAX_KEYS 16
#define JWKS_MAX_BYTES (256 * 1024)

struct jwks;

/*
 * A key set read from url (http, https or file; a plain absolute path is
 * a file). Nothing is fetched until the first lookup. ttl: seconds a
 * fetched set is used before it is refetched; min_refresh: an unknown kid
 * triggers at most one refetch per this many seconds. NULL on OOM.
 * Caller frees with jwks_free(). Make it after fork (it owns an HTTP client,
 * util/httpc.h).
 */
struct jwks *jwks_new(const char *url, long ttl, long min_refresh);
void jwks_free(struct jwks *j);
/*
 * The key with this kid, refetching as described above; a failed fetch
 * keeps the keys already known. The pointer is valid until the next call.
 */
const struct jwt_key *jwks_find(struct jwks *j, const char *kid, long now);
/* Keys held now. */
int jwks_count(const struct jwks *j);
/*
 * Parses a JWKS document into keys (at most max); keys whose kty, crv,
 * size, use or alg don't fit are skipped and counted in *skipped. Returns
 * the number parsed, or -1 when the document is not {"keys":[…]}.
 */
int jwks_parse(const char *json, size_t len, struct jwt_key *keys, int max,
    int *skipped);

#endif
