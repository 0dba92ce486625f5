/* test_b64.c - strict base64url. */
#include <string.h>

#include "base64.h"
#include "cu_main.h"

/* RFC 4648 §10 vectors, in the url alphabet without padding. */
static void
test_b64url_rfc4648_vectors(void)
{
	static const struct { const char *in, *out; } v[] = {
		{ "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" }, { "foobar", "Zm9vYmFy" },
	};
	unsigned char dec[16];
	char enc[16];
	size_t i;
	long n;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		b64url_encode((const unsigned char *)v[i].in, strlen(v[i].in), enc);
		CU_ASSERT_STRING_EQUAL(enc, v[i].out);
		CU_ASSERT_EQUAL(b64url_encoded_len(strlen(v[i].in)), strlen(v[i].out));
		n = b64url_decode(v[i].out, strlen(v[i].out), dec);
		CU_ASSERT_EQUAL(n, (long)strlen(v[i].in));
		CU_ASSERT(memcmp(dec, v[i].in, strlen(v[i].in)) == 0);
	}
}

static void
test_b64url_url_alphabet(void)
{
	static const unsigned char raw[] = { 0xfb, 0xff, 0xbf };
	unsigned char dec[8];
	char enc[8];

	b64url_encode(raw, 3, enc);
	CU_ASSERT_STRING_EQUAL(enc, "-_-_");
	CU_ASSERT_EQUAL(b64url_decode("-_-_", 4, dec), 3);
	CU_ASSERT(memcmp(dec, raw, 3) == 0);
}

static void
test_b64url_rejects_non_canonical(void)
{
	unsigned char dec[16];

	CU_ASSERT_EQUAL(b64url_decode("Zg==", 4, dec), -1);	/* padding */
	CU_ASSERT_EQUAL(b64url_decode("Zm9v+w", 6, dec), -1);	/* std alphabet */
	CU_ASSERT_EQUAL(b64url_decode("Zm9v/w", 6, dec), -1);
	CU_ASSERT_EQUAL(b64url_decode("Zm 9v", 5, dec), -1);	/* space */
	CU_ASSERT_EQUAL(b64url_decode("Z", 1, dec), -1);	/* impossible length */
	CU_ASSERT_EQUAL(b64url_decode("Zh", 2, dec), -1);	/* trailing bits set */
	CU_ASSERT_EQUAL(b64url_decode("Zm9=", 4, dec), -1);
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "rfc4648_vectors", test_b64url_rfc4648_vectors },
		{ "url_alphabet", test_b64url_url_alphabet },
		{ "rejects_non_canonical", test_b64url_rejects_non_canonical },
		CU_TEST_INFO_NULL
	};

	return cu_run("b64", tests);
}
