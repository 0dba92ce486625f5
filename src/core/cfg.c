/*
 * cfg.c - configuration: the environment over an optional env file. Its
 * own settings are the rows below; each provider and storage backend
 * brings its own rows (settings.h), read here without knowing any by
 * name; then one pass derives what follows from several values.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "seal.h"
#include "secret.h"
#include "provider.h"
#include "settings.h"
#include "storage.h"
#include "stdwh.h"
#include "urlpolicy.h"

#define F(field) offsetof(struct cfg, field)

/* The env-file line and number parsers are the settings module's. */
int
cfg_parse_line(char *line, char **key, char **val)
{
	return settings_parse_line(line, key, val);
}

int
cfg_parse_long(const char *s, long min, long max, long *out)
{
	return settings_parse_long(s, min, max, out);
}

/* ---- checks of single values -------------------------------------------- */

static int
check_log_level(const struct setting *row, const char *v, void *field,
    char *err, size_t errlen)
{
	(void)row;
	if (log_parse_level(v, field) != 0) {
		snprintf(err, errlen, "IMAGEGEN_LOG_LEVEL: expected debug, info, warn or error, got '%.40s'",
		    v);
		return -1;
	}
	return 0;
}

static int
check_jwt_secret(const struct setting *row, const char *v, void *field,
    char *err, size_t errlen)
{
	(void)field;
	if (strlen(v) < 32) {
		snprintf(err, errlen, "%s: must be at least 32 characters", row->name);
		return -1;
	}
	return 0;
}

static int
check_jwks_url(const struct setting *row, const char *v, void *field,
    char *err, size_t errlen)
{
	(void)field;
	if (v[0] != '/' && strncmp(v, "https://", 8) != 0 &&
	    strncmp(v, "http://", 7) != 0 && strncmp(v, "file://", 7) != 0) {
		snprintf(err, errlen, "%s: expected an http(s) or file URL or an absolute path, got '%.60s'",
		    row->name, v);
		return -1;
	}
	return 0;
}

/* A bucket name goes into paths and URLs: keep it to S3's rules. */
static int
check_bucket(const struct setting *row, const char *v, void *field,
    char *err, size_t errlen)
{
	size_t i;

	(void)field;
	for (i = 0; v[i] != '\0'; i++) {
		char ch = v[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '.') || i >= 63) {
			snprintf(err, errlen, "%s: expected 3-63 of [a-z0-9.-], got '%.70s'",
			    row->name, v);
			return -1;
		}
	}
	if (i < 3) {
		snprintf(err, errlen, "%s: expected 3-63 of [a-z0-9.-], got '%s'",
		    row->name, v);
		return -1;
	}
	return 0;
}

/* The outbound URL policy's allow-list: parsed here only to refuse a bad
 * entry at start; each fetching module parses its own copy. */
static int
check_fetch_allow(const struct setting *row, const char *v, void *field,
    char *err, size_t errlen)
{
	struct urlpol pol;
	char why[256];

	(void)field;
	if (urlpol_parse(&pol, v, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s: %s", row->name, why);
		return -1;
	}
	urlpol_free(&pol);
	return 0;
}

/* A Standard Webhooks secret: whsec_ and 16 to 64 bytes of base64. */
static int
check_whsec(const struct setting *row, const char *v, void *field,
    char *err, size_t errlen)
{
	struct stdwh_key k;

	(void)field;
	if (strncmp(v, STDWH_PREFIX, strlen(STDWH_PREFIX)) != 0 ||
	    stdwh_key_parse(v, &k) != 0) {
		snprintf(err, errlen, "%s: must be whsec_ and the base64 of 16 to 64 "
		    "bytes", row->name);
		return -1;
	}
	stdwh_key_wipe(&k);
	return 0;
}

/* The key webhook signing secrets are sealed with: base64 of 32 bytes.
 * The message never shows the value. */
static int
check_seal_key(const struct setting *row, const char *v, void *field,
    char *err, size_t errlen)
{
	struct seal_key k;

	(void)field;
	if (seal_key_parse(v, &k) != 0) {
		snprintf(err, errlen, "%s: must be the base64 of exactly 32 bytes "
		    "(44 characters; make one with `openssl rand -base64 32`)",
		    row->name);
		return -1;
	}
	seal_key_wipe(&k);
	return 0;
}

/* The test retry schedule: 1 to 16 comma-separated whole ms, each 1 to
 * 86400000. */
static int
check_backoff(const struct setting *row, const char *v, void *field,
    char *err, size_t errlen)
{
	char buf[256], *tok, *save = NULL;
	long ms;
	int n = 0;

	(void)field;
	if (strlen(v) >= sizeof(buf))
		goto bad;
	memcpy(buf, v, strlen(v) + 1);
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (cfg_parse_long(tok, 1, 86400000L, &ms) != 0 || ++n > 16)
			goto bad;
	}
	if (n > 0)
		return 0;
bad:
	snprintf(err, errlen, "%s: must be 1 to 16 comma-separated milliseconds",
	    row->name);
	return -1;
}

