/* test_jwt.c - token verification: RFC examples, every known attack, minting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "base64.h"
#include "cu_main.h"
#include "jwt.h"
#include "jwt_sign.h"

#define SECRET "super-secret-jwt-token-with-at-least-32-characters-long"
#define SUB "3f2a0c1e-8d4b-4c6a-9e1f-2b3c4d5e6f70"
#define NOW 1800000000L

/* The test keyring: ES256 "es1", RS256 "rs1", the HS256 secret for tokens
 * without a kid (or with one the ring lacks), as the service resolves them. */
static struct jwt_key es1, rs1, hs;
static EVP_PKEY *es_priv, *rs_priv;

static const struct jwt_key *
lookup(void *ctx, const char *kid)
{
	(void)ctx;
	if (kid != NULL && strcmp(kid, "es1") == 0)
		return &es1;
	if (kid != NULL && strcmp(kid, "rs1") == 0)
		return &rs1;
	return &hs;
}

static struct jwt_policy policy = { NOW, 30, NULL, 1 };

/* The public half of priv, through PEM, as the service would load it. */
static int
public_key(struct jwt_key *k, const char *kid, EVP_PKEY *priv)
{
	BIO *bio = BIO_new(BIO_s_mem());
	const char *why;
	char *pem;
	long n;
	int rc;

	if (bio == NULL || PEM_write_bio_PUBKEY(bio, priv) != 1) {
		BIO_free(bio);
		return -1;
	}
	n = BIO_get_mem_data(bio, &pem);
	rc = jwt_key_from_pem(k, kid, pem, (size_t)n, &why);
	BIO_free(bio);
	return rc;
}

static int
setup_keys(void)
{
	es_priv = EVP_EC_gen("P-256");
	rs_priv = EVP_RSA_gen(2048);
	if (es_priv == NULL || rs_priv == NULL ||
	    public_key(&es1, "es1", es_priv) != 0 ||
	    public_key(&rs1, "rs1", rs_priv) != 0 ||
	    jwt_key_hs256(&hs, NULL, (const unsigned char *)SECRET,
	    strlen(SECRET)) != 0)
		return -1;
	return 0;
}

static int
teardown_keys(void)
{
	jwt_key_clear(&es1);
	jwt_key_clear(&rs1);
	jwt_key_clear(&hs);
	EVP_PKEY_free(es_priv);
	EVP_PKEY_free(rs_priv);
	return 0;
}

static char *
b64(const void *p, size_t n)
{
	char *s = malloc(b64url_encoded_len(n) + 1);

	b64url_encode(p, n, s);
	return s;
}

/* header.claims, base64url of the given JSON texts, verbatim. */
static char *
signing_input(const char *hdr, const char *claims)
{
	char *h = b64(hdr, strlen(hdr)), *c = b64(claims, strlen(claims));
	char *s = malloc(strlen(h) + strlen(c) + 2);

	sprintf(s, "%s.%s", h, c);
	free(h);
	free(c);
	return s;
}

static char *
join(const char *input, const unsigned char *sig, size_t n)
{
	char *s = b64(sig, n), *t = malloc(strlen(input) + strlen(s) + 2);

	sprintf(t, "%s.%s", input, s);
	free(s);
	return t;
}

static char *
sign_hmac(const char *hdr, const char *claims, const void *key, size_t klen)
{
	unsigned char mac[32];
	unsigned int ml = 0;
	char *in = signing_input(hdr, claims), *t;

	HMAC(EVP_sha256(), key, (int)klen, (unsigned char *)in, strlen(in), mac, &ml);
	t = join(in, mac, ml);
	free(in);
	return t;
}

static size_t
raw_sign(EVP_PKEY *k, const char *in, unsigned char *der, size_t cap)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t n = cap;

	EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k);
	EVP_DigestSign(md, der, &n, (const unsigned char *)in, strlen(in));
	EVP_MD_CTX_free(md);
	return n;
}

/* ES256 with the signature as R||S (n == 64), or as DER (der != 0), or
 * truncated/extended to len bytes. */
