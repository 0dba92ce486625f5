/* db.c - one persistent PostgreSQL connection per process, made after fork. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "clock.h"
#include "log.h"

#define DB_RETRY_MS 500

#define DB_PREPARED_MAX 64

static const struct cfg *db_cfg;
/* Statements prepared on this process's current connection, by the
 * address of their SQL text; forgotten whenever a connection is made. */
static const char *db_prepared[DB_PREPARED_MAX];
static int db_nprepared;
static const char *db_appname = "imagegen";
static PGconn *db_conn;
static long long db_last_fail_ms = -1;
/* The worker-role connection of a responder (/metrics): a second session,
 * so nothing is prepared on it (the table above is db_conn's). */
static PGconn *db_worker_conn;
/* 1 once db_check() has logged the loss of db_conn / db_worker_conn. */
static int db_conn_lost, db_worker_conn_lost;
static long long db_worker_last_fail_ms = -1;
static int db_role_checked;
/* The connection whose transaction db_exec_commit() ended: the caller's
 * db_commit() or db_rollback() then has nothing left to end. */
static PGconn *db_tx_ended;
/* The claims of the last db_begin_user(), for db_begin_again(): the
 * request's, valid while it is handled. */
static const char *db_last_claims;
/* Who a request's statements run as, for the rest of its transaction. */
/* imagegen.request_id: the insert trigger keeps it on a new job's first
 * event, for the executor's log lines (sql/010_job_request_id.sql, now
 * sql/019's image_generation_jobs_admit); imagegen.budget_defaults and
 * imagegen.rate_limit: the budgets and the rate limit the settings give a
 * new job (sql/011_budgets.sql, taken by sql/019's trigger); the first
 * is always 'D|M|DD' (even without a configuration: "||"), which is also
 * what lets the request role insert a job at all (sql/017). */
static const char db_set_user[] = "SELECT set_config('role', $1, true), "
    "set_config('request.jwt.claims', $2, true), "
    "set_config('imagegen.request_id', $3, true), "
    "set_config('imagegen.budget_defaults', $4, true), "
    "set_config('imagegen.rate_limit', $5, true)";

/* The server's warnings and notices, in our log: a budget alert
 * (SQLSTATE 01IGA, sql/011_budgets.sql) is a warning of its own. */
static void
notice_log(void *arg, const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	(void)arg;
	if (msg == NULL)
		return;
	if (state != NULL && strcmp(state, "01IGA") == 0)
		log_warn("%.400s", msg);
	else if (sev != NULL && strcmp(sev, "WARNING") == 0)
		log_warn("database: %.400s", msg);
	else
		log_debug("database: %.400s", msg);
}

/* libpq's messages end in newlines and may span lines: keep the first. */
static void
first_line(char *dst, size_t n, const char *src)
{
	size_t i;

	snprintf(dst, n, "%s", src != NULL ? src : "unknown error");
	for (i = 0; dst[i] != '\0'; i++) {
		if (dst[i] == '\n') {
			dst[i] = '\0';
			break;
		}
	}
}

/* Connects to url (a libpq URI or conninfo) with our session settings;
 * leaves the prepared-statement table alone. */
static PGconn *
connect_url(const struct cfg *c, const char *url, const char *appname,
    char *err, size_t errlen)
{
	char timeout[16], stmt[128];
	const char *keys[] = { "dbname", "connect_timeout", "application_name",
		"keepalives", "keepalives_idle", "keepalives_interval",
		"keepalives_count", NULL };
	const char *vals[8];
	PGconn *conn = NULL;
	PGresult *res = NULL;

	snprintf(timeout, sizeof(timeout), "%d", c->db_connect_timeout);
	vals[0] = url;
	vals[1] = timeout;
	vals[2] = appname;
	vals[3] = "1";
	vals[4] = "10";
	vals[5] = "5";
	vals[6] = "3";
	vals[7] = NULL;
	conn = PQconnectdbParams(keys, vals, 1);
	if (conn == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		first_line(err, errlen, PQerrorMessage(conn));
		goto fail;
	}
	PQsetNoticeReceiver(conn, notice_log, NULL);
	/* Set after connecting rather than as startup options, so poolers
	 * that refuse startup options (PgBouncer) still get them. Timestamps
	 * are read as text in ISO form (job_json_row): say so, whatever the
	 * server's defaults. */
	snprintf(stmt, sizeof(stmt), "SET statement_timeout = %d;"
	    " SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'",
	    c->statement_timeout_ms);
	res = PQexec(conn, stmt);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		first_line(err, errlen, PQerrorMessage(conn));
		goto fail;
	}
	PQclear(res);
	return conn;
