/*
 * harness.h - what the libFuzzer targets (tests/fuzz/fuzz_*.c) share:
 * quiet logs, NUL-terminated copies and splits of the input, and the
 * test keyring of the JWT targets. Built into every target by
 * tests/fuzz/run; never part of the service.
 */
#ifndef IG_FUZZ_HARNESS_H
#define IG_FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "jwt.h"

/* The HS256 secret of the JWT targets (the unit suite's). */
#define FZ_JWT_SECRET "super-secret-jwt-token-with-at-least-32-characters-long"
/* Their clock and leeway. */
#define FZ_NOW 1800000000L
#define FZ_LEEWAY 30

/* libFuzzer's entry points, defined by each target. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Logs only errors (a parser's info lines would drown the fuzzer's).
 * Call from LLVMFuzzerInitialize(). Can't fail. */
void fz_quiet(void);

/* One piece of the input, NUL-terminated (malloc'd by fz_split()). */
struct fz_part {
	char *s;
	size_t n;		/* bytes before the NUL (s may hold NULs) */
};

/*
 * Splits data at the first max - 1 bytes equal to sep into at most max
 * parts, each a NUL-terminated copy; the last part holds the rest, sep
 * bytes and all. Returns how many parts there are (at least 1). Aborts
 * when out of memory. Free with fz_parts_free().
 */
size_t fz_split(const uint8_t *data, size_t size, char sep,
    struct fz_part *parts, size_t max);
void fz_parts_free(struct fz_part *parts, size_t n);
/* A NUL-terminated malloc'd copy of data; aborts when out of memory. */
char *fz_strndup(const uint8_t *data, size_t size);

/*
 * The JWT targets' keyring: HS256 FZ_JWT_SECRET for a token without a kid
 * (or with one the ring lacks), ES256 "es1" and RS256 "rs1" (fixed public
 * keys, read with jwks_parse(); the seed tokens are signed with them).
 * fz_jwt_keys() makes it on first use (aborts on failure);
 * fz_jwt_lookup() is the jwt_key_lookup over it.
 */
void fz_jwt_keys(void);
const struct jwt_key *fz_jwt_lookup(void *ctx, const char *kid);
/* The HS256 key itself. */
const struct jwt_key *fz_jwt_hs256(void);

#endif
