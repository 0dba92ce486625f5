/* test_base64.c - strict standard base64 and the artifact checks built on
 * it: size caps before decoding, image magic, whole files only. */
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "cu_main.h"
#include "prov_remote.h"

/* A real 3x2 RGB PNG (zlib-compressed red pixels), ending with IEND. */
static const unsigned char png_3x2[] = {
	0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d,
	0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x02,
	0x08, 0x02, 0x00, 0x00, 0x00, 0x12, 0x16, 0xf1, 0x4d, 0x00, 0x00, 0x00,
	0x10, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0x00,
	0x41, 0x0c, 0x70, 0x16, 0x00, 0x41, 0xd2, 0x05, 0xfb, 0x87, 0xf0, 0xb9,
	0x48, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60,
	0x82
};
static const char png_3x2_b64[] =
    "iVBORw0KGgoAAAANSUhEUgAAAAMAAAACCAIAAAASFvFNAAAAEElEQVR4nGP4z8AAQQxwFgB"
    "B0gX7h/C5SAAAAABJRU5ErkJggg==";

/* SOI, APP0, a baseline frame header for 5x4 (3 components), EOI. */
static const unsigned char jpeg_5x4[] = {
	0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00, 0x01,
	0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
	0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 0x04, 0x00, 0x05, 0x03, 0x01, 0x22,
	0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01,
	0xff, 0xd9
};

/* RIFF/WEBP with a 5-byte VP8L chunk (7x9) and its pad byte. */
static const unsigned char webp_7x9[] = {
	'R', 'I', 'F', 'F', 18, 0, 0, 0, 'W', 'E', 'B', 'P',
	'V', 'P', '8', 'L', 5, 0, 0, 0,
	0x2f, 0x06, 0x00, 0x02, 0x00, 0x00
};

/* ---- base64 ------------------------------------------------------------ */

static void
test_base64_rfc4648_vectors(void)
{
	static const struct { const char *in, *out; } v[] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },
	};
	unsigned char *dec;
	size_t i, n, dl;
	char *enc;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		enc = base64_encode((const unsigned char *)v[i].in, strlen(v[i].in), &n);
		CU_ASSERT_PTR_NOT_NULL_FATAL(enc);
		CU_ASSERT_STRING_EQUAL(enc, v[i].out);
		CU_ASSERT_EQUAL(n, strlen(v[i].out));
		CU_ASSERT_EQUAL(base64_encoded_len(strlen(v[i].in)), n);
		free(enc);
		CU_ASSERT_EQUAL(base64_decoded_len(v[i].out, strlen(v[i].out)),
		    (long)strlen(v[i].in));
		CU_ASSERT_EQUAL_FATAL(base64_decode(v[i].out, strlen(v[i].out), 64,
		    &dec, &dl), 0);
		CU_ASSERT_EQUAL(dl, strlen(v[i].in));
		CU_ASSERT(memcmp(dec, v[i].in, dl) == 0);
		free(dec);
	}
}

static void
test_base64_standard_alphabet_round_trip(void)
{
	unsigned char raw[256], *dec;
	size_t n, dl, i;
	char *enc;

	for (i = 0; i < sizeof(raw); i++)
		raw[i] = (unsigned char)(255 - i);
	enc = base64_encode(raw, sizeof(raw), &n);
	CU_ASSERT_PTR_NOT_NULL_FATAL(enc);
	CU_ASSERT(strchr(enc, '+') != NULL && strchr(enc, '/') != NULL);
	CU_ASSERT_EQUAL_FATAL(base64_decode(enc, n, sizeof(raw), &dec, &dl), 0);
	CU_ASSERT_EQUAL(dl, sizeof(raw));
	CU_ASSERT(memcmp(dec, raw, dl) == 0);
	free(dec);
	free(enc);
	/* The url alphabet is refused. */
	CU_ASSERT_EQUAL(base64_decode("-_-_", 4, 16, &dec, &dl), -1);
	CU_ASSERT_PTR_NULL(dec);
	CU_ASSERT_EQUAL(base64_decode("+/+/", 4, 16, &dec, &dl), 0);
	free(dec);
}