static char *
sign_es(const char *hdr, const char *claims, int der, size_t len)
{
	unsigned char d[128], rs[80];
	const unsigned char *p = d;
	char *in = signing_input(hdr, claims), *t;
	size_t n = raw_sign(es_priv, in, d, sizeof(d));
	ECDSA_SIG *es;

	if (der) {
		t = join(in, d, n);
	} else {
		es = d2i_ECDSA_SIG(NULL, &p, (long)n);
		memset(rs, 0, sizeof(rs));
		BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, 32);
		BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + 32, 32);
		ECDSA_SIG_free(es);
		t = join(in, rs, len);
	}
	free(in);
	return t;
}

static char *
sign_rs(const char *hdr, const char *claims)
{
	unsigned char s[512];
	char *in = signing_input(hdr, claims), *t;
	size_t n = raw_sign(rs_priv, in, s, sizeof(s));

	t = join(in, s, n);
	free(in);
	return t;
}

static char *
claims_json(const char *extra)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf), "{\"sub\":\"" SUB "\",\"aud\":\"authenticated\","
	    "\"role\":\"authenticated\",\"exp\":%ld,\"iat\":%ld%s%s}", NOW + 3600,
	    NOW - 10, extra != NULL ? "," : "", extra != NULL ? extra : "");
	return buf;
}

static enum jwt_reason
verify_pol(const char *tok, const struct jwt_policy *p)
{
	struct jwt_claims c;
	enum jwt_reason r = jwt_verify(tok, strlen(tok), lookup, NULL, p, &c);

	if (r == JWT_OK) {
		CU_ASSERT_PTR_NOT_NULL(c.json);
	} else {
		CU_ASSERT_PTR_NULL(c.json);
	}
	jwt_claims_free(&c);
	return r;
}

static enum jwt_reason
verify(const char *tok)
{
	return verify_pol(tok, &policy);
}

/* Verifies and frees. */
static enum jwt_reason
vfree(char *tok)
{
	enum jwt_reason r = verify(tok);

	free(tok);
	return r;
}

/* ---- the RFC's own examples ---- */

static const char rfc_payload[] =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";

static const struct jwt_key *
only(void *ctx, const char *kid)
{
	(void)kid;
	return ctx;
}

/* RFC 7515 A.1: HS256, verified at the example's clock (exp 1300819380);
 * its claims are not a Supabase session, so the full policy says aud. */
