/* stdwh.c - Standard Webhooks signatures (see include/stdwh.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "base64.h"
#include "stdwh.h"

int
stdwh_key_parse(const char *secret, struct stdwh_key *k)
{
	unsigned char *raw = NULL;
	size_t len, rawlen = 0;
	int rc = -1;

	memset(k, 0, sizeof(*k));
	if (secret == NULL)
		goto out;
	if (strncmp(secret, STDWH_PREFIX, strlen(STDWH_PREFIX)) == 0)
		secret += strlen(STDWH_PREFIX);
	len = strnlen(secret, STDWH_SECRET_MAX);
	if (len == 0 || len >= STDWH_SECRET_MAX)
		goto out;
	if (base64_decode(secret, len, STDWH_KEY_MAX, &raw, &rawlen) != 0)
		goto out;
	if (rawlen < STDWH_KEY_MIN || rawlen > STDWH_KEY_MAX)
		goto out;
	memcpy(k->k, raw, rawlen);
	k->n = rawlen;
	rc = 0;
out:
	if (raw != NULL) {
		OPENSSL_cleanse(raw, rawlen);
		free(raw);
	}
	return rc;
}

void
stdwh_key_wipe(struct stdwh_key *k)
{
	if (k != NULL)
		OPENSSL_cleanse(k, sizeof(*k));
}

int
stdwh_secret_new(char *out, size_t outlen)
{
	unsigned char raw[STDWH_NEW_KEY_LEN];
	char *b = NULL;
	size_t blen = 0;
	int rc = -1;

	if (outlen > 0)
		out[0] = '\0';
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		goto out;
	b = base64_encode(raw, sizeof(raw), &blen);
	if (b == NULL || strlen(STDWH_PREFIX) + blen + 1 > outlen)
		goto out;
	memcpy(out, STDWH_PREFIX, strlen(STDWH_PREFIX));
	memcpy(out + strlen(STDWH_PREFIX), b, blen + 1);
	rc = 0;
out:
	OPENSSL_cleanse(raw, sizeof(raw));
	if (b != NULL) {
		OPENSSL_cleanse(b, blen);
		free(b);
	}
	return rc;
}

/* HMAC-SHA256 of id "." ts "." body into mac[32]. 0, or -1. */
static int
mac_of(const struct stdwh_key *k, const char *id, size_t idlen,
    const char *ts, size_t tslen, const void *body, size_t n,
    unsigned char mac[32])
{
	unsigned char *msg = NULL;
	unsigned int maclen = 0;
	size_t len;
	int rc = -1;

	if (n > SIZE_MAX - idlen - tslen - 2)
		goto out;
	len = idlen + 1 + tslen + 1 + n;
	msg = malloc(len > 0 ? len : 1);
	if (msg == NULL)
		goto out;
	memcpy(msg, id, idlen);
	msg[idlen] = '.';
	memcpy(msg + idlen + 1, ts, tslen);
	msg[idlen + 1 + tslen] = '.';
	if (n > 0)
		memcpy(msg + idlen + tslen + 2, body, n);
	if (HMAC(EVP_sha256(), k->k, (int)k->n, msg, len, mac, &maclen) ==
	    NULL || maclen != 32)
		goto out;
	rc = 0;
out:
	free(msg);
	return rc;
}

/* An id is 1..STDWH_ID_MAX printable ASCII bytes without blanks. */
static int
id_ok(const char *id, size_t *len)
{
	size_t i;

	if (id == NULL)
		return 0;
	for (i = 0; id[i] != '\0'; i++) {
		if (i >= STDWH_ID_MAX || id[i] <= ' ' || id[i] > '~')
			return 0;
	}
	*len = i;
	return i > 0;
}

int
stdwh_sign(const struct stdwh_key *k, const char *id, long long ts,
    const void *body, size_t n, char out[STDWH_SIG_MAX])
{
	unsigned char mac[32];
	char tsbuf[24];
	char *b = NULL;
	size_t idlen = 0, blen = 0;
	int tslen, rc = -1;

	out[0] = '\0';
	if (k == NULL || k->n == 0 || !id_ok(id, &idlen) || ts < 0)
		goto out;
	tslen = snprintf(tsbuf, sizeof(tsbuf), "%lld", ts);
	if (tslen <= 0 || (size_t)tslen >= sizeof(tsbuf))
		goto out;
	if (mac_of(k, id, idlen, tsbuf, (size_t)tslen, body, n, mac) != 0)
		goto out;
	b = base64_encode(mac, sizeof(mac), &blen);
	if (b == NULL || 3 + blen + 1 > STDWH_SIG_MAX)
		goto out;
	memcpy(out, "v1,", 3);
	memcpy(out + 3, b, blen + 1);
	rc = 0;
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	free(b);
	return rc;
}