static int
check_provider(const struct setting *row, const char *v, void *field,
    char *err, size_t errlen)
{
	(void)field;
	if (prov_find(v) == NULL) {
		snprintf(err, errlen, "%s: unknown value '%.40s'", row->name, v);
		return -1;
	}
	return 0;
}

static int
check_storage(const struct setting *row, const char *v, void *field,
    char *err, size_t errlen)
{
	(void)field;
	if (storage_find(v) == NULL) {
		snprintf(err, errlen, "%s: unknown value '%.40s'", row->name, v);
		return -1;
	}
	return 0;
}

int
cfg_usd_valid(const char *v)
{
	size_t i = 0, dot = 0, ip = 0, fp = 0;

	for (; v[i] != '\0'; i++) {
		if (v[i] == '.' && !dot && ip > 0)
			dot = 1;
		else if (v[i] >= '0' && v[i] <= '9')
			dot ? fp++ : ip++;
		else
			break;
	}
	return v[i] == '\0' && ip > 0 && ip <= 10 && fp <= 6 && !(dot && fp == 0) &&
	    atof(v) <= 1e9;
}

/* A budget in USD: "none", or a decimal (cfg_usd_valid); it reaches
 * Postgres as numeric text (sql/011_budgets.sql). */
static int
check_usd(const struct setting *row, const char *v, void *field,
    char *err, size_t errlen)
{
	(void)field;
	if (strcmp(v, "none") == 0 || cfg_usd_valid(v))
		return 0;
	snprintf(err, errlen, "%s: expected USD as a decimal such as 10 or 0.39 (at most 6 places, up to 1000000000) or none, got '%.40s'",
	    row->name, v);
	return -1;
}

/* A fixed price per image: check_usd()'s decimal, without "none" (unset
 * is the price table). */
static int
check_price(const struct setting *row, const char *v, void *field,
    char *err, size_t errlen)
{
	/* below 1000000: a job's costs are numeric(12, 6) */
	if (strcmp(v, "none") != 0 && check_usd(row, v, field, err, errlen) == 0 &&
	    atof(v) < 1e6)
		return 0;
	snprintf(err, errlen, "%s: expected USD per image as a decimal such as 0.039 (at most 6 places, below 1000000), got '%.40s'",
	    row->name, v);
	return -1;
}

/* ---- the rows ----------------------------------------------------------- */

