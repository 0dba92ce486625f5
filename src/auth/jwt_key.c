/*
 * jwt_key.c - verification and signing keys: an HS256 secret, a public
 * key from a JWK (RFC 7517), a public or private key from PEM; the key,
 * not the token, decides the algorithm.
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "base64.h"
#include "json_strict.h"
#include "jwt_key.h"
#include "secret.h"

const char *
jwt_alg_name(enum jwt_alg a)
{
	switch (a) {
	case JWT_HS256: return "HS256";
	case JWT_ES256: return "ES256";
	case JWT_RS256: return "RS256";
	default: return "unknown";
	}
}

enum jwt_alg
jwt_alg_parse(const char *s)
{
	if (strcmp(s, "HS256") == 0)
		return JWT_HS256;
	if (strcmp(s, "ES256") == 0)
		return JWT_ES256;
	if (strcmp(s, "RS256") == 0)
		return JWT_RS256;
	return JWT_ALG_UNKNOWN;
}

static int
set_kid(struct jwt_key *k, const char *kid)
{
	if (kid == NULL)
		kid = "";
	if (strlen(kid) > JWT_MAX_KID)
		return -1;
	memcpy(k->kid, kid, strlen(kid) + 1);
	return 0;
}

int
jwt_key_hs256(struct jwt_key *k, const char *kid, const unsigned char *secret,
    size_t len)
{
	memset(k, 0, sizeof(*k));
	if (len == 0 || set_kid(k, kid) != 0)
		return -1;
	k->secret = malloc(len);
	if (k->secret == NULL)
		return -1;
	memcpy(k->secret, secret, len);
	k->secret_len = len;
	k->alg = JWT_HS256;
	return 0;
}

void
jwt_key_clear(struct jwt_key *k)
{
	secret_free_n(k->secret, k->secret_len);
	EVP_PKEY_CTX_free(k->vctx);
	EVP_PKEY_free(k->pkey);
	memset(k, 0, sizeof(*k));
}

/* The algorithm a key may serve, from its type; JWT_ALG_UNKNOWN (with
 * *why) for a curve other than P-256 or RSA under 2048 bits. */
static enum jwt_alg
pkey_alg(EVP_PKEY *pkey, const char **why)
{
	char group[64];
	size_t glen = 0;

	if (EVP_PKEY_is_a(pkey, "EC")) {
		if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
		    group, sizeof(group), &glen) != 1 ||
		    (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0)) {
			*why = "EC key is not on P-256";
			return JWT_ALG_UNKNOWN;
		}
		return JWT_ES256;
	}
	if (EVP_PKEY_is_a(pkey, "RSA")) {
		if (EVP_PKEY_get_bits(pkey) < 2048) {
			*why = "RSA key shorter than 2048 bits";
			return JWT_ALG_UNKNOWN;
		}
		return JWT_RS256;
	}
	*why = "unsupported key type";
	return JWT_ALG_UNKNOWN;
}

/*
 * The key's verify context, made once: a fresh context per token costs
 * as much as the ECDSA verification itself in OpenSSL 3. RSA contexts are
 * fixed to PKCS#1 v1.5 with a SHA-256 DigestInfo. 0, or -1.
 */
static int
key_verify_ctx(struct jwt_key *k)
{
	k->vctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
	if (k->vctx == NULL || EVP_PKEY_verify_init(k->vctx) != 1)
		return -1;
	if (k->alg == JWT_RS256 &&
	    (EVP_PKEY_CTX_set_rsa_padding(k->vctx, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(k->vctx, EVP_sha256()) != 1))
		return -1;
	return 0;
}

/* Decodes the base64url member name of o into buf (at most cap bytes).
 * Returns the length, or -1. */
static long
jwk_b64(struct json_object *o, const char *name, unsigned char *buf, size_t cap)
{
	struct json_object *v;
	const char *s;
	size_t len;

	if (!json_object_object_get_ex(o, name, &v) ||
	    !json_object_is_type(v, json_type_string))
		return -1;
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (len == 0 || len / 4 * 3 + 3 > cap)
		return -1;
	return b64url_decode(s, len, buf);
}

static EVP_PKEY *
pkey_fromdata(const char *type, OSSL_PARAM *params)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY_CTX *check = NULL;
	EVP_PKEY *pkey = NULL;

	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	/* fromdata does not check that an EC point lies on the curve. */
	check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (check == NULL || EVP_PKEY_public_check(check) != 1) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
out:
	EVP_PKEY_CTX_free(check);
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

static EVP_PKEY *
jwk_ec(struct json_object *o, const char **why)
{
	unsigned char x[48], y[48], pub[65];
	OSSL_PARAM params[3];
	const char *crv = json_strict_str(o, "crv", NULL);
	EVP_PKEY *pkey;

	if (crv == NULL || strcmp(crv, "P-256") != 0) {
		*why = "EC JWK crv is not P-256";
		return NULL;
	}
	if (jwk_b64(o, "x", x, sizeof(x)) != 32 || jwk_b64(o, "y", y, sizeof(y)) != 32) {
		*why = "EC JWK x or y is not 32 bytes of base64url";
		return NULL;
	}
	pub[0] = 0x04;
	memcpy(pub + 1, x, 32);
	memcpy(pub + 33, y, 32);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
	    (char *)"prime256v1", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
	    pub, sizeof(pub));
	params[2] = OSSL_PARAM_construct_end();
	pkey = pkey_fromdata("EC", params);
	if (pkey == NULL)
		*why = "EC JWK point is not on the curve";
	return pkey;
}

