/*
 * stdwh.h - Standard Webhooks (standardwebhooks.com) signing and
 * verification, both directions: the events this service sends and the
 * callbacks providers send it.
 *
 *   webhook-id:        the message id, the same on every retry
 *   webhook-timestamp: integer seconds since the epoch
 *   webhook-signature: "v1,<base64 HMAC-SHA256(key, id "." ts "." body)>",
 *                      several separated by spaces (key rotation)
 *
 * The key is the base64-decoded part of a "whsec_..." secret. Every size
 * is bounded; comparisons of signatures are constant-time.
 */
#ifndef IG_STDWH_H
#define IG_STDWH_H

#include <stddef.h>
#include <time.h>

#define STDWH_PREFIX "whsec_"
#define STDWH_KEY_MIN 16		/* bytes of a usable key */
#define STDWH_KEY_MAX 64		/* bytes; HMAC-SHA256's block */
#define STDWH_NEW_KEY_LEN 32		/* bytes of a key stdwh_secret_new() makes */
/* "whsec_" + base64 of STDWH_KEY_MAX bytes + NUL */
#define STDWH_SECRET_MAX (6 + 88 + 1)
/* "v1," + base64 of 32 bytes + NUL */
#define STDWH_SIG_MAX (3 + 44 + 1)
#define STDWH_ID_MAX 256		/* bytes of a webhook-id */
#define STDWH_SIGHDR_MAX 4096		/* bytes of a webhook-signature header */
#define STDWH_SIGS_MAX 16		/* signatures looked at in one header */
#define STDWH_TOLERANCE_S 300		/* seconds either side of now */

/* A signing key. Wipe with stdwh_key_wipe() when done. */
struct stdwh_key {
	unsigned char k[STDWH_KEY_MAX];
	size_t n;
};

enum stdwh_res {
	STDWH_OK = 0,
	STDWH_EHEADERS,		/* a header missing, empty, too long or malformed */
	STDWH_ESTALE,		/* timestamp outside the tolerance */
	STDWH_ESIGNATURE,	/* no v1 signature matches any key */
	STDWH_EINTERNAL		/* out of memory or a crypto failure */
};

/*
 * Parses secret ("whsec_" + canonical base64, or the base64 alone) into
 * *k: 0, or -1 when it is not base64 or decodes to fewer than
 * STDWH_KEY_MIN or more than STDWH_KEY_MAX bytes (*k zeroed). Can't fail
 * otherwise.
 */
int stdwh_key_parse(const char *secret, struct stdwh_key *k);
/* Zeroes *k with OPENSSL_cleanse(). Accepts NULL. */
void stdwh_key_wipe(struct stdwh_key *k);

/*
 * A new random secret, "whsec_" + base64 of STDWH_NEW_KEY_LEN bytes, into
 * out (at least STDWH_SECRET_MAX bytes). 0, or -1 when the random source
 * or memory fails.
 */
int stdwh_secret_new(char *out, size_t outlen);

/*
 * The "v1,<base64>" signature of (id, ts, body[n]) with k into out
 * (STDWH_SIG_MAX bytes). 0, or -1 (id empty or longer than STDWH_ID_MAX,
 * ts negative, crypto failure; out is then "").
 */
int stdwh_sign(const struct stdwh_key *k, const char *id, long long ts,
    const void *body, size_t n, char out[STDWH_SIG_MAX]);

/*
 * The webhook-signature header for keys[0..nkeys): their signatures in
 * order, separated by one space, into out (outlen bytes; nkeys *
 * STDWH_SIG_MAX always fits). 0, or -1 as stdwh_sign() or when out is too
 * small or nkeys is 0.
 */
int stdwh_sign_header(const struct stdwh_key *keys, size_t nkeys,
    const char *id, long long ts, const void *body, size_t n, char *out,
    size_t outlen);

/*
 * Verifies a received message: id, ts and sighdr are the three header
 * values as received (NULL counts as missing); body[n] the raw body; now
 * the current time; tolerance the allowed skew in seconds (0:
 * STDWH_TOLERANCE_S). STDWH_OK when some "v1," signature in sighdr
 * matches one of the first 8 keys; the timestamp is checked before any HMAC. Other
 * versions ("v1a,") are skipped, not errors. Can't fail otherwise.
 */
enum stdwh_res stdwh_verify(const struct stdwh_key *keys, size_t nkeys,
    const char *id, const char *ts, const char *sighdr, const void *body,
    size_t n, time_t now, long tolerance);

/* A short fixed text for r ("signature does not match"). Can't fail. */
const char *stdwh_strerror(enum stdwh_res r);

#endif