static const struct setting cfg_settings[] = {
	{ "DATABASE_URL", SET_STR, NULL, 0, 0, F(database_url), 0, NULL,
	  "(required)", "libpq URI or conninfo of the responders' login role: "
	  "one that can reach `authenticated` only (see Database roles)" },
	{ "IMAGEGEN_WORKER_DATABASE_URL", SET_STR, NULL, 0, 0,
	  F(worker_database_url), 0, NULL, "`DATABASE_URL`",
	  "the login role of executors, the sweeper, `imagegen sweep`/`worker`/"
	  "`stats` and `/metrics`, which `SET ROLE service_role`; unset, they "
	  "use `DATABASE_URL`, whose role must then reach `service_role` too "
	  "(a single-role setup: RLS is then no second wall, and each "
	  "responder logs a warning)" },
	{ "IMAGEGEN_DB_CONNECT_TIMEOUT", SET_INT, "2", 1, 60,
	  F(db_connect_timeout), 0, NULL, NULL, "seconds, libpq `connect_timeout`" },
	{ "IMAGEGEN_STATEMENT_TIMEOUT_MS", SET_INT, "5000", 100, 600000,
	  F(statement_timeout_ms), 0, NULL, NULL, "per statement" },
	{ "IMAGEGEN_MAX_BODY_BYTES", SET_SIZE, "1048576", 1024, 64L << 20,
	  F(max_body_bytes), 0, NULL, NULL, "larger bodies get 413" },
	{ "IMAGEGEN_LOG_LEVEL", SET_FN, "info", 0, 0, F(log_level), 0,
	  check_log_level, NULL, "`debug`, `info`, `warn` or `error`" },
	{ "SUPABASE_URL", SET_STR, NULL, 0, 0, F(project_url), SET_HTTP, NULL,
	  NULL, "the project URL; derives the issuer and the JWKS URL" },
	{ "SUPABASE_JWT_SECRET", SET_STR, NULL, 0, 0, F(jwt_secret), SET_SECRET,
	  check_jwt_secret, NULL,
	  "HS256 secret (at least 32 characters) for tokens without a JWKS key" },
	{ "SUPABASE_JWKS_URL", SET_STR, NULL, 0, 0, F(jwks_url), 0,
	  check_jwks_url, "`$SUPABASE_URL/auth/v1/.well-known/jwks.json`",
	  "ES256/RS256 keys: http(s), `file://` or an absolute path" },
	{ "SUPABASE_JWT_ISSUER", SET_STR, NULL, 0, 0, F(jwt_issuer), 0, NULL,
	  "`$SUPABASE_URL/auth/v1`",
	  "required `iss` (not checked when neither is set)" },
	{ "IMAGEGEN_JWT_LEEWAY", SET_LONG, "30", 0, 300, F(jwt_leeway), 0, NULL,
	  NULL, "seconds allowed on `exp`, `nbf`, `iat`" },
	{ "IMAGEGEN_JWKS_TTL", SET_LONG, "600", 1, 86400, F(jwks_ttl), 0, NULL,
	  NULL, "seconds a fetched key set is used before a refetch" },
	{ "IMAGEGEN_JWKS_MIN_REFRESH", SET_LONG, "30", 0, 3600,
	  F(jwks_min_refresh), 0, NULL, NULL,
	  "an unknown `kid` refetches at most once per this many seconds" },
	{ "IMAGEGEN_TOKEN_CACHE_SIZE", SET_INT, "1024", 0, 1000000,
	  F(token_cache_size), 0, NULL, NULL,
	  "verified tokens cached per process (0: off)" },
	{ "IMAGEGEN_PROVIDER", SET_STR, NULL, 0, 0, F(provider),
	  0, check_provider, NULL, "the provider: one of the tables below" },
	{ "IMAGEGEN_PROVIDER_TIMEOUT_MS", SET_LONG, "120000", 1000, 900000,
	  F(provider_timeout_ms), 0, NULL, NULL,
	  "one provider or storage call, never past the job's deadline" },
	{ "IMAGEGEN_PROVIDER_MAX_BYTES", SET_LONG, "33554432", 1024, 256L << 20,
	  F(provider_max_bytes), 0, NULL, NULL,
	  "largest provider reply (and downloaded artifact) read" },
	{ "IMAGEGEN_PRICE_PER_IMAGE_USD", SET_STR, NULL, 0, 0,
	  F(price_per_image_usd), 0, check_price, "(the price table)",
	  "a fixed price of every image of the configured provider and model "
	  "(local included): both the estimate and the actual cost, token "
	  "usage then not priced. Unset, the price table prices the model "
	  "(Gemini 2.5 Flash Image $0.039 an image; Gemini 3 Pro Image $0.134 "
	  "at 1K/2K, $0.24 at 4K; GPT Image 1 $0.042 at 1024x1024, $0.063 "
	  "larger; google/nano-banana on Replicate $0.039; local $0); a model it does not know is refused at start "
	  "(exit 2) until this is set, never priced by a guess" },
	{ "IMAGEGEN_FETCH_ALLOW", SET_STR, NULL, 0, 0, F(fetch_allow), 0,
	  check_fetch_allow, "(empty: strict)",
	  "the outbound URL policy's allow-list: comma-separated host names, "
	  "addresses and CIDR ranges (IPv4, IPv6); see [Outbound URL policy]"
	  "(#outbound-url-policy)" },
	{ "IMAGEGEN_ALERT_WEBHOOK_URL", SET_STR, NULL, 0, 0,
	  F(alert_webhook_url), SET_HTTP, NULL, "(none)",
	  "where budget alerts go as `budget.threshold` events (the "
	  "operator's endpoint: not under the outbound URL policy); unset, "
	  "they are only logged and listed (see docs/WEBHOOKS.md)" },
	{ "IMAGEGEN_ALERT_WEBHOOK_SECRET", SET_STR, NULL, 0, 0,
	  F(alert_webhook_secret), SET_SECRET, check_whsec, "(unsigned)",
	  "a `whsec_` Standard Webhooks secret the alert events are signed "
	  "with" },
	{ "IMAGEGEN_WEBHOOK_SECRET_KEY", SET_STR, NULL, 0, 0,
	  F(webhook_secret_key), SET_SECRET, check_seal_key,
	  "(none: user webhooks off)",
	  "the key the users' `whsec_` webhook signing secrets are encrypted "
	  "with in the database (AES-256-GCM; the database never sees it): the "
	  "base64 of 32 random bytes (`openssl rand -base64 32`), the same on "
	  "every host of a deployment and kept as long as their secrets "
	  "(changing it is not supported: the secrets sealed with the old one "
	  "stop opening until their users rotate). Unset, "
	  "`GET /api/webhooks/secret`, its rotation and a job with a `webhook` "
	  "(or its retry) answer 503 SERVICE_UNAVAILABLE, and user deliveries "
	  "fail on their schedule, then end `failed` (see docs/WEBHOOKS.md)" },
	{ "IMAGEGEN_PUBLIC_URL", SET_STR, NULL, 0, 0, F(public_url),
	  SET_HTTP | SET_STRIP, NULL, "(none: the executor polls)",
	  "where a model provider can reach this service (`https://host`): "
	  "set, a provider that calls back (`replicate`) is given "
	  "`$IMAGEGEN_PUBLIC_URL/api/webhooks/nano-banana`, the executor "
	  "records the provider's request id and exits, and the signed webhook "
	  "hands the job to an executor again; unset, the executor polls the "
	  "provider until the model ends" },
	{ "IMAGEGEN_WEBHOOK_GRACE_S", SET_LONG, "60", 1, 86400,
	  F(webhook_grace_s), 0, NULL, NULL,
	  "seconds a job waiting on a remote model waits for its webhook "
	  "before the sweeper polls the provider (then with a doubling wait, "
	  "at most 5 min apart) until the model ends or IMAGEGEN_JOB_TIMEOUT "
	  "passes" },
	{ "IMAGEGEN_CAP_COUNTS_REMOTE", SET_INT, "0", 0, 1,
	  F(cap_counts_remote), 0, NULL, NULL,
	  "`1`: jobs waiting on a remote model (no executor holds them) count "
	  "toward IMAGEGEN_MAX_RUNNING_JOBS; `0`: they do not, the cap bounds "
	  "executors, and the provider's own limits (429) bound the rest" },
	{ "IMAGEGEN_STORAGE", SET_STR, NULL, 0, 0, F(storage), 0,
	  check_storage, NULL, "the storage backend: one of the tables below" },
	{ "IMAGEGEN_BUCKET", SET_STR, "asset-images", 0, 0, F(bucket), 0,
	  check_bucket, NULL, "bucket name (3-63 of `[a-z0-9.-]`)" },
	{ "IMAGEGEN_PUBLIC_BASE_URL", SET_STR, "/storage/v1/object/public", 0, 0,
	  F(public_base_url), SET_STRIP, NULL,
	  "`/storage/v1/object/public`, or the backend's own (below)",
	  "public URLs are `BASE/BUCKET/PATH`; an inpaint job's "
	  "`sourceImageUrl`/`maskImageUrl` may be one of those or any other URL "
	  "the backend serves the bucket at (each backend below says which), "
	  "matched exactly, the path percent-decoded once and checked" },
	{ "IMAGEGEN_MAX_RUNNING_JOBS", SET_LONG, "4", 1, 1024,
	  F(max_running_jobs), 0, NULL, NULL,
	  "executors at once (deployment cap, and slots per host)" },
	{ "IMAGEGEN_SPOOL_DIR", SET_STR, "var/spool", 0, 0, F(spool_dir), 0, NULL,
	  NULL, "generated images until they are stored (relative to the working "
	  "directory): one file per job (`JOB_ID.spool`, mode 0600; "
	  "`JOB_ID.PID.part` while written), in a 0700 directory the executors' "
	  "user owns (made when missing; refused when another user owns it or "
	  "others may write in it)" },
	{ "IMAGEGEN_SLOT_DIR", SET_STR, NULL, 0, 0, F(slot_dir), 0, NULL,
	  "`var/run/slots` under the working directory",
	  "the host's slot files; made 0700 when missing; one that is a symlink, "
	  "not owned by the pool's user or writable by group or others is "
	  "refused (the pool exits 2 at start). Give every process of a "
	  "deployment on a host (pool, `imagegen worker`) the same absolute path "
	  "(e.g. `/run/imagegen/slots`: a service started from `/` would "
	  "otherwise look for `/var/run/slots`), and run `imagegen worker`/"
	  "`sweep` as the pool's user, which owns it; a reload (SIGHUP) with an "
	  "unusable one is refused" },
	{ "IMAGEGEN_JOB_TIMEOUT", SET_LONG, "300", 5, 86400, F(job_timeout), 0,
	  NULL, NULL, "seconds a job may run before it is stopped and recovered" },
	{ "IMAGEGEN_MAX_ATTEMPTS", SET_LONG, "3", 1, 100, F(max_attempts), 0, NULL,
	  NULL, "claims of a job before the sweeper fails it" },
	{ "IMAGEGEN_SWEEP_INTERVAL", SET_LONG, "5", 1, 3600, F(sweep_interval), 0,
	  NULL, NULL, "seconds between the master's recovery passes (which "
	  "also send due webhook deliveries: their retries wait at least this "
	  "long)" },
	{ "IMAGEGEN_USER_DAILY_BUDGET_USD", SET_STR, "10", 0, 0,
	  F(user_daily_budget), 0, check_usd, NULL,
	  "what one user's jobs may cost per UTC day, unless an operator set "
	  "another (`imagegen budget`); `0`: no paid jobs, `none`: no limit" },
	{ "IMAGEGEN_USER_MONTHLY_BUDGET_USD", SET_STR, NULL, 0, 0,
	  F(user_monthly_budget), 0, check_usd, "(none)",
	  "the same per UTC month" },
	{ "IMAGEGEN_DAILY_BUDGET_USD", SET_STR, NULL, 0, 0,
	  F(daily_budget), 0, check_usd, "(none)",
	  "what the whole deployment's jobs may cost per UTC day" },
	{ "IMAGEGEN_RATE_LIMIT_PER_MINUTE", SET_LONG, "60", 0, 1000000,
	  F(rate_limit_per_minute), 0, NULL, NULL,
	  "job creations per user and minute: the refill rate of each user's "
	  "token bucket, shared by every pool on the database (`0`: off)" },
	{ "IMAGEGEN_RATE_LIMIT_BURST", SET_LONG, "20", 1, 1000000,
	  F(rate_limit_burst), 0, NULL, NULL,
	  "the bucket's size: creations in a row before the rate applies" },
	{ "IMAGEGEN_MAX_WAIT_S", SET_LONG, "60", 0, 70, F(max_wait_s), 0, NULL,
	  NULL, "`Prefer: wait[=N]` on generate holds the answer up to N "
	  "seconds, never more than this, which is also N's default (`0`: "
	  "never wait, the preference is ignored); at most 70, below the "
	  "FastCGI read timeout of the shipped nginx and Apache configs "
	  "(75 s), past which the web server would answer 504 instead" },
	{ "IMAGEGEN_MAX_WAITING_REQUESTS", SET_LONG, "-1", -1, 256,
	  F(max_waiting_requests), 0, NULL, "half the workers (`-1`)",
	  "responders of a pool that may hold a `Prefer: wait` request at "
	  "once; the next one is answered at once, as without the preference "
	  "(`0`: none; never more than the workers less one, whatever it "
	  "says, so one responder is always free; needs the master pool: "
	  "without one no request waits)" },
	{ "IMAGEGEN_TEST_STAGE_DELAY_MS", SET_LONG, "0", 0, 600000,
	  F(test_stage_delay_ms), SET_TEST, NULL, NULL,
	  "an executor waits this long after recording where it will upload, "
	  "before the upload" },
	{ "IMAGEGEN_TEST_FAIL_SECOND_FORK", SET_INT, "0", 0, 1,
	  F(test_fail_second_fork), SET_TEST, NULL, NULL,
	  "`1` makes the executor's second fork fail, as under `RLIMIT_NPROC`" },
	{ "IMAGEGEN_TEST_WEBHOOK_BACKOFF_MS", SET_STR, NULL, 0, 0,
	  F(test_webhook_backoff), SET_TEST, check_backoff, "(the real schedule)",
	  "comma-separated milliseconds replacing the webhook retry schedule "
	  "(the last one repeats no more: after them the delivery fails)" },
	{ NULL, 0, NULL, 0, 0, 0, 0, NULL, NULL, NULL }
};

