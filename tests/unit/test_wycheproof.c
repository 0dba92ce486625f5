/* test_wycheproof.c - Project Wycheproof vectors through jwt_verify_sig(),
 * the path every token's signature takes. "acceptable" vectors may go either
 * way (they are counted, not asserted; see docs/AUTH.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cu_main.h"
#include "jwt.h"

struct tally {
	int run, ok, acceptable;
};

static unsigned char *
unhex(const char *s, size_t *n)
{
	size_t len = strlen(s), i;
	unsigned char *out = malloc(len / 2 + 1);
	unsigned v;

	if (out == NULL || len % 2 != 0) {
		free(out);
		return NULL;
	}
	for (i = 0; i < len / 2; i++) {
		if (sscanf(s + 2 * i, "%2x", &v) != 1) {
			free(out);
			return NULL;
		}
		out[i] = (unsigned char)v;
	}
	*n = len / 2;
	return out;
}

static struct json_object *
load(const char *name)
{
	const char *top = getenv("abs_top_srcdir");
	char path[4096];
	struct json_object *o;

	snprintf(path, sizeof(path), "%s/tests/vectors/wycheproof/%s",
	    top != NULL ? top : ".", name);
	o = json_object_from_file(path);
	if (o == NULL)
		fprintf(stderr, "cannot read %s (run from the source tree or set abs_top_srcdir)\n",
		    path);
	return o;
}

static const char *
str(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

/* Runs every test of one group against key, asserting valid/invalid. */
static void
run_group(struct json_object *g, const struct jwt_key *k, const char *tag_field,
    struct tally *t)
{
	struct json_object *tests = json_object_object_get(g, "tests"), *tc;
	unsigned char *msg, *sig;
	size_t i, mlen, slen;
	const char *result;
	enum jwt_reason r;

	for (i = 0; i < json_object_array_length(tests); i++) {
		tc = json_object_array_get_idx(tests, i);
		msg = unhex(str(tc, "msg"), &mlen);
		sig = unhex(str(tc, tag_field), &slen);
		CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
		CU_ASSERT_PTR_NOT_NULL_FATAL(sig);
		result = str(tc, "result");
		r = jwt_verify_sig(k, msg, mlen, sig, slen);
		t->run++;
		if (strcmp(result, "acceptable") == 0) {
			t->acceptable++;
		} else if ((strcmp(result, "valid") == 0) == (r == JWT_OK)) {
			t->ok++;
		} else {
			fprintf(stderr, "tcId %d (%s): expected %s, got %s\n",
			    json_object_get_int(json_object_object_get(tc, "tcId")),
			    str(tc, "comment"), result, jwt_reason_str(r));
			CU_FAIL("Wycheproof vector disagrees");
		}
		free(msg);
		free(sig);
	}
}

static void
test_wycheproof_es256_p1363(void)
{
	struct json_object *root = load("ecdsa_secp256r1_sha256_p1363_test.json");
	struct json_object *groups, *g, *jwk;
	struct tally t = { 0 };
	struct jwt_key k;
	const char *why, *pem;
	size_t i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(root);
	groups = json_object_object_get(root, "testGroups");
	for (i = 0; i < json_object_array_length(groups); i++) {
		g = json_object_array_get_idx(groups, i);
		/* The JWK where the group has one (the JWKS path), else the PEM. */
		if (json_object_object_get_ex(g, "publicKeyJwk", &jwk)) {
			CU_ASSERT_EQUAL_FATAL(jwt_key_from_jwk(&k, jwk, &why), 0);
		} else {
			pem = str(g, "publicKeyPem");
			CU_ASSERT_EQUAL_FATAL(jwt_key_from_pem(&k, NULL, pem, strlen(pem),
			    &why), 0);
		}
		CU_ASSERT_EQUAL(k.alg, JWT_ES256);
		run_group(g, &k, "sig", &t);
		jwt_key_clear(&k);
	}
	printf("\n  ES256: %d vectors, %d as expected, %d acceptable\n", t.run,
	    t.ok, t.acceptable);
	CU_ASSERT(t.run >= 200);
	CU_ASSERT_EQUAL(t.ok + t.acceptable, t.run);
	json_object_put(root);
}