static void
test_jwt_rfc7515_a1_hs256(void)
{
	static const char k64[] =
	    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
	char tok[512];
	unsigned char k[64];
	struct jwt_policy p = { 1300819379, 0, NULL, 0 };
	struct jwt_claims c;
	struct jwt_key key;
	long kl = b64url_decode(k64, strlen(k64), k);

	snprintf(tok, sizeof(tok), "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.%s.%s",
	    rfc_payload, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
	CU_ASSERT_EQUAL_FATAL(kl, 64);
	CU_ASSERT_EQUAL_FATAL(jwt_key_hs256(&key, NULL, k, (size_t)kl), 0);
	CU_ASSERT_EQUAL(jwt_verify(tok, strlen(tok), only, &key, &p, &c), JWT_OK);
	CU_ASSERT_EQUAL(c.exp, 1300819380);
	jwt_claims_free(&c);
	p.now = 1300819380;
	CU_ASSERT_EQUAL(jwt_verify(tok, strlen(tok), only, &key, &p, &c), JWT_EEXPIRED);
	p.now = 1300819379;
	p.supabase = 1;
	CU_ASSERT_EQUAL(jwt_verify(tok, strlen(tok), only, &key, &p, &c), JWT_EAUD);
	tok[strlen(tok) - 1] = 'Y';
	p.supabase = 0;
	CU_ASSERT_EQUAL(jwt_verify(tok, strlen(tok), only, &key, &p, &c), JWT_ESIGNATURE);
	jwt_key_clear(&key);
}

/* RFC 7515 A.3: ES256 with the example's P-256 key as a JWK. */
static void
test_jwt_rfc7515_a3_es256(void)
{
	char tok[512];
	struct jwt_policy p = { 1300819379, 0, NULL, 0 };
	struct json_object *jwk = json_tokener_parse(
	    "{\"kty\":\"EC\",\"crv\":\"P-256\","
	    "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
	    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}");
	struct jwt_claims c;
	struct jwt_key key;
	const char *why;

	snprintf(tok, sizeof(tok), "eyJhbGciOiJFUzI1NiJ9.%s.%s", rfc_payload,
	    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q");
	CU_ASSERT_EQUAL_FATAL(jwt_key_from_jwk(&key, jwk, &why), 0);
	CU_ASSERT_EQUAL(key.alg, JWT_ES256);
	CU_ASSERT_EQUAL(jwt_verify(tok, strlen(tok), only, &key, &p, &c), JWT_OK);
	jwt_claims_free(&c);
	p.now = 1300819400;
	CU_ASSERT_EQUAL(jwt_verify(tok, strlen(tok), only, &key, &p, &c), JWT_EEXPIRED);
	jwt_key_clear(&key);
	json_object_put(jwk);
}

/* ---- good tokens ---- */

static void
test_jwt_valid_tokens_of_each_alg(void)
{
	CU_ASSERT_EQUAL(vfree(sign_hmac("{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
	    claims_json(NULL), SECRET, strlen(SECRET))), JWT_OK);
	CU_ASSERT_EQUAL(vfree(sign_es("{\"alg\":\"ES256\",\"kid\":\"es1\"}",
	    claims_json("\"email\":\"a@b.c\""), 0, 64)), JWT_OK);
	CU_ASSERT_EQUAL(vfree(sign_rs("{\"alg\":\"RS256\",\"kid\":\"rs1\"}",
	    claims_json(NULL))), JWT_OK);
	/* aud as an array that contains authenticated */
	CU_ASSERT_EQUAL(vfree(sign_hmac("{\"alg\":\"HS256\"}",
	    "{\"sub\":\"" SUB "\",\"aud\":[\"x\",\"authenticated\"],\"role\":\"authenticated\",\"exp\":1800003600}",
	    SECRET, strlen(SECRET))), JWT_OK);
}

static void
test_jwt_mint_and_verify_roundtrip(void)
{
	struct jwt_mint m = { .sub = SUB, .email = "e@x.io", .ttl = 60, .now = NOW };
	struct jwt_key k = { 0 };
	struct jwt_claims c;
	char *tok;

	tok = jwt_sign_hs256(&m, (const unsigned char *)SECRET, strlen(SECRET));
	CU_ASSERT_EQUAL(jwt_verify(tok, strlen(tok), lookup, NULL, &policy, &c), JWT_OK);
	CU_ASSERT_STRING_EQUAL(c.sub, SUB);
	CU_ASSERT_STRING_EQUAL(c.email, "e@x.io");
	jwt_claims_free(&c);
	free(tok);
	k.alg = JWT_ES256;
	k.pkey = es_priv;
	memcpy(k.kid, "es1", 4);
	tok = jwt_sign(&m, &k);
	CU_ASSERT_EQUAL(vfree(tok), JWT_OK);
	k.alg = JWT_RS256;
	k.pkey = rs_priv;
	memcpy(k.kid, "rs1", 4);
	tok = jwt_sign(&m, &k);
	CU_ASSERT_EQUAL(vfree(tok), JWT_OK);
}

/* ---- one test per attack ---- */

static void
test_jwt_alg_none(void)
{
	static const char *const algs[] = { "none", "None", "NONE", "nOnE" };
	char hdr[64], *in, *tok;
	size_t i;

	for (i = 0; i < 4; i++) {
		snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\"}", algs[i]);
		in = signing_input(hdr, claims_json(NULL));
		tok = malloc(strlen(in) + 8);
		sprintf(tok, "%s.", in);	/* the unsecured form: empty signature */
		CU_ASSERT_EQUAL(verify(tok), JWT_ESEGMENTS);
		sprintf(tok, "%s.AAAA", in);
		CU_ASSERT_EQUAL(verify(tok), JWT_EALG_NONE);
		free(tok);
		free(in);
	}
}

/* HS256 "signed" with the server's public key (PEM or JWK text): the kid
 * names an ES/RS key, which is not an HMAC key; without a kid the only HMAC
 * key is the real secret. */
static void
test_jwt_alg_confusion_hs256_with_public_key(void)
{
	BIO *bio = BIO_new(BIO_s_mem());
	const char *jwk = "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"BBBB\"}";
	char *pem;
	long n;

	PEM_write_bio_PUBKEY(bio, es_priv);
	n = BIO_get_mem_data(bio, &pem);
	CU_ASSERT_EQUAL(vfree(sign_hmac("{\"alg\":\"HS256\",\"kid\":\"es1\"}",
	    claims_json(NULL), pem, (size_t)n)), JWT_EALG_MISMATCH);
	CU_ASSERT_EQUAL(vfree(sign_hmac("{\"alg\":\"HS256\"}",
	    claims_json(NULL), pem, (size_t)n)), JWT_ESIGNATURE);
	CU_ASSERT_EQUAL(vfree(sign_hmac("{\"alg\":\"HS256\",\"kid\":\"rs1\"}",
	    claims_json(NULL), jwk, strlen(jwk))), JWT_EALG_MISMATCH);
	CU_ASSERT_EQUAL(vfree(sign_hmac("{\"alg\":\"HS256\"}",
	    claims_json(NULL), jwk, strlen(jwk))), JWT_ESIGNATURE);
	BIO_free(bio);
}

static void
test_jwt_alg_swap_rs256_es256(void)
{
	CU_ASSERT_EQUAL(vfree(sign_rs("{\"alg\":\"RS256\",\"kid\":\"es1\"}",
	    claims_json(NULL))), JWT_EALG_MISMATCH);
	CU_ASSERT_EQUAL(vfree(sign_es("{\"alg\":\"ES256\",\"kid\":\"rs1\"}",
	    claims_json(NULL), 0, 64)), JWT_EALG_MISMATCH);
	/* the right alg name, but the other key's signature */
	CU_ASSERT_EQUAL(vfree(sign_rs("{\"alg\":\"ES256\",\"kid\":\"es1\"}",
	    claims_json(NULL))), JWT_ESIG_LENGTH);
}

static void
test_jwt_other_hash_or_curve_refused(void)
{
	CU_ASSERT_EQUAL(vfree(sign_es("{\"alg\":\"ES384\",\"kid\":\"es1\"}",
	    claims_json(NULL), 0, 64)), JWT_EALG);
	CU_ASSERT_EQUAL(vfree(sign_rs("{\"alg\":\"RS512\",\"kid\":\"rs1\"}",
	    claims_json(NULL))), JWT_EALG);
	CU_ASSERT_EQUAL(vfree(sign_rs("{\"alg\":\"PS256\",\"kid\":\"rs1\"}",
	    claims_json(NULL))), JWT_EALG);
	CU_ASSERT_EQUAL(vfree(sign_hmac("{\"alg\":\"HS512\"}",
	    claims_json(NULL), SECRET, strlen(SECRET))), JWT_EALG);
	CU_ASSERT_EQUAL(vfree(sign_hmac("{\"typ\":\"JWT\"}",
	    claims_json(NULL), SECRET, strlen(SECRET))), JWT_EALG);
}

static void
test_jwt_es256_r_s_zero(void)
{
	unsigned char zero[64] = { 0 };
	char *in = signing_input("{\"alg\":\"ES256\",\"kid\":\"es1\"}", claims_json(NULL));
	char *tok = join(in, zero, 64);

	CU_ASSERT_EQUAL(verify(tok), JWT_ESIGNATURE);
	free(tok);
	free(in);
}

static void
test_jwt_es256_der_and_wrong_lengths(void)
{
	CU_ASSERT_EQUAL(vfree(sign_es("{\"alg\":\"ES256\",\"kid\":\"es1\"}",
	    claims_json(NULL), 1, 0)), JWT_ESIG_LENGTH);
	CU_ASSERT_EQUAL(vfree(sign_es("{\"alg\":\"ES256\",\"kid\":\"es1\"}",
	    claims_json(NULL), 0, 63)), JWT_ESIG_LENGTH);
	CU_ASSERT_EQUAL(vfree(sign_es("{\"alg\":\"ES256\",\"kid\":\"es1\"}",
	    claims_json(NULL), 0, 65)), JWT_ESIG_LENGTH);
}

/* (r, n - s) verifies too; ECDSA allows it. It is accepted here, and the
 * service's token cache keys both forms alike (test_auth checks that). */
static void
test_jwt_es256_malleated_signature_accepted(void)
{
	char *tok = sign_es("{\"alg\":\"ES256\",\"kid\":\"es1\"}", claims_json(NULL), 0, 64);
	char *dot = strrchr(tok, '.'), *tok2;
	unsigned char sig[64];
	BIGNUM *n = NULL, *s;
	char *in;

	CU_ASSERT_EQUAL(b64url_decode(dot + 1, strlen(dot + 1), sig), 64);
	BN_hex2bn(&n, "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551");
	s = BN_bin2bn(sig + 32, 32, NULL);
	BN_sub(s, n, s);
	BN_bn2binpad(s, sig + 32, 32);
	in = strndup(tok, (size_t)(dot - tok));
	tok2 = join(in, sig, 64);
	CU_ASSERT_STRING_NOT_EQUAL(tok, tok2);
	CU_ASSERT_EQUAL(verify(tok), JWT_OK);
	CU_ASSERT_EQUAL(verify(tok2), JWT_OK);
	BN_free(n);
	BN_free(s);
	free(in);
	free(tok);
	free(tok2);
}

static void
test_jwt_forbidden_headers(void)
{
	static const char *const h[] = {
		"{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
		"{\"alg\":\"HS256\",\"jku\":\"https://evil.example/jwks.json\"}",
		"{\"alg\":\"HS256\",\"x5u\":\"https://evil.example/cert.pem\"}",
		"{\"alg\":\"HS256\",\"jwk\":{\"kty\":\"oct\",\"k\":\"AAAA\"}}",
		"{\"alg\":\"HS256\",\"x5c\":[\"MIIB\"]}",
		"{\"alg\":\"HS256\",\"typ\":\"JWE\"}",
	};
	size_t i;

	for (i = 0; i < sizeof(h) / sizeof(h[0]); i++)
		CU_ASSERT_EQUAL(vfree(sign_hmac(h[i], claims_json(NULL), SECRET,
		    strlen(SECRET))), JWT_EHEADER);
}

/* Time claims at the ends of the integer range: exp + leeway and nbf/iat
 * - leeway are computed without overflow (found by the fuzzer: exp
 * 9223372036854775807 wrapped to the past, refusing a token that never
 * expires, and was undefined behaviour). */
static void
test_jwt_time_claims_overflow(void)
{
	static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	static const char far[] = "{\"sub\":\"" SUB "\",\"aud\":\"authenticated\","
	    "\"role\":\"authenticated\",\"exp\":9223372036854775807}";
	char claims[512];

	CU_ASSERT_EQUAL(vfree(sign_hmac(hdr, far, SECRET, strlen(SECRET))),
	    JWT_OK);
	snprintf(claims, sizeof(claims), "{\"sub\":\"" SUB "\","
	    "\"aud\":\"authenticated\",\"role\":\"authenticated\","
	    "\"exp\":%ld,\"nbf\":-9223372036854775808}", NOW + 3600);
	CU_ASSERT_EQUAL(vfree(sign_hmac(hdr, claims, SECRET, strlen(SECRET))),
	    JWT_OK);
	snprintf(claims, sizeof(claims), "{\"sub\":\"" SUB "\","
	    "\"aud\":\"authenticated\",\"role\":\"authenticated\","
	    "\"exp\":%ld,\"iat\":-9223372036854775808}", NOW + 3600);
	CU_ASSERT_EQUAL(vfree(sign_hmac(hdr, claims, SECRET, strlen(SECRET))),
	    JWT_OK);
	/* the far past stays expired, the far future not yet valid */
	snprintf(claims, sizeof(claims), "{\"sub\":\"" SUB "\","
	    "\"aud\":\"authenticated\",\"role\":\"authenticated\","
	    "\"exp\":-9223372036854775808}");
	CU_ASSERT_EQUAL(vfree(sign_hmac(hdr, claims, SECRET, strlen(SECRET))),
	    JWT_EEXPIRED);
	snprintf(claims, sizeof(claims), "{\"sub\":\"" SUB "\","
	    "\"aud\":\"authenticated\",\"role\":\"authenticated\","
	    "\"exp\":9223372036854775807,\"nbf\":9223372036854775807}");
	CU_ASSERT_EQUAL(vfree(sign_hmac(hdr, claims, SECRET, strlen(SECRET))),
	    JWT_ENBF);
}

/* kid only ever selects an in-memory key; hostile values can't reach a
 * path or a query, and odd ones are refused outright. */
static void
test_jwt_hostile_kid(void)
{
	char hdr[5000], big[4200];

	/* unknown kids fall back to the HS256 secret: an ES token can't pass */
	CU_ASSERT_EQUAL(vfree(sign_es("{\"alg\":\"ES256\",\"kid\":\"../../etc/passwd\"}",
	    claims_json(NULL), 0, 64)), JWT_EALG_MISMATCH);
	CU_ASSERT_EQUAL(vfree(sign_es("{\"alg\":\"ES256\",\"kid\":\"x' OR '1'='1\"}",
	    claims_json(NULL), 0, 64)), JWT_EALG_MISMATCH);
	CU_ASSERT_EQUAL(vfree(sign_es("{\"alg\":\"ES256\",\"kid\":\"es1\\u0000\"}",
	    claims_json(NULL), 0, 64)), JWT_EKID);
	CU_ASSERT_EQUAL(vfree(sign_es("{\"alg\":\"ES256\",\"kid\":\"\"}",
	    claims_json(NULL), 0, 64)), JWT_EKID);
	CU_ASSERT_EQUAL(vfree(sign_es("{\"alg\":\"ES256\",\"kid\":42}",
	    claims_json(NULL), 0, 64)), JWT_EKID);
	CU_ASSERT_EQUAL(vfree(sign_es("{\"alg\":\"ES256\",\"kid\":\"a\\nb\"}",
	    claims_json(NULL), 0, 64)), JWT_EKID);
	memset(big, 'k', 4096);
	big[4096] = '\0';
	snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"kid\":\"%s\"}", big);
	CU_ASSERT_EQUAL(vfree(sign_es(hdr, claims_json(NULL), 0, 64)), JWT_EKID);
}