fail:
	PQclear(res);
	PQfinish(conn);
	return NULL;
}

PGconn *
db_connect(const struct cfg *c, const char *appname, char *err, size_t errlen)
{
	db_nprepared = 0;	/* a new session has no prepared statements */
	return connect_url(c, c->database_url, appname, err, errlen);
}

/* The worker role's URL: its own setting, else DATABASE_URL's role. */
static const char *
worker_url(const struct cfg *c)
{
	return c->worker_database_url != NULL ? c->worker_database_url :
	    c->database_url;
}

/* connect_url(worker_url) and SET ROLE service_role for the session. */
static PGconn *
connect_worker(const struct cfg *c, const char *appname, char *err,
    size_t errlen)
{
	PGconn *conn;
	PGresult *res;

	conn = connect_url(c, worker_url(c), appname, err, errlen);
	if (conn == NULL)
		return NULL;
	/* A plain SET, not SET LOCAL: the whole session works for no user,
	 * and service_role is what row-level security lets by. */
	res = PQexec(conn, "SET ROLE service_role");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		snprintf(err, errlen, "SET ROLE service_role: ");
		first_line(err + strlen(err), errlen - strlen(err),
		    PQerrorMessage(conn));
		PQclear(res);
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);
	return conn;
}

PGconn *
db_connect_worker(const struct cfg *c, const char *appname, char *err,
    size_t errlen)
{
	db_nprepared = 0;	/* a new session has no prepared statements */
	return connect_worker(c, appname, err, errlen);
}

/* Once per process, on its first request connection: warns when the
 * role can reach a role that bypasses row-level security (through any
 * chain of memberships, or itself), for then RLS is no second wall:
 * BYPASSRLS, a superuser, CREATEROLE (which can grant itself
 * service_role before PostgreSQL 16) or the owner of a table under RLS
 * (no FORCE ROW LEVEL SECURITY: RESET ROLE passes every policy). A
 * check that could not run is tried again on the next connection. */
static void
check_request_role(PGconn *conn)
{
	PGresult *res;

	if (db_role_checked)
		return;
	res = PQexec(conn, "WITH RECURSIVE m(id) AS ("
	    " SELECT oid FROM pg_catalog.pg_roles WHERE rolname = session_user"
	    " UNION SELECT a.roleid FROM pg_catalog.pg_auth_members a"
	    "  JOIN m ON a.member = m.id)"
	    " SELECT string_agg(r.rolname, ', ' ORDER BY r.rolname)"
	    " FROM m JOIN pg_catalog.pg_roles r ON r.oid = m.id"
	    " WHERE r.rolbypassrls OR r.rolsuper OR r.rolcreaterole"
	    "  OR EXISTS (SELECT 1 FROM pg_catalog.pg_class c"
	    "   WHERE c.relowner = r.oid AND c.relrowsecurity)");
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		db_role_checked = 1;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
	    !PQgetisnull(res, 0, 0))
		log_warn("DATABASE_URL's role %.64s can reach roles that bypass"
		    " row-level security (%.200s): requests then rest on the owner"
		    " checks of the queries alone. Give the responders a role"
		    " granted only authenticated, and the workers theirs in"
		    " IMAGEGEN_WORKER_DATABASE_URL (docs/RUNNING.md)",
		    PQuser(conn), PQgetvalue(res, 0, 0));
	PQclear(res);
}

