/* jwt_sign.h - minting tokens as Supabase issues them (the CLI, the tests). */
#ifndef IG_JWT_SIGN_H
#define IG_JWT_SIGN_H

#include <stddef.h>

#include "jwt_key.h"

struct jwt_mint {
	const char *sub;	/* required */
	const char *email;	/* may be NULL */
	const char *role;	/* default "authenticated" */
	const char *issuer;	/* may be NULL */
	long ttl;		/* seconds */
	long now;		/* unix time; 0 = time(NULL) */
};

/*
 * Signs a token with k (HS256 secret, or an ES256/RS256 private key), with
 * k->kid in the header when set. Returns a malloc'd string (caller frees),
 * or NULL on bad input or OOM.
 */
char *jwt_sign(const struct jwt_mint *m, const struct jwt_key *k);
/* The same with an HS256 secret and no kid. */
char *jwt_sign_hs256(const struct jwt_mint *m, const unsigned char *secret,
    size_t secret_len);

#endif