static void
test_wycheproof_rs256_pkcs1(void)
{
	struct json_object *root = load("rsa_signature_2048_sha256_test.json");
	struct json_object *groups, *g, *jwk;
	struct tally t = { 0 };
	struct jwt_key k;
	const char *why;
	size_t i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(root);
	groups = json_object_object_get(root, "testGroups");
	for (i = 0; i < json_object_array_length(groups); i++) {
		g = json_object_array_get_idx(groups, i);
		CU_ASSERT_FATAL(json_object_object_get_ex(g, "keyJwk", &jwk));
		CU_ASSERT_EQUAL_FATAL(jwt_key_from_jwk(&k, jwk, &why), 0);
		CU_ASSERT_EQUAL(k.alg, JWT_RS256);
		run_group(g, &k, "sig", &t);
		jwt_key_clear(&k);
	}
	printf("\n  RS256: %d vectors, %d as expected, %d acceptable\n", t.run,
	    t.ok, t.acceptable);
	CU_ASSERT(t.run >= 200);
	CU_ASSERT_EQUAL(t.ok + t.acceptable, t.run);
	json_object_put(root);
}

/* HMAC-SHA256 with full 256-bit tags: the HS256 path. Truncated tags are
 * not JWS signatures (RFC 7518 §3.2 uses the whole MAC) and are refused by
 * length, which the "invalid" results of those groups agree with only
 * partly, so only full-tag groups are asserted. */
static void
test_wycheproof_hs256(void)
{
	struct json_object *root = load("hmac_sha256_test.json");
	struct json_object *groups, *g, *tests, *tc;
	struct tally t = { 0 };
	struct jwt_key k;
	unsigned char *key, *msg, *tag;
	size_t i, j, klen, mlen, tlen;
	enum jwt_reason r;

	CU_ASSERT_PTR_NOT_NULL_FATAL(root);
	groups = json_object_object_get(root, "testGroups");
	for (i = 0; i < json_object_array_length(groups); i++) {
		g = json_object_array_get_idx(groups, i);
		if (json_object_get_int(json_object_object_get(g, "tagSize")) != 256)
			continue;
		tests = json_object_object_get(g, "tests");
		for (j = 0; j < json_object_array_length(tests); j++) {
			tc = json_object_array_get_idx(tests, j);
			key = unhex(str(tc, "key"), &klen);
			msg = unhex(str(tc, "msg"), &mlen);
			tag = unhex(str(tc, "tag"), &tlen);
			CU_ASSERT_FATAL(key != NULL && msg != NULL && tag != NULL);
			if (klen == 0) {
				/* An empty secret is refused at configuration. */
				CU_ASSERT_EQUAL(jwt_key_hs256(&k, NULL, key, klen), -1);
			} else {
				CU_ASSERT_EQUAL_FATAL(jwt_key_hs256(&k, NULL, key, klen), 0);
				r = jwt_verify_sig(&k, msg, mlen, tag, tlen);
				CU_ASSERT_EQUAL(r == JWT_OK,
				    strcmp(str(tc, "result"), "valid") == 0);
				t.run++;
				jwt_key_clear(&k);
			}
			free(key);
			free(msg);
			free(tag);
		}
	}
	printf("\n  HS256: %d vectors\n", t.run);
	CU_ASSERT(t.run >= 50);
	json_object_put(root);
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "es256_p1363", test_wycheproof_es256_p1363 },
		{ "rs256_pkcs1", test_wycheproof_rs256_pkcs1 },
		{ "hs256", test_wycheproof_hs256 },
		CU_TEST_INFO_NULL
	};

	return cu_run("wycheproof", tests);
}