/* Everything that is not canonical base64 is refused, and nothing is
 * left allocated. */
static void
test_base64_strict_refusals(void)
{
	static const char *const bad[] = {
		"Zg", "Zg=", "Zm8", "Zm9vY", "Zm9vYg=",	/* missing padding */
		"Zh==", "Zm9=",				/* non-zero trailing bits */
		"Zg===", "Z===", "====", "=Zg=", "Zg==Zg==", "Zm=v",	/* padding misplaced */
		"Zm9v\n", " Zm9v", "Zm 9v", "Zm9v\r\n",	/* whitespace */
		"Zm9v!", "Zm9\x80", "Zm9v\"",		/* not the alphabet */
	};
	unsigned char *dec = (unsigned char *)"x";
	size_t i, dl = 7;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_EQUAL(base64_decode(bad[i], strlen(bad[i]), 64, &dec, &dl), -1);
		CU_ASSERT_PTR_NULL(dec);
		CU_ASSERT_EQUAL(dl, 0);
	}
	/* An embedded NUL (a JSON string may carry one) is refused too. */
	CU_ASSERT_EQUAL(base64_decode("Zm\0v", 4, 64, &dec, &dl), -1);
}

/* The cap is checked from the length alone, before any decoding. */
static void
test_base64_size_cap_before_decoding(void)
{
	unsigned char *dec;
	size_t dl;
	char *big;

	CU_ASSERT_EQUAL(base64_decode("Zm9vYmFy", 8, 6, &dec, &dl), 0);
	free(dec);
	CU_ASSERT_EQUAL(base64_decode("Zm9vYmFy", 8, 5, &dec, &dl), -2);
	CU_ASSERT_PTR_NULL(dec);
	CU_ASSERT_EQUAL(base64_decode("Zm9vYg==", 8, 4, &dec, &dl), 0);
	free(dec);
	CU_ASSERT_EQUAL(base64_decode("Zm9vYg==", 8, 3, &dec, &dl), -2);
	/* 4 MB of invalid characters past the cap: -2, so the content was
	 * never looked at. */
	big = malloc(4u << 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	memset(big, '!', 4u << 20);
	CU_ASSERT_EQUAL(base64_decode(big, 4u << 20, 1024, &dec, &dl), -2);
	free(big);
	CU_ASSERT_EQUAL(base64_decoded_len("abc", 3), -1);
	CU_ASSERT_EQUAL(base64_decoded_len("", 0), 0);
}

/* ---- artifacts: magic and whole files ----------------------------------- */

static void
test_artifact_b64_png(void)
{
	struct prov_result r;

	memset(&r, 0, sizeof(r));
	CU_ASSERT_EQUAL_FATAL(prov_artifact_b64(png_3x2_b64, strlen(png_3x2_b64),
	    1024, &r), PROV_OK);
	CU_ASSERT_EQUAL(r.len, sizeof(png_3x2));
	CU_ASSERT(memcmp(r.data, png_3x2, r.len) == 0);
	prov_result_free(&r);
	/* over the cap */
	memset(&r, 0, sizeof(r));
	CU_ASSERT_EQUAL(prov_artifact_b64(png_3x2_b64, strlen(png_3x2_b64),
	    sizeof(png_3x2) - 1, &r), PROV_PROVIDER_ERROR);
	CU_ASSERT_PTR_NULL(r.data);
	CU_ASSERT(strstr(r.message, "larger than") != NULL);
	/* truncated base64 */
	memset(&r, 0, sizeof(r));
	CU_ASSERT_EQUAL(prov_artifact_b64(png_3x2_b64, strlen(png_3x2_b64) - 3,
	    1024, &r), PROV_PROVIDER_ERROR);
	CU_ASSERT_PTR_NULL(r.data);
	CU_ASSERT(strstr(r.message, "not valid base64") != NULL);
	/* truncated at a group boundary: valid base64, a cut PNG */
	memset(&r, 0, sizeof(r));
	CU_ASSERT_EQUAL(prov_artifact_b64(png_3x2_b64, 64, 1024, &r),
	    PROV_PROVIDER_ERROR);
	CU_ASSERT_PTR_NULL(r.data);
	CU_ASSERT(strstr(r.message, "not a whole PNG") != NULL);
	/* base64 of text */
	memset(&r, 0, sizeof(r));
	CU_ASSERT_EQUAL(prov_artifact_b64("aGVsbG8gd29ybGQ=", 16, 1024, &r),
	    PROV_PROVIDER_ERROR);
	CU_ASSERT_PTR_NULL(r.data);
	memset(&r, 0, sizeof(r));
	CU_ASSERT_EQUAL(prov_artifact_b64("", 0, 1024, &r), PROV_PROVIDER_ERROR);
	CU_ASSERT_EQUAL(prov_artifact_b64(NULL, 0, 1024, &r), PROV_PROVIDER_ERROR);
}

static void
test_artifact_bytes_magic(void)
{
	static const struct {
		const unsigned char *d;
		size_t n;
		const char *mime;
		int w, h;
	} ok[] = {
		{ png_3x2, sizeof(png_3x2), "image/png", 3, 2 },
		{ jpeg_5x4, sizeof(jpeg_5x4), "image/jpeg", 5, 4 },
		{ webp_7x9, sizeof(webp_7x9), "image/webp", 7, 9 },
	};
	struct prov_result r;
	const char *mime;
	int w, h;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		CU_ASSERT(prov_image_whole(ok[i].d, ok[i].n));
		CU_ASSERT_EQUAL(prov_image_sniff(ok[i].d, ok[i].n, &mime, &w, &h), 0);
		CU_ASSERT_STRING_EQUAL(mime, ok[i].mime);
		CU_ASSERT_EQUAL(w, ok[i].w);
		CU_ASSERT_EQUAL(h, ok[i].h);
		memset(&r, 0, sizeof(r));
		CU_ASSERT_EQUAL(prov_artifact_bytes(ok[i].d, ok[i].n, 4096, &r),
		    PROV_OK);
		CU_ASSERT_EQUAL(r.len, ok[i].n);
		prov_result_free(&r);
		/* one byte short is not whole */
		CU_ASSERT(!prov_image_whole(ok[i].d, ok[i].n - 1));
		memset(&r, 0, sizeof(r));
		CU_ASSERT_EQUAL(prov_artifact_bytes(ok[i].d, ok[i].n - 1, 4096, &r),
		    PROV_PROVIDER_ERROR);
		CU_ASSERT_PTR_NULL(r.data);
		/* over the cap */
		memset(&r, 0, sizeof(r));
		CU_ASSERT_EQUAL(prov_artifact_bytes(ok[i].d, ok[i].n, ok[i].n - 1, &r),
		    PROV_PROVIDER_ERROR);
	}
	/* Not images: text, HTML, a GIF, an empty buffer. */
	CU_ASSERT(!prov_image_whole((const unsigned char *)"hello world", 11));
	CU_ASSERT(!prov_image_whole((const unsigned char *)"<html></html>", 13));
	CU_ASSERT(!prov_image_whole((const unsigned char *)"GIF89a\1\0\1\0\0\0\0;", 14));
	CU_ASSERT(!prov_image_whole(png_3x2, 0));
	CU_ASSERT(!prov_image_whole(NULL, 10));
	memset(&r, 0, sizeof(r));
	CU_ASSERT_EQUAL(prov_artifact_bytes((const unsigned char *)"hello", 5, 64, &r),
	    PROV_PROVIDER_ERROR);
	CU_ASSERT(strstr(r.message, "not a whole PNG, JPEG or WebP") != NULL);
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "base64_rfc4648_vectors", test_base64_rfc4648_vectors },
		{ "base64_standard_alphabet_round_trip",
		    test_base64_standard_alphabet_round_trip },
		{ "base64_strict_refusals", test_base64_strict_refusals },
		{ "base64_size_cap_before_decoding",
		    test_base64_size_cap_before_decoding },
		{ "artifact_b64_png", test_artifact_b64_png },
		{ "artifact_bytes_magic", test_artifact_bytes_magic },
		CU_TEST_INFO_NULL
	};

	return cu_run("base64", tests);
}
