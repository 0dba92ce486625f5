/*
 * fuzz_jwt_claims.c - tokens built from a fuzzed header and claims JSON
 * (the input's first line and the rest), signed HS256 with the test
 * secret, through jwt_verify(): every token reaches the claim checks
 * that a random token never gets past the signature to. Found the
 * overflow of exp + leeway (tests/unit/test_jwt time_claims_overflow).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base64.h"
#include "harness.h"
#include "jwt.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_quiet();
	fz_jwt_keys();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct jwt_policy pol[] = {
		{ FZ_NOW, FZ_LEEWAY, NULL, 1 },
		{ FZ_NOW, 0, "https://ref.supabase.co/auth/v1", 0 },
	};
	struct fz_part part[2];
	struct jwt_claims c;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int ml = 0;
	size_t np, hl, cl, n, i;
	char *tok;
	enum jwt_reason r;

	if (size > JWT_MAX_TOKEN)
		return 0;
	np = fz_split(data, size, '\n', part, 2);
	if (np != 2) {
		fz_parts_free(part, np);
		return 0;
	}
	hl = b64url_encoded_len(part[0].n);
	cl = b64url_encoded_len(part[1].n);
	tok = malloc(hl + cl + 2 + b64url_encoded_len(32) + 1);
	if (tok == NULL)
		abort();
	n = b64url_encode((const unsigned char *)part[0].s, part[0].n, tok);
	tok[n++] = '.';
	n += b64url_encode((const unsigned char *)part[1].s, part[1].n, tok + n);
	if (HMAC(EVP_sha256(), FZ_JWT_SECRET, (int)strlen(FZ_JWT_SECRET),
	    (const unsigned char *)tok, n, mac, &ml) == NULL)
		abort();
	tok[n++] = '.';
	n += b64url_encode(mac, ml, tok + n);
	tok[n] = '\0';
	for (i = 0; i < sizeof(pol) / sizeof(pol[0]); i++) {
		r = jwt_verify(tok, n, fz_jwt_lookup, NULL, &pol[i], &c);
		if ((r == JWT_OK) != (c.json != NULL))
			__builtin_trap();
		/* a verified token's claims are what was signed */
		if (r == JWT_OK && strcmp(c.json, part[1].s) != 0 &&
		    strlen(part[1].s) == part[1].n)
			__builtin_trap();
		jwt_claims_free(&c);
	}
	free(tok);
	fz_parts_free(part, np);
	return 0;
}
