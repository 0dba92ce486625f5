/* test_settings.c - every settings row (cfg's, each provider's and storage
 * backend's): a good value lands in its field, a bad one is refused naming
 * the variable, the default reads; the backend choice and what a chosen
 * backend needs; docs/RUNNING.md lists exactly the rows. */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "cu_main.h"
#include "log.h"
#include "provider.h"
#include "settings.h"
#include "storage.h"
#include "storage_local.h"

/* Rows whose value a check reads: a good and a bad one. A new row with a
 * check must be added here (the suite fails until it is). */
static const struct {
	const char *name, *good, *bad;
} samples[] = {
	{ "IMAGEGEN_LOG_LEVEL", "warn", "loud" },
	{ "SUPABASE_JWT_SECRET", "0123456789abcdef0123456789abcdef", "short" },
	{ "SUPABASE_JWKS_URL", "file:///etc/jwks.json", "ftp://x" },
	{ "IMAGEGEN_BUCKET", "my-bucket.1", "Asset_Images" },
	{ "IMAGEGEN_FETCH_ALLOW", "127.0.0.1, 10.0.0.0/8", "10.0.0.1/8" },
	{ "IMAGEGEN_ALERT_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2hvcnQ=" },
	{ "IMAGEGEN_WEBHOOK_SECRET_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
	  "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==" },
	{ "IMAGEGEN_TEST_WEBHOOK_BACKOFF_MS", "300,300,600000", "300,,x" },
	{ "IMAGEGEN_PROVIDER", "local", "dall-e" },
	{ "IMAGEGEN_STORAGE", "local", "ftp" },
	{ "IMAGEGEN_USER_DAILY_BUDGET_USD", "0.39", "-1" },
	{ "IMAGEGEN_USER_MONTHLY_BUDGET_USD", "none", "10 USD" },
	{ "IMAGEGEN_DAILY_BUDGET_USD", "1000000000", "1e3" },
	{ "IMAGEGEN_PRICE_PER_IMAGE_USD", "0.039", "none" },
};

/* Every variable any row names, to clear between tests. */
static const char *names[256];
static size_t n_names;

static void
collect(const struct setting *rows, size_t base_size, int in_cfg, void *arg)
{
	size_t i;

	(void)base_size;
	(void)in_cfg;
	(void)arg;
	for (; rows->name != NULL; rows++) {
		for (i = 0; i < n_names && strcmp(names[i], rows->name) != 0; i++)
			;
		if (i == n_names && n_names < sizeof(names) / sizeof(names[0]))
			names[n_names++] = rows->name;
	}
}

static void
clear_env(void)
{
	size_t i;

	if (n_names == 0)
		cfg_settings_each(collect, NULL);
	for (i = 0; i < n_names; i++)
		unsetenv(names[i]);
	unsetenv("IMAGEGEN_ENV_FILE");
}

/* Reads the one row from the environment into base; 0 or -1 with err. */
static int
read_one(const struct setting *row, void *base, int mode, char *err,
    size_t errlen)
{
	struct setting one[2];

	memset(one, 0, sizeof(one));
	one[0] = *row;
	return settings_read(one, base, NULL, mode, err, errlen);
}

static void
free_one(const struct setting *row, void *base)
{
	struct setting one[2];

	memset(one, 0, sizeof(one));
	one[0] = *row;
	settings_free(one, base);
}

/* Expects value to be refused naming the row. */
static void
expect_bad(const struct setting *row, void *base, const char *value)
{
	char err[512] = "";

	setenv(row->name, value, 1);
	if (read_one(row, base, 0, err, sizeof(err)) == 0 ||
	    strstr(err, row->name) == NULL) {
		fprintf(stderr, "%s='%s' not refused by name: '%s'\n", row->name,
		    value, err);
		CU_FAIL("a bad value was not refused naming the variable");
	}
	unsetenv(row->name);
	free_one(row, base);
}