static void
test_jwt_time_claims(void)
{
	const char *h = "{\"alg\":\"HS256\"}";
	char c[512];

	snprintf(c, sizeof(c), "{\"sub\":\"" SUB "\",\"aud\":\"authenticated\",\"role\":\"authenticated\"}");
	CU_ASSERT_EQUAL(vfree(sign_hmac(h, c, SECRET, strlen(SECRET))), JWT_EEXP_MISSING);
	snprintf(c, sizeof(c), "{\"sub\":\"" SUB "\",\"aud\":\"authenticated\",\"role\":\"authenticated\",\"exp\":%ld}", NOW - 31);
	CU_ASSERT_EQUAL(vfree(sign_hmac(h, c, SECRET, strlen(SECRET))), JWT_EEXPIRED);
	/* inside the 30 s leeway */
	snprintf(c, sizeof(c), "{\"sub\":\"" SUB "\",\"aud\":\"authenticated\",\"role\":\"authenticated\",\"exp\":%ld}", NOW - 29);
	CU_ASSERT_EQUAL(vfree(sign_hmac(h, c, SECRET, strlen(SECRET))), JWT_OK);
	snprintf(c, sizeof(c), "{\"sub\":\"" SUB "\",\"aud\":\"authenticated\",\"role\":\"authenticated\",\"exp\":\"%ld\"}", NOW + 60);
	CU_ASSERT_EQUAL(vfree(sign_hmac(h, c, SECRET, strlen(SECRET))), JWT_EEXPIRED);
	CU_ASSERT_EQUAL(vfree(sign_hmac(h, claims_json("\"nbf\":1800000100"),
	    SECRET, strlen(SECRET))), JWT_ENBF);
	CU_ASSERT_EQUAL(vfree(sign_hmac(h, claims_json("\"nbf\":1800000020"),
	    SECRET, strlen(SECRET))), JWT_OK);
	snprintf(c, sizeof(c), "{\"sub\":\"" SUB "\",\"aud\":\"authenticated\",\"role\":\"authenticated\",\"exp\":%ld,\"iat\":%ld}", NOW + 600, NOW + 300);
	CU_ASSERT_EQUAL(vfree(sign_hmac(h, c, SECRET, strlen(SECRET))), JWT_EIAT);
}

