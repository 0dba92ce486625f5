/* harness.c - the fuzz targets' shared helpers (harness.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "harness.h"
#include "jwt_key.h"
#include "log.h"

void
fz_quiet(void)
{
	log_set_level(IG_LOG_ERROR);
}

char *
fz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		abort();
	if (size > 0)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

size_t
fz_split(const uint8_t *data, size_t size, char sep, struct fz_part *parts,
    size_t max)
{
	size_t n = 0, start = 0, i;

	for (i = 0; i < size && n + 1 < max; i++) {
		if (data[i] != (uint8_t)sep)
			continue;
		parts[n].s = fz_strndup(data + start, i - start);
		parts[n].n = i - start;
		n++;
		start = i + 1;
	}
	parts[n].s = fz_strndup(data + start, size - start);
	parts[n].n = size - start;
	return n + 1;
}

void
fz_parts_free(struct fz_part *parts, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(parts[i].s);
}

/* ---- the JWT keyring --------------------------------------------------- */

static struct jwt_key fz_es1, fz_rs1, fz_hs;
static int fz_keys_made;

/* The public half of priv as k, through PEM, as the service loads it. */
static void
public_key(struct jwt_key *k, const char *kid, EVP_PKEY *priv)
{
	BIO *bio = BIO_new(BIO_s_mem());
	const char *why = NULL;
	char *pem;
	long n;

	if (bio == NULL || priv == NULL || PEM_write_bio_PUBKEY(bio, priv) != 1)
		abort();
	n = BIO_get_mem_data(bio, &pem);
	if (jwt_key_from_pem(k, kid, pem, (size_t)n, &why) != 0) {
		fprintf(stderr, "fuzz: key %s: %s\n", kid, why != NULL ? why : "?");
		abort();
	}
	BIO_free(bio);
	EVP_PKEY_free(priv);
}

void
fz_jwt_keys(void)
{
	if (fz_keys_made)
		return;
	public_key(&fz_es1, "es1", EVP_EC_gen("P-256"));
	public_key(&fz_rs1, "rs1", EVP_RSA_gen(2048));
	if (jwt_key_hs256(&fz_hs, NULL, (const unsigned char *)FZ_JWT_SECRET,
	    strlen(FZ_JWT_SECRET)) != 0)
		abort();
	fz_keys_made = 1;
}

const struct jwt_key *
fz_jwt_lookup(void *ctx, const char *kid)
{
	(void)ctx;
	if (kid != NULL && strcmp(kid, "es1") == 0)
		return &fz_es1;
	if (kid != NULL && strcmp(kid, "rs1") == 0)
		return &fz_rs1;
	return &fz_hs;
}

const struct jwt_key *
fz_jwt_hs256(void)
{
	return &fz_hs;
}
