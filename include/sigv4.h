/*
 * sigv4.h - AWS Signature Version 4 (AWS4-HMAC-SHA256, header based):
 * pure functions from a request's parts to its canonical request, string
 * to sign, signing key and Authorization header. No I/O; the s3 storage
 * backend builds its requests with them, and tests/unit/test_sigv4.c runs
 * them against AWS's published test suite.
 */
#ifndef IG_SIGV4_H
#define IG_SIGV4_H

#include <stddef.h>
#include <time.h>

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
/* The payload hash of an empty body: hex SHA-256 of "". */
#define SIGV4_EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct sigv4_header {
	const char *name;		/* any case */
	const char *value;		/* trimmed and its blanks folded here */
};

struct sigv4_request {
	const char *method;		/* "GET", "PUT", … */
	/*
	 * The path, not yet percent-encoded ("/bucket/a b.png"): every byte
	 * but A-Z a-z 0-9 - . _ ~ and '/' is encoded once, which for S3 is
	 * what goes on the wire. Must start with '/'.
	 */
	const char *path;
	/* What follows '?' (percent-encoded or not; decoded, re-encoded and
	 * sorted here), or NULL. */
	const char *query;
	/* Every header to sign, host and x-amz-date among them; a name given
	 * twice has its values joined with ',' in the order given. */
	const struct sigv4_header *headers;
	size_t nheaders;
	/* Lower-case hex SHA-256 of the body (sigv4_sha256_hex), or
	 * "UNSIGNED-PAYLOAD". */
	const char *payload_hash;
	/* 1: remove "." and ".." segments and empty ones first, as every
	 * service but S3 wants; S3 signs the path exactly as given (0). */
	int normalize_path;
};

struct sigv4_key {
	const char *access_key;
	const char *secret_key;		/* never logged, never copied out */
	const char *region;		/* "us-east-1" */
	const char *service;		/* "s3" */
};

/*
 * The canonical request of r. Returns it malloc'd and sets *signed_headers
 * (may be NULL) to the malloc'd "host;x-amz-date;…" list; the caller frees
 * both. NULL on a malformed request (no method, a path not starting with
 * '/', an empty or non-token header name, no payload hash) or out of
 * memory.
 */
char *sigv4_canonical_request(const struct sigv4_request *r,
    char **signed_headers);
/* "YYYYMMDD/region/service/aws4_request" of amz_date into out. 0, or -1
 * when amz_date is not YYYYMMDDTHHMMSSZ or out is too small. */
int sigv4_scope(char *out, size_t outlen, const char *amz_date,
    const char *region, const char *service);
/* "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hex SHA-256 of creq}",
 * malloc'd (caller frees); NULL out of memory. */
char *sigv4_string_to_sign(const char *amz_date, const char *scope,
    const char *creq);
/* The signing key HMAC chain of "AWS4"+secret over date8 (YYYYMMDD),
 * region, service and "aws4_request" into key. 0, or -1 on an OpenSSL
 * failure. The caller should OPENSSL_cleanse() key after use. */
int sigv4_signing_key(unsigned char key[32], const char *secret,
    const char *date8, const char *region, const char *service);
/* Lower-case hex HMAC-SHA256(key, sts) into hex. 0, or -1. */
int sigv4_signature(char hex[65], const unsigned char key[32],
    const char *sts);
/*
 * The whole of it: the Authorization header's value
 * "AWS4-HMAC-SHA256 Credential={access}/{scope}, SignedHeaders=…,
 * Signature=…" for r signed with k at amz_date (which must be the value of
 * the x-amz-date header signed in r). malloc'd (caller frees); NULL on any
 * error above.
 */
char *sigv4_authorization(const struct sigv4_request *r,
    const struct sigv4_key *k, const char *amz_date);
/* Lower-case hex SHA-256 of len bytes into hex. 0, or -1. */
int sigv4_sha256_hex(const void *data, size_t len, char hex[65]);
/* t as YYYYMMDDTHHMMSSZ (UTC) into out. 0, or -1. */
int sigv4_amz_date(time_t t, char out[17]);
/* Percent-encodes len bytes of s as SigV4 wants (all but A-Z a-z 0-9
 * - . _ ~, and '/' too unless keep_slash) into a malloc'd string (caller
 * frees); NULL out of memory. */
char *sigv4_uri_encode(const char *s, size_t len, int keep_slash);

#endif
