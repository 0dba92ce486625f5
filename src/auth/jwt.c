/* jwt.c - JWS compact tokens: strict parsing, key-pinned verification, minting. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "base64.h"
#include "json_strict.h"
#include "jwt.h"
#include "secret.h"

static const char *const reason_names[JWT_REASON_COUNT] = {
	[JWT_OK] = "ok",
	[JWT_ETOO_LARGE] = "token too large",
	[JWT_ESEGMENTS] = "not three non-empty segments",
	[JWT_EBASE64] = "bad base64url",
	[JWT_EJSON] = "header or claims not a JSON object",
	[JWT_EDUPLICATE] = "duplicate JSON member",
	[JWT_EALG_NONE] = "alg none refused",
	[JWT_EALG] = "missing or unsupported alg",
	[JWT_EHEADER] = "forbidden header parameter",
	[JWT_EKID] = "malformed kid",
	[JWT_ENOKEY] = "no key for kid",
	[JWT_EALG_MISMATCH] = "alg does not match the key",
	[JWT_ESIG_LENGTH] = "signature length wrong for alg",
	[JWT_ESIGNATURE] = "bad signature",
	[JWT_EEXP_MISSING] = "exp missing",
	[JWT_EEXPIRED] = "expired",
	[JWT_ENBF] = "not valid yet (nbf)",
	[JWT_EIAT] = "issued in the future (iat)",
	[JWT_EAUD] = "aud lacks authenticated",
	[JWT_EISS] = "wrong iss",
	[JWT_EROLE] = "role is not authenticated",
	[JWT_ESUB] = "sub missing or not a UUID",
	[JWT_EINTERNAL] = "internal error",
};

const char *
jwt_reason_str(enum jwt_reason r)
{
	return (int)r >= 0 && r < JWT_REASON_COUNT ? reason_names[r] : "unknown";
}

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

int
jwt_is_uuid(const char *s)
{
	int i;

	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	return s[36] == '\0';
}

/* ---- keys -------------------------------------------------------------- */

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

static const char *
jwk_str(struct json_object *o, const char *name)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, name, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
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
	const char *crv = jwk_str(o, "crv");
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

	memset(k, 0, sizeof(*k));
	*why = NULL;
	if (!json_object_is_type(o, json_type_object)) {
		*why = "JWK is not an object";
		return -1;
	}
	kty = jwk_str(o, "kty");
	use = jwk_str(o, "use");
	alg = jwk_str(o, "alg");
	kid = jwk_str(o, "kid");
	if (use != NULL && strcmp(use, "sig") != 0) {
		*why = "JWK use is not sig";
		return -1;
	}
	if (json_object_object_get_ex(o, "d", NULL)) {
		*why = "JWK holds a private key";
		return -1;
	}
	if (kid != NULL && (strlen(kid) > JWT_MAX_KID || strlen(kid) !=
	    (size_t)json_object_get_string_len(json_object_object_get(o, "kid")))) {
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

/* ---- signatures -------------------------------------------------------- */

/* SHA-256 of msg with the digest fetched once. 0, or -1. */
static int
sha256(const unsigned char *msg, size_t len, unsigned char out[32])
{
	static EVP_MD *md;

	if (md == NULL)
		md = EVP_MD_fetch(NULL, "SHA256", NULL);
	return md != NULL && EVP_Digest(msg, len, out, NULL, md, NULL) == 1 ? 0 : -1;
}

static enum jwt_reason
verify_ctx(EVP_PKEY_CTX *ctx, const unsigned char *msg, size_t msglen,
    const unsigned char *sig, size_t siglen)
{
	unsigned char dgst[32];

	if (ctx == NULL || sha256(msg, msglen, dgst) != 0)
		return JWT_EINTERNAL;
	return EVP_PKEY_verify(ctx, sig, siglen, dgst, sizeof(dgst)) == 1 ?
	    JWT_OK : JWT_ESIGNATURE;
}

static enum jwt_reason
verify_es256(EVP_PKEY_CTX *ctx, const unsigned char *msg, size_t msglen,
    const unsigned char *sig, size_t siglen)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *der = NULL;
	enum jwt_reason rc = JWT_EINTERNAL;
	int derlen;

	/* JWS ES256 is exactly R||S, 32 bytes each (RFC 7518 §3.4); a DER
	 * signature or any other length is refused before OpenSSL sees it. */
	if (siglen != 64)
		return JWT_ESIG_LENGTH;
	r = BN_bin2bn(sig, 32, NULL);
	s = BN_bin2bn(sig + 32, 32, NULL);
	es = ECDSA_SIG_new();
	if (r == NULL || s == NULL || es == NULL)
		goto out;
	if (BN_is_zero(r) || BN_is_zero(s)) {
		rc = JWT_ESIGNATURE;
		goto out;
	}
	if (ECDSA_SIG_set0(es, r, s) != 1)
		goto out;
	r = s = NULL;
	derlen = i2d_ECDSA_SIG(es, &der);
	if (derlen <= 0)
		goto out;
	rc = verify_ctx(ctx, msg, msglen, der, (size_t)derlen);
out:
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	BN_free(r);
	BN_free(s);
	return rc;
}

