/*
 * base64.c - strict base64 (RFC 4648): standard with padding (§4) for
 * image payloads, base64url without padding (§5, RFC 7515 §2) for tokens.
 * One encoder and one decoder serve both; they differ only in the last
 * two letters of the alphabet and in the padding.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "base64.h"

static const char base64_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char base64_url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Encodes n bytes with alpha into out (room for the result and a NUL),
 * '=' padding the last group when pad. Returns the length written. */
static size_t
base64_encode_to(const unsigned char *in, size_t n, const char *alpha,
    int pad, char *out)
{
	size_t i, o = 0;
	unsigned long v;

	for (i = 0; i + 2 < n; i += 3) {
		v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 |
		    in[i + 2];
		out[o++] = alpha[(v >> 18) & 63];
		out[o++] = alpha[(v >> 12) & 63];
		out[o++] = alpha[(v >> 6) & 63];
		out[o++] = alpha[v & 63];
	}
	if (n - i == 1) {
		v = (unsigned long)in[i] << 16;
		out[o++] = alpha[(v >> 18) & 63];
		out[o++] = alpha[(v >> 12) & 63];
		if (pad) {
			out[o++] = '=';
			out[o++] = '=';
		}
	} else if (n - i == 2) {
		v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8;
		out[o++] = alpha[(v >> 18) & 63];
		out[o++] = alpha[(v >> 12) & 63];
		out[o++] = alpha[(v >> 6) & 63];
		if (pad)
			out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

/* The value of one letter of alpha, -1 for anything else ('=' too). */
static int
base64_val(unsigned char c, const char *alpha)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (unsigned char)alpha[62])
		return 62;
	if (c == (unsigned char)alpha[63])
		return 63;
	return -1;
}

/*
 * Decodes n letters of alpha, no padding, into out (room for n * 3 / 4
 * bytes). The bits left over past the last whole byte must be zero, so
 * that every byte string has exactly one encoding. Returns the decoded
 * length, or -1 for a letter not in alpha, a length no encoding has
 * (n % 4 == 1) or stray trailing bits.
 */
static long
base64_decode_to(const char *in, size_t n, const char *alpha,
    unsigned char *out)
{
	unsigned long v = 0;
	size_t i, o = 0;
	int bits = 0, d;

	if (n % 4 == 1)
		return -1;
	for (i = 0; i < n; i++) {
		d = base64_val((unsigned char)in[i], alpha);
		if (d < 0)
			return -1;
		v = (v << 6) | (unsigned long)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(v >> bits);
			v &= (1UL << bits) - 1;
		}
	}
	if (v != 0)
		return -1;
	return (long)o;
}

/* ---- standard base64, padded ------------------------------------------ */

size_t
base64_encoded_len(size_t n)
{
	size_t groups = n / 3 + (n % 3 != 0);

	if (groups > (SIZE_MAX - 1) / 4)
		return SIZE_MAX;
	return groups * 4;
}

char *
base64_encode(const unsigned char *in, size_t n, size_t *outlen)
{
	size_t len = base64_encoded_len(n), o;
	char *out;

	if (len == SIZE_MAX)
		return NULL;
	out = malloc(len + 1);
	if (out == NULL)
		return NULL;
	o = base64_encode_to(in, n, base64_std, 1, out);
	if (outlen != NULL)
		*outlen = o;
	return out;
}

long
base64_decoded_len(const char *in, size_t n)
{
	size_t pad = 0;

	if (n % 4 != 0 || n / 4 > (size_t)(LONG_MAX / 3))
		return -1;
	if (n > 0 && in[n - 1] == '=')
		pad++;
	if (n > 1 && in[n - 1] == '=' && in[n - 2] == '=')
		pad++;
	return (long)(n / 4 * 3 - pad);
}

int
base64_decode(const char *in, size_t n, size_t max, unsigned char **out,
    size_t *outlen)
{
	unsigned char *buf = NULL;
	long len, got;
	int rc = -1;

	*out = NULL;
	*outlen = 0;
	len = base64_decoded_len(in, n);
	if (len < 0)
		goto out;
	if ((size_t)len > max) {
		rc = -2;
		goto out;
	}
	/* One byte more so that empty input still gets a buffer. */
	buf = malloc((size_t)len + 1);
	if (buf == NULL) {
		rc = -3;
		goto out;
	}
	/* Without the padding base64_decoded_len() counted, the rest is
	 * base64 with no '=' left in it anywhere. */
	got = base64_decode_to(in, n - (n / 4 * 3 - (size_t)len), base64_std,
	    buf);
	if (got != len)
		goto out;
	*out = buf;
	*outlen = (size_t)got;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	return rc;
}

/* ---- base64url, unpadded ---------------------------------------------- */

size_t
b64url_encoded_len(size_t n)
{
	return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

size_t
b64url_encode(const unsigned char *in, size_t n, char *out)
{
	return base64_encode_to(in, n, base64_url, 0, out);
}

long
b64url_decode(const char *in, size_t n, unsigned char *out)
{
	return base64_decode_to(in, n, base64_url, out);
}