static EVP_PKEY *
jwk_rsa(struct json_object *o, const char **why)
{
	unsigned char *nb = NULL, eb[16];
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	BIGNUM *n = NULL, *e = NULL;
	EVP_PKEY *pkey = NULL;
	long nlen, elen;

	nb = malloc(1024);
	if (nb == NULL)
		goto out;
	nlen = jwk_b64(o, "n", nb, 1024);
	elen = jwk_b64(o, "e", eb, sizeof(eb));
	if (nlen <= 0 || elen <= 0) {
		*why = "RSA JWK n or e missing or malformed";
		goto out;
	}
	n = BN_bin2bn(nb, (int)nlen, NULL);
	e = BN_bin2bn(eb, (int)elen, NULL);
	bld = OSSL_PARAM_BLD_new();
	if (n == NULL || e == NULL || bld == NULL ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1 ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
		*why = "out of memory";
		goto out;
	}
	pkey = pkey_fromdata("RSA", params);
	if (pkey == NULL)
		*why = "RSA JWK is not a valid public key";
out:
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	free(nb);
	return pkey;
}

int
jwt_key_from_jwk(struct jwt_key *k, const void *jwk_obj, const char **why)
{
	struct json_object *o = (struct json_object *)jwk_obj;
	const char *kty, *use, *alg, *kid;
	enum jwt_alg want = JWT_ALG_UNKNOWN;
	EVP_PKEY *pkey = NULL;
	size_t kidlen = 0;

	memset(k, 0, sizeof(*k));
	*why = NULL;
	if (!json_object_is_type(o, json_type_object)) {
		*why = "JWK is not an object";
		return -1;
	}
	kty = json_strict_str(o, "kty", NULL);
	use = json_strict_str(o, "use", NULL);
	alg = json_strict_str(o, "alg", NULL);
	kid = json_strict_str(o, "kid", &kidlen);
	if (use != NULL && strcmp(use, "sig") != 0) {
		*why = "JWK use is not sig";
		return -1;
	}
	if (json_object_object_get_ex(o, "d", NULL)) {
		*why = "JWK holds a private key";
		return -1;
	}
	if (kid != NULL && (strlen(kid) > JWT_MAX_KID || strlen(kid) != kidlen)) {
		*why = "JWK kid too long or has NUL";
		return -1;
	}
	if (kty == NULL) {
		*why = "JWK kty missing";
		return -1;
	}
	if (strcmp(kty, "EC") == 0) {
		want = JWT_ES256;
		pkey = jwk_ec(o, why);
	} else if (strcmp(kty, "RSA") == 0) {
		want = JWT_RS256;
		pkey = jwk_rsa(o, why);
	} else {
		*why = "JWK kty is not EC or RSA";
		return -1;
	}
	if (pkey == NULL)
		return -1;
	if (alg != NULL && jwt_alg_parse(alg) != want) {
		*why = "JWK alg does not fit its key type";
		EVP_PKEY_free(pkey);
		return -1;
	}
	if (pkey_alg(pkey, why) != want) {
		EVP_PKEY_free(pkey);
		return -1;
	}
	k->pkey = pkey;
	k->alg = want;
	set_kid(k, kid);
	if (key_verify_ctx(k) != 0) {
		*why = "cannot make a verify context";
		jwt_key_clear(k);
		return -1;
	}
	return 0;
}

int
jwt_key_from_pem(struct jwt_key *k, const char *kid, const char *pem,
    size_t len, const char **why)
{
	BIO *bio;
	EVP_PKEY *pkey;

	memset(k, 0, sizeof(*k));
	if (set_kid(k, kid) != 0) {
		*why = "kid too long";
		return -1;
	}
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL) {
		*why = "out of memory";
		return -1;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	if (pkey == NULL) {
		BIO_reset(bio);
		pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	}
	BIO_free(bio);
	if (pkey == NULL) {
		*why = "not a PEM key";
		return -1;
	}
	k->alg = pkey_alg(pkey, why);
	if (k->alg == JWT_ALG_UNKNOWN) {
		EVP_PKEY_free(pkey);
		return -1;
	}
	k->pkey = pkey;
	if (key_verify_ctx(k) != 0) {
		*why = "cannot make a verify context";
		jwt_key_clear(k);
		return -1;
	}
	return 0;
}
