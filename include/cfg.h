/* cfg.h - configuration from the environment and an optional env file. */
#ifndef IG_CFG_H
#define IG_CFG_H

#include <stddef.h>
#include <stdio.h>

#include "log.h"

struct setting;

struct cfg {
	char *database_url;		/* DATABASE_URL (required) */
	/* IMAGEGEN_WORKER_DATABASE_URL: the executors', sweeper's, worker's
	 * and /metrics' login role (one that may SET ROLE service_role);
	 * NULL: DATABASE_URL's, for single-role setups. db_connect_worker(). */
	char *worker_database_url;
	int db_connect_timeout;		/* IMAGEGEN_DB_CONNECT_TIMEOUT, seconds */
	int statement_timeout_ms;	/* IMAGEGEN_STATEMENT_TIMEOUT_MS */
	size_t max_body_bytes;		/* IMAGEGEN_MAX_BODY_BYTES */
	enum ig_log_level log_level;	/* IMAGEGEN_LOG_LEVEL */
	char *jwt_secret;		/* SUPABASE_JWT_SECRET (may be NULL) */
	char *jwt_issuer;		/* SUPABASE_JWT_ISSUER or derived */
	char *project_url;		/* SUPABASE_URL (may be NULL) */
	char *jwks_url;			/* SUPABASE_JWKS_URL or derived (may be NULL) */
	long jwt_leeway;		/* IMAGEGEN_JWT_LEEWAY, seconds */
	long jwks_ttl;			/* IMAGEGEN_JWKS_TTL, seconds */
	long jwks_min_refresh;		/* IMAGEGEN_JWKS_MIN_REFRESH, seconds */
	int token_cache_size;		/* IMAGEGEN_TOKEN_CACHE_SIZE, 0: off */
	/* jobs */
	char *provider;			/* IMAGEGEN_PROVIDER: a provider's name */
	char *storage;			/* IMAGEGEN_STORAGE: a backend's name */
	char *bucket;			/* IMAGEGEN_BUCKET */
	char *public_base_url;		/* IMAGEGEN_PUBLIC_BASE_URL, no trailing / */
	int public_base_url_set;	/* 1: given, so remote backends keep it */
	char *slot_dir;			/* IMAGEGEN_SLOT_DIR */
	char *spool_dir;		/* IMAGEGEN_SPOOL_DIR: generated images until stored */
	long test_stage_delay_ms;	/* IMAGEGEN_TEST_STAGE_DELAY_MS (tests only) */
	int test_fail_second_fork;	/* IMAGEGEN_TEST_FAIL_SECOND_FORK (tests only) */
	long max_running_jobs;		/* IMAGEGEN_MAX_RUNNING_JOBS */
	long job_timeout;		/* IMAGEGEN_JOB_TIMEOUT, seconds */
	long max_attempts;		/* IMAGEGEN_MAX_ATTEMPTS */
	long sweep_interval;		/* IMAGEGEN_SWEEP_INTERVAL, seconds */
	/* spending control (sql/011_budgets.sql): USD as decimal text, or
	 * "none"; NULL unset */
	char *user_daily_budget;	/* IMAGEGEN_USER_DAILY_BUDGET_USD */
	char *user_monthly_budget;	/* IMAGEGEN_USER_MONTHLY_BUDGET_USD */
	char *daily_budget;		/* IMAGEGEN_DAILY_BUDGET_USD */
	/* "USER_DAY|USER_MONTH|DEPLOYMENT_DAY", each "" for none: what a
	 * request's transaction sets as imagegen.budget_defaults */
	char budget_defaults[80];
	long rate_limit_per_minute;	/* IMAGEGEN_RATE_LIMIT_PER_MINUTE, 0: off */
	long rate_limit_burst;		/* IMAGEGEN_RATE_LIMIT_BURST */
	/* "PER_MINUTE|BURST", "" when off: a request's imagegen.rate_limit */
	char rate_limit_conf[48];
	/* Prefer: wait on generate (h_jobs.c) */
	long max_wait_s;		/* IMAGEGEN_MAX_WAIT_S, 0: never */
	long max_waiting_requests;	/* IMAGEGEN_MAX_WAITING_REQUESTS, -1: half */
	/* providers (SPEC §6) */
	long provider_timeout_ms;	/* IMAGEGEN_PROVIDER_TIMEOUT_MS, one call */
	long provider_max_bytes;	/* IMAGEGEN_PROVIDER_MAX_BYTES, one reply */
	/* IMAGEGEN_PRICE_PER_IMAGE_USD: a fixed USD price per image (decimal
	 * text, checked) replacing the price table; NULL unset. Read it with
	 * prov_fixed_price(). */
	char *price_per_image_usd;
	char *fetch_allow;		/* IMAGEGEN_FETCH_ALLOW (urlpolicy.h), checked */
	/* outbound events (src/jobs/webhooks.c) */
	char *alert_webhook_url;	/* IMAGEGEN_ALERT_WEBHOOK_URL, NULL: none */
	char *alert_webhook_secret;	/* IMAGEGEN_ALERT_WEBHOOK_SECRET (whsec_) */
	/* IMAGEGEN_WEBHOOK_SECRET_KEY: base64 of the 32-byte key users'
	 * signing secrets are sealed with (seal.h), checked; NULL: none */
	char *webhook_secret_key;
	/* IMAGEGEN_TEST_WEBHOOK_BACKOFF_MS (tests only): comma-separated ms
	 * replacing the retry schedule; NULL: the real one */
	char *test_webhook_backoff;
	/* remote models that call back (replicate) */
	char *public_url;		/* IMAGEGEN_PUBLIC_URL, no trailing /; NULL: poll */
	long webhook_grace_s;		/* IMAGEGEN_WEBHOOK_GRACE_S */
	int cap_counts_remote;		/* IMAGEGEN_CAP_COUNTS_REMOTE */
	/* The chosen provider's and storage backend's own settings (the
	 * model, keys, endpoints, directories: whatever its rows name), in
	 * the struct its ops row's conf_size sizes (settings.h); NULL when it
	 * has none, or for a cfg not made by cfg_load(). */
	void *provider_conf;
	void *storage_conf;
};

