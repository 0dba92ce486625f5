/* test_auth.c - keyring, JWKS refresh and the verified-token cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "auth.h"
#include "base64.h"
#include "cu_main.h"
#include "jwks.h"
#include "jwt_sign.h"

#define SECRET "super-secret-jwt-token-with-at-least-32-characters-long"
#define SUB "3f2a0c1e-8d4b-4c6a-9e1f-2b3c4d5e6f70"
#define NOW 1800000000L

static char jwks_path[] = "/tmp/imagegen-jwks-XXXXXX";
static EVP_PKEY *k1, *k2;
static struct cfg cfg;

/* Writes a JWKS with the public halves of the given keys. */
static int
write_jwks(EVP_PKEY *a, const char *kida, EVP_PKEY *b, const char *kidb)
{
	EVP_PKEY *keys[2] = { a, b };
	const char *kids[2] = { kida, kidb };
	unsigned char pub[65];
	char x[64], y[64];
	size_t n;
	FILE *f = fopen(jwks_path, "w");
	int i, first = 1;

	if (f == NULL)
		return -1;
	fputs("{\"keys\":[", f);
	for (i = 0; i < 2; i++) {
		if (keys[i] == NULL)
			continue;
		if (EVP_PKEY_get_octet_string_param(keys[i], OSSL_PKEY_PARAM_PUB_KEY,
		    pub, sizeof(pub), &n) != 1 || n != 65) {
			fclose(f);
			return -1;
		}
		b64url_encode(pub + 1, 32, x);
		b64url_encode(pub + 33, 32, y);
		fprintf(f, "%s{\"kty\":\"EC\",\"crv\":\"P-256\",\"use\":\"sig\","
		    "\"alg\":\"ES256\",\"kid\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"}",
		    first ? "" : ",", kids[i], x, y);
		first = 0;
	}
	/* a symmetric key in a JWKS is skipped, never used */
	fputs(",{\"kty\":\"oct\",\"kid\":\"hs\",\"k\":\"c2VjcmV0\"}]}", f);
	return fclose(f);
}

static char *
mint(EVP_PKEY *priv, const char *kid, long now, long ttl)
{
	struct jwt_mint m = { .sub = SUB, .ttl = ttl, .now = now };
	struct jwt_key k = { 0 };

	if (priv == NULL)
		return jwt_sign_hs256(&m, (const unsigned char *)SECRET, strlen(SECRET));
	k.alg = JWT_ES256;
	k.pkey = priv;
	snprintf(k.kid, sizeof(k.kid), "%s", kid);
	return jwt_sign(&m, &k);
}

static enum jwt_reason
check(const char *tok, long now, int *cached)
{
	struct jwt_claims c;
	enum jwt_reason r = auth_verify(tok, strlen(tok), now, &c, cached);

	if (r == JWT_OK)
		CU_ASSERT_STRING_EQUAL(c.sub, SUB);
	jwt_claims_free(&c);
	return r;
}

static int
setup(void)
{
	int fd = mkstemp(jwks_path);

	if (fd < 0)
		return -1;
	close(fd);
	k1 = EVP_EC_gen("P-256");
	k2 = EVP_EC_gen("P-256");
	if (k1 == NULL || k2 == NULL || write_jwks(k1, "k1", NULL, NULL) != 0)
		return -1;
	cfg.jwt_secret = (char *)SECRET;
	cfg.jwks_url = jwks_path;
	cfg.jwt_leeway = 30;
	cfg.jwks_ttl = 600;
	cfg.jwks_min_refresh = 0;
	cfg.token_cache_size = 64;
	return auth_init_child(&cfg);
}

static int
teardown(void)
{
	auth_cleanup();
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	unlink(jwks_path);
	return 0;
}

static void
test_auth_jwks_key_and_hs256_secret(void)
{
	char *es = mint(k1, "k1", NOW, 3600), *hs = mint(NULL, NULL, NOW, 3600);
	int cached = -1;

	CU_ASSERT_EQUAL(check(es, NOW, &cached), JWT_OK);
	CU_ASSERT_EQUAL(cached, 0);
	CU_ASSERT_EQUAL(check(hs, NOW, &cached), JWT_OK);
	CU_ASSERT_EQUAL(cached, 0);
	free(es);
	free(hs);
}

static void
test_auth_token_cache_hits_until_exp(void)
{
	char *tok = mint(k1, "k1", NOW, 120);
	struct auth_stats before, after;
	int cached = -1;

	CU_ASSERT_EQUAL(check(tok, NOW, &cached), JWT_OK);
	CU_ASSERT_EQUAL(cached, 0);
	auth_get_stats(&before);
	CU_ASSERT_EQUAL(check(tok, NOW + 1, &cached), JWT_OK);
	CU_ASSERT_EQUAL(cached, 1);
	auth_get_stats(&after);
	CU_ASSERT_EQUAL(after.cache_hits, before.cache_hits + 1);
	CU_ASSERT_EQUAL(after.verified, before.verified);
	/* past exp the cache does not answer; within the leeway a full
	 * verification still does, past it the token is refused */
	CU_ASSERT_EQUAL(check(tok, NOW + 125, &cached), JWT_OK);
	CU_ASSERT_EQUAL(cached, 0);
	CU_ASSERT_EQUAL(check(tok, NOW + 151, &cached), JWT_EEXPIRED);
	CU_ASSERT_EQUAL(cached, 0);
	free(tok);
}