/* Drops the request connection (safe when none). */
static void
close_request(void)
{
	if (db_conn != NULL) {
		PQfinish(db_conn);
		db_conn = NULL;
	}
	db_conn_lost = 0;
}

void
db_init_child(const struct cfg *c, const char *appname)
{
	db_cfg = c;
	db_appname = appname;
	db_conn = NULL;
	db_last_fail_ms = -1;
	db_worker_conn = NULL;
	db_worker_last_fail_ms = -1;
	db_conn_lost = db_worker_conn_lost = 0;
}

PGconn *
db_get(enum ig_err *e)
{
	char err[256];
	long long now;

	if (db_conn != NULL && PQstatus(db_conn) == CONNECTION_OK) {
		*e = IG_OK;
		return db_conn;
	}
	close_request();
	now = clock_mono_ms();
	if (db_last_fail_ms >= 0 && now - db_last_fail_ms < DB_RETRY_MS) {
		*e = IG_EUNAVAILABLE;
		return NULL;
	}
	db_conn = db_connect(db_cfg, db_appname, err, sizeof(err));
	if (db_conn == NULL) {
		db_last_fail_ms = clock_mono_ms();
		log_warn("database unavailable: %s", err);
		*e = IG_EUNAVAILABLE;
		return NULL;
	}
	if (db_last_fail_ms >= 0)
		log_info("database connection re-established");
	db_last_fail_ms = -1;
	check_request_role(db_conn);
	*e = IG_OK;
	return db_conn;
}

PGconn *
db_worker_get(enum ig_err *e)
{
	char err[256];
	long long now;

	if (db_worker_conn != NULL && PQstatus(db_worker_conn) == CONNECTION_OK) {
		*e = IG_OK;
		return db_worker_conn;
	}
	PQfinish(db_worker_conn);
	db_worker_conn = NULL;
	db_worker_conn_lost = 0;
	now = clock_mono_ms();
	if (db_worker_last_fail_ms >= 0 &&
	    now - db_worker_last_fail_ms < DB_RETRY_MS) {
		*e = IG_EUNAVAILABLE;
		return NULL;
	}
	db_worker_conn = connect_worker(db_cfg, "imagegen-fcgi-worker", err,
	    sizeof(err));
	if (db_worker_conn == NULL) {
		db_worker_last_fail_ms = clock_mono_ms();
		log_warn("worker-role database connection unavailable: %s", err);
		*e = IG_EUNAVAILABLE;
		return NULL;
	}
	db_worker_last_fail_ms = -1;
	*e = IG_OK;
	return db_worker_conn;
}

void
db_check(PGconn *conn)
{
	/* Only noted here: the caller still holds conn (and may roll back
	 * on it, which then fails harmlessly). db_get() and db_worker_get()
	 * drop a broken connection the next time one is asked for. */
	if (conn != NULL && conn == db_conn && !db_conn_lost &&
	    PQstatus(conn) != CONNECTION_OK) {
		log_warn("database connection lost");
		db_conn_lost = 1;
		db_last_fail_ms = -1;
	}
	if (conn != NULL && conn == db_worker_conn && !db_worker_conn_lost &&
	    PQstatus(conn) != CONNECTION_OK) {
		log_warn("worker-role database connection lost");
		db_worker_conn_lost = 1;
		db_worker_last_fail_ms = -1;
	}
}

enum ig_err
db_run_retry(db_work_fn fn, void *arg, PGconn **connp)
{
	PGconn *conn = NULL;
	enum ig_err e = IG_EUNAVAILABLE;
	int attempt;

	/* A connection broken by a server restart fails its first statement:
	 * nothing of the work has run yet, so reconnect once and go on. */
	for (attempt = 0; attempt < 2; attempt++) {
		conn = db_get(&e);
		if (conn == NULL)
			break;
		e = fn(conn, arg);
		/* A broken connection (db_error noted it) is replaced by
		 * the next db_get(). */
		if (e == IG_OK || PQstatus(conn) == CONNECTION_OK)
			break;
		db_check(conn);
		conn = NULL;
	}
	if (connp != NULL)
		*connp = conn;
	return e;
}

