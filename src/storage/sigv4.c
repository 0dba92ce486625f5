/*
 * sigv4.c - AWS Signature Version 4: canonical request, string to sign,
 * signing key and Authorization header (include/sigv4.h).
 *
 * The rules, as AWS's test suite checks them:
 *  - path: each byte but the unreserved ones (A-Z a-z 0-9 - . _ ~) and
 *    '/' percent-encoded, upper-case hex; with normalize_path, "." and
 *    ".." segments resolved and empty segments dropped first (a trailing
 *    '/' stays). S3 signs its paths as they are.
 *  - query: parameters split on '&' and the first '=', decoded, encoded
 *    again as above ('/' too), sorted by name then value; "k" is "k=".
 *  - headers: names lower-cased, values trimmed with every run of blanks
 *    (line folds included) made one space, the values of a name given
 *    more than once joined with ',' in order, sorted by name.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "hex.h"
#include "secret.h"
#include "text.h"
#include "sigv4.h"

/* ---- a growing string ------------------------------------------------ */

struct sb {
	char *p;
	size_t len, cap;
	int oom;
};

static void
sb_add(struct sb *b, const char *s, size_t n)
{
	char *np;
	size_t ncap;

	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		ncap = b->cap ? b->cap : 256;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		np = realloc(b->p, ncap);
		if (np == NULL) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sb_adds(struct sb *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void
sb_addc(struct sb *b, char c)
{
	sb_add(b, &c, 1);
}

/* The string, or NULL (and nothing to free) when memory ran out. An
 * empty sb gives "". */
static char *
sb_take(struct sb *b)
{
	char *p;

	if (!b->oom && b->p == NULL)
		sb_add(b, "", 0);
	if (b->oom) {
		free(b->p);
		b->p = NULL;
		return NULL;
	}
	p = b->p;
	b->p = NULL;
	return p;
}

/* ---- encoding --------------------------------------------------------- */

static int
unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

static void
sb_encode(struct sb *b, const char *s, size_t len, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	char esc[3];
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (unreserved(c) || (keep_slash && c == '/')) {
			sb_addc(b, (char)c);
		} else {
			esc[0] = '%';
			esc[1] = hex[c >> 4];
			esc[2] = hex[c & 15];
			sb_add(b, esc, 3);
		}
	}
}

char *
sigv4_uri_encode(const char *s, size_t len, int keep_slash)
{
	struct sb b = { 0 };

	sb_encode(&b, s, len, keep_slash);
	return sb_take(&b);
}

/* A malloc'd copy of len bytes of s with each %XX decoded; a '%' not
 * followed by two hex digits stays as it is. *outlen gets the length.
 * NULL out of memory. */
static char *
pct_decode(const char *s, size_t len, size_t *outlen)
{
	char *out = malloc(len + 1);
	size_t i, o = 0;

	if (out == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		if (s[i] == '%' && i + 2 < len && hex_digit(s[i + 1]) >= 0 &&
		    hex_digit(s[i + 2]) >= 0) {
			out[o++] = (char)(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

/* ---- the canonical request's parts ------------------------------------ */

/* The canonical URI of path into b. -1 when path does not start with '/'
 * or memory ran out. */
static int
canon_path(struct sb *b, const char *path, int normalize)
{
	const char **seg = NULL;
	size_t *seglen = NULL, n = 0, i, l, len;
	int rc = -1;

	if (path == NULL || path[0] != '/')
		return -1;
	len = strlen(path);
	if (!normalize) {
		sb_encode(b, path, len, 1);
		return b->oom ? -1 : 0;
	}
	/* at most one segment per byte */
	seg = malloc(sizeof(*seg) * (len + 1));
	seglen = malloc(sizeof(*seglen) * (len + 1));
	if (seg == NULL || seglen == NULL)
		goto out;
	for (i = 1; i <= len; i += l + 1) {
		for (l = 0; i + l < len && path[i + l] != '/'; l++)
			;
		if (l == 0 || (l == 1 && path[i] == '.'))
			continue;	/* empty or "." */
		if (l == 2 && path[i] == '.' && path[i + 1] == '.') {
			if (n > 0)
				n--;
			continue;
		}
		seg[n] = path + i;
		seglen[n] = l;
		n++;
	}
	for (i = 0; i < n; i++) {
		sb_addc(b, '/');
		sb_encode(b, seg[i], seglen[i], 0);
	}
	/* "/" alone, or a path that ended in '/' keeps it */
	if (n == 0 || path[len - 1] == '/')
		sb_addc(b, '/');
	rc = b->oom ? -1 : 0;
out:
	free(seg);
	free(seglen);
	return rc;
}

struct qparam {
	char *key;		/* encoded */
	char *val;		/* encoded */
};

static int
qparam_cmp(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c != 0 ? c : strcmp(x->val, y->val);
}

/* Decodes then encodes len bytes of s. NULL out of memory. */
static char *
reencode(const char *s, size_t len)
{
	char *dec, *enc;
	size_t dlen;

	dec = pct_decode(s, len, &dlen);
	if (dec == NULL)
		return NULL;
	enc = sigv4_uri_encode(dec, dlen, 0);
	free(dec);
	return enc;
}

/* The canonical query string of query into b. -1 out of memory. */
static int
canon_query(struct sb *b, const char *query)
{
	struct qparam *qp = NULL;
	const char *p, *amp, *eq;
	size_t n = 0, cap = 1, i;
	int rc = -1;

	if (query == NULL || query[0] == '\0')
		return 0;
	for (p = query; *p != '\0'; p++)
		if (*p == '&')
			cap++;
	qp = calloc(cap, sizeof(*qp));
	if (qp == NULL)
		goto out;
	for (p = query; *p != '\0'; p = *amp != '\0' ? amp + 1 : amp) {
		amp = strchr(p, '&');
		if (amp == NULL)
			amp = p + strlen(p);
		if (amp == p)
			continue;	/* "a&&b" */
		eq = memchr(p, '=', (size_t)(amp - p));
		if (eq == NULL)
			eq = amp;
		qp[n].key = reencode(p, (size_t)(eq - p));
		qp[n].val = eq < amp ? reencode(eq + 1, (size_t)(amp - eq - 1)) :
		    strdup("");
		n++;
		if (qp[n - 1].key == NULL || qp[n - 1].val == NULL)
			goto out;
	}
	qsort(qp, n, sizeof(*qp), qparam_cmp);
	for (i = 0; i < n; i++) {
		if (i > 0)
			sb_addc(b, '&');
		sb_adds(b, qp[i].key);
		sb_addc(b, '=');
		sb_adds(b, qp[i].val);
	}
	rc = b->oom ? -1 : 0;
out:
	for (i = 0; qp != NULL && i < n; i++) {
		free(qp[i].key);
		free(qp[i].val);
	}
	free(qp);
	return rc;
}

struct hdr {
	char *name;		/* lower case */
	const char *value;
	size_t order;		/* keeps a repeated name's values in order */
};

static int
hdr_cmp(const void *a, const void *b)
{
	const struct hdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int
token_char(unsigned char c)
{
	return c > 32 && c < 127 && strchr("()<>@,;:\\\"/[]?={}", c) == NULL;
}

/* value trimmed, each run of blanks (space, tab, CR, LF) one space. */
static void
sb_add_folded(struct sb *b, const char *v)
{
	int blank = 0, any = 0;

	for (; *v != '\0'; v++) {
		if (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n') {
			blank = any;
			continue;
		}
		if (blank)
			sb_addc(b, ' ');
		sb_addc(b, *v);
		blank = 0;
		any = 1;
	}
}

/* The canonical headers (each "name:value\n") into b and the signed
 * header list into sh. -1 on a bad name or out of memory. */
static int
canon_headers(struct sb *b, struct sb *sh, const struct sigv4_header *h,
    size_t n)
{
	struct hdr *hs = NULL;
	size_t i, j;
	int rc = -1;

	if (n == 0)
		return -1;	/* host is always signed */
	hs = calloc(n, sizeof(*hs));
	if (hs == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if (h[i].name == NULL || h[i].name[0] == '\0' || h[i].value == NULL)
			goto out;
		hs[i].name = strdup(h[i].name);
		if (hs[i].name == NULL)
			goto out;
		for (j = 0; hs[i].name[j] != '\0'; j++) {
			if (!token_char((unsigned char)hs[i].name[j]))
				goto out;
			hs[i].name[j] = (char)tolower((unsigned char)hs[i].name[j]);
		}
		hs[i].value = h[i].value;
		hs[i].order = i;
	}
	qsort(hs, n, sizeof(*hs), hdr_cmp);
	for (i = 0; i < n; i++) {
		if (i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0) {
			sb_addc(b, ',');
		} else {
			if (i > 0) {
				sb_addc(b, '\n');
				sb_addc(sh, ';');
			}
			sb_adds(b, hs[i].name);
			sb_addc(b, ':');
			sb_adds(sh, hs[i].name);
		}
		sb_add_folded(b, hs[i].value);
	}
	sb_addc(b, '\n');
	rc = b->oom || sh->oom ? -1 : 0;
out:
	for (i = 0; i < n; i++)
		free(hs[i].name);
	free(hs);
	return rc;
}

/* ---- the public functions ---------------------------------------------- */

char *
sigv4_canonical_request(const struct sigv4_request *r, char **signed_headers)
{
	struct sb b = { 0 }, sh = { 0 };
	char *out = NULL, *shs = NULL;

	if (signed_headers != NULL)
		*signed_headers = NULL;
	if (r == NULL || r->method == NULL || r->method[0] == '\0' ||
	    r->payload_hash == NULL || r->payload_hash[0] == '\0')
		goto out;
	sb_adds(&b, r->method);
	sb_addc(&b, '\n');
	if (canon_path(&b, r->path, r->normalize_path) != 0)
		goto out;
	sb_addc(&b, '\n');
	if (canon_query(&b, r->query) != 0)
		goto out;
	sb_addc(&b, '\n');
	if (canon_headers(&b, &sh, r->headers, r->nheaders) != 0)
		goto out;
	shs = sb_take(&sh);
	if (shs == NULL)
		goto out;
	sb_addc(&b, '\n');
	sb_adds(&b, shs);
	sb_addc(&b, '\n');
	sb_adds(&b, r->payload_hash);
	out = sb_take(&b);
	if (out != NULL && signed_headers != NULL) {
		*signed_headers = shs;
		shs = NULL;
	}
out:
	free(b.p);
	free(sh.p);
	free(shs);
	return out;
}

static int
amz_date_ok(const char *d)
{
	size_t i;

	if (d == NULL || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
		return 0;
	for (i = 0; i < 15; i++)
		if (i != 8 && !isdigit((unsigned char)d[i]))
			return 0;
	return 1;
}

int
sigv4_scope(char *out, size_t outlen, const char *amz_date, const char *region,
    const char *service)
{
	int n;

	if (outlen > 0)
		out[0] = '\0';
	if (!amz_date_ok(amz_date) || region == NULL || service == NULL ||
	    region[0] == '\0' || service[0] == '\0')
		return -1;
	n = snprintf(out, outlen, "%.8s/%s/%s/aws4_request", amz_date, region,
	    service);
	if (n < 0 || (size_t)n >= outlen) {
		if (outlen > 0)
			out[0] = '\0';
		return -1;
	}
	return 0;
}

int
sigv4_sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	hex[0] = '\0';
	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32)
		return -1;
	hex_encode(md, sizeof(md), hex);
	return 0;
}

char *
sigv4_string_to_sign(const char *amz_date, const char *scope, const char *creq)
{
	char hash[65];

	if (amz_date == NULL || scope == NULL || creq == NULL ||
	    sigv4_sha256_hex(creq, strlen(creq), hash) != 0)
		return NULL;
	return text_printf(SIGV4_ALGORITHM "\n%s\n%s\n%s", amz_date, scope, hash);
}

/* HMAC-SHA256(key, msg) into out[32]. 0, or -1. */
static int
hmac256(unsigned char out[32], const void *key, size_t keylen, const char *msg)
{
	unsigned int n = 0;

	if (keylen > (size_t)0x7fffffff)
		return -1;
	if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg,
	    strlen(msg), out, &n) == NULL || n != 32)
		return -1;
	return 0;
}

int
sigv4_signing_key(unsigned char key[32], const char *secret, const char *date8,
    const char *region, const char *service)
{
	unsigned char k1[32], k2[32];
	char *ksecret = NULL;
	size_t slen;
	int rc = -1;

	if (secret == NULL || date8 == NULL || region == NULL || service == NULL)
		return -1;
	slen = strlen(secret);
	ksecret = malloc(slen + 5);
	if (ksecret == NULL)
		goto out;
	memcpy(ksecret, "AWS4", 4);
	memcpy(ksecret + 4, secret, slen + 1);
	if (hmac256(k1, ksecret, slen + 4, date8) != 0 ||
	    hmac256(k2, k1, 32, region) != 0 ||
	    hmac256(k1, k2, 32, service) != 0 ||
	    hmac256(key, k1, 32, "aws4_request") != 0)
		goto out;
	rc = 0;
out:
	secret_free_n(ksecret, slen + 4);
	OPENSSL_cleanse(k1, sizeof(k1));
	OPENSSL_cleanse(k2, sizeof(k2));
	if (rc != 0)
		OPENSSL_cleanse(key, 32);
	return rc;
}

int
sigv4_signature(char hex[65], const unsigned char key[32], const char *sts)
{
	unsigned char mac[32];

	hex[0] = '\0';
	if (sts == NULL || hmac256(mac, key, 32, sts) != 0)
		return -1;
	hex_encode(mac, sizeof(mac), hex);
	return 0;
}

char *
sigv4_authorization(const struct sigv4_request *r, const struct sigv4_key *k,
    const char *amz_date)
{
	unsigned char key[32];
	char scope[160], date8[9], sig[65];
	char *creq = NULL, *sh = NULL, *sts = NULL, *out = NULL;

	if (k == NULL || k->access_key == NULL || k->secret_key == NULL ||
	    sigv4_scope(scope, sizeof(scope), amz_date, k->region,
	    k->service) != 0)
		return NULL;
	memcpy(date8, amz_date, 8);
	date8[8] = '\0';
	creq = sigv4_canonical_request(r, &sh);
	if (creq == NULL)
		goto out;
	sts = sigv4_string_to_sign(amz_date, scope, creq);
	if (sts == NULL ||
	    sigv4_signing_key(key, k->secret_key, date8, k->region,
	    k->service) != 0)
		goto out;
	if (sigv4_signature(sig, key, sts) != 0) {
		OPENSSL_cleanse(key, sizeof(key));
		goto out;
	}
	OPENSSL_cleanse(key, sizeof(key));
	out = text_printf(SIGV4_ALGORITHM " Credential=%s/%s, SignedHeaders=%s, "
	    "Signature=%s", k->access_key, scope, sh, sig);
out:
	free(creq);
	free(sh);
	free(sts);
	return out;
}

int
sigv4_amz_date(time_t t, char out[17])
{
	struct tm tm;

	out[0] = '\0';
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}
