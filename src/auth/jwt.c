/* jwt.c - JWS compact tokens: strict parsing and key-pinned verification. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>

#include "base64.h"
#include "json_strict.h"
#include "jwt.h"
#include "uuid.h"

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
	const char *s;
	size_t len = 0;

	s = json_strict_str(claims, name, &len);
	/* An embedded NUL would make the C string lie about the claim. */
	if (s == NULL || strlen(s) != len)
		return NULL;
	return s;
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

/* a + b, saturated at LONG_MIN and LONG_MAX: a time claim may be any
 * integer a token carries, and a claim at the end of the range must
 * neither wrap nor be undefined. Can't fail. */
static long
time_add(long a, long b)
{
	long r;

	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? LONG_MAX : LONG_MIN;
	return r;
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
	if (has < 0 || time_add(exp, p->leeway) <= p->now)
		return JWT_EEXPIRED;
	has = get_time(c, "nbf", &t);
	if (has < 0 || (has > 0 && time_add(t, -p->leeway) > p->now))
		return JWT_ENBF;
	has = get_time(c, "iat", &t);
	if (has < 0 || (has > 0 && time_add(t, -p->leeway) > p->now))
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
	if (s == NULL || strlen(s) != 36 || !uuid_valid(s))
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
