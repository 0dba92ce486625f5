/* base64.c - strict standard base64 with padding (RFC 4648 §4). The
 * base64url of tokens is b64.c; this one is for image payloads. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "base64.h"

static const char base64_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

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
	size_t len = base64_encoded_len(n), i, o = 0;
	unsigned long v;
	char *out;

	if (len == SIZE_MAX)
		return NULL;
	out = malloc(len + 1);
	if (out == NULL)
		return NULL;
	for (i = 0; i + 2 < n; i += 3) {
		v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 |
		    in[i + 2];
		out[o++] = base64_alpha[(v >> 18) & 63];
		out[o++] = base64_alpha[(v >> 12) & 63];
		out[o++] = base64_alpha[(v >> 6) & 63];
		out[o++] = base64_alpha[v & 63];
	}
	if (n - i == 1) {
		v = (unsigned long)in[i] << 16;
		out[o++] = base64_alpha[(v >> 18) & 63];
		out[o++] = base64_alpha[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (n - i == 2) {
		v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8;
		out[o++] = base64_alpha[(v >> 18) & 63];
		out[o++] = base64_alpha[(v >> 12) & 63];
		out[o++] = base64_alpha[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
	if (outlen != NULL)
		*outlen = o;
	return out;
}

/* The value of one alphabet character, -1 for anything else ('=' too). */
static int
base64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
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
	unsigned long v;
	size_t i, o = 0, pad;
	long len;
	int d[4], k, rc = -1;

	*out = NULL;
	*outlen = 0;
	len = base64_decoded_len(in, n);
	if (len < 0)
		goto out;
	if ((size_t)len > max) {
		rc = -2;
		goto out;
	}
	pad = n / 4 * 3 - (size_t)len;
	/* One byte more so that empty input still gets a buffer. */
	buf = malloc((size_t)len + 1);
	if (buf == NULL) {
		rc = -3;
		goto out;
	}
	for (i = 0; i < n; i += 4) {
		for (k = 0; k < 4; k++) {
			/* '=' only where the padding count says it is. */
			if (i + 4 == n && k >= 4 - (int)pad) {
				if (in[i + k] != '=')
					goto out;
				d[k] = 0;
				continue;
			}
			d[k] = base64_val((unsigned char)in[i + k]);
			if (d[k] < 0)
				goto out;
		}
		v = (unsigned long)d[0] << 18 | (unsigned long)d[1] << 12 |
		    (unsigned long)d[2] << 6 | (unsigned long)d[3];
		/* The bits under the padding must be zero: one encoding each. */
		if (i + 4 == n && pad == 2 && (v & 0xffff) != 0)
			goto out;
		if (i + 4 == n && pad == 1 && (v & 0xff) != 0)
			goto out;
		buf[o++] = (unsigned char)(v >> 16);
		if (!(i + 4 == n && pad == 2))
			buf[o++] = (unsigned char)(v >> 8);
		if (!(i + 4 == n && pad >= 1))
			buf[o++] = (unsigned char)v;
	}
	*out = buf;
	*outlen = o;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	return rc;
}