/* One health query: IG_OK, or IG_EUNAVAILABLE (logged). */
static enum ig_err
ping_once(PGconn *conn, void *arg)
{
	PGresult *res;
	enum ig_err e = IG_OK;

	(void)arg;
	res = PQexec(conn, "SELECT 1");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_warn("health query failed: %.200s", PQerrorMessage(conn));
		e = IG_EUNAVAILABLE;
	}
	PQclear(res);
	return e;
}

enum ig_err
db_ping(void)
{
	return db_run_retry(ping_once, NULL, NULL);
}

enum ig_err
db_error(PGconn *conn, PGresult *res, const char *what)
{
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	log_warn("%s failed: %.300s", what, PQerrorMessage(conn));
	db_check(conn);
	if (PQstatus(conn) != CONNECTION_OK || state == NULL)
		return IG_EUNAVAILABLE;
	/* 57014 statement timeout, 57P0x shutdown, 53xxx resources,
	 * 08xxx connection: the database can't answer now. */
	if (strcmp(state, "57014") == 0 || strncmp(state, "57P", 3) == 0 ||
	    strncmp(state, "53", 2) == 0 || strncmp(state, "08", 2) == 0)
		return IG_EUNAVAILABLE;
	return IG_EINTERNAL;
}

static enum ig_err
exec_simple(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	enum ig_err e = IG_OK;

	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK)
		e = db_error(conn, res, sql);
	PQclear(res);
	return e;
}

static enum ig_err
begin_as(PGconn *conn, const char *role, const char *claims)
{
	const char *params[5] = { role, claims != NULL ? claims : "",
	    log_request_id(), db_cfg != NULL ? db_cfg->budget_defaults : "||",
	    db_cfg != NULL ? db_cfg->rate_limit_conf : "" };
	PGresult *res;
	enum ig_err e;

	if (db_tx_ended == conn)
		db_tx_ended = NULL;
	e = exec_simple(conn, "BEGIN");
	if (e != IG_OK)
		return e;
	/* set_config(..., true) is SET LOCAL: gone at COMMIT or ROLLBACK,
	 * so nothing of one request's identity survives into the next. */
	res = db_exec(conn, db_set_user, 5, params);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		e = db_error(conn, res, "set role");
		PQclear(res);
		db_rollback(conn);
		return e;
	}
	PQclear(res);
	return IG_OK;
}

enum ig_err
db_begin_user(PGconn *conn, const char *claims)
{
	db_last_claims = claims;
	return begin_as(conn, "authenticated", claims);
}

enum ig_err
db_begin_again(PGconn *conn)
{
	return begin_as(conn, "authenticated", db_last_claims);
}

enum ig_err
db_begin_service(PGconn *conn)
{
	enum ig_err e;

	/* Simple queries, not db_exec(): this runs on the worker-role
	 * connection, where nothing is prepared. */
	e = exec_simple(conn, "BEGIN");
	if (e != IG_OK)
		return e;
	e = exec_simple(conn, "SET LOCAL ROLE service_role");
	if (e != IG_OK)
		db_rollback(conn);
	return e;
}

enum ig_err
db_commit(PGconn *conn)
{
	if (db_tx_ended == conn) {
		db_tx_ended = NULL;
		return IG_OK;
	}
	return exec_simple(conn, "COMMIT");
}

void
db_rollback(PGconn *conn)
{
	if (db_tx_ended == conn) {
		db_tx_ended = NULL;
		return;
	}
	PQclear(PQexec(conn, "ROLLBACK"));
}

