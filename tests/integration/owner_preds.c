/* owner_preds.c - every request query with each owner predicate removed in
 * turn, run as user A against user B's rows: row-level security must still
 * refuse them (test_roles.py runs it against a harness Postgres).
 *
 *   owner-preds --a UUID --b UUID --project UUID --branch UUID
 *               --capsule UUID --job UUID --idem KEY
 *
 * DATABASE_URL: the responders' login role. B owns the project, its branch,
 * a private capsule and a queued job in that project with idempotency key
 * KEY. Each query of jobsdb_queries (the SQL the responders run) is run,
 * for each of its owner predicates, with that predicate replaced by `true`:
 * as B it must find B's row (else the parameters prove nothing), as A it
 * must find nothing (change nothing: every write is rolled back anyway, and
 * RETURNING shows what it would have changed). One line per run; exit 0
 * when every run held, 1 when one did not, 2 on a usage or setup error.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "cfg.h"
#include "db.h"
#include "jobs.h"

struct ids {
	const char *a, *b, *project, *branch, *capsule, *job, *idem;
};

/* The parameters that point query name at B's rows, as the request of
 * user `as` would pass them; -1 for a query this program does not know (a
 * new one: teach it here). */
static int
params_for(const char *name, const struct ids *id, const char *as,
    const char **p)
{
	if (strcmp(name, "create_owned") == 0) {
		p[0] = id->project;
		p[1] = id->branch;
		p[2] = id->capsule;
	} else if (strcmp(name, "create_replay") == 0) {
		p[0] = id->idem;
	} else if (strcmp(name, "list") == 0) {
		p[0] = id->project;	/* project, status, cursor (2), limit */
		p[1] = NULL;
		p[2] = NULL;
		p[3] = NULL;
		p[4] = "10";
	} else if (strcmp(name, "retry_insert") == 0) {
		p[0] = id->job;
		p[1] = as;	/* the new row's user_id: the caller's */
		p[2] = "0.01";
		p[3] = "3";
		p[4] = "local";
		p[5] = "local-test";
	} else if (strcmp(name, "projects") == 0 ||
	    strcmp(name, "create_main") == 0) {
		p[0] = id->project;	/* the handler passes NULL: all of them */
	} else if (strcmp(name, "get") == 0 || strcmp(name, "events") == 0 ||
	    strcmp(name, "webhooks") == 0 ||
	    strcmp(name, "cancel") == 0 ||
	    strcmp(name, "cancel_after") == 0 || strcmp(name, "retry_lock") == 0) {
		p[0] = id->job;
	} else {
		return -1;
	}
	return 0;
}

/* The start of the k-th (0-based) owner predicate of sql, or NULL. */
static const char *
nth_pred(const char *sql, int k)
{
	const char *s = strstr(sql, JOBSDB_OWNER_BEGIN);

	while (s != NULL && k-- > 0)
		s = strstr(s + 1, JOBSDB_OWNER_BEGIN);
	return s;
}

/* sql with its k-th owner predicate (markers and all) replaced by `true`;
 * caller frees. NULL when it has no k-th or the marker is unclosed. */
static char *
strip_pred(const char *sql, int k)
{
	const char *b = nth_pred(sql, k), *e;
	char *out;
	size_t head;

	if (b == NULL)
		return NULL;
	e = strstr(b, JOBSDB_OWNER_END);
	if (e == NULL)
		return NULL;
	e += strlen(JOBSDB_OWNER_END);
	head = (size_t)(b - sql);
	out = malloc(strlen(sql) + 8);
	if (out == NULL)
		return NULL;
	memcpy(out, sql, head);
	strcpy(out + head, "true");
	strcat(out, e);
	return out;
}

static char *
claims_of(const char *sub)
{
	char *c = malloc(160);

	if (c != NULL)
		snprintf(c, 160, "{\"sub\":\"%s\",\"role\":\"authenticated\","
		    "\"aud\":\"authenticated\"}", sub);
	return c;
}

/* Rows of sql as the user of claims, in a transaction rolled back after:
 * how many rows it gave; for create_owned (one row of booleans), how many
 * of its columns are true. -1 (printed) when it failed. */
