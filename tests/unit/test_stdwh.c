/* test_stdwh.c - Standard Webhooks signing and verification. */
#include <string.h>

#include "cu_main.h"
#include "stdwh.h"

/* The test vector published with the Standard Webhooks specification
 * (standard-webhooks/standard-webhooks, its libraries' tests). */
#define VEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define VEC_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define VEC_TS 1614265330
#define VEC_TS_S "1614265330"
#define VEC_BODY "{\"test\": 2432232314}"
#define VEC_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static struct stdwh_key vec_key;

static int
init(void)
{
	return stdwh_key_parse(VEC_SECRET, &vec_key);
}

static enum stdwh_res
verify(const char *id, const char *ts, const char *sig, const char *body,
    time_t now)
{
	return stdwh_verify(&vec_key, 1, id, ts, sig, body, strlen(body), now,
	    0);
}

static void
test_stdwh_sign_matches_spec_vector(void)
{
	char sig[STDWH_SIG_MAX];

	CU_ASSERT_EQUAL(vec_key.n, 24);
	CU_ASSERT_EQUAL(stdwh_sign(&vec_key, VEC_ID, VEC_TS, VEC_BODY,
	    strlen(VEC_BODY), sig), 0);
	CU_ASSERT_STRING_EQUAL(sig, VEC_SIG);
}

static void
test_stdwh_verify_accepts_spec_vector(void)
{
	CU_ASSERT_EQUAL(verify(VEC_ID, VEC_TS_S, VEC_SIG, VEC_BODY, VEC_TS),
	    STDWH_OK);
	/* Inside the tolerance either way. */
	CU_ASSERT_EQUAL(verify(VEC_ID, VEC_TS_S, VEC_SIG, VEC_BODY,
	    VEC_TS + 300), STDWH_OK);
	CU_ASSERT_EQUAL(verify(VEC_ID, VEC_TS_S, VEC_SIG, VEC_BODY,
	    VEC_TS - 300), STDWH_OK);
}

static void
test_stdwh_key_without_prefix(void)
{
	struct stdwh_key k;
	char sig[STDWH_SIG_MAX];

	CU_ASSERT_EQUAL(stdwh_key_parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	    &k), 0);
	CU_ASSERT_EQUAL(stdwh_sign(&k, VEC_ID, VEC_TS, VEC_BODY,
	    strlen(VEC_BODY), sig), 0);
	CU_ASSERT_STRING_EQUAL(sig, VEC_SIG);
	stdwh_key_wipe(&k);
	CU_ASSERT_EQUAL(k.n, 0);
}