static void
test_jwt_audience_issuer_role_sub(void)
{
	const char *h = "{\"alg\":\"HS256\"}";
	struct jwt_policy p = policy;
	char *tok;

	CU_ASSERT_EQUAL(vfree(sign_hmac(h,
	    "{\"sub\":\"" SUB "\",\"aud\":\"anon\",\"role\":\"authenticated\",\"exp\":1800003600}",
	    SECRET, strlen(SECRET))), JWT_EAUD);
	CU_ASSERT_EQUAL(vfree(sign_hmac(h,
	    "{\"sub\":\"" SUB "\",\"role\":\"authenticated\",\"exp\":1800003600}",
	    SECRET, strlen(SECRET))), JWT_EAUD);
	CU_ASSERT_EQUAL(vfree(sign_hmac(h,
	    "{\"sub\":\"" SUB "\",\"aud\":\"authenticated\",\"role\":\"anon\",\"exp\":1800003600}",
	    SECRET, strlen(SECRET))), JWT_EROLE);
	CU_ASSERT_EQUAL(vfree(sign_hmac(h,
	    "{\"sub\":\"" SUB "\",\"aud\":\"authenticated\",\"role\":\"service_role\",\"exp\":1800003600}",
	    SECRET, strlen(SECRET))), JWT_EROLE);
	CU_ASSERT_EQUAL(vfree(sign_hmac(h,
	    "{\"sub\":\"not-a-uuid\",\"aud\":\"authenticated\",\"role\":\"authenticated\",\"exp\":1800003600}",
	    SECRET, strlen(SECRET))), JWT_ESUB);
	tok = sign_hmac(h, claims_json("\"iss\":\"https://evil.example/auth/v1\""),
	    SECRET, strlen(SECRET));
	p.issuer = "https://abc.supabase.co/auth/v1";
	CU_ASSERT_EQUAL(verify_pol(tok, &p), JWT_EISS);
	free(tok);
	tok = sign_hmac(h, claims_json("\"iss\":\"https://abc.supabase.co/auth/v1\""),
	    SECRET, strlen(SECRET));
	CU_ASSERT_EQUAL(verify_pol(tok, &p), JWT_OK);
	free(tok);
	tok = sign_hmac(h, claims_json(NULL), SECRET, strlen(SECRET));
	CU_ASSERT_EQUAL(verify_pol(tok, &p), JWT_EISS);	/* iss missing */
	free(tok);
}