void
db_forget(void)
{
	db_conn = NULL;
	db_worker_conn = NULL;
	db_conn_lost = db_worker_conn_lost = 0;
	db_nprepared = 0;
}

/* Prepares sql on this connection unless it already is; its name goes to
 * name (16 bytes). 0, -1 when the table is full (run it unprepared), or
 * -2 with the failed result in *err (caller PQclear()s). */
static int
prepare_once(PGconn *conn, const char *sql, int n, char *name, PGresult **err)
{
	PGresult *r;
	int i;

	if (conn == db_worker_conn)
		return -1;	/* the table is the request connection's */
	for (i = 0; i < db_nprepared; i++)
		if (db_prepared[i] == sql)
			break;
	if (i == DB_PREPARED_MAX)
		return -1;
	snprintf(name, 16, "ig%d", i);
	if (i == db_nprepared) {
		r = PQprepare(conn, name, sql, n, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			*err = r;
			return -2;
		}
		PQclear(r);
		db_prepared[db_nprepared++] = sql;
	}
	return 0;
}

PGresult *
db_exec(PGconn *conn, const char *sql, int n, const char *const *params)
{
	PGresult *err = NULL;
	char name[16];

	switch (prepare_once(conn, sql, n, name, &err)) {
	case -1:
		return PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
	case -2:
		return err;	/* the caller sees why, as from PQexecParams */
	default:
		return PQexecPrepared(conn, name, n, params, NULL, NULL, 0);
	}
}

/* Reads the answer to a pipeline of k statements (k <= 3) and its sync:
 * the first result of each into out[0..k-1] (NULL when none came: a dead
 * connection ends the reading), the rest cleared; leaves pipeline mode. */
static void
pipeline_read(PGconn *conn, PGresult **out, int k)
{
	PGresult *r;
	int stmt = 0, i;

	for (i = 0; i < k; i++)
		out[i] = NULL;
	for (;;) {
		r = PQgetResult(conn);
		if (r == NULL) {
			/* each statement's results end with a NULL */
			if (++stmt > k || PQstatus(conn) != CONNECTION_OK)
				break;
			continue;
		}
		if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			break;
		}
		if (stmt < k && out[stmt] == NULL)
			out[stmt] = r;
		else
			PQclear(r);
	}
	PQexitPipelineMode(conn);
}

static int
result_ok(const PGresult *r)
{
	return r != NULL && (PQresultStatus(r) == PGRES_TUPLES_OK ||
	    PQresultStatus(r) == PGRES_COMMAND_OK);
}

int
db_rate_limit_on(void)
{
	return db_cfg != NULL && db_cfg->rate_limit_conf[0] != '\0';
}

PGresult *
db_exec_commit(PGconn *conn, const char *sql, int n,
    const char *const *params, const char *then, PGresult **then_res)
{
	PGresult *out[3], *res = NULL, *mid = NULL, *commit, *err = NULL;
	char name[16];
	int k = then != NULL ? 3 : 2;

	if (then_res != NULL)
		*then_res = NULL;
	switch (prepare_once(conn, sql, n, name, &err)) {
	case -2:
		return err;
	case -1:
		/* not prepared here: a round trip each, as before */
		res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
		if (!result_ok(res))
			return res;
		if (then != NULL) {
			mid = PQexec(conn, then);
			if (!result_ok(mid)) {
				PQclear(res);
				return mid;
			}
		}
		if (exec_simple(conn, "COMMIT") != IG_OK) {
			PQclear(res);
			PQclear(mid);
			return NULL;
		}
		db_tx_ended = conn;
		if (then_res != NULL)
			*then_res = mid;
		else
			PQclear(mid);
		return res;
	default:
		break;
	}
	if (PQenterPipelineMode(conn) != 1)
		return NULL;
	if (PQsendQueryPrepared(conn, name, n, params, NULL, NULL, 0) != 1 ||
	    (then != NULL && PQsendQueryParams(conn, then, 0, NULL, NULL, NULL,
	    NULL, 0) != 1) ||
	    PQsendQueryParams(conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) != 1 ||
	    PQpipelineSync(conn) != 1) {
		PQexitPipelineMode(conn);
		return NULL;
	}
	/* after a failed statement, the rest are PGRES_PIPELINE_ABORTED */
	pipeline_read(conn, out, k);
	res = out[0];
	mid = then != NULL ? out[1] : NULL;
	commit = out[k - 1];
	if (result_ok(res) && then != NULL && !result_ok(mid)) {
		/* the statement ran, the one after it did not (a refusal
		 * fails sql itself; this is a lost connection or the like):
		 * its failure is the answer (nothing stands) */
		PQclear(res);
		PQclear(commit);
		return mid;
	}
	if (result_ok(res)) {
		if (commit == NULL || PQresultStatus(commit) != PGRES_COMMAND_OK) {
			/* the statements ran, their COMMIT did not: the commit's
			 * failure is the answer (nothing stands) */
			PQclear(res);
			PQclear(mid);
			return commit;
		}
		db_tx_ended = conn;
	}
	PQclear(commit);
	if (then_res != NULL && result_ok(res))
		*then_res = mid;
	else
		PQclear(mid);
	return res;
}

