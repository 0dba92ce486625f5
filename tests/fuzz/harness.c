/* harness.c - the fuzz targets' shared helpers (harness.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "jwks.h"
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

/* The public keys of the ES256 and RS256 tokens in tests/fuzz/corpus/jwt/
 * (their private halves were used once, to sign those, and dropped), as
 * a key server would send them; also corpus/jwks/fuzz_keyring. */
static const char fz_jwks[] =
	"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"es1\",\"u"
	"se\":\"sig\",\"alg\":\"ES256\",\"x\":\"OSA_IlK2UydcmRzjjEhUqwMrz"
	"d3mDhSLvyzMwiEwVzU\",\"y\":\"tahEozU5TOBJsY0rQk4h5pWJ2IVKqtkrUvA"
	"r9Ae9Iok\"},{\"kty\":\"RSA\",\"kid\":\"rs1\",\"use\":\"sig\",\"a"
	"lg\":\"RS256\",\"n\":\"qQlDW0ux4_aMIg-D0CAQzo5piOmUopjNPvontlL3V"
	"mG6vdDOeKZqpuniINt1dIv_BHMtHbRWCnwhgvKgXA4CFVUyajfn6MpOP8sl5aNVo"
	"hiwyb4FyjKZGtNmsLpO5QAGwao5EVDyETDhFupZsCurigvs9uWePdMxUOJy84Xuw"
	"O3s6laeRdOYTzi6xtcUV3mRQDEpByrUjgdshnaXhr6YNG4RpKNXoSzoWE6u-G-FM"
	"BCoM-idJP7jE52-zLe4-QNA5ykuBp8NMBnPcuIWv4qDRXfBk39Nxv0_JAk4gfMZS"
	"i3-T8BlI4GZurWispQvolTmUUzgqP8c9blSyIcqy-d57Q\",\"e\":\"AQAB\"}]"
	"}";

static struct jwt_key fz_keys[2], fz_hs;
static int fz_keys_made;

void
fz_jwt_keys(void)
{
	int skipped = 0;

	if (fz_keys_made)
		return;
	if (jwks_parse(fz_jwks, sizeof(fz_jwks) - 1, fz_keys, 2, &skipped) != 2 ||
	    skipped != 0 || jwt_key_hs256(&fz_hs, NULL,
	    (const unsigned char *)FZ_JWT_SECRET, strlen(FZ_JWT_SECRET)) != 0) {
		fprintf(stderr, "fuzz: the test keyring does not load\n");
		abort();
	}
	fz_keys_made = 1;
}

const struct jwt_key *
fz_jwt_lookup(void *ctx, const char *kid)
{
	(void)ctx;
	if (kid != NULL && strcmp(kid, "es1") == 0)
		return &fz_keys[0];
	if (kid != NULL && strcmp(kid, "rs1") == 0)
		return &fz_keys[1];
	return &fz_hs;
}

const struct jwt_key *
fz_jwt_hs256(void)
{
	return &fz_hs;
}
