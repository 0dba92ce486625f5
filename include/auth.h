/* auth.h - who is calling: bearer tokens, keys, and the verified-token cache. */
#ifndef IG_AUTH_H
#define IG_AUTH_H

#include "cfg.h"
#include "http.h"
#include "jwt.h"

/* The caller, as its verified token says. Strings live in the request's
 * arena. claims is the token's claims JSON, for request.jwt.claims. */
struct auth_user {
	const char *sub;
	const char *role;
	const char *email;	/* NULL when absent */
	const char *claims;
};

struct auth_stats {
	unsigned long verified, cache_hits, refused;
	int cache_entries;
};

/* Made after fork: the HS256 secret, the JWKS (lazily fetched) and the
 * token cache from c. 0, or -1 on OOM. */
int auth_init_child(const struct cfg *c);
void auth_cleanup(void);
/*
 * Verifies r's "Authorization: Bearer" token. IG_OK fills *u;
 * IG_EUNAUTHORIZED (with WWW-Authenticate added to r and the reason
 * logged, never returned) otherwise.
 */
enum ig_err auth_request(struct http_req *r, struct auth_user *u);
/*
 * The verification behind auth_request(): the token cache first, then
 * jwt_verify(). On JWT_OK *out is filled (caller frees with
 * jwt_claims_free()); *cached says whether the cache answered.
 */
enum jwt_reason auth_verify(const char *tok, size_t len, long now,
    struct jwt_claims *out, int *cached);
void auth_get_stats(struct auth_stats *s);

#endif
