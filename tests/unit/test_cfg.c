/* test_cfg.c - configuration parsing and its errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "cu_main.h"

static void
test_cfg_parse_line(void)
{
	char l1[] = "FOO=bar", l2[] = "  export  KEY = 'a b' ", l3[] = "# c";
	char l4[] = "", l5[] = "NOEQUALS", l6[] = "X=\"unterminated";
	char l7[] = "URL=http://h/x # trailing", l8[] = "1BAD=x";
	char *k, *v;

	CU_ASSERT_EQUAL(cfg_parse_line(l1, &k, &v), 1);
	CU_ASSERT_STRING_EQUAL(k, "FOO");
	CU_ASSERT_STRING_EQUAL(v, "bar");
	CU_ASSERT_EQUAL(cfg_parse_line(l2, &k, &v), 1);
	CU_ASSERT_STRING_EQUAL(k, "KEY");
	CU_ASSERT_STRING_EQUAL(v, "a b");
	CU_ASSERT_EQUAL(cfg_parse_line(l3, &k, &v), 0);
	CU_ASSERT_EQUAL(cfg_parse_line(l4, &k, &v), 0);
	CU_ASSERT_EQUAL(cfg_parse_line(l5, &k, &v), -1);
	CU_ASSERT_EQUAL(cfg_parse_line(l6, &k, &v), -1);
	CU_ASSERT_EQUAL(cfg_parse_line(l7, &k, &v), 1);
	CU_ASSERT_STRING_EQUAL(v, "http://h/x");
	CU_ASSERT_EQUAL(cfg_parse_line(l8, &k, &v), -1);
}

static void
test_cfg_parse_long(void)
{
	long v = 0;

	CU_ASSERT_EQUAL(cfg_parse_long("42", 0, 100, &v), 0);
	CU_ASSERT_EQUAL(v, 42);
	CU_ASSERT_EQUAL(cfg_parse_long("101", 0, 100, &v), -1);
	CU_ASSERT_EQUAL(cfg_parse_long("4x", 0, 100, &v), -1);
	CU_ASSERT_EQUAL(cfg_parse_long("", 0, 100, &v), -1);
	CU_ASSERT_EQUAL(cfg_parse_long(" 4", 0, 100, &v), -1);
	CU_ASSERT_EQUAL(cfg_parse_long("99999999999999999999", 0, 100, &v), -1);
}

static void
clear_env(void)
{
	unsetenv("DATABASE_URL");
	unsetenv("IMAGEGEN_WORKER_DATABASE_URL");
	unsetenv("IMAGEGEN_ENV_FILE");
	unsetenv("IMAGEGEN_MAX_BODY_BYTES");
	unsetenv("IMAGEGEN_LOG_LEVEL");
	unsetenv("IMAGEGEN_DB_CONNECT_TIMEOUT");
	unsetenv("IMAGEGEN_STATEMENT_TIMEOUT_MS");
	unsetenv("SUPABASE_URL");
	unsetenv("SUPABASE_JWT_SECRET");
	unsetenv("SUPABASE_JWT_ISSUER");
	unsetenv("IMAGEGEN_PROVIDER");
	unsetenv("IMAGEGEN_STORAGE");
	unsetenv("NANO_BANANA_API_URL");
	unsetenv("NANO_BANANA_API_KEY");
	unsetenv("IMAGEGEN_BUCKET");
	unsetenv("IMAGEGEN_MAX_RUNNING_JOBS");
	unsetenv("IMAGEGEN_JOB_TIMEOUT");
	unsetenv("IMAGEGEN_MAX_WAIT_S");
	unsetenv("IMAGEGEN_WEBHOOK_SECRET_KEY");
}

static void
test_cfg_missing_database_url_named(void)
{
	struct cfg c;
	char err[512];

	clear_env();
	CU_ASSERT_EQUAL(cfg_load(&c, NULL, CFG_NEED_DB, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "DATABASE_URL"));
	CU_ASSERT_EQUAL(cfg_load(&c, NULL, 0, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.max_body_bytes, 1048576);
	CU_ASSERT_EQUAL(c.db_connect_timeout, 2);
	cfg_free(&c);
}

/* Unset (or empty), the workers use DATABASE_URL (db_connect_worker): a
 * single-role setup keeps working. */
