/* cfg.c - configuration: the environment over an optional env file. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "secret.h"
#include "urlpolicy.h"

#define ENVFILE_MAX (256 * 1024)

struct kv {
	char *key;
	char *val;
};

struct envsrc {
	struct kv *kv;
	size_t n;
	char *text;		/* the file's text; kv points into it */
};

int
cfg_parse_line(char *line, char **key, char **val)
{
	char *p = line, *k, *v, *end;
	size_t len;

	while (isspace((unsigned char)*p))
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	if (strncmp(p, "export", 6) == 0 && isspace((unsigned char)p[6])) {
		p += 6;
		while (isspace((unsigned char)*p))
			p++;
	}
	k = p;
	if (!(isalpha((unsigned char)*p) || *p == '_'))
		return -1;
	while (isalnum((unsigned char)*p) || *p == '_')
		p++;
	end = p;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '=')
		return -1;
	*end = '\0';
	p++;
	while (*p == ' ' || *p == '\t')
		p++;
	v = p;
	len = strlen(v);
	while (len > 0 && isspace((unsigned char)v[len - 1]))
		v[--len] = '\0';
	if (len > 0 && (v[0] == '"' || v[0] == '\'')) {
		if (len < 2 || v[len - 1] != v[0])
			return -1;
		v[len - 1] = '\0';
		v++;
	} else if (strchr(v, '#') != NULL) {
		/* Unquoted: a " #" starts a comment. */
		char *h = strstr(v, " #");
		if (h != NULL) {
			*h = '\0';
			len = strlen(v);
			while (len > 0 && isspace((unsigned char)v[len - 1]))
				v[--len] = '\0';
		}
	}
	*key = k;
	*val = v;
	return 1;
}

int
cfg_parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static void
envsrc_free(struct envsrc *s)
{
	free(s->kv);
	free(s->text);
	s->kv = NULL;
	s->text = NULL;
	s->n = 0;
}

