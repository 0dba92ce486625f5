/* test_whsecret.c - users' sealed webhook signing secrets. */
#include <string.h>

#include "cfg.h"
#include "cu_main.h"
#include "seal.h"
#include "stdwh.h"
#include "whsecret.h"

#define KEY "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define OTHER_KEY "//////////////////////////////////////////8="
#define UID "0b8e1c2a-2f43-4a7e-9d55-1c0ffee0000a"
#define UID_UPPER "0B8E1C2A-2F43-4A7E-9D55-1C0FFEE0000A"
#define UID2 "0b8e1c2a-2f43-4a7e-9d55-1c0ffee0000b"
#define LEGACY "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

static struct seal_key k, other;

static int
init(void)
{
	struct cfg c;

	memset(&c, 0, sizeof(c));
	if (whsecret_key(&c, &k) != -1)
		return -1;
	c.webhook_secret_key = (char *)KEY;
	if (whsecret_key(&c, &k) != 0)
		return -1;
	return seal_key_parse(OTHER_KEY, &other);
}

static void
test_whsecret_new_is_sealed_and_opens_for_its_user_only(void)
{
	char plain[STDWH_SECRET_MAX], sealed[SEAL_TEXT_MAX], got[STDWH_SECRET_MAX];
	struct stdwh_key sk;
	int legacy = 7;

	CU_ASSERT_EQUAL_FATAL(whsecret_new(&k, UID, plain, sealed), 0);
	CU_ASSERT_EQUAL(strncmp(plain, "whsec_", 6), 0);
	CU_ASSERT_EQUAL(stdwh_key_parse(plain, &sk), 0);
	CU_ASSERT_EQUAL(sk.n, STDWH_NEW_KEY_LEN);
	stdwh_key_wipe(&sk);
	CU_ASSERT_TRUE(seal_is_sealed(sealed));
	CU_ASSERT_PTR_NULL(strstr(sealed, plain + 6));
	CU_ASSERT_EQUAL(whsecret_open(&k, UID, sealed, got, &legacy), 0);
	CU_ASSERT_EQUAL(legacy, 0);
	CU_ASSERT_STRING_EQUAL(got, plain);
	/* the id as PostgreSQL writes it or in upper case: the same owner */
	CU_ASSERT_EQUAL(whsecret_open(&k, UID_UPPER, sealed, got, &legacy), 0);
	CU_ASSERT_STRING_EQUAL(got, plain);
	CU_ASSERT_EQUAL(whsecret_open(&k, UID2, sealed, got, &legacy), -1);
	CU_ASSERT_STRING_EQUAL(got, "");
	CU_ASSERT_EQUAL(whsecret_open(&other, UID, sealed, got, &legacy), -1);
	CU_ASSERT_EQUAL(whsecret_open(&k, "not-a-uuid", sealed, got, &legacy), -1);
	CU_ASSERT_EQUAL(whsecret_new(&k, "not-a-uuid", plain, sealed), -1);
	CU_ASSERT_STRING_EQUAL(sealed, "");
}

static void
test_whsecret_legacy_plain_text_is_read_and_resealed(void)
{
	char sealed[SEAL_TEXT_MAX], got[STDWH_SECRET_MAX];
	int legacy = 0;

	CU_ASSERT_EQUAL(whsecret_open(&k, UID, LEGACY, got, &legacy), 0);
	CU_ASSERT_EQUAL(legacy, 1);
	CU_ASSERT_STRING_EQUAL(got, LEGACY);
	CU_ASSERT_EQUAL_FATAL(whsecret_seal(&k, UID, got, sealed), 0);
	CU_ASSERT_EQUAL(whsecret_open(&k, UID, sealed, got, &legacy), 0);
	CU_ASSERT_EQUAL(legacy, 0);
	CU_ASSERT_STRING_EQUAL(got, LEGACY);
	/* plain text that is no usable secret is refused, not passed on */
	CU_ASSERT_EQUAL(whsecret_open(&k, UID, "whsec_!!!!", got, &legacy), -1);
	CU_ASSERT_EQUAL(whsecret_open(&k, UID, "hunter2", got, &legacy), -1);
	CU_ASSERT_EQUAL(whsecret_open(&k, UID, NULL, got, &legacy), -1);
	CU_ASSERT_EQUAL(whsecret_seal(&k, UID, "hunter2", sealed), -1);
}

/* Sealed text that opens but holds no whsec_ secret is refused. */
static void
test_whsecret_sealed_non_secret_refused(void)
{
	char sealed[SEAL_TEXT_MAX], got[STDWH_SECRET_MAX];
	const char *aad = "imagegen webhook_secrets " UID;
	int legacy;

	CU_ASSERT_EQUAL_FATAL(seal_seal(&k, aad, strlen(aad), "hunter2", sealed,
	    sizeof(sealed)), 0);
	CU_ASSERT_EQUAL(whsecret_open(&k, UID, sealed, got, &legacy), -1);
	CU_ASSERT_STRING_EQUAL(got, "");
	/* the same AAD with a secret opens: the refusal above is the content */
	CU_ASSERT_EQUAL_FATAL(seal_seal(&k, aad, strlen(aad), LEGACY, sealed,
	    sizeof(sealed)), 0);
	CU_ASSERT_EQUAL(whsecret_open(&k, UID, sealed, got, &legacy), 0);
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "new: sealed, opens for its user only", test_whsecret_new_is_sealed_and_opens_for_its_user_only },
		{ "legacy plain text read and resealed", test_whsecret_legacy_plain_text_is_read_and_resealed },
		{ "sealed non-secret refused", test_whsecret_sealed_non_secret_refused },
		CU_TEST_INFO_NULL
	};

	return cu_run_fixture("whsecret", tests, init, NULL);
}
