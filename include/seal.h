/*
 * seal.h - small secrets encrypted at rest: AES-256-GCM with a key the
 * database never sees, a random 96-bit nonce per seal, and associated
 * data (AAD) naming what the secret belongs to, so that a sealed value
 * copied to another owner does not open.
 *
 *   sealed text: "v1:" + base64(nonce[12] | ciphertext | tag[16])
 *
 * The version names the format and the algorithm; a later one can be
 * added beside it. Every size is bounded; nothing here logs.
 */
#ifndef IG_SEAL_H
#define IG_SEAL_H

#include <stddef.h>

#define SEAL_PREFIX "v1:"
#define SEAL_KEY_LEN 32		/* bytes of an AES-256 key */
#define SEAL_NONCE_LEN 12
#define SEAL_TAG_LEN 16
#define SEAL_PLAIN_MAX 128	/* bytes of a secret that can be sealed */
#define SEAL_AAD_MAX 256	/* bytes of associated data */
/* "v1:" + base64 of nonce, SEAL_PLAIN_MAX bytes and tag, + NUL */
#define SEAL_TEXT_MAX (3 + \
	((SEAL_NONCE_LEN + SEAL_PLAIN_MAX + SEAL_TAG_LEN + 2) / 3) * 4 + 1)

/* A sealing key. Wipe with seal_key_wipe() when done. */
struct seal_key {
	unsigned char k[SEAL_KEY_LEN];
};

/*
 * Parses b64, the canonical padded base64 of exactly SEAL_KEY_LEN bytes
 * (`openssl rand -base64 32`), into *k: 0, or -1 for anything else (*k
 * zeroed). Can't fail otherwise.
 */
int seal_key_parse(const char *b64, struct seal_key *k);
/* Zeroes *k with OPENSSL_cleanse(). Accepts NULL. */
void seal_key_wipe(struct seal_key *k);

/* 1 when s has the form of sealed text (the prefix), else 0. Accepts
 * NULL. Says nothing of whether it opens. */
int seal_is_sealed(const char *s);

/*
 * Seals the NUL-terminated plain (1..SEAL_PLAIN_MAX bytes) with k and
 * aad[aadlen] (at most SEAL_AAD_MAX) into out (outlen bytes;
 * SEAL_TEXT_MAX always fits), a fresh random nonce each call. 0, or -1
 * (bad sizes, the random source or the cipher failed; out is then "").
 */
int seal_seal(const struct seal_key *k, const void *aad, size_t aadlen,
    const char *plain, char *out, size_t outlen);

/*
 * Opens sealed text with k and the same aad: the NUL-terminated plain
 * text into out (outlen bytes; SEAL_PLAIN_MAX + 1 always fits). 0, or -1
 * when text is not well formed, was made with another key or aad, was
 * altered, or the plain text holds a NUL or does not fit (out is then
 * "", nothing of the plain text left in memory). Can't fail otherwise.
 */
int seal_open(const struct seal_key *k, const void *aad, size_t aadlen,
    const char *text, char *out, size_t outlen);

#endif