static void
test_jwt_malformed_structure(void)
{
	char *good = sign_hmac("{\"alg\":\"HS256\"}", claims_json(NULL), SECRET,
	    strlen(SECRET));
	char buf[20000], *p;

	CU_ASSERT_EQUAL(verify(good), JWT_OK);
	/* two segments */
	p = strrchr(good, '.');
	snprintf(buf, sizeof(buf), "%.*s", (int)(p - good), good);
	CU_ASSERT_EQUAL(verify(buf), JWT_ESEGMENTS);
	/* four segments */
	snprintf(buf, sizeof(buf), "%s.AAAA", good);
	CU_ASSERT_EQUAL(verify(buf), JWT_ESEGMENTS);
	/* padding on the signature */
	snprintf(buf, sizeof(buf), "%s=", good);
	CU_ASSERT_EQUAL(verify(buf), JWT_EBASE64);
	/* standard-alphabet and stray characters */
	snprintf(buf, sizeof(buf), "%s", good);
	buf[3] = '+';
	CU_ASSERT_EQUAL(verify(buf), JWT_EBASE64);
	snprintf(buf, sizeof(buf), " %s", good);
	CU_ASSERT_EQUAL(verify(buf), JWT_EBASE64);
	CU_ASSERT_EQUAL(verify(""), JWT_ESEGMENTS);
	CU_ASSERT_EQUAL(verify(".."), JWT_ESEGMENTS);
	/* header that is not an object */
	CU_ASSERT_EQUAL(vfree(sign_hmac("[\"alg\",\"HS256\"]", claims_json(NULL),
	    SECRET, strlen(SECRET))), JWT_EJSON);
	CU_ASSERT_EQUAL(vfree(sign_hmac("{\"alg\":\"HS256\"", claims_json(NULL),
	    SECRET, strlen(SECRET))), JWT_EJSON);
	/* 16 KiB token */
	memset(buf, 'A', 16384);
	buf[100] = '.';
	buf[200] = '.';
	buf[16384] = '\0';
	CU_ASSERT_EQUAL(verify(buf), JWT_ETOO_LARGE);
	free(good);
}

