/*
 * base64.h - base64 (RFC 4648), strict both ways: standard base64 with
 * padding (§4) for image payloads, and base64url without padding (§5,
 * RFC 7515 §2) for tokens and cursors.
 */
#ifndef IG_BASE64_H
#define IG_BASE64_H

#include <stddef.h>

/* ---- standard base64, padded ------------------------------------------ */

/* The encoded length of n bytes, padding included, without the NUL;
 * SIZE_MAX when it would not fit a size_t. Can't fail. */
size_t base64_encoded_len(size_t n);

/*
 * Encodes n bytes into a malloc'd, NUL-terminated string with padding;
 * *outlen (may be NULL) gets its length. NULL when out of memory or n is
 * too large. Caller frees with free().
 */
char *base64_encode(const unsigned char *in, size_t n, size_t *outlen);

/*
 * The length the n characters at in decode to, from n and the padding
 * alone (the last two characters): -1 when n is not a multiple of 4. A
 * cheap bound before allocating; base64_decode() checks the rest.
 */
long base64_decoded_len(const char *in, size_t n);

/*
 * Strict decode of n characters, no whitespace, no url alphabet, no
 * missing or extra padding, no non-zero trailing bits (so every byte
 * string has exactly one encoding). At most max decoded bytes: a longer
 * input is refused before any allocation. 0 with *out (malloc'd, caller
 * frees) and *outlen; -1 when the input is not canonical base64, -2 when
 * it decodes to more than max bytes, -3 when out of memory.
 */
int base64_decode(const char *in, size_t n, size_t max, unsigned char **out,
    size_t *outlen);

/* ---- base64url, unpadded ---------------------------------------------- */

/* Encodes n bytes as base64url without padding into out, which must hold
 * b64url_encoded_len(n) + 1 bytes. Returns the length written. */
size_t b64url_encode(const unsigned char *in, size_t n, char *out);
size_t b64url_encoded_len(size_t n);
/*
 * Strict decode: only [A-Za-z0-9_-], no padding, no impossible trailing
 * bits. out must hold n * 3 / 4 + 1 bytes. Returns the decoded length, or
 * -1 on any bad input.
 */
long b64url_decode(const char *in, size_t n, unsigned char *out);

#endif