enum jwt_reason
jwt_verify_sig(const struct jwt_key *k, const unsigned char *msg, size_t msglen,
    const unsigned char *sig, size_t siglen)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;

	switch (k->alg) {
	case JWT_HS256:
		if (siglen != 32)
			return JWT_ESIG_LENGTH;
		if (HMAC(EVP_sha256(), k->secret, (int)k->secret_len, msg, msglen,
		    mac, &maclen) == NULL || maclen != 32)
			return JWT_EINTERNAL;
		return CRYPTO_memcmp(mac, sig, 32) == 0 ? JWT_OK : JWT_ESIGNATURE;
	case JWT_ES256:
		return verify_es256(k->vctx, msg, msglen, sig, siglen);
	case JWT_RS256:
		if (siglen != (size_t)EVP_PKEY_get_size(k->pkey))
			return JWT_ESIG_LENGTH;
		return verify_ctx(k->vctx, msg, msglen, sig, siglen);
	default:
		return JWT_EALG;
	}
}

/* ---- tokens ------------------------------------------------------------ */

/* Decodes a base64url segment, checks it has no duplicate members, and
 * parses it as a JSON object. */
static enum jwt_reason
decode_json(const char *seg, size_t len, struct json_object **out, char **text)
{
	unsigned char *buf;
	struct json_object *o = NULL;
	struct json_tokener *tk = NULL;
	enum jwt_reason r = JWT_EINTERNAL;
	long n;

	*out = NULL;
	buf = malloc(len / 4 * 3 + 4);
	if (buf == NULL)
		return JWT_EINTERNAL;
	n = b64url_decode(seg, len, buf);
	if (n < 0) {
		r = JWT_EBASE64;
		goto out;
	}
	buf[n] = '\0';
	if (memchr(buf, '\0', (size_t)n) != NULL) {
		r = JWT_EJSON;
		goto out;
	}
	if (json_no_duplicate_members((const char *)buf, (size_t)n) != 0) {
		/* Malformed JSON also fails here; tell the two apart. */
		o = json_tokener_parse((const char *)buf);
		r = o != NULL ? JWT_EDUPLICATE : JWT_EJSON;
		goto out;
	}
	tk = json_tokener_new_ex(32);
	if (tk == NULL)
		goto out;
	json_tokener_set_flags(tk, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tk, (const char *)buf, (int)n);
	if (o == NULL || json_tokener_get_error(tk) != json_tokener_success ||
	    !json_object_is_type(o, json_type_object)) {
		r = JWT_EJSON;
		goto out;
	}
	*out = o;
	o = NULL;
	if (text != NULL) {
		*text = (char *)buf;
		buf = NULL;
	}
	r = JWT_OK;
out:
	json_object_put(o);
	if (tk != NULL)
		json_tokener_free(tk);
	free(buf);
	return r;
}

/* A NumericDate claim; 0 when absent, 1 when present in *v, -1 when not
 * a finite number. */