/* ---- the backend layers ------------------------------------------------- */

static void
layers_get(struct settings_layer l[2])
{
	memset(l, 0, 2 * sizeof(*l));
	l[0].var = "IMAGEGEN_PROVIDER";
	l[0].what = "Provider";
	l[0].n = prov_backends(l[0].be, SETTINGS_LAYER_MAX);
	l[1].var = "IMAGEGEN_STORAGE";
	l[1].what = "Storage backend";
	l[1].n = storage_backends(l[1].be, SETTINGS_LAYER_MAX);
	/* A table past SETTINGS_LAYER_MAX is a build mistake: say so at once
	 * rather than leave a backend out of the settings. */
	if (l[0].n > SETTINGS_LAYER_MAX || l[1].n > SETTINGS_LAYER_MAX) {
		fprintf(stderr, "imagegen: more than %d backends in a table;"
		    " raise SETTINGS_LAYER_MAX\n", SETTINGS_LAYER_MAX);
		abort();
	}
}

/* base + suffix (base's trailing '/' dropped) into a malloc'd *out; kept
 * when already set. -1 out of memory. */
static int
derive_url(char **out, const char *base, const char *suffix)
{
	size_t len = strlen(base);

	if (*out != NULL)
		return 0;
	while (len > 0 && base[len - 1] == '/')
		len--;
	*out = malloc(len + strlen(suffix) + 1);
	if (*out == NULL)
		return -1;
	memcpy(*out, base, len);
	memcpy(*out + len, suffix, strlen(suffix) + 1);
	return 0;
}

