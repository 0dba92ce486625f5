/*
 * fuzz_stdwh.c - the Standard Webhooks verifier as a provider's callback
 * reaches it: the input is webhook-id, webhook-timestamp and
 * webhook-signature lines, then the body. stdwh_precheck() and
 * stdwh_verify() under two keys; then the same message signed with the
 * key must verify, and stdwh_key_parse() reads the first line as a
 * secret.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "stdwh.h"

#define FZ_WH_NOW 1614265330L	/* the published test vector's time */
#define FZ_WHSEC "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define FZ_WHSEC2 "whsec_c2VjcmV0LWtleS1udW1iZXItdHdvLTAxMjM0NTY3"

static struct stdwh_key keys[2];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_quiet();
	if (stdwh_key_parse(FZ_WHSEC, &keys[0]) != 0 ||
	    stdwh_key_parse(FZ_WHSEC2, &keys[1]) != 0)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_part p[4];
	struct stdwh_key k;
	char sig[STDWH_SIG_MAX], hdr[2 * STDWH_SIG_MAX];
	enum stdwh_res pre, r;
	long long ts;
	char *end, canon[32];
	size_t n;

	n = fz_split(data, size, '\n', p, 4);
	if (n < 4) {
		fz_parts_free(p, n);
		return 0;
	}
	pre = stdwh_precheck(p[0].s, p[1].s, p[2].s, FZ_WH_NOW, 0);
	r = stdwh_verify(keys, 2, p[0].s, p[1].s, p[2].s, p[3].s, p[3].n,
	    FZ_WH_NOW, 0);
	/* the precheck refuses nothing verify would accept */
	if (r == STDWH_OK && pre != STDWH_OK)
		__builtin_trap();
	(void)stdwh_strerror(r);
	/* signed with the second key, the message verifies */
	/* (a timestamp written as stdwh_sign() writes it) */
	ts = strtoll(p[1].s, &end, 10);
	snprintf(canon, sizeof(canon), "%lld", ts);
	if (*end == '\0' && strcmp(canon, p[1].s) == 0 && ts >= FZ_WH_NOW - 60 &&
	    ts <= FZ_WH_NOW + 60 &&
	    stdwh_sign_header(&keys[1], 1, p[0].s, ts, p[3].s, p[3].n, hdr,
	    sizeof(hdr)) == 0 &&
	    stdwh_verify(keys, 2, p[0].s, p[1].s, hdr, p[3].s, p[3].n, FZ_WH_NOW,
	    0) != STDWH_OK)
		__builtin_trap();
	if (stdwh_sign(&keys[0], p[0].s, ts, p[3].s, p[3].n, sig) != 0 &&
	    sig[0] != '\0')
		__builtin_trap();
	if (stdwh_key_parse(p[0].s, &k) == 0 && (k.n < STDWH_KEY_MIN ||
	    k.n > STDWH_KEY_MAX))
		__builtin_trap();
	stdwh_key_wipe(&k);
	fz_parts_free(p, n);
	return 0;
}