/* A tampered signature with a cached header and payload is not a hit. */
static void
test_auth_token_cache_keys_on_signature(void)
{
	char *tok = mint(k1, "k1", NOW, 600);
	int cached = -1;
	char *last = tok + strlen(tok) - 2;

	CU_ASSERT_EQUAL(check(tok, NOW, &cached), JWT_OK);
	*last = *last == 'A' ? 'B' : 'A';
	CU_ASSERT_NOT_EQUAL(check(tok, NOW, &cached), JWT_OK);
	CU_ASSERT_EQUAL(cached, 0);
	free(tok);
}

/* (r, n-s) is the same token to the cache: one entry, a hit. */
static void
test_auth_malleated_es256_is_same_token(void)
{
	char *tok = mint(k1, "k1", NOW + 7, 600), *dot, *tok2;
	unsigned char sig[64];
	struct auth_stats a, b;
	BIGNUM *n = NULL, *s;
	int cached = -1;

	dot = strrchr(tok, '.');
	CU_ASSERT_EQUAL_FATAL(b64url_decode(dot + 1, strlen(dot + 1), sig), 64);
	BN_hex2bn(&n, "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551");
	s = BN_bin2bn(sig + 32, 32, NULL);
	BN_sub(s, n, s);
	BN_bn2binpad(s, sig + 32, 32);
	tok2 = malloc(strlen(tok) + 8);
	memcpy(tok2, tok, (size_t)(dot - tok) + 1);
	b64url_encode(sig, 64, tok2 + (dot - tok) + 1);
	CU_ASSERT_STRING_NOT_EQUAL(tok, tok2);

	CU_ASSERT_EQUAL(check(tok, NOW + 7, &cached), JWT_OK);
	auth_get_stats(&a);
	CU_ASSERT_EQUAL(check(tok2, NOW + 7, &cached), JWT_OK);
	CU_ASSERT_EQUAL(cached, 1);
	auth_get_stats(&b);
	CU_ASSERT_EQUAL(b.cache_entries, a.cache_entries);
	CU_ASSERT_EQUAL(b.verified, a.verified);
	BN_free(n);
	BN_free(s);
	free(tok);
	free(tok2);
}

/* A new kid in the JWKS is picked up on first sight, without a restart. */
static void
test_auth_jwks_rotation(void)
{
	char *tok = mint(k2, "k2", NOW, 600);
	int cached = -1;

	CU_ASSERT_EQUAL_FATAL(write_jwks(k1, "k1", k2, "k2"), 0);
	CU_ASSERT_EQUAL(check(tok, NOW + 2, &cached), JWT_OK);
	free(tok);
}

/* The JWKS endpoint gone and the set stale: the known keys still work. */
static void
test_auth_jwks_down_keeps_known_keys(void)
{
	char *tok = mint(k2, "k2", NOW + 100, 3600);
	char *unknown = mint(k1, "k9", NOW + 100, 3600);
	int cached = -1;

	unlink(jwks_path);
	CU_ASSERT_EQUAL(check(tok, NOW + 1000, &cached), JWT_OK);
	CU_ASSERT_EQUAL(cached, 0);
	CU_ASSERT_EQUAL(check(unknown, NOW + 1000, &cached), JWT_EALG_MISMATCH);
	free(tok);
	free(unknown);
}

static void
test_auth_jwks_parse_skips_unfit_keys(void)
{
	static const char doc[] = "{\"keys\":["
	    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"a\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"},"
	    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"use\":\"enc\",\"kid\":\"b\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"},"
	    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ES384\",\"kid\":\"c\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"},"
	    "{\"kty\":\"oct\",\"kid\":\"d\",\"k\":\"AAAA\"}]}";
	struct jwt_key keys[JWKS_MAX_KEYS];
	int skipped = 0, n;

	n = jwks_parse(doc, sizeof(doc) - 1, keys, JWKS_MAX_KEYS, &skipped);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(skipped, 3);
	CU_ASSERT_STRING_EQUAL(keys[0].kid, "a");
	if (n == 1)
		jwt_key_clear(&keys[0]);
	CU_ASSERT_EQUAL(jwks_parse("[]", 2, keys, JWKS_MAX_KEYS, &skipped), -1);
	CU_ASSERT_EQUAL(jwks_parse("{\"keys\":{}}", 11, keys, JWKS_MAX_KEYS, &skipped), -1);
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "jwks_key_and_hs256_secret", test_auth_jwks_key_and_hs256_secret },
		{ "token_cache_hits_until_exp", test_auth_token_cache_hits_until_exp },
		{ "token_cache_keys_on_signature", test_auth_token_cache_keys_on_signature },
		{ "malleated_es256_is_same_token", test_auth_malleated_es256_is_same_token },
		{ "jwks_rotation", test_auth_jwks_rotation },
		{ "jwks_down_keeps_known_keys", test_auth_jwks_down_keeps_known_keys },
		{ "jwks_parse_skips_unfit_keys", test_auth_jwks_parse_skips_unfit_keys },
		CU_TEST_INFO_NULL
	};

	return cu_run_fixture("auth", tests, setup, teardown);
}