/* A budget setting as numeric text for SQL: "" for none. */
static const char *
usd_or_empty(const char *v)
{
	return v == NULL || strcmp(v, "none") == 0 ? "" : v;
}

int
cfg_load(struct cfg *out, const char *env_file, int need, char *err,
    size_t errlen)
{
	struct settings_src src = { 0 };
	struct settings_layer l[2];
	const struct settings_backend *def;
	struct cfg c = { 0 };
	char **name;
	size_t i;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (env_file == NULL)
		env_file = getenv("IMAGEGEN_ENV_FILE");
	if (settings_src_read(&src, env_file, err, errlen) != 0)
		goto out;
	if ((need & CFG_NEED_DB) && settings_get(&src, "DATABASE_URL") == NULL) {
		snprintf(err, errlen, "DATABASE_URL is not set (a libpq URI such as postgresql://imagegen_app@/imagegen?host=/path/to/socketdir)");
		goto out;
	}
	/* Unnamed, each layer's default; a named one replaces it. */
	layers_get(l);
	for (i = 0; i < 2; i++) {
		def = settings_layer_default(&l[i], &src);
		if (def == NULL) {
			snprintf(err, errlen, "%s is not set", l[i].var);
			goto out;
		}
		name = i == 0 ? &c.provider : &c.storage;
		*name = strdup(def->name);
		if (*name == NULL) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
	}
	if (settings_read(cfg_settings, &c, &src, SETTINGS_DEFAULTS, err,
	    errlen) != 0)
		goto out;
	if (settings_layer_read(&l[0], c.provider, &c, &c.provider_conf, &src,
	    err, errlen) != 0 ||
	    settings_layer_read(&l[1], c.storage, &c, &c.storage_conf, &src,
	    err, errlen) != 0)
		goto out;
	/* What follows from several values (nginx's merge_loc_conf). */
	c.public_base_url_set = settings_get(&src, "IMAGEGEN_PUBLIC_BASE_URL") != NULL;
	/* The project's auth server: its issuer, its signing keys. */
	if (c.project_url != NULL &&
	    (derive_url(&c.jwt_issuer, c.project_url, "/auth/v1") != 0 ||
	    derive_url(&c.jwks_url, c.project_url,
	    "/auth/v1/.well-known/jwks.json") != 0)) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/* Every job is priced: a model the price table does not know needs
	 * IMAGEGEN_PRICE_PER_IMAGE_USD, never a guess. */
	if (prov_price_check(&c, err, errlen) != 0)
		goto out;
	/* The budget defaults, as the status trigger reads them. */
	snprintf(c.budget_defaults, sizeof(c.budget_defaults), "%s|%s|%s",
	    usd_or_empty(c.user_daily_budget), usd_or_empty(c.user_monthly_budget),
	    usd_or_empty(c.daily_budget));
	c.rate_limit_conf[0] = '\0';
	if (c.rate_limit_per_minute > 0)
		snprintf(c.rate_limit_conf, sizeof(c.rate_limit_conf), "%ld|%ld",
		    c.rate_limit_per_minute, c.rate_limit_burst);
	*out = c;
	memset(&c, 0, sizeof(c));
	rc = 0;
out:
	cfg_free(&c);
	settings_src_free(&src);
	return rc;
}

