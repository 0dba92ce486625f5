/* migrate.c - applies sql/NNN_*.sql in order, each once, under a lock. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "hex.h"
#include "migrate.h"

/* pg_advisory_lock key: "imgmig" in ASCII. */
#define MIGRATE_LOCK_KEY "115918607575399"
#define MIGRATE_FILE_MAX (4L << 20)

struct mfile {
	char *name;
	char version[32];
};

int
migrate_is_migration_name(const char *name)
{
	size_t i = 0, len = strlen(name);

	while (isdigit((unsigned char)name[i]))
		i++;
	if (i < 3 || i >= 32 || name[i] != '_')
		return 0;
	if (len < i + 6 || strcmp(name + len - 4, ".sql") != 0)
		return 0;
	for (i++; i < len - 4; i++)
		if (!(isalnum((unsigned char)name[i]) || name[i] == '_' ||
		    name[i] == '-'))
			return 0;
	return 1;
}

static int
mfile_cmp(const void *a, const void *b)
{
	return strcmp(((const struct mfile *)a)->name,
	    ((const struct mfile *)b)->name);
}

static void
mfiles_free(struct mfile *f, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(f[i].name);
	free(f);
}

/* The migration files of dir, sorted. -1 with a reason in err. */
static int
mfiles_list(const char *dir, struct mfile **out, size_t *nout, char *err,
    size_t errlen)
{
	struct mfile *f = NULL, *nf;
	struct dirent *de;
	DIR *d;
	size_t n = 0, cap = 0, i;
	int rc = -1;

	d = opendir(dir);
	if (d == NULL) {
		snprintf(err, errlen, "cannot open migrations directory %s: %s",
		    dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (!migrate_is_migration_name(de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			nf = realloc(f, cap * sizeof(*f));
			if (nf == NULL)
				goto oom;
			f = nf;
		}
		f[n].name = strdup(de->d_name);
		if (f[n].name == NULL)
			goto oom;
		i = strcspn(f[n].name, "_");
		memcpy(f[n].version, f[n].name, i);
		f[n].version[i] = '\0';
		n++;
	}
	qsort(f, n, sizeof(*f), mfile_cmp);
	for (i = 1; i < n; i++) {
		if (strcmp(f[i].version, f[i - 1].version) == 0) {
			snprintf(err, errlen, "two migrations share version %s: %s and %s",
			    f[i].version, f[i - 1].name, f[i].name);
			goto out;
		}
	}
	*out = f;
	*nout = n;
	f = NULL;
	n = 0;
	rc = 0;
	goto out;
oom:
	snprintf(err, errlen, "out of memory");
out:
	closedir(d);
	mfiles_free(f, n);
	return rc;
}

/* The file's text, NUL-terminated; caller frees. NULL with err. */
static char *
slurp(const char *dir, const char *name, size_t *len, char *err, size_t errlen)
{
	char path[4096];
	char *buf = NULL;
	FILE *f;
	long sz;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 ||
	    sz > MIGRATE_FILE_MAX || fseek(f, 0, SEEK_SET) != 0) {
		snprintf(err, errlen, "%s: unreadable or larger than %ld bytes",
		    path, MIGRATE_FILE_MAX);
		goto out;
	}
	buf = malloc((size_t)sz + 1);
	if (buf == NULL || fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
		snprintf(err, errlen, "%s: read failed", path);
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[sz] = '\0';
	*len = (size_t)sz;
out:
	fclose(f);
	return buf;
}

static void
sha256_hex(const char *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	hex_encode(md, sizeof(md), out);
}

static int
exec_ok(PGconn *c, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok)
		snprintf(err, errlen, "%s", PQerrorMessage(c));
	PQclear(r);
	return ok ? 0 : -1;
}

static void
chomp(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
}

static long long
ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (long long)(t1.tv_sec - t0->tv_sec) * 1000 +
	    (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Applies one file in its own transaction and records it. */
static int
apply_one(PGconn *c, const char *dir, const struct mfile *m, FILE *out,
    char *err, size_t errlen)
{
	const char *params[3];
	struct timespec t0;
	char sum[65], msg[1024];
	PGresult *r = NULL;
	size_t len = 0;
	char *text;
	int rc = -1;

	text = slurp(dir, m->name, &len, err, errlen);
	if (text == NULL)
		return -1;
	sha256_hex(text, len, sum);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (exec_ok(c, "BEGIN", msg, sizeof(msg)) != 0)
		goto fail;
	if (exec_ok(c, text, msg, sizeof(msg)) != 0)
		goto fail;
	params[0] = m->version;
	params[1] = m->name;
	params[2] = sum;
	r = PQexecParams(c, "INSERT INTO public.schema_migrations "
	    "(version, name, checksum) VALUES ($1, $2, $3)", 3, NULL, params,
	    NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
		goto fail;
	}
	if (exec_ok(c, "COMMIT", msg, sizeof(msg)) != 0)
		goto fail;
	fprintf(out, "applied %s (%lld ms)\n", m->name, ms_since(&t0));
	rc = 0;
	goto out;
fail:
	chomp(msg);
	snprintf(err, errlen, "%s: %s", m->name, msg);
	PQclear(PQexec(c, "ROLLBACK"));
out:
	PQclear(r);
	free(text);
	return rc;
}

int
migrate_run(PGconn *c, const char *dir, int status_only, FILE *out, char *err,
    size_t errlen)
{
	struct mfile *files = NULL;
	const char *params[1];
	char sum[65], msg[1024];
	PGresult *r = NULL;
	size_t n = 0, i, applied = 0, len;
	char *text;
	int rc = -1, locked = 0;

	if (mfiles_list(dir, &files, &n, err, errlen) != 0)
		return -1;
	if (n == 0) {
		snprintf(err, errlen, "no migrations (NNN_name.sql) in %s", dir);
		goto out;
	}
	/* One migrator at a time, across every machine that shares the
	 * database; the others wait here, then find nothing left to do. */
	if (exec_ok(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", msg,
	    sizeof(msg)) != 0)
		goto dberr;
	locked = 1;
	if (exec_ok(c, "SET client_min_messages = warning;"
	    "CREATE TABLE IF NOT EXISTS public.schema_migrations ("
	    " version text PRIMARY KEY,"
	    " name text NOT NULL,"
	    " checksum text NOT NULL,"
	    " applied_at timestamptz NOT NULL DEFAULT now())", msg,
	    sizeof(msg)) != 0)
		goto dberr;
	for (i = 0; i < n; i++) {
		params[0] = files[i].version;
		PQclear(r);
		r = PQexecParams(c, "SELECT checksum, applied_at::text "
		    "FROM public.schema_migrations WHERE version = $1", 1, NULL,
		    params, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
			goto dberr;
		}
		if (PQntuples(r) == 1) {
			applied++;
			text = slurp(dir, files[i].name, &len, err, errlen);
			if (text == NULL)
				goto out;
			sha256_hex(text, len, sum);
			free(text);
			if (strcmp(sum, PQgetvalue(r, 0, 0)) != 0)
				fprintf(out, "warning: %s changed after it was applied; "
				    "write a new migration instead\n", files[i].name);
			if (status_only)
				fprintf(out, "applied  %s  %s\n", files[i].name,
				    PQgetvalue(r, 0, 1));
			continue;
		}
		if (status_only) {
			fprintf(out, "pending  %s\n", files[i].name);
			continue;
		}
		if (apply_one(c, dir, &files[i], out, err, errlen) != 0)
			goto out;
	}
	if (!status_only)
		fprintf(out, "%zu migrations, %zu newly applied\n", n, n - applied);
	rc = 0;
	goto out;
dberr:
	chomp(msg);
	snprintf(err, errlen, "%s", msg);
out:
	PQclear(r);
	if (locked)
		PQclear(PQexec(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
	mfiles_free(files, n);
	return rc;
}