int
stdwh_sign_header(const struct stdwh_key *keys, size_t nkeys,
    const char *id, long long ts, const void *body, size_t n, char *out,
    size_t outlen)
{
	char sig[STDWH_SIG_MAX];
	size_t i, used = 0, sl;

	if (outlen > 0)
		out[0] = '\0';
	if (nkeys == 0 || outlen == 0)
		return -1;
	for (i = 0; i < nkeys; i++) {
		if (stdwh_sign(&keys[i], id, ts, body, n, sig) != 0)
			goto fail;
		sl = strlen(sig);
		if (used + (i > 0) + sl + 1 > outlen)
			goto fail;
		if (i > 0)
			out[used++] = ' ';
		memcpy(out + used, sig, sl + 1);
		used += sl;
	}
	return 0;
fail:
	out[0] = '\0';
	return -1;
}

/* Parses a webhook-timestamp: 1..19 decimal digits. 0, or -1. */
static int
ts_parse(const char *ts, long long *v)
{
	long long x = 0;
	size_t i;

	if (ts == NULL || ts[0] == '\0')
		return -1;
	for (i = 0; ts[i] != '\0'; i++) {
		if (i >= 19 || ts[i] < '0' || ts[i] > '9')
			return -1;
		x = x * 10 + (ts[i] - '0');
	}
	*v = x;
	return 0;
}

enum stdwh_res
stdwh_verify(const struct stdwh_key *keys, size_t nkeys, const char *id,
    const char *ts, const char *sighdr, const void *body, size_t n,
    time_t now, long tolerance)
{
	unsigned char got[32], macs[8][32];
	const char *p, *e;
	size_t idlen = 0, hlen, i, seen = 0, nmac;
	long long t = 0, d;
	enum stdwh_res res = STDWH_EHEADERS;
	int match = 0;

	if (tolerance <= 0)
		tolerance = STDWH_TOLERANCE_S;
	if (!id_ok(id, &idlen) || ts_parse(ts, &t) != 0 || sighdr == NULL)
		goto out;
	hlen = strnlen(sighdr, STDWH_SIGHDR_MAX + 1);
	if (hlen == 0 || hlen > STDWH_SIGHDR_MAX)
		goto out;
	d = (long long)now - t;
	if (d > tolerance || d < -tolerance) {
		res = STDWH_ESTALE;
		goto out;
	}
	/* One MAC per key (at most 8 keys looked at), then each signature. */
	nmac = nkeys < 8 ? nkeys : 8;
	for (i = 0; i < nmac; i++) {
		if (mac_of(&keys[i], id, idlen, ts, strlen(ts), body, n,
		    macs[i]) != 0) {
			res = STDWH_EINTERNAL;
			goto out;
		}
	}
	res = STDWH_ESIGNATURE;
	p = sighdr;
	while (*p != '\0' && seen < STDWH_SIGS_MAX) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		e = p;
		while (*e != '\0' && *e != ' ')
			e++;
		seen++;
		/* "v1," + exactly 44 characters of padded base64. */
		if (e - p == 47 && strncmp(p, "v1,", 3) == 0) {
			unsigned char *dec = NULL;
			size_t declen = 0;

			if (base64_decode(p + 3, 44, 32, &dec, &declen) == 0 &&
			    declen == 32) {
				memcpy(got, dec, 32);
				for (i = 0; i < nmac; i++)
					match |= CRYPTO_memcmp(got, macs[i], 32) == 0;
			}
			free(dec);
		}
		p = e;
	}
	if (match)
		res = STDWH_OK;
out:
	OPENSSL_cleanse(macs, sizeof(macs));
	OPENSSL_cleanse(got, sizeof(got));
	return res;
}

const char *
stdwh_strerror(enum stdwh_res r)
{
	switch (r) {
	case STDWH_OK:
		return "ok";
	case STDWH_EHEADERS:
		return "webhook headers missing or malformed";
	case STDWH_ESTALE:
		return "webhook timestamp outside the tolerance";
	case STDWH_ESIGNATURE:
		return "no webhook signature matches";
	case STDWH_EINTERNAL:
		break;
	}
	return "webhook verification failed";
}