void
cfg_free(struct cfg *c)
{
	struct settings_layer l[2];

	if (c == NULL)
		return;
	layers_get(l);
	settings_layer_free(&l[0], c->provider, c, &c->provider_conf);
	settings_layer_free(&l[1], c->storage, c, &c->storage_conf);
	settings_free(cfg_settings, c);
	memset(c, 0, sizeof(*c));
}

/* ---- the tables, printed ------------------------------------------------ */

/* The default and meaning columns of a layer's choice row, from its
 * backends: "`a` with `X` + `Y`, else `b`", "one of `a` or `b` (each below)". */
static void
choice_doc(const struct settings_layer *l, char *def, size_t deflen, char *help,
    size_t helplen)
{
	const char *fallback = NULL;
	const char *const *d;
	size_t k, m = 0, n = 0;

	def[0] = help[0] = '\0';
	for (k = 0; k < l->n; k++) {
		if (n < helplen)
			n += (size_t)snprintf(help + n, helplen - n, "%s `%s`%s",
			    k == 0 ? "one of" : k + 1 == l->n ? " or" : ",",
			    l->be[k].name, k + 1 == l->n ? " (each below)" : "");
		d = l->be[k].default_if;
		if (d == NULL)
			continue;
		if (d[0] == NULL) {
			if (fallback == NULL)
				fallback = l->be[k].name;
			continue;
		}
		if (m < deflen)
			m += (size_t)snprintf(def + m, deflen - m, "`%s` with `%s`",
			    l->be[k].name, d[0]);
		for (d++; *d != NULL; d++)
			if (m < deflen)
				m += (size_t)snprintf(def + m, deflen - m, " + `%s`", *d);
		if (m < deflen)
			m += (size_t)snprintf(def + m, deflen - m, ", else ");
	}
	if (fallback != NULL && m < deflen)
		snprintf(def + m, deflen - m, "`%s`", fallback);
}