static void
test_jwt_duplicate_members(void)
{
	CU_ASSERT_EQUAL(vfree(sign_hmac("{\"alg\":\"HS256\",\"alg\":\"none\"}",
	    claims_json(NULL), SECRET, strlen(SECRET))), JWT_EDUPLICATE);
	CU_ASSERT_EQUAL(vfree(sign_hmac("{\"alg\":\"HS256\"}",
	    claims_json("\"sub\":\"00000000-0000-0000-0000-000000000000\""),
	    SECRET, strlen(SECRET))), JWT_EDUPLICATE);
	CU_ASSERT_EQUAL(vfree(sign_hmac("{\"alg\":\"HS256\"}",
	    claims_json("\"r\\u006fle\":\"service_role\""),
	    SECRET, strlen(SECRET))), JWT_EDUPLICATE);
}

static void
test_jwt_jwk_refusals(void)
{
	static const char *const bad[] = {
		"{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AAAA\",\"y\":\"AAAA\"}",
		"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a1\"}",
		"{\"kty\":\"EC\",\"crv\":\"P-256\",\"use\":\"enc\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}",
		"{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"RS256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}",
		"{\"kty\":\"oct\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ\"}",
		"{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}",
		"{\"crv\":\"P-256\"}",
	};
	struct json_object *o;
	struct jwt_key k;
	const char *why;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = json_tokener_parse(bad[i]);
		CU_ASSERT_PTR_NOT_NULL_FATAL(o);
		CU_ASSERT_EQUAL(jwt_key_from_jwk(&k, o, &why), -1);
		CU_ASSERT_PTR_NOT_NULL(why);
		json_object_put(o);
	}
}

