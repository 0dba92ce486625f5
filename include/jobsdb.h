/* jobsdb.h - image jobs in Postgres, as the request's user (jobs_db.c). */
#ifndef IG_JOBSDB_H
#define IG_JOBSDB_H

#include <signal.h>

#include <libpq-fe.h>

#include "arena.h"
#include "err.h"
#include "jobreq.h"

/* The result of creating a job. */
struct job_created {
	char id[37];
	char status[16];
	int replayed;			/* an idempotent replay of an earlier job */
	/* The caller's rate limit after this request: "REMAINING;RESET"
	 * (whole creations left, seconds until the bucket is full); "" when
	 * rate limits are off. */
	char rate[48];
	/* IG_EBUDGET, IG_ERATE_LIMITED: the refusing limit as JSON (arena),
	 * {"scope","period","limitUsd","spentUsd","reservedUsd",…} or
	 * {"retryAfter","limit","remaining","reset"}; else NULL. */
	const char *refusal;
};

/* How a new job is to run: what jobs_create() and jobs_retry() decide
 * (configuration and price), written with it. */
struct job_plan {
	const char *provider, *model;
	double estimated_cost;		/* USD */
	long max_attempts;
};

/*
 * Inserts the job as the request's user (inside db_begin_user()): checks
 * the project is the caller's, the branch in it (jr->branch_id NULL: the
 * project's main branch; none is IG_EVALIDATION naming branchId, unless
 * jr's idempotency key has a job of this request to replay) and the
 * capsule visible,
 * then inserts with the idempotency key, taking a token from the caller's
 * rate limit and reserving the estimate in every budget that applies
 * (sql/011_budgets.sql; a replay takes and reserves nothing). IG_OK
 * (created or replayed), IG_EFORBIDDEN (ownership, with *msg),
 * IG_EIDEM_REUSED (same key, other request), IG_EBUDGET or
 * IG_ERATE_LIMITED (with *msg and out->refusal; nothing created),
 * IG_EUNAVAILABLE/IG_EINTERNAL.
 */
enum ig_err jobsdb_create(PGconn *c, struct arena *a, const char *user_id,
    const struct job_request *jr, const struct job_plan *run,
    struct job_created *out, const char **msg);
/*
 * Only the replay of jr: the caller's earlier job of jr's idempotency key
 * into *out (out->replayed set), nothing created. IG_OK, IG_ENOTFOUND
 * when there is none (or jr has no key), IG_EIDEM_REUSED with *msg when
 * the key's job is of another request, IG_EUNAVAILABLE/IG_EINTERNAL.
 */
enum ig_err jobsdb_replay(PGconn *c, const struct job_request *jr,
    struct job_created *out, const char **msg);
/* The job's JSON text (arena), read as the user of claims in one round
 * trip (no transaction of the caller's), or NULL with *e (IG_ENOTFOUND). */
const char *jobsdb_get_json(PGconn *c, struct arena *a, const char *claims,
    const char *id, enum ig_err *e);
/* {"projects":[{"id","name","createdAt","branches":[{"id","name","isMain"}]}]}
 * (arena): the caller's projects, newest first (at most 200), each with
 * its branches, main first then by name (at most 100), read as the user
 * of claims in one round trip. NULL with *e on failure. */
const char *jobsdb_projects_json(PGconn *c, struct arena *a,
    const char *claims, enum ig_err *e);
/* {"jobId","events":[{"id","event","fromStatus","toStatus","detail",
 * "createdAt"}]} (arena): the caller's job id's events, oldest first (at
 * most 1000), read as the user of claims in one round trip. NULL with *e
 * (IG_ENOTFOUND when the job is not the caller's). */
const char *jobsdb_events_json(PGconn *c, struct arena *a, const char *claims,
    const char *id, enum ig_err *e);
/* The caller's job's webhook deliveries as JSON ({"jobId", "webhook",
 * "deliveries": [...]}) in the arena; NULL with IG_ENOTFOUND (not the
 * caller's job) or the database's failure in *e. */
const char *jobsdb_webhooks_json(PGconn *c, struct arena *a, const char *claims,
    const char *id, enum ig_err *e);
/* In the caller's transaction: queues job id's last event again, unless
 * the job has a pending delivery already (*queued = 0: that one is
 * returned, nothing added); the delivery's id (arena), or NULL with
 * IG_ENOTFOUND (not the caller's job, no webhook or no event yet) or the
 * failure in *e. */
const char *jobsdb_redeliver(PGconn *c, struct arena *a, const char *id,
    int *queued, enum ig_err *e);
/* In the caller's transaction: the caller's stored signing secret
 * (sealed, or legacy plain text: include/whsecret.h), the row made from
 * fresh (sealed) when there is none; fresh NULL only reads. *owner gets
 * the caller's user id as the database writes it (what the secret is
 * sealed to). The stored value (arena; the caller wipes it), or NULL:
 * none yet (*e IG_OK) or the failure in *e (*owner NULL). */
const char *jobsdb_webhook_secret(PGconn *c, struct arena *a,
    const char *fresh, const char **owner, enum ig_err *e);