static void
test_stdwh_key_refuses_bad_secrets(void)
{
	struct stdwh_key k;

	CU_ASSERT_EQUAL(stdwh_key_parse(NULL, &k), -1);
	CU_ASSERT_EQUAL(stdwh_key_parse("", &k), -1);
	CU_ASSERT_EQUAL(stdwh_key_parse("whsec_", &k), -1);
	CU_ASSERT_EQUAL(stdwh_key_parse("whsec_not base64!", &k), -1);
	/* Too short to be a key (5 bytes). */
	CU_ASSERT_EQUAL(stdwh_key_parse("whsec_c2hvcnQ=", &k), -1);
	CU_ASSERT_EQUAL(k.n, 0);
	/* Longer than HMAC-SHA256's block. */
	CU_ASSERT_EQUAL(stdwh_key_parse("whsec_"
	    "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	    "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB", &k), -1);
}

static void
test_stdwh_verify_refuses_tampering(void)
{
	/* Body, id or timestamp changed: the signature no longer matches. */
	CU_ASSERT_EQUAL(verify(VEC_ID, VEC_TS_S, VEC_SIG,
	    "{\"test\": 2432232315}", VEC_TS), STDWH_ESIGNATURE);
	CU_ASSERT_EQUAL(verify("msg_other", VEC_TS_S, VEC_SIG, VEC_BODY,
	    VEC_TS), STDWH_ESIGNATURE);
	CU_ASSERT_EQUAL(verify(VEC_ID, "1614265331", VEC_SIG, VEC_BODY,
	    VEC_TS), STDWH_ESIGNATURE);
	/* One flipped character of the MAC. */
	CU_ASSERT_EQUAL(verify(VEC_ID, VEC_TS_S,
	    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF=", VEC_BODY,
	    VEC_TS), STDWH_ESIGNATURE);
	/* Another version's tag, a missing tag, a truncated MAC. */
	CU_ASSERT_EQUAL(verify(VEC_ID, VEC_TS_S,
	    "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", VEC_BODY,
	    VEC_TS), STDWH_ESIGNATURE);
	CU_ASSERT_EQUAL(verify(VEC_ID, VEC_TS_S,
	    "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", VEC_BODY,
	    VEC_TS), STDWH_ESIGNATURE);
	CU_ASSERT_EQUAL(verify(VEC_ID, VEC_TS_S,
	    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1O", VEC_BODY,
	    VEC_TS), STDWH_ESIGNATURE);
}

static void
test_stdwh_verify_refuses_wrong_key(void)
{
	struct stdwh_key k;

	CU_ASSERT_EQUAL(stdwh_key_parse(
	    "whsec_c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludA==", &k), 0);
	CU_ASSERT_EQUAL(stdwh_verify(&k, 1, VEC_ID, VEC_TS_S, VEC_SIG,
	    VEC_BODY, strlen(VEC_BODY), VEC_TS, 0), STDWH_ESIGNATURE);
	CU_ASSERT_EQUAL(stdwh_verify(&k, 0, VEC_ID, VEC_TS_S, VEC_SIG,
	    VEC_BODY, strlen(VEC_BODY), VEC_TS, 0), STDWH_ESIGNATURE);
}

static void
test_stdwh_verify_refuses_stale_timestamps(void)
{
	CU_ASSERT_EQUAL(verify(VEC_ID, VEC_TS_S, VEC_SIG, VEC_BODY,
	    VEC_TS + 301), STDWH_ESTALE);
	CU_ASSERT_EQUAL(verify(VEC_ID, VEC_TS_S, VEC_SIG, VEC_BODY,
	    VEC_TS - 301), STDWH_ESTALE);
	/* A caller's own tolerance. */
	CU_ASSERT_EQUAL(stdwh_verify(&vec_key, 1, VEC_ID, VEC_TS_S, VEC_SIG,
	    VEC_BODY, strlen(VEC_BODY), VEC_TS + 11, 10), STDWH_ESTALE);
}

static void
test_stdwh_verify_refuses_malformed_headers(void)
{
	char big[STDWH_SIGHDR_MAX + 2];
	char longid[STDWH_ID_MAX + 2];

	CU_ASSERT_EQUAL(verify(NULL, VEC_TS_S, VEC_SIG, VEC_BODY, VEC_TS),
	    STDWH_EHEADERS);
	CU_ASSERT_EQUAL(verify("", VEC_TS_S, VEC_SIG, VEC_BODY, VEC_TS),
	    STDWH_EHEADERS);
	CU_ASSERT_EQUAL(verify("msg 1", VEC_TS_S, VEC_SIG, VEC_BODY, VEC_TS),
	    STDWH_EHEADERS);
	CU_ASSERT_EQUAL(verify(VEC_ID, NULL, VEC_SIG, VEC_BODY, VEC_TS),
	    STDWH_EHEADERS);
	CU_ASSERT_EQUAL(verify(VEC_ID, "", VEC_SIG, VEC_BODY, VEC_TS),
	    STDWH_EHEADERS);
	CU_ASSERT_EQUAL(verify(VEC_ID, "-1614265330", VEC_SIG, VEC_BODY,
	    VEC_TS), STDWH_EHEADERS);
	CU_ASSERT_EQUAL(verify(VEC_ID, "1614265330.5", VEC_SIG, VEC_BODY,
	    VEC_TS), STDWH_EHEADERS);
	CU_ASSERT_EQUAL(verify(VEC_ID, "99999999999999999999", VEC_SIG,
	    VEC_BODY, VEC_TS), STDWH_EHEADERS);
	CU_ASSERT_EQUAL(verify(VEC_ID, VEC_TS_S, NULL, VEC_BODY, VEC_TS),
	    STDWH_EHEADERS);
	CU_ASSERT_EQUAL(verify(VEC_ID, VEC_TS_S, "", VEC_BODY, VEC_TS),
	    STDWH_EHEADERS);
	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big + 10, VEC_SIG, strlen(VEC_SIG));
	CU_ASSERT_EQUAL(verify(VEC_ID, VEC_TS_S, big, VEC_BODY, VEC_TS),
	    STDWH_EHEADERS);
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	CU_ASSERT_EQUAL(verify(longid, VEC_TS_S, VEC_SIG, VEC_BODY, VEC_TS),
	    STDWH_EHEADERS);
}

static void
test_stdwh_verify_several_signatures(void)
{
	/* The match may be any of several, other versions among them. */
	CU_ASSERT_EQUAL(verify(VEC_ID, VEC_TS_S,
	    "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= v1a,xyz " VEC_SIG,
	    VEC_BODY, VEC_TS), STDWH_OK);
	CU_ASSERT_EQUAL(verify(VEC_ID, VEC_TS_S, "  " VEC_SIG "  ",
	    VEC_BODY, VEC_TS), STDWH_OK);
}

static void
test_stdwh_sign_header_two_keys_and_rotation(void)
{
	struct stdwh_key keys[2];
	char hdr[2 * STDWH_SIG_MAX], secret[STDWH_SECRET_MAX];

	keys[0] = vec_key;
	CU_ASSERT_EQUAL(stdwh_secret_new(secret, sizeof(secret)), 0);
	CU_ASSERT_EQUAL(strncmp(secret, "whsec_", 6), 0);
	CU_ASSERT_EQUAL(strlen(secret), 6 + 44);
	CU_ASSERT_EQUAL(stdwh_key_parse(secret, &keys[1]), 0);
	CU_ASSERT_EQUAL(keys[1].n, STDWH_NEW_KEY_LEN);
	CU_ASSERT_EQUAL(stdwh_sign_header(keys, 2, VEC_ID, VEC_TS, VEC_BODY,
	    strlen(VEC_BODY), hdr, sizeof(hdr)), 0);
	CU_ASSERT_EQUAL(strncmp(hdr, VEC_SIG " v1,", strlen(VEC_SIG) + 4), 0);
	CU_ASSERT_EQUAL(strlen(hdr), 2 * 47 + 1);
	/* A receiver holding either key accepts it. */
	CU_ASSERT_EQUAL(stdwh_verify(&keys[1], 1, VEC_ID, VEC_TS_S, hdr,
	    VEC_BODY, strlen(VEC_BODY), VEC_TS, 0), STDWH_OK);
	CU_ASSERT_EQUAL(stdwh_verify(&keys[0], 1, VEC_ID, VEC_TS_S, hdr,
	    VEC_BODY, strlen(VEC_BODY), VEC_TS, 0), STDWH_OK);
	/* Too small an output is refused, not truncated. */
	CU_ASSERT_EQUAL(stdwh_sign_header(keys, 2, VEC_ID, VEC_TS, VEC_BODY,
	    strlen(VEC_BODY), hdr, STDWH_SIG_MAX + 10), -1);
	CU_ASSERT_STRING_EQUAL(hdr, "");
	CU_ASSERT_EQUAL(stdwh_sign_header(keys, 0, VEC_ID, VEC_TS, VEC_BODY,
	    strlen(VEC_BODY), hdr, sizeof(hdr)), -1);
	stdwh_key_wipe(&keys[1]);
}

static void
test_stdwh_sign_refuses_bad_ids(void)
{
	char sig[STDWH_SIG_MAX];

	CU_ASSERT_EQUAL(stdwh_sign(&vec_key, "", VEC_TS, "x", 1, sig), -1);
	CU_ASSERT_EQUAL(stdwh_sign(&vec_key, "a b", VEC_TS, "x", 1, sig), -1);
	CU_ASSERT_EQUAL(stdwh_sign(&vec_key, VEC_ID, -1, "x", 1, sig), -1);
	CU_ASSERT_STRING_EQUAL(sig, "");
	/* An empty body is a body. */
	CU_ASSERT_EQUAL(stdwh_sign(&vec_key, VEC_ID, VEC_TS, "", 0, sig), 0);
	CU_ASSERT_EQUAL(stdwh_verify(&vec_key, 1, VEC_ID, VEC_TS_S, sig, "", 0,
	    VEC_TS, 0), STDWH_OK);
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "sign matches the spec vector", test_stdwh_sign_matches_spec_vector },
		{ "verify accepts the spec vector", test_stdwh_verify_accepts_spec_vector },
		{ "key without prefix", test_stdwh_key_without_prefix },
		{ "bad secrets refused", test_stdwh_key_refuses_bad_secrets },
		{ "tampering refused", test_stdwh_verify_refuses_tampering },
		{ "wrong key refused", test_stdwh_verify_refuses_wrong_key },
		{ "stale timestamps refused", test_stdwh_verify_refuses_stale_timestamps },
		{ "malformed headers refused", test_stdwh_verify_refuses_malformed_headers },
		{ "several signatures", test_stdwh_verify_several_signatures },
		{ "two keys, rotation", test_stdwh_sign_header_two_keys_and_rotation },
		{ "bad ids refused", test_stdwh_sign_refuses_bad_ids },
		CU_TEST_INFO_NULL
	};

	return cu_run_fixture("stdwh", tests, init, NULL);
}