/* Expects value to be read; returns the field's address. */
static void *
expect_good(const struct setting *row, void *base, const char *value)
{
	char err[512] = "";

	setenv(row->name, value, 1);
	if (read_one(row, base, 0, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s='%s' refused: %s\n", row->name, value, err);
		CU_FAIL("a good value was refused");
	}
	unsetenv(row->name);
	return (char *)base + row->off;
}

static void
check_numbers(const struct setting *row, void *base)
{
	long want[2] = { row->min, row->max }, got;
	char buf[32];
	void *f;
	int i;

	for (i = 0; i < 2; i++) {
		snprintf(buf, sizeof(buf), "%ld", want[i]);
		f = expect_good(row, base, buf);
		got = row->type == SET_LONG ? *(long *)f : row->type == SET_INT ?
		    *(int *)f : (long)*(size_t *)f;
		CU_ASSERT_EQUAL(got, want[i]);
	}
	if (row->min > LONG_MIN) {
		snprintf(buf, sizeof(buf), "%ld", row->min - 1);
		expect_bad(row, base, buf);
	}
	if (row->max < LONG_MAX) {
		snprintf(buf, sizeof(buf), "%ld", row->max + 1);
		expect_bad(row, base, buf);
	}
	expect_bad(row, base, "lots");
	expect_bad(row, base, " 5");
}

static void
check_row(const struct setting *row, void *base)
{
	char err[512] = "";
	char **s;
	size_t i;

	for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
		if (strcmp(samples[i].name, row->name) == 0)
			break;
	if (row->check != NULL && i == sizeof(samples) / sizeof(samples[0])) {
		fprintf(stderr, "%s: a row with a check has no sample here\n",
		    row->name);
		CU_FAIL("a checked row without samples");
		return;
	}
	if (i < sizeof(samples) / sizeof(samples[0])) {
		s = expect_good(row, base, samples[i].good);
		if (row->type == SET_STR)
			CU_ASSERT_STRING_EQUAL(*s, samples[i].good);
		free_one(row, base);
		expect_bad(row, base, samples[i].bad);
	} else if (row->type == SET_STR && (row->flags & SET_HTTP)) {
		s = expect_good(row, base, "https://h.example/base/");
		CU_ASSERT_STRING_EQUAL(*s, (row->flags & SET_STRIP) ?
		    "https://h.example/base" : "https://h.example/base/");
		free_one(row, base);
		expect_bad(row, base, "ftp://h.example");
	} else if (row->type == SET_STR) {
		s = expect_good(row, base, "some value/");
		CU_ASSERT_STRING_EQUAL(*s, (row->flags & SET_STRIP) ?
		    "some value" : "some value/");
		free_one(row, base);
	} else {
		CU_ASSERT(row->type == SET_LONG || row->type == SET_INT ||
		    row->type == SET_SIZE);
		check_numbers(row, base);
	}
	/* Unset: the default reads (it is valid), a needed row is missing. */
	if (read_one(row, base, SETTINGS_DEFAULTS, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: its default is refused: %s\n", row->name, err);
		CU_FAIL("a default is refused");
	}
	if (row->def != NULL && row->type == SET_STR)
		CU_ASSERT_PTR_NOT_NULL(*(char **)((char *)base + row->off));
	free_one(row, base);
	if (row->flags & SET_NEEDED) {
		struct setting one[2];

		memset(one, 0, sizeof(one));
		one[0] = *row;
		CU_ASSERT_PTR_NOT_NULL(settings_missing(one, NULL));
	}
	CU_ASSERT_PTR_NOT_NULL(row->help);
}

/* The bytes a row's field takes (SET_FN: at least an int). */
static size_t
field_size(const struct setting *row)
{
	switch (row->type) {
	case SET_STR: return sizeof(char *);
	case SET_LONG: return sizeof(long);
	case SET_SIZE: return sizeof(size_t);
	default: return sizeof(int);
	}
}

static void
each_table(const struct setting *rows, size_t base_size, int in_cfg,
    void *arg)
{
	void *base = calloc(1, base_size);
	size_t *count = arg;

	(void)in_cfg;
	CU_ASSERT_PTR_NOT_NULL_FATAL(base);
	for (; rows->name != NULL; rows++) {
		/* A row writes inside the struct its table is read into (a
		 * shared table reused by a backend with its own conf, say). */
		CU_ASSERT_FATAL(rows->off + field_size(rows) <= base_size);
		check_row(rows, base);
		(*count)++;
	}
	free(base);
}

static void
test_every_row(void)
{
	size_t count = 0;

	clear_env();
	cfg_settings_each(each_table, &count);
	CU_ASSERT(count >= 40);
	clear_env();
}

/* Unnamed, the backend whose default_if holds is chosen; named, a backend
 * without a variable it needs is an error naming the variable and it. */
static void
test_choice_and_needed(void)
{
	struct settings_backend be[16];
	struct cfg c;
	char err[512], want[512];
	size_t layer, n, i;
	const struct setting *r, *t;
	const char *var;

	clear_env();
	CU_ASSERT_EQUAL_FATAL(cfg_load(&c, NULL, 0, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(c.provider, "local");
	CU_ASSERT_STRING_EQUAL(c.storage, "local");
	CU_ASSERT_STRING_EQUAL(prov_model(&c), "local-renderer-1");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c.storage_conf);
	CU_ASSERT_STRING_EQUAL(((struct storage_local_conf *)c.storage_conf)->dir,
	    "var/storage");
	cfg_free(&c);
	for (layer = 0; layer < 2; layer++) {
		var = layer == 0 ? "IMAGEGEN_PROVIDER" : "IMAGEGEN_STORAGE";
		n = layer == 0 ? prov_backends(be, 16) : storage_backends(be, 16);
		CU_ASSERT_FATAL(n <= 16);
		for (i = 0; i < n; i++) {
			const struct setting *tabs[2] = { be[i].shared, be[i].rows };
			size_t k, j;

			/* its default_if variables alone choose it */
			if (be[i].default_if != NULL && be[i].default_if[0] != NULL) {
				clear_env();
				for (k = 0; be[i].default_if[k] != NULL; k++)
					setenv(be[i].default_if[k], "https://x.example", 1);
				CU_ASSERT_EQUAL(cfg_load(&c, NULL, 0, err, sizeof(err)), 0);
				CU_ASSERT_STRING_EQUAL(layer == 0 ? c.provider : c.storage,
				    be[i].name);
				cfg_free(&c);
			}
			/* each needed variable missing, the others set */
			for (k = 0; k < 2; k++) {
				for (r = tabs[k]; r != NULL && r->name != NULL; r++) {
					if (!(r->flags & SET_NEEDED))
						continue;
					clear_env();
					setenv(var, be[i].name, 1);
					for (j = 0; j < 2; j++)
						for (t = tabs[j]; t != NULL && t->name != NULL; t++)
							if ((t->flags & SET_NEEDED) && t != r)
								setenv(t->name, "https://x.example", 1);
					unsetenv(r->name);
					snprintf(want, sizeof(want), "%s is not set (needed by %s=%s)",
					    r->name, var, be[i].name);
					err[0] = '\0';
					CU_ASSERT_EQUAL(cfg_load(&c, NULL, 0, err, sizeof(err)), -1);
					CU_ASSERT_STRING_EQUAL(err, want);
				}
			}
		}
	}
	clear_env();
}

/* A backend of the next kind: its settings in its own conf, a cross-field
 * check, chosen by default when its key is set. */
struct fake_conf {
	char *token;
	long tries;
};

static int fake_checked;

static int
fake_check(const struct cfg *c, const void *conf, char *err, size_t errlen)
{
	const struct fake_conf *fc = conf;

	CU_ASSERT_PTR_NOT_NULL(c);
	fake_checked++;
	if (fc->tries > 5 && strlen(fc->token) < 8) {
		snprintf(err, errlen, "FAKE_TRIES: more than 5 needs a longer FAKE_TOKEN");
		return -1;
	}
	return 0;
}

static const struct setting fake_rows[] = {
	{ "FAKE_TOKEN", SET_STR, NULL, 0, 0, offsetof(struct fake_conf, token),
	  SET_SECRET | SET_NEEDED, NULL, NULL, "a token" },
	{ "FAKE_TRIES", SET_LONG, "2", 1, 9, offsetof(struct fake_conf, tries), 0,
	  NULL, NULL, "tries" },
	{ NULL, 0, NULL, 0, 0, 0, 0, NULL, NULL, NULL }
};
static const char *const fake_default_if[] = { "FAKE_TOKEN", NULL };
static const char *const plain_default_if[] = { NULL };

static void
test_layer_with_own_conf(void)
{
	struct settings_layer l;
	const struct settings_backend *d;
	struct cfg c;
	void *conf = NULL;
	char err[256];
	struct fake_conf *fc;

	clear_env();
	memset(&l, 0, sizeof(l));
	memset(&c, 0, sizeof(c));
	l.var = "FAKE_LAYER";
	l.n = 2;
	l.be[0].name = "plain";
	l.be[0].default_if = plain_default_if;
	l.be[1].name = "fake";
	l.be[1].rows = fake_rows;
	l.be[1].conf_size = sizeof(struct fake_conf);
	l.be[1].default_if = fake_default_if;
	l.be[1].check = fake_check;
	/* unset: the fallback; a bad value of the one not chosen is refused */
	d = settings_layer_default(&l, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_STRING_EQUAL(d->name, "plain");
	setenv("FAKE_TRIES", "10", 1);
	CU_ASSERT_EQUAL(settings_layer_read(&l, "plain", &c, &conf, NULL, err,
	    sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "FAKE_TRIES"));
	settings_layer_free(&l, "plain", &c, &conf);
	CU_ASSERT_PTR_NULL(conf);
	unsetenv("FAKE_TRIES");
	CU_ASSERT_EQUAL(settings_layer_read(&l, "plain", &c, &conf, NULL, err,
	    sizeof(err)), 0);
	CU_ASSERT_PTR_NULL(conf);
	settings_layer_free(&l, "plain", &c, &conf);
	/* chosen without what it needs */
	CU_ASSERT_EQUAL(settings_layer_read(&l, "fake", &c, &conf, NULL, err,
	    sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "FAKE_TOKEN is not set (needed by FAKE_LAYER=fake)");
	settings_layer_free(&l, "fake", &c, &conf);
	/* its key set: the default, read into its own conf with defaults */
	setenv("FAKE_TOKEN", "abc", 1);
	d = settings_layer_default(&l, NULL);
	CU_ASSERT_STRING_EQUAL(d->name, "fake");
	fake_checked = 0;
	CU_ASSERT_EQUAL_FATAL(settings_layer_read(&l, "fake", &c, &conf, NULL, err,
	    sizeof(err)), 0);
	CU_ASSERT_EQUAL(fake_checked, 1);
	fc = conf;
	CU_ASSERT_PTR_NOT_NULL_FATAL(fc);
	CU_ASSERT_STRING_EQUAL(fc->token, "abc");
	CU_ASSERT_EQUAL(fc->tries, 2);
	settings_layer_free(&l, "fake", &c, &conf);
	CU_ASSERT_PTR_NULL(conf);
	/* its cross-field check */
	setenv("FAKE_TRIES", "7", 1);
	CU_ASSERT_EQUAL(settings_layer_read(&l, "fake", &c, &conf, NULL, err,
	    sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "FAKE_TRIES: more than 5 needs a longer FAKE_TOKEN");
	settings_layer_free(&l, "fake", &c, &conf);
	/* an unknown name */
	CU_ASSERT_EQUAL(settings_layer_read(&l, "other", &c, &conf, NULL, err,
	    sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "FAKE_LAYER: unknown value 'other'");
	settings_layer_free(&l, "other", &c, &conf);
	unsetenv("FAKE_TOKEN");
	unsetenv("FAKE_TRIES");
}

/* The source tree: abs_top_srcdir (make check exports it), else the one
 * this build was configured from. */
static const char *
srcdir(void)
{
	static char dir[4096];
	const char *e = getenv("abs_top_srcdir");
	size_t n;

	if (e != NULL && *e != '\0')
		return e;
	snprintf(dir, sizeof(dir), "%s", IMAGEGEN_SRC_SQL_DIR);
	n = strlen(dir);
	if (n >= 4 && strcmp(dir + n - 4, "/sql") == 0)
		dir[n - 4] = '\0';
	return dir;
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
	if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = calloc(1, (size_t)n + 1);
		if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

/* The file rel (under the source tree) holds, between begin and end,
 * exactly what cfg_settings_print() prints in fmt; cmd regenerates it. */
static void
check_generated(const char *rel, const char *begin, const char *end, int fmt,
    const char *cmd)
{
	char path[4200], *doc, *gen = NULL, *a, *b;
	size_t genlen = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", srcdir(), rel);
	doc = slurp(path);
	if (doc == NULL) {
		fprintf(stderr, "cannot read %s (set abs_top_srcdir to the source tree)\n",
		    path);
		CU_FAIL_FATAL("a generated document not found");
	}
	f = open_memstream(&gen, &genlen);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	cfg_settings_print(f, fmt);
	fclose(f);
	a = strstr(doc, begin);
	b = a != NULL ? strstr(a, end) : NULL;
	CU_ASSERT_PTR_NOT_NULL(a);
	CU_ASSERT_PTR_NOT_NULL(b);
	if (a != NULL && b != NULL) {
		a += strlen(begin);
		if ((size_t)(b - a) != genlen || memcmp(a, gen, genlen) != 0) {
			fprintf(stderr, "%s's settings differ from the rows: regenerate "
			    "them with `%s`\n", rel, cmd);
			CU_FAIL("a generated document disagrees with the settings rows");
		}
	}
	free(gen);
	free(doc);
}

/* docs/RUNNING.md holds, between its markers, exactly what
 * `imagegen settings --markdown` prints from the rows. */
static void
test_docs_agree(void)
{
	check_generated("docs/RUNNING.md",
	    "<!-- settings: begin (imagegen settings --markdown) -->",
	    "<!-- settings: end -->", SETTINGS_MARKDOWN,
	    "src/imagegen settings --markdown");
}

/* So does man/imagegen.env.5 of `imagegen settings --man`. */
static void
test_man_agrees(void)
{
	check_generated("man/imagegen.env.5",
	    ".\\\" settings: begin (imagegen settings --man)\n",
	    ".\\\" settings: end\n", SETTINGS_MAN,
	    "src/imagegen settings --man");
}

/* Nowhere in docs/RUNNING.md a variable of ours that no row has (the
 * mains' own IMAGEGEN_ENV_FILE and IMAGEGEN_SQL_DIR, the API clients'
 * IMAGEGEN_URL and IMAGEGEN_TOKEN and the scripts' variables aside). */
static void
test_docs_no_stray_variable(void)
{
	static const char *const prefixes[] = {
		"IMAGEGEN_", "NANO_BANANA_", "SUPABASE_", "S3_", "DATABASE_URL", NULL
	};
	static const char *const not_rows[] = {
		"IMAGEGEN_ENV_FILE", "IMAGEGEN_SQL_DIR",
		/* imagegen generate's and jobs': not the pool's settings */
		"IMAGEGEN_URL", "IMAGEGEN_TOKEN",
		/* scripts/up's and scripts/build's own, not the binaries' */
		"IMAGEGEN_WEB", "IMAGEGEN_HTTP_PORT", "IMAGEGEN_HTTPS_PORT",
		"IMAGEGEN_PG_PORT", "IMAGEGEN_POOL", "IMAGEGEN_SKIP_DEPS",
		"IMAGEGEN_CONFIGURE_FLAGS", NULL
	};
	char path[4200], name[128], *doc, *p;
	size_t i, n;

	clear_env();
	snprintf(path, sizeof(path), "%s/docs/RUNNING.md", srcdir());
	doc = slurp(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
	for (p = doc; (p = strchr(p, '`')) != NULL; ) {
		p++;
		for (n = 0; n + 1 < sizeof(name) && ((p[n] >= 'A' && p[n] <= 'Z') ||
		    (p[n] >= '0' && p[n] <= '9') || p[n] == '_'); n++)
			name[n] = p[n];
		name[n] = '\0';
		for (i = 0; prefixes[i] != NULL; i++)
			if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
				break;
		if (n == 0 || prefixes[i] == NULL)
			continue;
		for (i = 0; not_rows[i] != NULL && strcmp(not_rows[i], name) != 0; i++)
			;
		if (not_rows[i] != NULL)
			continue;
		for (i = 0; i < n_names && strcmp(names[i], name) != 0; i++)
			;
		if (i == n_names) {
			fprintf(stderr, "docs/RUNNING.md names %s, which no settings row has\n",
			    name);
			CU_FAIL("a variable in the docs without a row");
		}
	}
	free(doc);
}

/* The row with this name, from any table. */
struct find_row {
	const char *name;
	const struct setting *row;
};

static void
find_each(const struct setting *rows, size_t base_size, int in_cfg, void *arg)
{
	struct find_row *f = arg;

	(void)base_size;
	(void)in_cfg;
	for (; rows->name != NULL; rows++)
		if (strcmp(rows->name, f->name) == 0)
			f->row = rows;
}

/* Budgets reach Postgres as numeric text: only plain decimals pass. */
static void
test_budget_usd_values(void)
{
	static const char *const good[] = { "0", "10", "0.39", "0.039", "12.5",
		"none", "1000000000", "0.000001", NULL };
	static const char *const bad[] = { "-1", "1.", ".5", "1.1234567",
		"1e3", "abc", "10 ", " 10", "1,5", "1000000001", "NaN", "Infinity",
		"1..2", "12345678901", NULL };
	struct find_row f = { "IMAGEGEN_USER_DAILY_BUDGET_USD", NULL };
	struct cfg c;
	char err[512];
	void *base;
	size_t i;

	clear_env();
	cfg_settings_each(find_each, &f);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f.row);
	base = calloc(1, sizeof(struct cfg));
	CU_ASSERT_PTR_NOT_NULL_FATAL(base);
	for (i = 0; good[i] != NULL; i++) {
		expect_good(f.row, base, good[i]);
		free_one(f.row, base);
	}
	for (i = 0; bad[i] != NULL; i++)
		expect_bad(f.row, base, bad[i]);
	free(base);

	/* what a request's transaction is given (sql/011_budgets.sql) */
	CU_ASSERT_EQUAL_FATAL(cfg_load(&c, NULL, 0, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(c.budget_defaults, "10||");
	cfg_free(&c);
	setenv("IMAGEGEN_USER_DAILY_BUDGET_USD", "none", 1);
	setenv("IMAGEGEN_USER_MONTHLY_BUDGET_USD", "0", 1);
	setenv("IMAGEGEN_DAILY_BUDGET_USD", "5.5", 1);
	CU_ASSERT_EQUAL_FATAL(cfg_load(&c, NULL, 0, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(c.budget_defaults, "|0|5.5");
	cfg_free(&c);
	clear_env();
}

/* A fixed price per image is the budgets' decimal, but never "none": unset
 * is the price table. */
static void
test_price_usd_values(void)
{
	static const char *const good[] = { "0", "10", "0.39", "0.039", "0.134",
		"999999.999999", "0.000001", NULL };
	static const char *const bad[] = { "none", "-1", "1.", ".5", "1.1234567",
		"1e3", "abc", "10 ", " 10", "1,5", "1000000", "1000000001", "NaN", "$0.04",
		NULL };
	struct find_row f = { "IMAGEGEN_PRICE_PER_IMAGE_USD", NULL };
	char **field;
	void *base;
	size_t i;

	clear_env();
	cfg_settings_each(find_each, &f);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f.row);
	base = calloc(1, sizeof(struct cfg));
	CU_ASSERT_PTR_NOT_NULL_FATAL(base);
	for (i = 0; good[i] != NULL; i++) {
		field = expect_good(f.row, base, good[i]);
		CU_ASSERT(*field != NULL && strcmp(*field, good[i]) == 0);
		free_one(f.row, base);
	}
	for (i = 0; bad[i] != NULL; i++)
		expect_bad(f.row, base, bad[i]);
	free(base);
	clear_env();
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "every row", test_every_row },
		{ "choice and needed", test_choice_and_needed },
		{ "a layer with its own conf", test_layer_with_own_conf },
		{ "docs agree", test_docs_agree },
		{ "man page agrees", test_man_agrees },
		{ "docs name no stray variable", test_docs_no_stray_variable },
		{ "budget USD values", test_budget_usd_values },
		{ "price per image USD values", test_price_usd_values },
		CU_TEST_INFO_NULL
	};

	return cu_run("settings", tests);
}