static int
get_time(struct json_object *claims, const char *name, long *v)
{
	struct json_object *o;
	double d;

	if (!json_object_object_get_ex(claims, name, &o))
		return 0;
	if (json_object_is_type(o, json_type_int)) {
		*v = (long)json_object_get_int64(o);
		return 1;
	}
	if (json_object_is_type(o, json_type_double)) {
		d = json_object_get_double(o);
		if (!isfinite(d) || d > 1e15 || d < -1e15)
			return -1;
		*v = (long)floor(d);
		return 1;
	}
	return -1;
}

static int
aud_ok(struct json_object *claims)
{
	struct json_object *aud, *v;
	size_t i, n;

	if (!json_object_object_get_ex(claims, "aud", &aud))
		return 0;
	if (json_object_is_type(aud, json_type_string))
		return strcmp(json_object_get_string(aud), "authenticated") == 0;
	if (!json_object_is_type(aud, json_type_array))
		return 0;
	n = json_object_array_length(aud);
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(aud, i);
		if (json_object_is_type(v, json_type_string) &&
		    strcmp(json_object_get_string(v), "authenticated") == 0)
			return 1;
	}
	return 0;
}

static const char *
claim_str(struct json_object *claims, const char *name)
{
	struct json_object *v;

	if (!json_object_object_get_ex(claims, name, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	/* An embedded NUL would make the C string lie about the claim. */
	if (strlen(json_object_get_string(v)) !=
	    (size_t)json_object_get_string_len(v))
		return NULL;
	return json_object_get_string(v);
}

static enum jwt_reason
check_header(struct json_object *h, enum jwt_alg *alg, const char **kid)
{
	static const char *const forbidden[] = { "crit", "jku", "x5u", "jwk",
		"x5c", "x5t", "x5t#S256" };
	struct json_object *v;
	const char *s;
	size_t i;

	if (!json_object_object_get_ex(h, "alg", &v) ||
	    !json_object_is_type(v, json_type_string))
		return JWT_EALG;
	s = json_object_get_string(v);
	if (strcasecmp(s, "none") == 0)
		return JWT_EALG_NONE;
	*alg = jwt_alg_parse(s);
	if (*alg == JWT_ALG_UNKNOWN)
		return JWT_EALG;
	for (i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++)
		if (json_object_object_get_ex(h, forbidden[i], NULL))
			return JWT_EHEADER;
	if (json_object_object_get_ex(h, "typ", &v) &&
	    (!json_object_is_type(v, json_type_string) ||
	    strcasecmp(json_object_get_string(v), "JWT") != 0))
		return JWT_EHEADER;
	*kid = NULL;
	if (json_object_object_get_ex(h, "kid", &v)) {
		if (!json_object_is_type(v, json_type_string))
			return JWT_EKID;
		s = json_object_get_string(v);
		if (json_object_get_string_len(v) == 0 ||
		    json_object_get_string_len(v) > JWT_MAX_KID ||
		    strlen(s) != (size_t)json_object_get_string_len(v))
			return JWT_EKID;
		for (i = 0; s[i] != '\0'; i++)
			if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
				return JWT_EKID;
		*kid = s;
	}
	return JWT_OK;
}

static enum jwt_reason
check_claims(struct json_object *c, const struct jwt_policy *p,
    struct jwt_claims *out)
{
	const char *s;
	long exp = 0, t = 0;
	int has;

	has = get_time(c, "exp", &exp);
	if (has == 0)
		return JWT_EEXP_MISSING;
	if (has < 0 || exp + p->leeway <= p->now)
		return JWT_EEXPIRED;
	has = get_time(c, "nbf", &t);
	if (has < 0 || (has > 0 && t - p->leeway > p->now))
		return JWT_ENBF;
	has = get_time(c, "iat", &t);
	if (has < 0 || (has > 0 && t - p->leeway > p->now))
		return JWT_EIAT;
	out->exp = exp;
	if (p->issuer != NULL) {
		s = claim_str(c, "iss");
		if (s == NULL || strcmp(s, p->issuer) != 0)
			return JWT_EISS;
	}
	if (!p->supabase)
		return JWT_OK;
	if (!aud_ok(c))
		return JWT_EAUD;
	s = claim_str(c, "role");
	if (s == NULL || strcmp(s, "authenticated") != 0)
		return JWT_EROLE;
	memcpy(out->role, "authenticated", sizeof("authenticated"));
	s = claim_str(c, "sub");
	if (s == NULL || strlen(s) != 36 || !jwt_is_uuid(s))
		return JWT_ESUB;
	memcpy(out->sub, s, 37);
	s = claim_str(c, "email");
	if (s != NULL) {
		out->email = strdup(s);
		if (out->email == NULL)
			return JWT_EINTERNAL;
	}
	return JWT_OK;
}

enum jwt_reason
jwt_verify(const char *tok, size_t len, jwt_key_lookup lookup, void *ctx,
    const struct jwt_policy *p, struct jwt_claims *out)
{
	struct json_object *hdr = NULL, *claims = NULL;
	const struct jwt_key *key;
	const char *d1, *d2, *kid = NULL;
	unsigned char sig[1024];
	enum jwt_alg alg = JWT_ALG_UNKNOWN;
	enum jwt_reason r;
	char *ctext = NULL;
	long siglen;

	memset(out, 0, sizeof(*out));
	if (len > JWT_MAX_TOKEN)
		return JWT_ETOO_LARGE;
	d1 = memchr(tok, '.', len);
	d2 = d1 != NULL ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
	if (d1 == NULL || d2 == NULL || d1 == tok || d2 == d1 + 1 ||
	    d2 + 1 == tok + len ||
	    memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)) != NULL)
		return JWT_ESEGMENTS;

	r = decode_json(tok, (size_t)(d1 - tok), &hdr, NULL);
	if (r != JWT_OK)
		goto out;
	r = check_header(hdr, &alg, &kid);
	if (r != JWT_OK)
		goto out;
	key = lookup(ctx, kid);
	if (key == NULL) {
		r = JWT_ENOKEY;
		goto out;
	}
	/* The key decides: a header naming any other algorithm is refused,
	 * so a public key can never be used as an HMAC secret. */
	if (key->alg != alg) {
		r = JWT_EALG_MISMATCH;
		goto out;
	}
	if ((size_t)(tok + len - (d2 + 1)) > sizeof(sig) / 3 * 4) {
		r = JWT_ESIG_LENGTH;
		goto out;
	}
	siglen = b64url_decode(d2 + 1, (size_t)(tok + len - (d2 + 1)), sig);
	if (siglen < 0) {
		r = JWT_EBASE64;
		goto out;
	}
	r = jwt_verify_sig(key, (const unsigned char *)tok, (size_t)(d2 - tok),
	    sig, (size_t)siglen);
	if (r != JWT_OK)
		goto out;
	r = decode_json(d1 + 1, (size_t)(d2 - d1 - 1), &claims, &ctext);
	if (r != JWT_OK)
		goto out;
	r = check_claims(claims, p, out);
	if (r != JWT_OK)
		goto out;
	out->json = ctext;
	ctext = NULL;
out:
	if (r != JWT_OK)
		jwt_claims_free(out);
	free(ctext);
	json_object_put(hdr);
	json_object_put(claims);
	return r;
}