/* Reads path into s. -1 with a reason in err. */
static int
envsrc_read(struct envsrc *s, const char *path, char *err, size_t errlen)
{
	FILE *f = NULL;
	char *line, *next, *k, *v;
	size_t len, cap = 0, lineno = 0;
	int rc = -1, r;

	memset(s, 0, sizeof(*s));
	f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errlen, "IMAGEGEN_ENV_FILE: cannot open %s: %s",
		    path, strerror(errno));
		goto out;
	}
	s->text = malloc(ENVFILE_MAX + 1);
	if (s->text == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	len = fread(s->text, 1, ENVFILE_MAX + 1, f);
	if (len > ENVFILE_MAX) {
		snprintf(err, errlen, "IMAGEGEN_ENV_FILE: %s is larger than %d bytes",
		    path, ENVFILE_MAX);
		goto out;
	}
	s->text[len] = '\0';
	for (line = s->text; line != NULL; line = next) {
		lineno++;
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		r = cfg_parse_line(line, &k, &v);
		if (r < 0) {
			snprintf(err, errlen, "IMAGEGEN_ENV_FILE: %s line %zu is not KEY=VALUE",
			    path, lineno);
			goto out;
		}
		if (r == 0)
			continue;
		if (s->n == cap) {
			struct kv *nkv;

			cap = cap ? cap * 2 : 16;
			nkv = realloc(s->kv, cap * sizeof(*nkv));
			if (nkv == NULL) {
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			s->kv = nkv;
		}
		s->kv[s->n].key = k;
		s->kv[s->n].val = v;
		s->n++;
	}
	rc = 0;
out:
	if (f != NULL)
		fclose(f);
	if (rc != 0)
		envsrc_free(s);
	return rc;
}

/* The process environment first, then the file (the last assignment of a
 * key in the file wins). NULL when unset or empty. */
static const char *
envsrc_get(const struct envsrc *s, const char *key)
{
	const char *v = getenv(key);
	size_t i;

	if (v != NULL && *v != '\0')
		return v;
	v = NULL;
	for (i = 0; i < s->n; i++)
		if (strcmp(s->kv[i].key, key) == 0)
			v = s->kv[i].val;
	return v != NULL && *v != '\0' ? v : NULL;
}

static int
get_long(const struct envsrc *s, const char *key, long def, long min,
    long max, long *out, char *err, size_t errlen)
{
	const char *v = envsrc_get(s, key);

	if (v == NULL) {
		*out = def;
		return 0;
	}
	if (cfg_parse_long(v, min, max, out) != 0) {
		snprintf(err, errlen, "%s: expected a whole number from %ld to %ld, got '%.40s'",
		    key, min, max, v);
		return -1;
	}
	return 0;
}

static int
dup_opt(const struct envsrc *s, const char *key, char **out, char *err,
    size_t errlen)
{
	const char *v = envsrc_get(s, key);

	*out = NULL;
	if (v == NULL)
		return 0;
	*out = strdup(v);
	if (*out == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static int
dup_default(const struct envsrc *s, const char *key, const char *def,
    char **out, char *err, size_t errlen)
{
	if (dup_opt(s, key, out, err, errlen) != 0)
		return -1;
	if (*out == NULL && def != NULL) {
		*out = strdup(def);
		if (*out == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	return 0;
}

static int
one_of(const char *key, const char *v, const char *const *allowed, char *err,
    size_t errlen)
{
	size_t i;

	for (i = 0; allowed[i] != NULL; i++)
		if (strcmp(v, allowed[i]) == 0)
			return 0;
	snprintf(err, errlen, "%s: unknown value '%.40s'", key, v);
	return -1;
}

static void
strip_slash(char *u)
{
	size_t n = u != NULL ? strlen(u) : 0;

	while (n > 0 && u[n - 1] == '/')
		u[--n] = '\0';
}

static int
http_url(const char *key, const char *v, char *err, size_t errlen)
{
	if (v != NULL && strncmp(v, "https://", 8) != 0 &&
	    strncmp(v, "http://", 7) != 0) {
		snprintf(err, errlen, "%s: expected an http(s) URL, got '%.60s'", key, v);
		return -1;
	}
	return 0;
}

/* Provider and storage backend settings; an explicitly chosen provider or
 * backend without what it needs is an error naming the variable. */
static int
load_backends(const struct envsrc *s, struct cfg *c, char *err, size_t errlen)
{
	struct urlpol pol;
	char why[256];
	const char *url_def = strcmp(c->provider, "openai") == 0 ?
	    "https://api.openai.com" :
	    "https://generativelanguage.googleapis.com/v1beta";

	if (dup_opt(s, "NANO_BANANA_API_KEY", &c->api_key, err, errlen) != 0 ||
	    dup_default(s, "NANO_BANANA_API_URL", url_def, &c->api_url, err, errlen) != 0 ||
	    http_url("NANO_BANANA_API_URL", c->api_url, err, errlen) != 0 ||
	    dup_opt(s, "SUPABASE_SERVICE_ROLE_KEY", &c->service_role_key, err, errlen) != 0 ||
	    dup_opt(s, "S3_ENDPOINT", &c->s3_endpoint, err, errlen) != 0 ||
	    http_url("S3_ENDPOINT", c->s3_endpoint, err, errlen) != 0 ||
	    dup_default(s, "S3_REGION", "us-east-1", &c->s3_region, err, errlen) != 0 ||
	    dup_opt(s, "S3_ACCESS_KEY_ID", &c->s3_access_key, err, errlen) != 0 ||
	    dup_opt(s, "S3_SECRET_ACCESS_KEY", &c->s3_secret_key, err, errlen) != 0 ||
	    dup_opt(s, "S3_SESSION_TOKEN", &c->s3_session_token, err, errlen) != 0)
		return -1;
	strip_slash(c->api_url);
	strip_slash(c->s3_endpoint);
	if (get_long(s, "IMAGEGEN_PROVIDER_TIMEOUT_MS", 120000, 1000, 900000,
	    &c->provider_timeout_ms, err, errlen) != 0 ||
	    get_long(s, "IMAGEGEN_PROVIDER_MAX_BYTES", 32L << 20, 1024, 256L << 20,
	    &c->provider_max_bytes, err, errlen) != 0)
		return -1;
	/* The outbound URL policy's allow-list: parsed here only to refuse a
	 * bad entry at start; each fetching module parses its own copy. */
	if (dup_opt(s, "IMAGEGEN_FETCH_ALLOW", &c->fetch_allow, err, errlen) != 0)
		return -1;
	if (urlpol_parse(&pol, c->fetch_allow, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "IMAGEGEN_FETCH_ALLOW: %s", why);
		return -1;
	}
	urlpol_free(&pol);
	if (strcmp(c->provider, "local") != 0 && c->api_key == NULL) {
		snprintf(err, errlen, "NANO_BANANA_API_KEY is not set (needed by IMAGEGEN_PROVIDER=%s)",
		    c->provider);
		return -1;
	}
	if (strcmp(c->storage, "supabase") == 0 &&
	    (c->supabase_url == NULL || c->service_role_key == NULL)) {
		snprintf(err, errlen, "%s is not set (needed by IMAGEGEN_STORAGE=supabase)",
		    c->supabase_url == NULL ? "SUPABASE_URL" : "SUPABASE_SERVICE_ROLE_KEY");
		return -1;
	}
	if (strcmp(c->storage, "s3") == 0 && (c->s3_endpoint == NULL ||
	    c->s3_access_key == NULL || c->s3_secret_key == NULL)) {
		snprintf(err, errlen, "%s is not set (needed by IMAGEGEN_STORAGE=s3)",
		    c->s3_endpoint == NULL ? "S3_ENDPOINT" : c->s3_access_key == NULL ?
		    "S3_ACCESS_KEY_ID" : "S3_SECRET_ACCESS_KEY");
		return -1;
	}
	return 0;
}

/* The job settings: providers, storage, the executor's limits. */
static int
load_jobs(const struct envsrc *s, struct cfg *c, char *err, size_t errlen)
{
	static const char *const providers[] = { "gemini", "openai", "local", NULL };
	static const char *const storages[] = { "local", "supabase", "s3", NULL };
	const char *prov_def, *stor_def;
	char *p;
	size_t i;
	long n;

	prov_def = envsrc_get(s, "NANO_BANANA_API_KEY") != NULL ? "gemini" : "local";
	stor_def = envsrc_get(s, "SUPABASE_URL") != NULL &&
	    envsrc_get(s, "SUPABASE_SERVICE_ROLE_KEY") != NULL ? "supabase" : "local";
	if (dup_default(s, "IMAGEGEN_PROVIDER", prov_def, &c->provider, err, errlen) != 0 ||
	    one_of("IMAGEGEN_PROVIDER", c->provider, providers, err, errlen) != 0 ||
	    dup_default(s, "NANO_BANANA_MODEL", strcmp(c->provider, "local") == 0 ?
	    "local-renderer-1" : "gemini-2.5-flash-image", &c->model, err, errlen) != 0 ||
	    dup_default(s, "IMAGEGEN_STORAGE", stor_def, &c->storage, err, errlen) != 0 ||
	    one_of("IMAGEGEN_STORAGE", c->storage, storages, err, errlen) != 0 ||
	    dup_default(s, "IMAGEGEN_STORAGE_DIR", "var/storage", &c->storage_dir, err, errlen) != 0 ||
	    dup_default(s, "IMAGEGEN_BUCKET", "asset-images", &c->bucket, err, errlen) != 0 ||
	    dup_default(s, "IMAGEGEN_PUBLIC_BASE_URL", "/storage/v1/object/public",
	    &c->public_base_url, err, errlen) != 0 ||
	    dup_opt(s, "IMAGEGEN_SLOT_DIR", &c->slot_dir, err, errlen) != 0 ||
	    dup_default(s, "IMAGEGEN_SPOOL_DIR", "var/spool", &c->spool_dir, err, errlen) != 0)
		return -1;
	/* A bucket name goes into paths and URLs: keep it to S3's rules. */
	for (i = 0; c->bucket[i] != '\0'; i++) {
		char ch = c->bucket[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '.') || i >= 63) {
			snprintf(err, errlen, "IMAGEGEN_BUCKET: expected 3-63 of [a-z0-9.-], got '%.70s'",
			    c->bucket);
			return -1;
		}
	}
	if (i < 3) {
		snprintf(err, errlen, "IMAGEGEN_BUCKET: expected 3-63 of [a-z0-9.-], got '%s'",
		    c->bucket);
		return -1;
	}
	for (p = c->public_base_url + strlen(c->public_base_url);
	    p > c->public_base_url && p[-1] == '/'; p--)
		p[-1] = '\0';
	c->public_base_url_set = envsrc_get(s, "IMAGEGEN_PUBLIC_BASE_URL") != NULL;
	if (load_backends(s, c, err, errlen) != 0)
		return -1;
	if (get_long(s, "IMAGEGEN_LOCAL_DELAY_MS", 0, 0, 600000,
	    &c->local_delay_ms, err, errlen) != 0 ||
	    get_long(s, "IMAGEGEN_TEST_FAULTS", 0, 0, 1, &c->test_faults, err,
	    errlen) != 0 ||
	    get_long(s, "IMAGEGEN_MAX_RUNNING_JOBS", 4, 1, 1024,
	    &c->max_running_jobs, err, errlen) != 0 ||
	    get_long(s, "IMAGEGEN_JOB_TIMEOUT", 300, 5, 86400, &c->job_timeout,
	    err, errlen) != 0 ||
	    get_long(s, "IMAGEGEN_MAX_ATTEMPTS", 3, 1, 100, &c->max_attempts,
	    err, errlen) != 0 ||
	    get_long(s, "IMAGEGEN_SWEEP_INTERVAL", 5, 1, 3600,
	    &c->sweep_interval, err, errlen) != 0)
		return -1;
	/* Test-only fault and timing hooks: off unless a test sets them. */
	if (get_long(s, "IMAGEGEN_TEST_STAGE_DELAY_MS", 0, 0, 600000,
	    &c->test_stage_delay_ms, err, errlen) != 0 ||
	    get_long(s, "IMAGEGEN_TEST_FAIL_SECOND_FORK", 0, 0, 1, &n, err, errlen) != 0)
		return -1;
	c->test_fail_second_fork = (int)n;
	return 0;
}

int
cfg_load(struct cfg *out, const char *env_file, int need, char *err,
    size_t errlen)
{
	struct envsrc src = { 0 };
	struct cfg c = { 0 };
	const char *v;
	long n;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (env_file == NULL)
		env_file = getenv("IMAGEGEN_ENV_FILE");
	if (env_file != NULL && *env_file != '\0' &&
	    envsrc_read(&src, env_file, err, errlen) != 0)
		goto out;

	if (dup_opt(&src, "DATABASE_URL", &c.database_url, err, errlen) != 0 ||
	    dup_opt(&src, "IMAGEGEN_WORKER_DATABASE_URL", &c.worker_database_url,
	    err, errlen) != 0)
		goto out;
	if ((need & CFG_NEED_DB) && c.database_url == NULL) {
		snprintf(err, errlen, "DATABASE_URL is not set (a libpq URI such as postgresql://imagegen_app@/imagegen?host=/path/to/socketdir)");
		goto out;
	}
	if (get_long(&src, "IMAGEGEN_DB_CONNECT_TIMEOUT", 2, 1, 60, &n, err,
	    errlen) != 0)
		goto out;
	c.db_connect_timeout = (int)n;
	if (get_long(&src, "IMAGEGEN_STATEMENT_TIMEOUT_MS", 5000, 100, 600000,
	    &n, err, errlen) != 0)
		goto out;
	c.statement_timeout_ms = (int)n;
	if (get_long(&src, "IMAGEGEN_MAX_BODY_BYTES", 1048576, 1024, 64L << 20,
	    &n, err, errlen) != 0)
		goto out;
	c.max_body_bytes = (size_t)n;
	c.log_level = IG_LOG_INFO;
	v = envsrc_get(&src, "IMAGEGEN_LOG_LEVEL");
	if (v != NULL && log_parse_level(v, &c.log_level) != 0) {
		snprintf(err, errlen, "IMAGEGEN_LOG_LEVEL: expected debug, info, warn or error, got '%.40s'",
		    v);
		goto out;
	}
	if (dup_opt(&src, "SUPABASE_JWT_SECRET", &c.jwt_secret, err, errlen) != 0 ||
	    dup_opt(&src, "SUPABASE_URL", &c.supabase_url, err, errlen) != 0 ||
	    dup_opt(&src, "SUPABASE_JWT_ISSUER", &c.jwt_issuer, err, errlen) != 0 ||
	    dup_opt(&src, "SUPABASE_JWKS_URL", &c.jwks_url, err, errlen) != 0)
		goto out;
	if (c.jwt_secret != NULL && strlen(c.jwt_secret) < 32) {
		snprintf(err, errlen, "SUPABASE_JWT_SECRET: must be at least 32 characters");
		goto out;
	}
	if (c.jwks_url != NULL && c.jwks_url[0] != '/' &&
	    strncmp(c.jwks_url, "https://", 8) != 0 &&
	    strncmp(c.jwks_url, "http://", 7) != 0 &&
	    strncmp(c.jwks_url, "file://", 7) != 0) {
		snprintf(err, errlen, "SUPABASE_JWKS_URL: expected an http(s) or file URL or an absolute path, got '%.60s'",
		    c.jwks_url);
		goto out;
	}
	if (get_long(&src, "IMAGEGEN_JWT_LEEWAY", 30, 0, 300, &c.jwt_leeway,
	    err, errlen) != 0 ||
	    get_long(&src, "IMAGEGEN_JWKS_TTL", 600, 1, 86400, &c.jwks_ttl, err,
	    errlen) != 0 ||
	    get_long(&src, "IMAGEGEN_JWKS_MIN_REFRESH", 30, 0, 3600,
	    &c.jwks_min_refresh, err, errlen) != 0)
		goto out;
	if (get_long(&src, "IMAGEGEN_TOKEN_CACHE_SIZE", 1024, 0, 1000000, &n,
	    err, errlen) != 0)
		goto out;
	c.token_cache_size = (int)n;
	if (load_jobs(&src, &c, err, errlen) != 0)
		goto out;
	if (c.supabase_url != NULL) {
		if (strncmp(c.supabase_url, "https://", 8) != 0 &&
		    strncmp(c.supabase_url, "http://", 7) != 0) {
			snprintf(err, errlen, "SUPABASE_URL: expected an http(s) URL, got '%.60s'",
			    c.supabase_url);
			goto out;
		}
		size_t len = strlen(c.supabase_url);

		while (len > 0 && c.supabase_url[len - 1] == '/')
			len--;
		if (c.jwt_issuer == NULL) {
			c.jwt_issuer = malloc(len + sizeof("/auth/v1"));
			if (c.jwt_issuer == NULL) {
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			memcpy(c.jwt_issuer, c.supabase_url, len);
			memcpy(c.jwt_issuer + len, "/auth/v1", sizeof("/auth/v1"));
		}
		if (c.jwks_url == NULL) {
			/* Supabase publishes its signing keys under auth/v1. */
			c.jwks_url = malloc(len + sizeof("/auth/v1/.well-known/jwks.json"));
			if (c.jwks_url == NULL) {
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			memcpy(c.jwks_url, c.supabase_url, len);
			memcpy(c.jwks_url + len, "/auth/v1/.well-known/jwks.json",
			    sizeof("/auth/v1/.well-known/jwks.json"));
		}
	}
	*out = c;
	memset(&c, 0, sizeof(c));
	rc = 0;
out:
	cfg_free(&c);
	envsrc_free(&src);
	return rc;
}

void
cfg_free(struct cfg *c)
{
	if (c == NULL)
		return;
	free(c->database_url);
	free(c->worker_database_url);
	secret_free(c->jwt_secret);
	secret_free(c->api_key);
	secret_free(c->service_role_key);
	secret_free(c->s3_secret_key);
	secret_free(c->s3_session_token);
	free(c->api_url);
	free(c->s3_endpoint);
	free(c->s3_region);
	free(c->s3_access_key);
	free(c->jwt_issuer);
	free(c->supabase_url);
	free(c->jwks_url);
	free(c->provider);
	free(c->model);
	free(c->storage);
	free(c->storage_dir);
	free(c->bucket);
	free(c->public_base_url);
	free(c->slot_dir);
	free(c->fetch_allow);
	free(c->spool_dir);
	memset(c, 0, sizeof(*c));
}
