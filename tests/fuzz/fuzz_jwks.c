/*
 * fuzz_jwks.c - jwks_parse() over a JWKS document as a key server sends
 * it; every key it accepts is then used once (jwt_verify_sig() of a
 * fixed message and signature) and cleared.
 */
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "jwks.h"
#include "jwt_key.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_quiet();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char msg[] = "eyJhbGciOiJFUzI1NiJ9.e30";
	unsigned char sig[256];
	struct jwt_key keys[JWKS_MAX_KEYS];
	int n, i, skipped = -1;

	if (size > JWKS_MAX_BYTES)
		return 0;
	memset(keys, 0, sizeof(keys));
	memset(sig, 0x5a, sizeof(sig));
	n = jwks_parse((const char *)data, size, keys, JWKS_MAX_KEYS, &skipped);
	if (n > JWKS_MAX_KEYS || skipped < 0)
		__builtin_trap();
	for (i = 0; i < n; i++) {
		(void)jwt_verify_sig(&keys[i], msg, sizeof(msg) - 1, sig, 32);
		(void)jwt_verify_sig(&keys[i], msg, sizeof(msg) - 1, sig, 64);
		(void)jwt_verify_sig(&keys[i], msg, sizeof(msg) - 1, sig, 256);
		jwt_key_clear(&keys[i]);
	}
	return 0;
}
