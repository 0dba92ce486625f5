/* b64.c - strict base64url without padding (RFC 4648 §5, RFC 7515 §2). */
#include "b64.h"

static const char b64url_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t
b64url_encoded_len(size_t n)
{
	return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

size_t
b64url_encode(const unsigned char *in, size_t n, char *out)
{
	size_t i, o = 0;
	unsigned long v;

	for (i = 0; i + 2 < n; i += 3) {
		v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 |
		    in[i + 2];
		out[o++] = b64url_alpha[(v >> 18) & 63];
		out[o++] = b64url_alpha[(v >> 12) & 63];
		out[o++] = b64url_alpha[(v >> 6) & 63];
		out[o++] = b64url_alpha[v & 63];
	}
	if (n - i == 1) {
		v = (unsigned long)in[i] << 16;
		out[o++] = b64url_alpha[(v >> 18) & 63];
		out[o++] = b64url_alpha[(v >> 12) & 63];
	} else if (n - i == 2) {
		v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8;
		out[o++] = b64url_alpha[(v >> 18) & 63];
		out[o++] = b64url_alpha[(v >> 12) & 63];
		out[o++] = b64url_alpha[(v >> 6) & 63];
	}
	out[o] = '\0';
	return o;
}

static int
b64url_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

long
b64url_decode(const char *in, size_t n, unsigned char *out)
{
	unsigned long v = 0;
	size_t i, o = 0;
	int bits = 0, d;

	if (n % 4 == 1)
		return -1;
	for (i = 0; i < n; i++) {
		d = b64url_val((unsigned char)in[i]);
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
	/* Leftover bits must be zero, so each token has one encoding. */
	if (v != 0)
		return -1;
	return (long)o;
}
