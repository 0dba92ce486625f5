/* jwt_rate.c - ES256 verifications per second (key cached, no token
 * cache) and the verified-token cache's rate. Prints one line each:
 *   es256_verify_per_s N
 *   token_cache_per_s N
 * tests/bench/bench_jwt compares them with `openssl speed ecdsap256`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth.h"
#include "base64.h"
#include "jwt.h"
#include "jwt_sign.h"

static struct jwt_key pub;

static const struct jwt_key *
lookup(void *ctx, const char *kid)
{
	(void)ctx;
	(void)kid;
	return &pub;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 3.0, t0, el;
	char path[] = "/tmp/imagegen-bench-jwks-XXXXXX", x[64], y[64];
	struct jwt_mint m = { .sub = "3f2a0c1e-8d4b-4c6a-9e1f-2b3c4d5e6f70",
		.ttl = 3600 };
	struct jwt_policy p = { 0, 30, NULL, 1 };
	struct jwt_key priv = { 0 };
	struct jwt_claims c;
	struct cfg cfg = { 0 };
	unsigned char pt[65];
	size_t n;
	long count = 0;
	char *tok;
	int fd, cached;
	FILE *f;

	priv.alg = JWT_ES256;
	priv.pkey = EVP_EC_gen("P-256");
	memcpy(priv.kid, "bench", 6);
	{
		/* the verifying side loads the public key as the service does */
		BIO *bio = BIO_new(BIO_s_mem());
		const char *why;
		char *pem;
		long len;

		PEM_write_bio_PUBKEY(bio, priv.pkey);
		len = BIO_get_mem_data(bio, &pem);
		if (jwt_key_from_pem(&pub, "bench", pem, (size_t)len, &why) != 0)
			return 1;
		BIO_free(bio);
	}
	tok = jwt_sign(&m, &priv);
	if (tok == NULL)
		return 1;
	p.now = time(NULL);

	/* ES256, key cached, no token cache: jwt_verify end to end. */
	t0 = now_s();
	do {
		for (int i = 0; i < 100; i++) {
			if (jwt_verify(tok, strlen(tok), lookup, NULL, &p, &c) != JWT_OK)
				return 1;
			jwt_claims_free(&c);
		}
		count += 100;
		el = now_s() - t0;
	} while (el < secs);
	printf("es256_verify_per_s %.0f\n", count / el);

	/* The service's path with its token cache (JWKS from a file). */
	fd = mkstemp(path);
	f = fdopen(fd, "w");
	EVP_PKEY_get_octet_string_param(priv.pkey, OSSL_PKEY_PARAM_PUB_KEY, pt,
	    sizeof(pt), &n);
	b64url_encode(pt + 1, 32, x);
	b64url_encode(pt + 33, 32, y);
	fprintf(f, "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"bench\","
	    "\"x\":\"%s\",\"y\":\"%s\"}]}", x, y);
	fclose(f);
	cfg.jwks_url = path;
	cfg.jwt_leeway = 30;
	cfg.jwks_ttl = 600;
	cfg.jwks_min_refresh = 30;
	cfg.token_cache_size = 1024;
	if (auth_init_child(&cfg) != 0)
		return 1;
	count = 0;
	t0 = now_s();
	do {
		for (int i = 0; i < 1000; i++) {
			if (auth_verify(tok, strlen(tok), p.now, &c, &cached) != JWT_OK)
				return 1;
			jwt_claims_free(&c);
		}
		count += 1000;
		el = now_s() - t0;
	} while (el < secs);
	printf("token_cache_per_s %.0f\n", count / el);
	auth_cleanup();
	unlink(path);
	free(tok);
	jwt_key_clear(&pub);
	EVP_PKEY_free(priv.pkey);
	return 0;
}
