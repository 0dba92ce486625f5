/* test_jwt.c - minting development tokens. */
#include <stdlib.h>
#include <string.h>

#include "cu_main.h"
#include "jwt.h"

#define SECRET "super-secret-jwt-token-with-at-least-32-characters-long"

/* Known answer computed independently (Python's hmac + base64) for the
 * same header, claims and secret. */
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
	struct jwt_mint m = {
		.sub = "3f2a0c1e-8d4b-4c6a-9e1f-2b3c4d5e6f70",
		.email = "demo@imagegen.local",
		.issuer = "https://example.supabase.co/auth/v1",
		.ttl = 3600,
		.now = 1700000000,
	};
	char *tok = jwt_sign_hs256(&m, (const unsigned char *)SECRET,
	    strlen(SECRET));

	CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
	CU_ASSERT_STRING_EQUAL(tok, want);
	free(tok);
}

static void
test_jwt_hs256_refuses_bad_input(void)
{
	struct jwt_mint m = { .sub = "x", .ttl = 60 };

	CU_ASSERT_PTR_NULL(jwt_sign_hs256(&m, (const unsigned char *)"", 0));
	m.ttl = 0;
	CU_ASSERT_PTR_NULL(jwt_sign_hs256(&m, (const unsigned char *)"k", 1));
	m.ttl = 60;
	m.sub = NULL;
	CU_ASSERT_PTR_NULL(jwt_sign_hs256(&m, (const unsigned char *)"k", 1));
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "hs256_known_answer", test_jwt_hs256_known_answer },
		{ "hs256_refuses_bad_input", test_jwt_hs256_refuses_bad_input },
		CU_TEST_INFO_NULL
	};

	return cu_run("jwt", tests);
}