/* What cfg_load() needs: which variables are required. */
enum cfg_need { CFG_NEED_DB = 1 };

/*
 * Loads the configuration: the process environment wins over env_file
 * (KEY=VALUE lines; may be NULL). On error writes one line naming the
 * variable into err and returns -1, leaving *out zeroed. Caller frees with
 * cfg_free().
 */
int cfg_load(struct cfg *out, const char *env_file, int need, char *err,
    size_t errlen);
/* Accepts a zeroed or loaded cfg. */
void cfg_free(struct cfg *c);

/*
 * Prints every setting from the tables: cfg's own, then each provider's
 * and each storage backend's, in fmt (settings.h): SETTINGS_MARKDOWN, the
 * tables of docs/RUNNING.md (`imagegen settings --markdown`); SETTINGS_MAN,
 * the settings section of man/imagegen.env.5 (`imagegen settings --man`);
 * SETTINGS_PLAIN, the list of --help. Can't fail.
 */
void cfg_settings_print(FILE *f, int fmt);

/* For the settings unit suite: calls fn for each table (its rows, the
 * size of the struct they are read into, and whether that is struct cfg)
 * in cfg_settings_print()'s order. */
void cfg_settings_each(void (*fn)(const struct setting *rows,
    size_t base_size, int in_cfg, void *arg), void *arg);

/*
 * settings_parse_line(), settings_parse_long() (settings.h) under their
 * older names. Parses one env-file line. Returns 1 and sets *key and *val (pointers into
 * line, which is modified) for an assignment, 0 for a blank or comment
 * line, -1 for a malformed one.
 */
int cfg_parse_line(char *line, char **key, char **val);
/* Strict integer in [min, max]; 0 on success, -1 otherwise. */
int cfg_parse_long(const char *s, long min, long max, long *out);
/*
 * 1 when v is an amount of USD as the budget settings and `imagegen
 * budget set` take it: a plain decimal ("10", "0.39"; digits, at most one
 * '.' with digits on both sides), at most 10 integer digits and 6 places,
 * at most 1000000000; 0 for anything else ("none" included: callers
 * decide what that means). Can't fail.
 */
int cfg_usd_valid(const char *v);

#endif