void
jwt_claims_free(struct jwt_claims *c)
{
	free(c->email);
	free(c->json);
	memset(c, 0, sizeof(*c));
}

/* ---- minting ----------------------------------------------------------- */

/* "header.claims" in base64url, malloc'd; NULL on OOM. */
static char *
jws_signing_input(struct json_object *hdr, struct json_object *claims)
{
	const char *h, *c;
	size_t hl, cl, n;
	char *out;

	h = json_object_to_json_string_length(hdr, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &hl);
	c = json_object_to_json_string_length(claims, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &cl);
	if (h == NULL || c == NULL)
		return NULL;
	out = malloc(b64url_encoded_len(hl) + b64url_encoded_len(cl) + 2);
	if (out == NULL)
		return NULL;
	n = b64url_encode((const unsigned char *)h, hl, out);
	out[n++] = '.';
	b64url_encode((const unsigned char *)c, cl, out + n);
	return out;
}

/* Signs input with k into sig (at least 512 bytes). Returns the length,
 * or 0 on failure. */
static size_t
sign_bytes(const struct jwt_key *k, const char *input, unsigned char *sig)
{
	EVP_MD_CTX *md = NULL;
	ECDSA_SIG *es = NULL;
	const unsigned char *p;
	unsigned char der[256];
	unsigned int maclen = 0;
	size_t n = 0, derlen = sizeof(der);

	if (k->alg == JWT_HS256) {
		if (HMAC(EVP_sha256(), k->secret, (int)k->secret_len,
		    (const unsigned char *)input, strlen(input), sig, &maclen) == NULL)
			return 0;
		return maclen;
	}
	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL,
	    k->pkey) != 1)
		goto out;
	if (k->alg == JWT_RS256) {
		n = 512;
		if (EVP_DigestSign(md, sig, &n, (const unsigned char *)input,
		    strlen(input)) != 1)
			n = 0;
		goto out;
	}
	if (EVP_DigestSign(md, der, &derlen, (const unsigned char *)input,
	    strlen(input)) != 1)
		goto out;
	p = der;
	es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	if (es == NULL ||
	    BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32) != 32 ||
	    BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32) != 32)
		goto out;
	n = 64;
