/*
 * jwt_key.h - the keys tokens are verified and signed with: an HS256
 * secret, an ES256 or RS256 key from a JWK or from PEM. The key, not the
 * token, decides the algorithm.
 */
#ifndef IG_JWT_KEY_H
#define IG_JWT_KEY_H

#include <stddef.h>

#include <openssl/evp.h>

#define JWT_MAX_KID 256

enum jwt_alg { JWT_ALG_UNKNOWN = 0, JWT_HS256, JWT_ES256, JWT_RS256 };

/* "HS256", "ES256", "RS256"; "unknown" for anything else. */
const char *jwt_alg_name(enum jwt_alg a);
/* "HS256" → JWT_HS256; JWT_ALG_UNKNOWN for anything else. */
enum jwt_alg jwt_alg_parse(const char *s);

/* A verification key: the key, not the token, decides the algorithm. */
struct jwt_key {
	char kid[JWT_MAX_KID + 1];	/* "" when none */
	enum jwt_alg alg;
	EVP_PKEY *pkey;			/* ES256, RS256 */
	EVP_PKEY_CTX *vctx;		/* pkey's verify context, made once */
	unsigned char *secret;		/* HS256 */
	size_t secret_len;
};

/* HS256 key holding a copy of secret. 0, or -1 on OOM or empty secret. */
int jwt_key_hs256(struct jwt_key *k, const char *kid, const unsigned char *secret,
    size_t len);
/*
 * Public key from a JWK object text (RFC 7517): EC P-256 (x, y) → ES256,
 * RSA (n, e) of at least 2048 bits → RS256. A `use` other than "sig" or an
 * `alg` that doesn't fit the key type refuses it. 0, or -1 with a reason in
 * *why (static string).
 */
int jwt_key_from_jwk(struct jwt_key *k, const void *jwk_obj, const char **why);
/* Public or private key from PEM; ES256 for P-256, RS256 for RSA ≥ 2048.
 * 0, or -1 with *why. */
int jwt_key_from_pem(struct jwt_key *k, const char *kid, const char *pem,
    size_t len, const char **why);
/* Frees what k holds and zeroes it; accepts a zeroed key. */
void jwt_key_clear(struct jwt_key *k);

#endif
