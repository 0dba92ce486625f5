/* test_seal.c - AES-256-GCM sealed secrets. */
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "cu_main.h"
#include "seal.h"

/* 32 bytes 0x00..0x1f and 32 bytes 0xff, as base64 */
#define KEY_A "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEY_B "//////////////////////////////////////////8="
#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define AAD_1 "webhook_secrets:0b8e1c2a-2f43-4a7e-9d55-1c0ffee00001"
#define AAD_2 "webhook_secrets:0b8e1c2a-2f43-4a7e-9d55-1c0ffee00002"

static struct seal_key ka, kb;

static int
init(void)
{
	return seal_key_parse(KEY_A, &ka) == 0 && seal_key_parse(KEY_B, &kb) == 0
	    ? 0 : -1;
}

static int
seal1(const struct seal_key *k, const char *aad, const char *plain, char *out)
{
	return seal_seal(k, aad, strlen(aad), plain, out, SEAL_TEXT_MAX);
}

static int
open1(const struct seal_key *k, const char *aad, const char *text, char *out)
{
	return seal_open(k, aad, strlen(aad), text, out, SEAL_PLAIN_MAX + 1);
}

static void
test_seal_round_trip(void)
{
	char t1[SEAL_TEXT_MAX], t2[SEAL_TEXT_MAX], p[SEAL_PLAIN_MAX + 1];

	CU_ASSERT_EQUAL(seal1(&ka, AAD_1, SECRET, t1), 0);
	CU_ASSERT_TRUE(seal_is_sealed(t1));
	CU_ASSERT_PTR_NULL(strstr(t1, "whsec_"));
	CU_ASSERT_PTR_NULL(strstr(t1, SECRET + 6));
	/* 3 + base64(12 + 38 + 16 = 66 bytes) = 3 + 88 */
	CU_ASSERT_EQUAL(strlen(t1), 3 + 88);
	CU_ASSERT_EQUAL(open1(&ka, AAD_1, t1, p), 0);
	CU_ASSERT_STRING_EQUAL(p, SECRET);
	/* a fresh nonce each time: two seals of one secret differ */
	CU_ASSERT_EQUAL(seal1(&ka, AAD_1, SECRET, t2), 0);
	CU_ASSERT_STRING_NOT_EQUAL(t1, t2);
	CU_ASSERT_EQUAL(open1(&ka, AAD_1, t2, p), 0);
	CU_ASSERT_STRING_EQUAL(p, SECRET);
}

static void
test_seal_wrong_key_fails(void)
{
	char t[SEAL_TEXT_MAX], p[SEAL_PLAIN_MAX + 1];

	CU_ASSERT_EQUAL(seal1(&ka, AAD_1, SECRET, t), 0);
	strcpy(p, "junk");
	CU_ASSERT_EQUAL(open1(&kb, AAD_1, t, p), -1);
	CU_ASSERT_STRING_EQUAL(p, "");
}

static void
test_seal_other_users_aad_fails(void)
{
	char t[SEAL_TEXT_MAX], p[SEAL_PLAIN_MAX + 1];

	CU_ASSERT_EQUAL(seal1(&ka, AAD_1, SECRET, t), 0);
	CU_ASSERT_EQUAL(open1(&ka, AAD_2, t, p), -1);
	CU_ASSERT_STRING_EQUAL(p, "");
	CU_ASSERT_EQUAL(seal_open(&ka, NULL, 0, t, p, sizeof(p)), -1);
	CU_ASSERT_EQUAL(open1(&ka, AAD_1, t, p), 0);
}

/* Every byte of nonce, ciphertext and tag is covered: flip each in turn. */
static void
test_seal_tampered_byte_fails(void)
{
	char t[SEAL_TEXT_MAX], bad[SEAL_TEXT_MAX], p[SEAL_PLAIN_MAX + 1];
	unsigned char *raw = NULL;
	size_t rawlen = 0, i;
	char *b;
	int opened = 0;

	CU_ASSERT_EQUAL(seal1(&ka, AAD_1, SECRET, t), 0);
	CU_ASSERT_EQUAL(base64_decode(t + 3, strlen(t) - 3, 1024, &raw, &rawlen), 0);
	CU_ASSERT_EQUAL(rawlen, 12 + strlen(SECRET) + 16);
	for (i = 0; raw != NULL && i < rawlen; i++) {
		raw[i] ^= 0x01;
		b = base64_encode(raw, rawlen, NULL);
		raw[i] ^= 0x01;
		CU_ASSERT_PTR_NOT_NULL_FATAL(b);
		snprintf(bad, sizeof(bad), "v1:%s", b);
		free(b);
		opened += open1(&ka, AAD_1, bad, p) == 0;
	}
	CU_ASSERT_EQUAL(opened, 0);
	free(raw);
	/* cut short: the tag no longer matches */
	memcpy(bad, t, sizeof(bad));
	bad[strlen(bad) - 4] = '\0';
	CU_ASSERT_EQUAL(open1(&ka, AAD_1, bad, p), -1);
}