static void
print_head(FILE *f, int fmt, const char *title)
{
	if (fmt == SETTINGS_MAN) {
		fprintf(f, ".SS \"%s\"\n", title);
		return;
	}
	fputc('\n', f);
	settings_print_text(f, title, fmt);
	if (fmt == SETTINGS_MARKDOWN)
		fprintf(f, "\n| variable | default | meaning |\n|---|---|---|\n");
}

void
cfg_settings_print(FILE *f, int fmt)
{
	struct setting rows[sizeof(cfg_settings) / sizeof(cfg_settings[0])];
	char def[2][256], help[2][512], title[1024];
	const struct settings_backend *d;
	struct settings_layer l[2];
	size_t i, k;

	layers_get(l);
	memcpy(rows, cfg_settings, sizeof(rows));
	for (i = 0; i < 2; i++) {
		choice_doc(&l[i], def[i], sizeof(def[i]), help[i], sizeof(help[i]));
		/* The layer's own row (IMAGEGEN_PROVIDER, IMAGEGEN_STORAGE) is
		 * documented from its table. */
		for (k = 0; rows[k].name != NULL; k++) {
			if (strcmp(rows[k].name, l[i].var) == 0) {
				rows[k].doc_def = def[i];
				rows[k].help = help[i];
			}
		}
	}
	print_head(f, fmt, fmt == SETTINGS_MARKDOWN ? "General:" :
	    fmt == SETTINGS_MAN ? "General" : "settings:");
	settings_print(f, rows, fmt);
	for (i = 0; i < 2; i++) {
		for (k = 0; k < l[i].n; k++) {
			d = &l[i].be[k];
			if (fmt == SETTINGS_MAN) {
				snprintf(title, sizeof(title), "%s %s", l[i].what, d->name);
				print_head(f, fmt, title);
				snprintf(title, sizeof(title), "`%s=%s`: %s.", l[i].var,
				    d->name, d->about);
				settings_print_text(f, title, fmt);
			} else {
				snprintf(title, sizeof(title), fmt == SETTINGS_MARKDOWN ?
				    "%s `%s` (`%s=%s`): %s." : "%s %s (%s=%s): %s",
				    l[i].what, d->name, l[i].var, d->name, d->about);
				print_head(f, fmt, title);
			}
			settings_print(f, d->shared, fmt);
			settings_print(f, d->rows, fmt);
		}
	}
}

void
cfg_settings_each(void (*fn)(const struct setting *rows, size_t base_size,
    int in_cfg, void *arg), void *arg)
{
	struct settings_layer l[2];
	size_t i, k;

	layers_get(l);
	fn(cfg_settings, sizeof(struct cfg), 1, arg);
	for (i = 0; i < 2; i++) {
		for (k = 0; k < l[i].n; k++) {
			const struct settings_backend *be = &l[i].be[k];
			size_t size = be->conf_size > 0 ? be->conf_size : sizeof(struct cfg);

			if (be->shared != NULL)
				fn(be->shared, size, be->conf_size == 0, arg);
			if (be->rows != NULL)
				fn(be->rows, size, be->conf_size == 0, arg);
		}
	}
}