/* In the caller's transaction: fresh (sealed) becomes the caller's secret,
 * the one it replaces kept for 24 h (it must be sealed already). IG_OK or
 * the failure (logged). */
enum ig_err jobsdb_webhook_secret_rotate(PGconn *c, const char *fresh);
/* In the caller's transaction: the caller's legacy plain value plain
 * replaced by sealed. IG_OK or the failure (logged). */
enum ig_err jobsdb_webhook_secret_reseal(PGconn *c, const char *plain,
    const char *sealed);
/* The caller's rate limit as it stands, without taking from it
 * (image_job_rate_peek(): "REMAINING;RESET") into out (n bytes); empty
 * when rate limits are off. IG_OK, or the failure (logged). */
enum ig_err jobsdb_rate_peek(PGconn *c, const char *claims, char *out,
    size_t n);
/* As jobsdb_get_json(), and the job's status into status (when not NULL). */
const char *jobsdb_get_job(PGconn *c, struct arena *a, const char *claims,
    const char *id, char status[16], enum ig_err *e);
/*
 * A request's wait for a job's end (Prefer: wait): LISTEN image_job_done
 * (sql/012) on c, outside any transaction, dropping notifications read
 * before. IG_OK, or IG_EUNAVAILABLE/IG_EINTERNAL (logged).
 */
enum ig_err jobsdb_listen_done(PGconn *c);
/*
 * Sleeps until image_job_done names job id, the monotonic clock reaches
 * deadline_ms (clock_mono_ms()), *stop is set (stop_fd, a self-pipe,
 * wakes it; -1 and NULL: none), or peer_fd (the web server's connection,
 * its request read to the end; -1: none) has input or hangs up; SIGTERM,
 * SIGQUIT and SIGINT are unblocked while it sleeps. 1 when the job ended,
 * 0 when the time ran out or a stop came, 2 when the peer went away (the
 * client gave up: no one reads an answer), -1 when the wait failed (the
 * connection broke: db_check()ed; or ppoll() failed).
 */
int jobsdb_wait_done(PGconn *c, const char *id, long long deadline_ms,
    int stop_fd, volatile sig_atomic_t *stop, int peer_fd);
/* UNLISTEN image_job_done and drop what arrived; when the connection is
 * broken or UNLISTEN fails, drops the connection instead (db_drop), so
 * none stays listening. Can't fail; c may be NULL. */
void jobsdb_unlisten_done(PGconn *c);
/*
 * One page of the caller's jobs, newest first: {"jobs":[…],"nextCursor":…}
 * (arena). project_id and status may be NULL; cursor is NULL or a value
 * from an earlier page. NULL with *e (IG_EVALIDATION for a bad cursor).
 */
const char *jobsdb_list(PGconn *c, struct arena *a, const char *project_id,
    const char *status, long limit, const char *cursor, enum ig_err *e,
    const char **msg);
/* Cancels: queued → canceled at once; running → cancel_requested. The
 * job's JSON afterwards, or NULL with *e (IG_ENOTFOUND; IG_EVALIDATION
 * with *msg when it already ended). */
const char *jobsdb_cancel(PGconn *c, struct arena *a, const char *id,
    enum ig_err *e, const char **msg);
/*
 * Locks the caller's job id (FOR UPDATE, until the transaction ends) for a
 * retry, and tells its resolution, to price the retry at, and whether it
 * has a webhook (the retry copies it). IG_OK with *width, *height and
 * *webhook, IG_ENOTFOUND, IG_EVALIDATION with *msg (arena) when it is
 * neither failed nor canceled, or IG_EUNAVAILABLE/IG_EINTERNAL.
 */
enum ig_err jobsdb_retry_lock(PGconn *c, struct arena *a, const char *id,
    int *width, int *height, int *webhook, const char **msg);
/*
 * The job id, locked by jobsdb_retry_lock(), again as a new job of
 * user_id's (retry_of = id) to run as run says, with a token and a
 * reservation as jobsdb_create() takes. IG_OK with *out, IG_EFORBIDDEN
 * with *msg when its project, branch or capsule is no longer the
 * caller's, IG_EBUDGET/IG_ERATE_LIMITED as jobsdb_create()'s, or
 * IG_EUNAVAILABLE/IG_EINTERNAL.
 */
enum ig_err jobsdb_retry(PGconn *c, struct arena *a, const char *user_id,
    const char *id, const struct job_plan *run, struct job_created *out,
    const char **msg);

/*
 * Every query a request runs on rows that already exist, for tests: each
 * carries its own owner predicates, each between JOBSDB_OWNER_BEGIN and
 * JOBSDB_OWNER_END (SQL comments), so that a test can remove one at a time
 * and see row-level security still refuse another user's rows, and
 * disable RLS and see the predicates still refuse them. nparams: $1..$n.
 * Ends with a NULL name. (jobsdb_create's INSERT … VALUES reads no row:
 * its wall is the ownership check before it, "create_owned".)
 */
struct jobsdb_query {
	const char *name;
	const char *sql;
	int nparams;
};
extern const struct jobsdb_query jobsdb_queries[];
#define JOBSDB_OWNER_BEGIN "/*owner*/"
#define JOBSDB_OWNER_END "/*end owner*/"

#endif
