/* jwt.h - JSON Web Tokens (RFC 7519) as Supabase issues them. */
#ifndef IG_JWT_H
#define IG_JWT_H

#include <stddef.h>

struct jwt_mint {
	const char *sub;	/* required */
	const char *email;	/* may be NULL */
	const char *role;	/* default "authenticated" */
	const char *issuer;	/* may be NULL */
	long ttl;		/* seconds */
	long now;		/* unix time; 0 = time(NULL) */
};

/*
 * Signs an HS256 token with secret. Returns a malloc'd NUL-terminated
 * token (caller frees with free()), or NULL on bad input or OOM.
 */
char *jwt_sign_hs256(const struct jwt_mint *m, const unsigned char *secret,
    size_t secret_len);

#endif