static void
test_cfg_worker_database_url_optional(void)
{
	struct cfg c;
	char err[512];

	clear_env();
	setenv("DATABASE_URL", "postgresql://imagegen_app@/x", 1);
	CU_ASSERT_EQUAL_FATAL(cfg_load(&c, NULL, CFG_NEED_DB, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NULL(c.worker_database_url);
	cfg_free(&c);
	setenv("IMAGEGEN_WORKER_DATABASE_URL", "", 1);
	CU_ASSERT_EQUAL_FATAL(cfg_load(&c, NULL, CFG_NEED_DB, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NULL(c.worker_database_url);
	cfg_free(&c);
	setenv("IMAGEGEN_WORKER_DATABASE_URL", "postgresql://imagegen_worker@/x", 1);
	CU_ASSERT_EQUAL_FATAL(cfg_load(&c, NULL, CFG_NEED_DB, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(c.worker_database_url, "postgresql://imagegen_worker@/x");
	CU_ASSERT_STRING_EQUAL(c.database_url, "postgresql://imagegen_app@/x");
	cfg_free(&c);
	clear_env();
}

static void
test_cfg_bad_value_named(void)
{
	static const char *const bad[][2] = {
		{ "IMAGEGEN_MAX_BODY_BYTES", "lots" },
		{ "IMAGEGEN_MAX_BODY_BYTES", "10" },
		{ "IMAGEGEN_DB_CONNECT_TIMEOUT", "0" },
		{ "IMAGEGEN_STATEMENT_TIMEOUT_MS", "-5" },
		{ "IMAGEGEN_LOG_LEVEL", "loud" },
		{ "SUPABASE_URL", "ftp://x" },
		{ "IMAGEGEN_PROVIDER", "gemini" },	/* without NANO_BANANA_API_KEY */
		{ "IMAGEGEN_PROVIDER", "dall-e" },
		{ "IMAGEGEN_STORAGE", "s3" },		/* without S3_ENDPOINT */
		{ "IMAGEGEN_STORAGE", "supabase" },	/* without SUPABASE_URL */
		{ "IMAGEGEN_STORAGE", "ftp" },
		{ "NANO_BANANA_API_URL", "ftp://x" },
		{ "IMAGEGEN_BUCKET", "Asset_Images" },
		{ "IMAGEGEN_MAX_RUNNING_JOBS", "0" },
		{ "IMAGEGEN_JOB_TIMEOUT", "1" },
		/* past the web servers' 75 s FastCGI read timeout */
		{ "IMAGEGEN_MAX_WAIT_S", "71" },
		{ "IMAGEGEN_MAX_WAIT_S", "300" },
	};
	struct cfg c;
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		clear_env();
		setenv("DATABASE_URL", "postgresql:///x", 1);
		setenv(bad[i][0], bad[i][1], 1);
		CU_ASSERT_EQUAL(cfg_load(&c, NULL, CFG_NEED_DB, err, sizeof(err)), -1);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i][0]));
		CU_ASSERT_PTR_NULL(c.database_url);
	}
	/* the largest wait the range allows */
	clear_env();
	setenv("DATABASE_URL", "postgresql:///x", 1);
	setenv("IMAGEGEN_MAX_WAIT_S", "70", 1);
	CU_ASSERT_EQUAL(cfg_load(&c, NULL, CFG_NEED_DB, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.max_wait_s, 70);
	cfg_free(&c);
	clear_env();
}

/* IMAGEGEN_WEBHOOK_SECRET_KEY: 32 bytes of base64 or a start-up error
 * naming it, never showing the value. */
static void
test_cfg_webhook_secret_key_checked_and_never_shown(void)
{
	static const char *const bad[] = {
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==",	/* 31 bytes */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ==",	/* 34 */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",	/* no padding */
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		"whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
	};
	struct cfg c;
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		clear_env();
		setenv("DATABASE_URL", "postgresql:///x", 1);
		setenv("IMAGEGEN_WEBHOOK_SECRET_KEY", bad[i], 1);
		CU_ASSERT_EQUAL(cfg_load(&c, NULL, CFG_NEED_DB, err, sizeof(err)), -1);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "IMAGEGEN_WEBHOOK_SECRET_KEY"));
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "32 bytes"));
		CU_ASSERT_PTR_NULL(strstr(err, "AAECAwQF"));
		CU_ASSERT_PTR_NULL(strstr(err, "00010203"));
	}
	clear_env();
	setenv("DATABASE_URL", "postgresql:///x", 1);
	CU_ASSERT_EQUAL_FATAL(cfg_load(&c, NULL, CFG_NEED_DB, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NULL(c.webhook_secret_key);
	cfg_free(&c);
	setenv("IMAGEGEN_WEBHOOK_SECRET_KEY",
	    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", 1);
	CU_ASSERT_EQUAL_FATAL(cfg_load(&c, NULL, CFG_NEED_DB, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(c.webhook_secret_key,
	    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
	cfg_free(&c);
	clear_env();
}

static void
test_cfg_env_file_and_env_wins(void)
{
	char path[] = "/tmp/imagegen-cfg-XXXXXX", err[512];
	struct cfg c;
	FILE *f;
	int fd;

	clear_env();
	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	f = fdopen(fd, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("# settings\nDATABASE_URL=postgresql:///fromfile\n"
	    "export IMAGEGEN_MAX_BODY_BYTES=2048\n"
	    "SUPABASE_URL=\"https://abc.supabase.co/\"\n", f);
	fclose(f);
	setenv("IMAGEGEN_MAX_BODY_BYTES", "4096", 1);
	CU_ASSERT_EQUAL_FATAL(cfg_load(&c, path, CFG_NEED_DB, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(c.database_url, "postgresql:///fromfile");
	CU_ASSERT_EQUAL(c.max_body_bytes, 4096);
	CU_ASSERT_STRING_EQUAL(c.jwt_issuer, "https://abc.supabase.co/auth/v1");
	cfg_free(&c);
	clear_env();

	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("DATABASE_URL=x\nthis is not an assignment\n", f);
	fclose(f);
	CU_ASSERT_EQUAL(cfg_load(&c, path, CFG_NEED_DB, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "line 2"));
	unlink(path);
	CU_ASSERT_EQUAL(cfg_load(&c, path, CFG_NEED_DB, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "IMAGEGEN_ENV_FILE"));
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "parse_line", test_cfg_parse_line },
		{ "parse_long", test_cfg_parse_long },
		{ "missing_database_url_named", test_cfg_missing_database_url_named },
		{ "bad_value_named", test_cfg_bad_value_named },
		{ "worker_database_url_optional", test_cfg_worker_database_url_optional },
		{ "env_file_and_env_wins", test_cfg_env_file_and_env_wins },
		{ "webhook_secret_key_checked", test_cfg_webhook_secret_key_checked_and_never_shown },
		CU_TEST_INFO_NULL
	};

	return cu_run("cfg", tests);
}
