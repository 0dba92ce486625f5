/* jwt.c - JSON Web Tokens as Supabase issues them. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "b64.h"
#include "jwt.h"

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

char *
jwt_sign_hs256(const struct jwt_mint *m, const unsigned char *secret,
    size_t secret_len)
{
	struct json_object *hdr = NULL, *claims = NULL;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char *input = NULL, *tok = NULL;
	size_t n;
	long now;

	if (m->sub == NULL || secret == NULL || secret_len == 0 || m->ttl <= 0)
		goto out;
	now = m->now ? m->now : (long)time(NULL);
	hdr = json_object_new_object();
	claims = json_object_new_object();
	if (hdr == NULL || claims == NULL)
		goto out;
	json_object_object_add(hdr, "alg", json_object_new_string("HS256"));
	json_object_object_add(hdr, "typ", json_object_new_string("JWT"));
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
	if (HMAC(EVP_sha256(), secret, (int)secret_len,
	    (const unsigned char *)input, strlen(input), mac, &maclen) == NULL)
		goto out;
	n = strlen(input);
	tok = malloc(n + 1 + b64url_encoded_len(maclen) + 1);
	if (tok == NULL)
		goto out;
	memcpy(tok, input, n);
	tok[n] = '.';
	b64url_encode(mac, maclen, tok + n + 1);
out:
	json_object_put(hdr);
	json_object_put(claims);
	free(input);
	return tok;
}