static void
test_seal_bad_format_fails(void)
{
	char p[SEAL_PLAIN_MAX + 1], big[SEAL_TEXT_MAX + 8];
	static const char *bad[] = {
		"", "v1", "v1:", "v2:AAAA", SECRET, "V1:AAAA",
		"v1:not base64!", "v1:AAAA AAAA",
		/* well formed, but shorter than nonce + 1 byte + tag */
		"v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_EQUAL(open1(&ka, AAD_1, bad[i], p), -1);
		CU_ASSERT_STRING_EQUAL(p, "");
	}
	CU_ASSERT_EQUAL(open1(&ka, AAD_1, NULL, p), -1);
	CU_ASSERT_FALSE(seal_is_sealed(SECRET));
	CU_ASSERT_FALSE(seal_is_sealed(NULL));
	/* longer than any sealed text: refused before decoding */
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "v1:", 3);
	CU_ASSERT_EQUAL(open1(&ka, AAD_1, big, p), -1);
}

static void
test_seal_key_parse_refuses_bad_keys(void)
{
	struct seal_key k;

	CU_ASSERT_EQUAL(seal_key_parse(KEY_A, &k), 0);
	CU_ASSERT_EQUAL(memcmp(k.k, ka.k, SEAL_KEY_LEN), 0);
	/* 31 bytes, 33 bytes, not base64, url alphabet, whitespace, empty */
	CU_ASSERT_EQUAL(seal_key_parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==", &k), -1);
	CU_ASSERT_EQUAL(seal_key_parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g", &k), -1);
	CU_ASSERT_EQUAL(seal_key_parse("not a key", &k), -1);
	CU_ASSERT_EQUAL(seal_key_parse("_/////////////////////////////////////////8=", &k), -1);
	CU_ASSERT_EQUAL(seal_key_parse(" AECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", &k), -1);
	CU_ASSERT_EQUAL(seal_key_parse("", &k), -1);
	CU_ASSERT_EQUAL(seal_key_parse(NULL, &k), -1);
	CU_ASSERT_EQUAL(k.k[0] | k.k[31], 0);
}

static void
test_seal_refuses_bad_sizes(void)
{
	char t[SEAL_TEXT_MAX], p[SEAL_PLAIN_MAX + 1], long_plain[SEAL_PLAIN_MAX + 2];

	memset(long_plain, 'x', sizeof(long_plain) - 1);
	long_plain[sizeof(long_plain) - 1] = '\0';
	CU_ASSERT_EQUAL(seal1(&ka, AAD_1, "", t), -1);
	CU_ASSERT_EQUAL(seal1(&ka, AAD_1, long_plain, t), -1);
	CU_ASSERT_STRING_EQUAL(t, "");
	/* the longest that fits does */
	long_plain[SEAL_PLAIN_MAX] = '\0';
	CU_ASSERT_EQUAL(seal1(&ka, AAD_1, long_plain, t), 0);
	CU_ASSERT_EQUAL(open1(&ka, AAD_1, t, p), 0);
	CU_ASSERT_STRING_EQUAL(p, long_plain);
	/* an out buffer too small for the plain text */
	CU_ASSERT_EQUAL(seal_open(&ka, AAD_1, strlen(AAD_1), t, p, 10), -1);
	CU_ASSERT_EQUAL(seal_seal(&ka, AAD_1, strlen(AAD_1), SECRET, t, 20), -1);
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "round trip", test_seal_round_trip },
		{ "wrong key fails", test_seal_wrong_key_fails },
		{ "other user's aad fails", test_seal_other_users_aad_fails },
		{ "tampered byte fails", test_seal_tampered_byte_fails },
		{ "bad format fails", test_seal_bad_format_fails },
		{ "bad keys refused", test_seal_key_parse_refuses_bad_keys },
		{ "bad sizes refused", test_seal_refuses_bad_sizes },
		CU_TEST_INFO_NULL
	};

	return cu_run_fixture("seal", tests, init, NULL);
}