static void
test_jwt_hs256_known_answer(void)
{
	static const char want[] =
	    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
	    "eyJpc3MiOiJodHRwczovL2V4YW1wbGUuc3VwYWJhc2UuY28vYXV0aC92MSIsInN1YiI6"
	    "IjNmMmEwYzFlLThkNGItNGM2YS05ZTFmLTJiM2M0ZDVlNmY3MCIsImF1ZCI6ImF1dGhl"
	    "bnRpY2F0ZWQiLCJyb2xlIjoiYXV0aGVudGljYXRlZCIsImVtYWlsIjoiZGVtb0BpbWFn"
	    "ZWdlbi5sb2NhbCIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAzNjAwfQ."
	    "C-doX3XKwzQBlhijQkEMctng7jKG3twYHoDik4tg3e4";
	struct jwt_mint m = { .sub = SUB, .email = "demo@imagegen.local",
		.issuer = "https://example.supabase.co/auth/v1", .ttl = 3600,
		.now = 1700000000 };
	char *tok = jwt_sign_hs256(&m, (const unsigned char *)SECRET, strlen(SECRET));

	/* computed independently with Python's hmac and base64 */
	CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
	CU_ASSERT_STRING_EQUAL(tok, want);
	free(tok);
	CU_ASSERT_PTR_NULL(jwt_sign_hs256(&m, (const unsigned char *)"", 0));
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "rfc7515_a1_hs256", test_jwt_rfc7515_a1_hs256 },
		{ "rfc7515_a3_es256", test_jwt_rfc7515_a3_es256 },
		{ "valid_tokens_of_each_alg", test_jwt_valid_tokens_of_each_alg },
		{ "mint_and_verify_roundtrip", test_jwt_mint_and_verify_roundtrip },
		{ "alg_none", test_jwt_alg_none },
		{ "alg_confusion_hs256_with_public_key", test_jwt_alg_confusion_hs256_with_public_key },
		{ "alg_swap_rs256_es256", test_jwt_alg_swap_rs256_es256 },
		{ "other_hash_or_curve_refused", test_jwt_other_hash_or_curve_refused },
		{ "es256_r_s_zero", test_jwt_es256_r_s_zero },
		{ "es256_der_and_wrong_lengths", test_jwt_es256_der_and_wrong_lengths },
		{ "es256_malleated_signature_accepted", test_jwt_es256_malleated_signature_accepted },
		{ "forbidden_headers", test_jwt_forbidden_headers },
		{ "hostile_kid", test_jwt_hostile_kid },
		{ "time_claims", test_jwt_time_claims },
		{ "time_claims_overflow", test_jwt_time_claims_overflow },
		{ "audience_issuer_role_sub", test_jwt_audience_issuer_role_sub },
		{ "malformed_structure", test_jwt_malformed_structure },
		{ "duplicate_members", test_jwt_duplicate_members },
		{ "jwk_refusals", test_jwt_jwk_refusals },
		{ "hs256_known_answer", test_jwt_hs256_known_answer },
		CU_TEST_INFO_NULL
	};

	return cu_run_fixture("jwt", tests, setup_keys, teardown_keys);
}