static int
run_as(PGconn *conn, const char *claims, const char *name, const char *sql,
    int n, const char *const *p)
{
	PGresult *r;
	int rows = -1, i;

	if (db_begin_user(conn, claims) != IG_OK) {
		fprintf(stderr, "%s: cannot begin as the user\n", name);
		return -1;
	}
	r = PQexecParams(conn, sql, n, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		printf("FAIL %s: the query failed: %s   sql: %s\n", name,
		    PQresultErrorMessage(r), sql);
	} else if (strcmp(name, "create_owned") == 0) {
		rows = 0;
		for (i = 0; i < PQnfields(r) && PQntuples(r) == 1; i++)
			if (strcmp(PQgetvalue(r, 0, i), "t") == 0)
				rows++;
	} else {
		rows = PQntuples(r);
	}
	PQclear(r);
	db_rollback(conn);
	return rows;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "a", required_argument, NULL, 'a' },
		{ "b", required_argument, NULL, 'b' },
		{ "project", required_argument, NULL, 'p' },
		{ "branch", required_argument, NULL, 'r' },
		{ "capsule", required_argument, NULL, 'c' },
		{ "job", required_argument, NULL, 'j' },
		{ "idem", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 }
	};
	const struct jobsdb_query *q;
	struct ids id = { 0 };
	struct cfg c = { 0 };
	const char *pa[8], *pb[8];
	PGconn *conn = NULL;
	char err[512], *ca = NULL, *cb = NULL, *sql;
	int ch, k, as_a, as_b, full, rc = 2, failed = 0, runs = 0;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'a': id.a = optarg; break;
		case 'b': id.b = optarg; break;
		case 'p': id.project = optarg; break;
		case 'r': id.branch = optarg; break;
		case 'c': id.capsule = optarg; break;
		case 'j': id.job = optarg; break;
		case 'i': id.idem = optarg; break;
		default: goto out;
		}
	}
	if (id.a == NULL || id.b == NULL || id.project == NULL ||
	    id.branch == NULL || id.capsule == NULL || id.job == NULL ||
	    id.idem == NULL) {
		fprintf(stderr, "usage: owner-preds --a UUID --b UUID --project UUID"
		    " --branch UUID --capsule UUID --job UUID --idem KEY\n");
		goto out;
	}
	if (cfg_load(&c, NULL, CFG_NEED_DB, err, sizeof(err)) != 0) {
		fprintf(stderr, "owner-preds: %s\n", err);
		goto out;
	}
	conn = db_connect(&c, "owner-preds", err, sizeof(err));
	ca = claims_of(id.a);
	cb = claims_of(id.b);
	if (conn == NULL || ca == NULL || cb == NULL) {
		fprintf(stderr, "owner-preds: cannot connect: %s\n", err);
		goto out;
	}
	for (q = jobsdb_queries; q->name != NULL; q++) {
		if (params_for(q->name, &id, id.a, pa) != 0 ||
		    params_for(q->name, &id, id.b, pb) != 0 || q->nparams > 8) {
			printf("FAIL %s: no parameters known for it (teach owner_preds.c)\n",
			    q->name);
			failed++;
			continue;
		}
		full = strcmp(q->name, "create_owned") == 0 ? 3 : 1;
		if (nth_pred(q->sql, 0) == NULL) {
			printf("FAIL %s: carries no owner predicate\n", q->name);
			failed++;
		}
		as_a = run_as(conn, ca, q->name, q->sql, q->nparams, pa);
		if (as_a != 0) {
			printf("FAIL %s: as A, with every predicate, it finds %d\n",
			    q->name, as_a);
			failed++;
		}
		for (k = 0; nth_pred(q->sql, k) != NULL; k++) {
			sql = strip_pred(q->sql, k);
			if (sql == NULL) {
				printf("FAIL %s: owner predicate %d has no end marker\n",
				    q->name, k + 1);
				failed++;
				break;
			}
			runs++;
			as_b = run_as(conn, cb, q->name, sql, q->nparams, pb);
			as_a = run_as(conn, ca, q->name, sql, q->nparams, pa);
			if (as_b < full) {
				printf("FAIL %s without owner predicate %d: as B (the owner)"
				    " it finds %d, not %d: the control proves nothing\n",
				    q->name, k + 1, as_b, full);
				failed++;
			} else if (as_a != 0) {
				printf("FAIL %s without owner predicate %d: as A it finds %d"
				    " of B's (RLS let it by)   sql: %s\n", q->name, k + 1,
				    as_a, sql);
				failed++;
			} else {
				printf("ok %s without owner predicate %d: B finds %d, A none\n",
				    q->name, k + 1, as_b);
			}
			free(sql);
		}
	}
	printf("%d runs, %d failed\n", runs, failed);
	rc = failed == 0 && runs > 0 ? 0 : 1;
out:
	free(ca);
	free(cb);
	PQfinish(conn);
	cfg_free(&c);
	return rc;
}
