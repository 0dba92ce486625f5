/*
 * jwt.h - verifying JSON Web Tokens (RFC 7519, JWS RFC 7515) as Supabase
 * issues them. Keys are in jwt_key.h, minting in jwt_sign.h.
 */
#ifndef IG_JWT_H
#define IG_JWT_H

#include <stddef.h>

#include "jwt_key.h"

#define JWT_MAX_TOKEN 8192	/* longer tokens are refused unread */

/* Why a token was refused: logged, never sent to the client. */
enum jwt_reason {
	JWT_OK = 0,
	JWT_ETOO_LARGE,		/* over JWT_MAX_TOKEN */
	JWT_ESEGMENTS,		/* not exactly three non-empty parts */
	JWT_EBASE64,		/* not strict base64url */
	JWT_EJSON,		/* header or claims not a JSON object */
	JWT_EDUPLICATE,		/* a JSON member appears twice */
	JWT_EALG_NONE,		/* "none" in any case */
	JWT_EALG,		/* missing or unsupported alg */
	JWT_EHEADER,		/* crit, jku, x5u, jwk, x5c, x5t or bad typ */
	JWT_EKID,		/* kid not a sane string */
	JWT_ENOKEY,		/* no key for this kid */
	JWT_EALG_MISMATCH,	/* header alg is not the key's */
	JWT_ESIG_LENGTH,	/* signature of the wrong size for the alg */
	JWT_ESIGNATURE,		/* signature does not verify */
	JWT_EEXP_MISSING,
	JWT_EEXPIRED,
	JWT_ENBF,		/* not valid yet */
	JWT_EIAT,		/* issued in the future */
	JWT_EAUD,		/* aud lacks "authenticated" */
	JWT_EISS,
	JWT_EROLE,		/* role other than "authenticated" */
	JWT_ESUB,		/* sub missing or not a UUID */
	JWT_EINTERNAL,
	JWT_REASON_COUNT
};

/* Verified claims. json is the claims object as received (malloc'd), for
 * request.jwt.claims. Free with jwt_claims_free(). */
struct jwt_claims {
	char sub[40];
	char role[32];
	char *email;		/* NULL when absent */
	long exp;
	char *json;
};

struct jwt_policy {
	long now;		/* unix time */
	long leeway;		/* seconds allowed on exp, nbf, iat */
	const char *issuer;	/* NULL: not checked */
	int supabase;		/* check aud, role and sub as Supabase sets them */
};

/* Finds the key for a token's kid (NULL when the header has none); NULL
 * when there is none. alg is the header's, for logging only: the caller
 * must not choose a key by it. */
typedef const struct jwt_key *(*jwt_key_lookup)(void *ctx, const char *kid);

const char *jwt_reason_str(enum jwt_reason r);

/*
 * Checks sig over msg with k, exactly as tokens are checked: HS256 a
 * 32-byte HMAC compared in constant time; ES256 a 64-byte R||S (any other
 * length refused) converted to DER; RS256 PKCS#1 v1.5 with SHA-256.
 */
enum jwt_reason jwt_verify_sig(const struct jwt_key *k, const unsigned char *msg,
    size_t msglen, const unsigned char *sig, size_t siglen);

/*
 * Verifies a compact JWS token: structure, header, key (via lookup),
 * signature, then the claims under policy. JWT_OK fills *out (caller frees
 * with jwt_claims_free()); any other reason leaves *out zeroed.
 */
enum jwt_reason jwt_verify(const char *tok, size_t len, jwt_key_lookup lookup,
    void *ctx, const struct jwt_policy *p, struct jwt_claims *out);
void jwt_claims_free(struct jwt_claims *c);

#endif
