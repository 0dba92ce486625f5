/* jwt_sign.c - minting tokens (the CLI's `imagegen token`, the tests). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base64.h"
#include "jwt_sign.h"

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
