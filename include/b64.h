/* b64.h - base64url (RFC 4648 §5, no padding) and standard base64. */
#ifndef IG_B64_H
#define IG_B64_H

#include <stddef.h>

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
