/* seal.c - AES-256-GCM sealed secrets (see include/seal.h). */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "base64.h"
#include "seal.h"

#define RAW_MAX (SEAL_NONCE_LEN + SEAL_PLAIN_MAX + SEAL_TAG_LEN)

int
seal_key_parse(const char *b64, struct seal_key *k)
{
	unsigned char *raw = NULL;
	size_t rawlen = 0, len;
	int rc = -1;

	memset(k, 0, sizeof(*k));
	if (b64 == NULL)
		goto out;
	len = strnlen(b64, 64);
	/* 32 bytes are exactly 44 characters of padded base64 */
	if (len != 44)
		goto out;
	if (base64_decode(b64, len, SEAL_KEY_LEN, &raw, &rawlen) != 0 ||
	    rawlen != SEAL_KEY_LEN)
		goto out;
	memcpy(k->k, raw, SEAL_KEY_LEN);
	rc = 0;
out:
	if (raw != NULL) {
		OPENSSL_cleanse(raw, rawlen);
		free(raw);
	}
	return rc;
}

void
seal_key_wipe(struct seal_key *k)
{
	if (k != NULL)
		OPENSSL_cleanse(k, sizeof(*k));
}

int
seal_is_sealed(const char *s)
{
	return s != NULL && strncmp(s, SEAL_PREFIX, strlen(SEAL_PREFIX)) == 0;
}

int
seal_seal(const struct seal_key *k, const void *aad, size_t aadlen,
    const char *plain, char *out, size_t outlen)
{
	unsigned char raw[RAW_MAX];
	EVP_CIPHER_CTX *ctx = NULL;
	char *b = NULL;
	size_t n, blen = 0, plen = strlen(SEAL_PREFIX);
	int len = 0, fin = 0, rc = -1;

	if (outlen > 0)
		out[0] = '\0';
	n = plain != NULL ? strnlen(plain, SEAL_PLAIN_MAX + 1) : 0;
	if (k == NULL || n == 0 || n > SEAL_PLAIN_MAX || aadlen > SEAL_AAD_MAX ||
	    (aad == NULL && aadlen > 0))
		goto out;
	if (RAND_bytes(raw, SEAL_NONCE_LEN) != 1)
		goto out;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL ||
	    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE_LEN,
	    NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, k->k, raw) != 1)
		goto out;
	if (aadlen > 0 &&
	    EVP_EncryptUpdate(ctx, NULL, &len, aad, (int)aadlen) != 1)
		goto out;
	if (EVP_EncryptUpdate(ctx, raw + SEAL_NONCE_LEN, &len,
	    (const unsigned char *)plain, (int)n) != 1 || (size_t)len != n)
		goto out;
	if (EVP_EncryptFinal_ex(ctx, raw + SEAL_NONCE_LEN + n, &fin) != 1 ||
	    fin != 0)
		goto out;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_LEN,
	    raw + SEAL_NONCE_LEN + n) != 1)
		goto out;
	b = base64_encode(raw, SEAL_NONCE_LEN + n + SEAL_TAG_LEN, &blen);
	if (b == NULL || plen + blen + 1 > outlen)
		goto out;
	memcpy(out, SEAL_PREFIX, plen);
	memcpy(out + plen, b, blen + 1);
	rc = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(raw, sizeof(raw));
	free(b);
	return rc;
}

int
seal_open(const struct seal_key *k, const void *aad, size_t aadlen,
    const char *text, char *out, size_t outlen)
{
	unsigned char plain[SEAL_PLAIN_MAX];
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char *raw = NULL;
	size_t rawlen = 0, n = 0, tlen, plen = strlen(SEAL_PREFIX);
	int len = 0, fin = 0, rc = -1;

	if (outlen > 0)
		out[0] = '\0';
	if (k == NULL || !seal_is_sealed(text) || aadlen > SEAL_AAD_MAX ||
	    (aad == NULL && aadlen > 0))
		goto out;
	tlen = strnlen(text, SEAL_TEXT_MAX);
	if (tlen >= SEAL_TEXT_MAX)
		goto out;
	if (base64_decode(text + plen, tlen - plen, RAW_MAX, &raw, &rawlen) != 0)
		goto out;
	if (rawlen < SEAL_NONCE_LEN + 1 + SEAL_TAG_LEN)
		goto out;
	n = rawlen - SEAL_NONCE_LEN - SEAL_TAG_LEN;
	if (n + 1 > outlen)
		goto out;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL ||
	    EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE_LEN,
	    NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, k->k, raw) != 1)
		goto out;
	if (aadlen > 0 &&
	    EVP_DecryptUpdate(ctx, NULL, &len, aad, (int)aadlen) != 1)
		goto out;
	if (EVP_DecryptUpdate(ctx, plain, &len, raw + SEAL_NONCE_LEN,
	    (int)n) != 1 || (size_t)len != n)
		goto out;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_LEN,
	    raw + SEAL_NONCE_LEN + n) != 1)
		goto out;
	/* the tag is checked here: nothing is given out before it passes */
	if (EVP_DecryptFinal_ex(ctx, plain + n, &fin) != 1 || fin != 0)
		goto out;
	if (memchr(plain, '\0', n) != NULL)
		goto out;
	memcpy(out, plain, n);
	out[n] = '\0';
	rc = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(plain, sizeof(plain));
	if (raw != NULL) {
		OPENSSL_cleanse(raw, rawlen);
		free(raw);
	}
	return rc;
}