out:
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	return n;
}

char *
jwt_sign(const struct jwt_mint *m, const struct jwt_key *k)
{
	struct json_object *hdr = NULL, *claims = NULL;
	unsigned char sig[512];
	char *input = NULL, *tok = NULL;
	size_t n, siglen;
	long now;

	if (m->sub == NULL || m->ttl <= 0 || k->alg == JWT_ALG_UNKNOWN)
		goto out;
	now = m->now ? m->now : (long)time(NULL);
	hdr = json_object_new_object();
	claims = json_object_new_object();
	if (hdr == NULL || claims == NULL)
		goto out;
	json_object_object_add(hdr, "alg",
	    json_object_new_string(jwt_alg_name(k->alg)));
	json_object_object_add(hdr, "typ", json_object_new_string("JWT"));
	if (k->kid[0] != '\0')
		json_object_object_add(hdr, "kid", json_object_new_string(k->kid));
	if (m->issuer != NULL)
		json_object_object_add(claims, "iss",
		    json_object_new_string(m->issuer));
	json_object_object_add(claims, "sub", json_object_new_string(m->sub));
	json_object_object_add(claims, "aud",
	    json_object_new_string("authenticated"));
	json_object_object_add(claims, "role", json_object_new_string(
	    m->role != NULL ? m->role : "authenticated"));
	if (m->email != NULL)
		json_object_object_add(claims, "email",
		    json_object_new_string(m->email));
	json_object_object_add(claims, "iat", json_object_new_int64(now));
	json_object_object_add(claims, "exp", json_object_new_int64(now + m->ttl));
	input = jws_signing_input(hdr, claims);
	if (input == NULL)
		goto out;
	siglen = sign_bytes(k, input, sig);
	if (siglen == 0)
		goto out;
	n = strlen(input);
	tok = malloc(n + 1 + b64url_encoded_len(siglen) + 1);
	if (tok == NULL)
		goto out;
	memcpy(tok, input, n);
	tok[n] = '.';
	b64url_encode(sig, siglen, tok + n + 1);
out:
	json_object_put(hdr);
	json_object_put(claims);
	free(input);
	return tok;
}

char *
jwt_sign_hs256(const struct jwt_mint *m, const unsigned char *secret,
    size_t secret_len)
{
	struct jwt_key k;
	char *tok;

	if (secret == NULL || jwt_key_hs256(&k, NULL, secret, secret_len) != 0)
		return NULL;
	tok = jwt_sign(m, &k);
	jwt_key_clear(&k);
	return tok;
}
