/*
 * fuzz_jwt.c - jwt_verify() over a whole token as a client sends it, with
 * the test keyring (HS256 secret, ES256 "es1", RS256 "rs1") and the
 * Supabase policy, then without it and with an issuer.
 */
#include <stdint.h>
#include <string.h>

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
		{ FZ_NOW, FZ_LEEWAY, "https://ref.supabase.co/auth/v1", 0 },
	};
	struct jwt_claims c;
	enum jwt_reason r;
	size_t i;

	for (i = 0; i < sizeof(pol) / sizeof(pol[0]); i++) {
		r = jwt_verify((const char *)data, size, fz_jwt_lookup, NULL,
		    &pol[i], &c);
		/* JWT_OK fills the claims, anything else leaves them zeroed */
		if ((r == JWT_OK) != (c.json != NULL))
			__builtin_trap();
		(void)jwt_reason_str(r);
		jwt_claims_free(&c);
	}
	return 0;
}