PGresult *
db_read_as_user(PGconn *conn, const char *claims, const char *sql, int n,
    const char *const *params)
{
	const char *who[5] = { "authenticated", claims, log_request_id(),
	    db_cfg != NULL ? db_cfg->budget_defaults : "||",
	    db_cfg != NULL ? db_cfg->rate_limit_conf : "" };
	PGresult *out[2], *res = NULL, *err = NULL;
	char n1[16], n2[16];
	int i;

	/* The first time, sql is prepared as the user, in a transaction: a
	 * Parse checks privileges as the role of the moment (schema auth for
	 * auth.uid(), say), and the login role itself holds none. */
	for (i = 0; i < db_nprepared && db_prepared[i] != sql; i++)
		;
	if (i == db_nprepared && db_nprepared < DB_PREPARED_MAX) {
		if (db_begin_user(conn, claims) != IG_OK)
			return NULL;
		res = db_exec(conn, sql, n, params);
		if (PQresultStatus(res) == PGRES_TUPLES_OK)
			(void)exec_simple(conn, "COMMIT");	/* read: the rows stand */
		else
			db_rollback(conn);
		return res;
	}
	if (prepare_once(conn, db_set_user, 5, n1, &err) == -2 ||
	    prepare_once(conn, sql, n, n2, &err) == -2)
		return err;
	if (db_nprepared == DB_PREPARED_MAX || PQenterPipelineMode(conn) != 1)
		return NULL;
	/* Between two Syncs the statements are one implicit transaction, so
	 * the SET LOCAL-like set_config holds for the query and ends with it. */
	if (PQsendQueryPrepared(conn, n1, 5, who, NULL, NULL, 0) != 1 ||
	    PQsendQueryPrepared(conn, n2, n, params, NULL, NULL, 0) != 1 ||
	    PQpipelineSync(conn) != 1) {
		PQexitPipelineMode(conn);
		return NULL;
	}
	pipeline_read(conn, out, 2);
	if (out[0] == NULL || PQresultStatus(out[0]) == PGRES_FATAL_ERROR) {
		PQclear(out[1]);	/* set_config failed: the query did not run */
		return out[0];
	}
	PQclear(out[0]);
	return out[1];	/* the query's: rows, its failure, or NULL */
}

void
db_drop(PGconn *conn)
{
	if (conn == NULL)
		return;
	if (conn == db_conn) {
		close_request();
	} else if (conn == db_worker_conn) {
		PQfinish(db_worker_conn);
		db_worker_conn = NULL;
		db_worker_conn_lost = 0;
	}
}

void
db_close(void)
{
	close_request();
	PQfinish(db_worker_conn);
	db_worker_conn = NULL;
}
