/* db.h - the per-process PostgreSQL connection. */
#ifndef IG_DB_H
#define IG_DB_H

#include <libpq-fe.h>

#include "cfg.h"
#include "err.h"

/*
 * Opens a connection with the configured connect_timeout, keepalives and
 * statement_timeout. NULL on failure with a one-line reason in err (no
 * password in it). Caller frees with PQfinish().
 */
PGconn *db_connect(const struct cfg *c, const char *appname, char *err,
    size_t errlen);
/*
 * As db_connect, but as the worker role: IMAGEGEN_WORKER_DATABASE_URL (else
 * DATABASE_URL, for single-role setups), then SET ROLE service_role for the
 * session. For executors, the sweeper and the CLI tools, which work for no
 * user; never for a request. NULL with the reason in err when it cannot
 * connect or the role may not become service_role. Caller PQfinish()es.
 */
PGconn *db_connect_worker(const struct cfg *c, const char *appname, char *err,
    size_t errlen);

/* Made after fork: remembers the configuration; connects lazily. */
void db_init_child(const struct cfg *c, const char *appname);
/*
 * The process's live connection, reconnecting when it broke. NULL with
 * IG_EUNAVAILABLE in *e when the database can't be reached; reconnects are
 * tried at most every 500 ms so a dead database answers at once.
 */
PGconn *db_get(enum ig_err *e);
/*
 * The responder's own worker-role connection (db_connect_worker's), for
 * /metrics: opened on first use, kept, reopened when it broke (at most
 * every 500 ms). NULL with IG_EUNAVAILABLE in *e when it can't be had.
 * Nothing is prepared on it: use PQexec/PQexecParams, not db_exec.
 */
PGconn *db_worker_get(enum ig_err *e);
/* Call after a failed query: notes (and logs once) that the connection
 * (db_get's or db_worker_get's) is broken. It stays valid for the caller;
 * the next db_get() / db_worker_get() drops it and connects anew. */
void db_check(PGconn *conn);
/* One attempt of some work on a connection: IG_OK or why it failed. */
typedef enum ig_err (*db_work_fn)(PGconn *conn, void *arg);
/*
 * Runs fn(conn, arg) on the process's request connection (db_get), and
 * once more on a new connection when it failed because the connection
 * was lost (a server restart breaks an idle connection, whose first
 * statement then fails before anything ran): one reconnect, never more.
 * Returns fn's result of the last attempt, or db_get's IG_EUNAVAILABLE.
 * fn must not have committed anything when it fails. *connp (when not
 * NULL) is the connection fn last ran on and is still open, else NULL:
 * it stays the process's (db_get's), never the caller's to close.
 */
enum ig_err db_run_retry(db_work_fn fn, void *arg, PGconn **connp);
/* Round trip (SELECT 1, reconnecting once); IG_OK or IG_EUNAVAILABLE. */
enum ig_err db_ping(void);
/*
 * BEGIN a transaction that runs as the request's user: SET LOCAL ROLE
 * authenticated and request.jwt.claims = claims, so row-level security
 * holds even if a query forgets its owner check. IG_OK, or
 * IG_EUNAVAILABLE/IG_EINTERNAL (logged) with the transaction rolled back.
 */
enum ig_err db_begin_user(PGconn *conn, const char *claims);
/* db_begin_user() again with the claims of the last one (a request's
 * second transaction, after db_exec_commit() ended its first). */
enum ig_err db_begin_again(PGconn *conn);
/* BEGIN and SET LOCAL ROLE service_role, on a worker-role connection
 * (db_worker_get, db_connect_worker): work for no user. */
enum ig_err db_begin_service(PGconn *conn);
/* COMMIT; IG_OK or the mapped failure. */
enum ig_err db_commit(PGconn *conn);
/* ROLLBACK, ignoring errors. */
void db_rollback(PGconn *conn);
/* Maps a failed result to IG_EUNAVAILABLE (connection, timeout, shutdown)
 * or IG_EINTERNAL, logging it. */
enum ig_err db_error(PGconn *conn, PGresult *res, const char *what);

/*
 * Runs a parameterised statement, prepared once per connection: sql must
 * be a string constant (its address names the statement), the result as
 * PQexecParams would give it. Planning a statement under row-level
 * security costs more than running it; prepared, it is planned once.
 * Caller PQclear()s.
 */
PGresult *db_exec(PGconn *conn, const char *sql, int n,
    const char *const *params);

/*
 * db_exec() and COMMIT pipelined (one round trip): the transaction ends
 * right after sql, so the rows it locked (budget and rate-limit rows that
 * every POST of a user updates) are not held across a round trip to the
 * client. then, when not NULL, is a statement without parameters sent
 * between the two (in the same round trip); its result, when everything
 * succeeded, goes to *then_res (caller PQclear()s; NULL otherwise). On
 * success (TUPLES_OK/COMMAND_OK) it is committed, and the caller's
 * db_commit()/db_rollback() on conn do nothing; on failure the
 * transaction is still open and failed (the caller rolls it back), and
 * the result is the first failure: sql's, then's or the commit's. NULL
 * when the connection broke. Caller PQclear()s.
 */
PGresult *db_exec_commit(PGconn *conn, const char *sql, int n,
    const char *const *params, const char *then, PGresult **then_res);

/* 1 when the settings give a rate limit (imagegen.rate_limit not empty). */
int db_rate_limit_on(void);

/*
 * Runs one read-only statement as the request's user in a single round
 * trip: set_config(role authenticated, request.jwt.claims) and sql are
 * pipelined into one implicit transaction (the settings end with it); the
 * first time, sql is prepared in a transaction of the user's instead (a
 * few round trips: the login role may not even parse it). The
 * statement's result (PGRES_TUPLES_OK), or its first failure, or NULL when
 * the connection could not even send; caller PQclear()s and, on failure,
 * db_error()s.
 */
PGresult *db_read_as_user(PGconn *conn, const char *claims, const char *sql,
    int n, const char *const *params);

/* In a forked child: forgets the parent's connections without touching
 * their sockets (PQfinish would say goodbye on the parent's behalf). */
void db_forget(void);
/* Closes the process's connections (safe when none). */
void db_close(void);
/* Closes conn if it is one of the process's connections (the next
 * db_get() or db_worker_get() makes a new one); nothing otherwise. */
void db_drop(PGconn *conn);

#endif
