/*
 * fuzz_base64.c - the strict decoders, base64 (padded) and base64url
 * (unpadded), over any text; what one accepts must encode back to the
 * very same text (one encoding per byte string), and every byte string
 * must round-trip through both encoders.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "harness.h"

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
	const char *in = (const char *)data;
	unsigned char *out = NULL, *back;
	char *enc;
	size_t outlen = 0, n;
	long dl, ul;
	int rc;

	/* standard base64: canonical text only */
	dl = base64_decoded_len(in, size);
	rc = base64_decode(in, size, 1 << 20, &out, &outlen);
	if (rc == 0) {
		if (dl < 0 || (size_t)dl != outlen)
			__builtin_trap();
		enc = base64_encode(out, outlen, &n);
		if (enc == NULL || n != size || memcmp(enc, in, size) != 0)
			__builtin_trap();
		free(enc);
		free(out);
	} else if (rc != -1 && rc != -2) {
		__builtin_trap();
	}
	/* base64url: canonical text only */
	back = malloc(size * 3 / 4 + 1);
	if (back == NULL)
		abort();
	ul = b64url_decode(in, size, back);
	if (ul >= 0) {
		enc = malloc(b64url_encoded_len((size_t)ul) + 1);
		if (enc == NULL)
			abort();
		n = b64url_encode(back, (size_t)ul, enc);
		if (n != size || memcmp(enc, in, size) != 0)
			__builtin_trap();
		free(enc);
	}
	free(back);
	/* any bytes: encode, decode, the same bytes */
	enc = base64_encode(data, size, &n);
	if (enc == NULL || base64_decode(enc, n, size, &out, &outlen) != 0 ||
	    outlen != size || (size > 0 && memcmp(out, data, size) != 0))
		__builtin_trap();
	free(out);
	free(enc);
	enc = malloc(b64url_encoded_len(size) + 1);
	back = malloc(size + 1);
	if (enc == NULL || back == NULL)
		abort();
	n = b64url_encode(data, size, enc);
	if (n != b64url_encoded_len(size) || b64url_decode(enc, n, back) !=
	    (long)size || (size > 0 && memcmp(back, data, size) != 0))
		__builtin_trap();
	free(enc);
	free(back);
	return 0;
}
