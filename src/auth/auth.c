/* auth.c - bearer tokens: keyring, verified-token cache, request check. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "auth.h"
#include "base64.h"
#include "jwks.h"
#include "log.h"

/* P-256's group order n: an ECDSA signature (r, s) and its twin (r, n-s)
 * both verify, so the cache keys tokens by the low-s form and a malleated
 * signature is the same token, not a second one. */
#define P256_ORDER "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551"

struct tc_entry {
	unsigned char key[SHA256_DIGEST_LENGTH];
	long exp;
	int used;
	char sub[40];
	char role[32];
	char *email;
	char *json;
};

static struct {
	struct jwt_key hs;		/* alg 0 when no secret */
	struct jwks *jwks;
	struct jwt_policy policy;
	struct tc_entry *cache;
	int cache_size;
	BIGNUM *order, *half;
	BN_CTX *bn;
	struct auth_stats stats;
} A;

int
auth_init_child(const struct cfg *c)
{
	auth_cleanup();
	if (c->jwt_secret != NULL &&
	    jwt_key_hs256(&A.hs, NULL, (const unsigned char *)c->jwt_secret,
	    strlen(c->jwt_secret)) != 0)
		return -1;
	if (c->jwks_url != NULL) {
		A.jwks = jwks_new(c->jwks_url, c->jwks_ttl, c->jwks_min_refresh);
		if (A.jwks == NULL)
			return -1;
	}
	A.policy.leeway = c->jwt_leeway;
	A.policy.issuer = c->jwt_issuer;
	A.policy.supabase = 1;
	A.cache_size = c->token_cache_size;
	if (A.cache_size > 0) {
		A.cache = calloc((size_t)A.cache_size, sizeof(*A.cache));
		if (A.cache == NULL)
			return -1;
	}
	A.bn = BN_CTX_new();
	A.half = BN_new();
	if (A.bn == NULL || A.half == NULL || BN_hex2bn(&A.order, P256_ORDER) == 0 ||
	    BN_rshift1(A.half, A.order) != 1)
		return -1;
	if (A.hs.alg == JWT_ALG_UNKNOWN && A.jwks == NULL)
		log_warn("neither SUPABASE_JWT_SECRET nor a JWKS is configured: every token will be refused");
	return 0;
}

static void
tc_entry_clear(struct tc_entry *e)
{
	free(e->email);
	free(e->json);
	memset(e, 0, sizeof(*e));
}

void
auth_cleanup(void)
{
	int i;

	jwt_key_clear(&A.hs);
	jwks_free(A.jwks);
	for (i = 0; i < A.cache_size && A.cache != NULL; i++)
		tc_entry_clear(&A.cache[i]);
	free(A.cache);
	BN_free(A.order);
	BN_free(A.half);
	BN_CTX_free(A.bn);
	memset(&A, 0, sizeof(A));
}

void
auth_get_stats(struct auth_stats *s)
{
	int i;

	*s = A.stats;
	s->cache_entries = 0;
	for (i = 0; i < A.cache_size; i++)
		s->cache_entries += A.cache[i].used;
}

/* The key decides the algorithm: a kid names a JWKS key; a token without
 * one, or with a kid the JWKS lacks, can only be the HS256 secret's. */
static const struct jwt_key *
keyring_lookup(void *ctx, const char *kid)
{
	const struct jwt_key *k = NULL;
	long now = *(const long *)ctx;

	if (kid != NULL && A.jwks != NULL)
		k = jwks_find(A.jwks, kid, now);
	if (k == NULL && A.hs.alg == JWT_HS256)
		k = &A.hs;
	return k;
}

/* SHA-256 over the signing input and the signature, a 64-byte (ES256)
 * signature in low-s form. -1 when the token can't be a JWS. */
static int
cache_key(const char *tok, size_t len, unsigned char key[SHA256_DIGEST_LENGTH])
{
	static unsigned char buf[JWT_MAX_TOKEN + 1 + 700];
	unsigned char sig[700];
	const char *dot = NULL;
	BIGNUM *s = NULL;
	size_t in;
	size_t i;
	long n;
	int rc = -1;

	for (i = len; i > 0; i--) {
		if (tok[i - 1] == '.') {
			dot = tok + i - 1;
			break;
		}
	}
	if (dot == NULL || (size_t)(tok + len - dot - 1) > sizeof(sig) / 3 * 4)
		return -1;
	n = b64url_decode(dot + 1, (size_t)(tok + len - dot - 1), sig);
	if (n < 0)
		return -1;
	if (n == 64) {
		s = BN_bin2bn(sig + 32, 32, NULL);
		if (s == NULL)
			return -1;
		if (BN_cmp(s, A.half) > 0 && BN_cmp(s, A.order) < 0) {
			if (BN_sub(s, A.order, s) != 1 || BN_bn2binpad(s, sig + 32, 32) != 32)
				goto out;
		}
	}
	in = (size_t)(dot - tok);
	if (in > JWT_MAX_TOKEN)
		goto out;
	memcpy(buf, tok, in);
	buf[in] = '.';
	memcpy(buf + in + 1, sig, (size_t)n);
	if (EVP_Digest(buf, in + 1 + (size_t)n, key, NULL, EVP_sha256(), NULL) != 1)
		goto out;
	rc = 0;
out:
	BN_free(s);
	return rc;
}

