/*
 * prov_artifact.c - the image a provider answered with, checked before it
 * is taken: base64 or raw bytes within the reply cap, and a whole PNG,
 * JPEG or WebP (a truncated image is a provider error, not a result).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "prov_remote.h"

static uint32_t
le32(const unsigned char *p)
{
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[1] << 8 | p[0];
}

int
prov_image_whole(const unsigned char *d, size_t n)
{
	static const unsigned char iend[12] = {
		0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82
	};
	const char *mime;
	int w, h;

	if (d == NULL || prov_image_sniff(d, n, &mime, &w, &h) != 0)
		return 0;
	if (strcmp(mime, "image/png") == 0)
		return n >= 8 + 25 + 12 && memcmp(d + n - 12, iend, 12) == 0;
	if (strcmp(mime, "image/jpeg") == 0) {
		/* EOI last; encoders may pad the file with zero bytes. */
		while (n > 4 && d[n - 1] == 0)
			n--;
		return d[n - 2] == 0xff && d[n - 1] == 0xd9;
	}
	/* WebP: the RIFF payload is the file, plus a pad byte when odd. */
	return (size_t)le32(d + 4) + 8 == n ||
	    ((le32(d + 4) & 1) != 0 && (size_t)le32(d + 4) + 9 == n);
}

enum prov_err
prov_artifact_take(unsigned char *buf, size_t n, struct prov_result *res)
{
	if (!prov_image_whole(buf, n)) {
		free(buf);
		prov_msg(res, NULL, "the image is not a whole PNG, JPEG or WebP "
		    "(%zu bytes)", n);
		return PROV_PROVIDER_ERROR;
	}
	free(res->data);
	res->data = buf;
	res->len = n;
	return PROV_OK;
}

enum prov_err
prov_artifact_b64(const char *b64, size_t n, size_t max,
    struct prov_result *res)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	int rc;

	if (b64 == NULL || n == 0) {
		prov_msg(res, NULL, "the image data is empty");
		return PROV_PROVIDER_ERROR;
	}
	rc = base64_decode(b64, n, max, &buf, &len);
	if (rc == -2) {
		prov_msg(res, NULL, "the image is larger than %zu bytes", max);
		return PROV_PROVIDER_ERROR;
	}
	if (rc != 0) {
		prov_msg(res, NULL, rc == -3 ? "out of memory decoding the image" :
		    "the image data is not valid base64 (%zu characters)", n);
		return PROV_PROVIDER_ERROR;
	}
	return prov_artifact_take(buf, len, res);
}

enum prov_err
prov_artifact_bytes(const unsigned char *data, size_t n, size_t max,
    struct prov_result *res)
{
	unsigned char *buf;

	if (data == NULL || n == 0) {
		prov_msg(res, NULL, "the image data is empty");
		return PROV_PROVIDER_ERROR;
	}
	if (n > max) {
		prov_msg(res, NULL, "the image is larger than %zu bytes", max);
		return PROV_PROVIDER_ERROR;
	}
	buf = malloc(n);
	if (buf == NULL) {
		prov_msg(res, NULL, "out of memory copying the image");
		return PROV_PROVIDER_ERROR;
	}
	memcpy(buf, data, n);
	return prov_artifact_take(buf, n, res);
}