static int
claims_copy(struct jwt_claims *dst, const char *sub, const char *role,
    const char *email, const char *json, long exp)
{
	memset(dst, 0, sizeof(*dst));
	memcpy(dst->sub, sub, sizeof(dst->sub));
	memcpy(dst->role, role, sizeof(dst->role));
	dst->exp = exp;
	dst->json = strdup(json);
	dst->email = email != NULL ? strdup(email) : NULL;
	if (dst->json == NULL || (email != NULL && dst->email == NULL)) {
		jwt_claims_free(dst);
		return -1;
	}
	return 0;
}

enum jwt_reason
auth_verify(const char *tok, size_t len, long now, struct jwt_claims *out,
    int *cached)
{
	unsigned char key[SHA256_DIGEST_LENGTH];
	struct jwt_policy p = A.policy;
	struct tc_entry *e = NULL;
	enum jwt_reason r;

	*cached = 0;
	memset(out, 0, sizeof(*out));
	if (len > JWT_MAX_TOKEN)
		return JWT_ETOO_LARGE;
	if (A.cache_size > 0 && cache_key(tok, len, key) == 0) {
		unsigned idx = ((unsigned)key[0] << 24 | (unsigned)key[1] << 16 |
		    (unsigned)key[2] << 8 | key[3]) % (unsigned)A.cache_size;

		e = &A.cache[idx];
		if (e->used && CRYPTO_memcmp(e->key, key, sizeof(key)) == 0 &&
		    now < e->exp) {
			if (claims_copy(out, e->sub, e->role, e->email, e->json,
			    e->exp) != 0)
				return JWT_EINTERNAL;
			A.stats.cache_hits++;
			*cached = 1;
			return JWT_OK;
		}
	}
	p.now = now;
	r = jwt_verify(tok, len, keyring_lookup, &now, &p, out);
	if (r != JWT_OK) {
		A.stats.refused++;
		return r;
	}
	A.stats.verified++;
	if (e != NULL && now < out->exp) {
		tc_entry_clear(e);
		memcpy(e->key, key, sizeof(key));
		memcpy(e->sub, out->sub, sizeof(e->sub));
		memcpy(e->role, out->role, sizeof(e->role));
		e->exp = out->exp;
		e->json = strdup(out->json);
		e->email = out->email != NULL ? strdup(out->email) : NULL;
		if (e->json == NULL || (out->email != NULL && e->email == NULL))
			tc_entry_clear(e);
		else
			e->used = 1;
	}
	return JWT_OK;
}

enum ig_err
auth_request(struct http_req *r, struct auth_user *u)
{
	struct jwt_claims c;
	enum jwt_reason why;
	const char *h = r->authorization, *tok;
	size_t len;
	int cached = 0;

	memset(u, 0, sizeof(*u));
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0) {
		http_add_header(r, "WWW-Authenticate", "Bearer realm=\"imagegen\"");
		return http_fail(r, IG_EUNAUTHORIZED, h == NULL ?
		    "missing Authorization header" :
		    "Authorization must use the Bearer scheme");
	}
	tok = h + 7;
	while (*tok == ' ')
		tok++;
	len = strlen(tok);
	while (len > 0 && isspace((unsigned char)tok[len - 1]))
		len--;
	why = auth_verify(tok, len, (long)time(NULL), &c, &cached);
	if (why != JWT_OK) {
		log_info("token refused: %s", jwt_reason_str(why));
		http_add_header(r, "WWW-Authenticate",
		    "Bearer realm=\"imagegen\", error=\"invalid_token\"");
		return http_fail(r, IG_EUNAUTHORIZED, "invalid or expired token");
	}
	u->sub = arena_strdup(r->arena, c.sub);
	u->role = arena_strdup(r->arena, c.role);
	u->email = arena_strdup(r->arena, c.email);
	u->claims = arena_strdup(r->arena, c.json);
	jwt_claims_free(&c);
	if (u->sub == NULL || u->role == NULL || u->claims == NULL)
		return http_fail(r, IG_EINTERNAL, "out of memory");
	return IG_OK;
}
