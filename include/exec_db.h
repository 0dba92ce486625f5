/* exec_db.h - the executor's and the sweeper's SQL: the claim, the job's
 * lock, its fenced writes, the sweep's scans. The logic stays in src/jobs/. */
#ifndef IG_EXEC_DB_H
#define IG_EXEC_DB_H

#include <libpq-fe.h>

#include "cfg.h"

/* A claimed job: its row as the claim returned it. */
struct exec_job {
	char id[37], project_id[37], branch_id[37], job_type[16];
	char request_id[65];		/* the creating request's, "" unknown */
	char asset_id[37], scene_id[37], shot_id[37];
	char *prompt, *style;
	int width, height, attempts, max_attempts;
	/* The capsule applied (caller's or shared), when style is set. */
	char capsule_id[37];
	char *capsule_name;
	int capsule_shared;
	/* inpaint: public URLs of our own bucket */
	char *source_url, *mask_url;
	/* Where an earlier attempt meant to store the image ("" when none),
	 * and the cost it recorded for it (< 0 when none). */
	char *storage_path;
	double recorded_cost;
	/* This claim's fencing token: every write of ours names it. */
	char attempt[16];
	/* A job resumed after its remote model ended (sql/015): the
	 * provider's outcome (JSON text); NULL for a queued job's claim. */
	char *outcome;
};

/* Frees what j holds and zeroes it; accepts a zeroed job. */
void execdb_job_free(struct exec_job *j);

/* Runs sql (n params) on c and keeps the result when it is one; NULL when
 * the query failed (logged). Caller PQclear()s. */
PGresult *execdb_q(PGconn *c, const char *sql, int n, const char *const *p);

enum execdb_claim {
	EXECDB_CLAIM_ERROR = -1,
	EXECDB_CLAIM_NONE = 0,		/* nothing claimable */
	EXECDB_CLAIM_GOT = 1,		/* *j filled; its lock is ours */
	EXECDB_CLAIM_CAP_FULL = 2	/* the running-jobs cap is reached */
};
/*
 * Claims job_id (or the oldest queued job) under the deployment-wide cap,
 * inside the global claim lock: queued → processing with the job's
 * session advisory lock taken before the claim commits, so the sweeper
 * never sees it running without its lock. A queued job whose lock is held
 * (its old executor still lives) is skipped with a try-lock, never waited
 * for. On EXECDB_CLAIM_GOT the caller frees *j with execdb_job_free() and
 * gives the lock back with execdb_unlock().
 */
enum execdb_claim execdb_claim(PGconn *c, const struct cfg *cf,
    const char *job_id, struct exec_job *j);
/* Gives back the session lock of job id; errors ignored. */
void execdb_unlock(PGconn *c, const char *id);
/* SET ROLE service_role on a new session. 0, or -1 (logged). */
int execdb_set_role(PGconn *c);
/* Tries the job's lock again after a reconnect: 0 with *locked (we hold
 * it now) and *ours (the job is still at our attempt and running), or -1
 * (logged). */
int execdb_relock(PGconn *c, const char *id, const char *attempt, int *locked,
    int *ours);

/*
 * The executor's writes go through its fenced-write function (it
 * reconnects and runs a write again when the connection is lost): the
 * rows changed, or -1. Every one below returns what write returned.
 */
typedef int (*execdb_write_fn)(void *ctx, const char *sql, int n,
    const char *const *p);
struct execdb_writer {
	execdb_write_fn write;
	void *ctx;
};

/* from → queued unless cancel is asked, with a 'requeued' event saying
 * why (code, why). */
int execdb_requeue(const struct execdb_writer *w, const char *id, const char *from,
    const char *attempt, const char *code, const char *why);
/* from → canceled when cancel is asked; cost (NULL: none) is what the
 * provider billed for the attempt, kept as the actual cost unless one is
 * recorded already. */
int execdb_cancel_asked(const struct execdb_writer *w, const char *id,
    const char *from, const char *attempt, const char *cost);
/* from (or already to) → to unless cancel is asked; final_prompt is
 * recorded when not NULL. */
int execdb_advance(const struct execdb_writer *w, const char *id, const char *from,
    const char *to, const char *final_prompt, const char *attempt);
/* from → failed at stage with code and message (cut to 1000 chars); cost
 * as for execdb_cancel_asked(). */
int execdb_fail(const struct execdb_writer *w, const char *id, const char *from,
    const char *stage, const char *code, const char *message,
    const char *attempt, const char *cost);
/* What execdb_is() asks of the job at our attempt. */
enum execdb_state {
	EXECDB_UPLOADING,		/* uploading */
	EXECDB_UPLOAD_CANCEL_ASKED,	/* uploading, and cancel is asked */
	EXECDB_STILL_GENERATING		/* generating, no cancel asked */
};
/* 1 when the job is in state q at our attempt, 0 when not, as the writer
 * answers otherwise. */
int execdb_is(const struct execdb_writer *w, const char *id,
    const char *attempt, enum execdb_state q);
/* uploading → failed at stage with code and message, or canceled when
 * code is NULL; the path and URL are forgotten when forget is set. */
int execdb_end_uploading(const struct execdb_writer *w, const char *id,
    const char *attempt, int forget, const char *stage, const char *code,
    const char *message);
/* generating → uploading with the object's path, URL, cost (NULL when
 * unknown), mime type and size recorded. */
int execdb_set_uploading(const struct execdb_writer *w, const char *id,
    const char *path, const char *url, const char *cost, const char *mime,
    const char *width, const char *height, const char *attempt);
/* uploading → completed (or already completed) at path, type and size
 * recorded again. */
int execdb_complete(const struct execdb_writer *w, const char *id,
    const char *path, const char *attempt, const char *mime, const char *width,
    const char *height);

/* The job's status and storage path at our attempt: 1 with *status
 * (caller frees) and *path (NULL when none; caller frees), 0 when the job
 * is at another attempt, -1 (logged). */
int execdb_status_at(PGconn *c, const char *id, const char *attempt,
    char **status, char **path);
/* A failed or canceled job forgets path: the rows changed, or -1. */
int execdb_forget_object(PGconn *c, const char *id, const char *path);
/* The 'style_capsule_applied' event of j, when a capsule was applied.
 * 0, or -1 when the database failed. */
int execdb_record_capsule(PGconn *c, const struct exec_job *j);
/* One failed provider call counted under code (sql/009_job_totals.sql).
 * Best effort: c may be NULL, errors are only logged. */
void execdb_count_provider_error(PGconn *c, const char *code);
/* Jobs waiting now; -1 on error. */
int execdb_queued_count(PGconn *c);

/* A running job as the sweeper sees it. */
struct execdb_running {
	char id[37], status[16], attempts[16];
	int requeue_ok;		/* attempts left, or the store-only extra one */
	int dead;		/* past its deadline by more than the grace */
	int past;		/* past its deadline */
	int cancel;		/* its owner asked to cancel */
	int free_lock;		/* its lock was free: now ours, give it back */
	int stale;		/* not written to since the server (re)started */
};
/* Every running job, its lock tried (grace: seconds past the deadline an
 * executor is taken for dead). The count with *rows (caller frees), or
 * -1 (logged). */
int execdb_sweep_running(PGconn *c, int grace, struct execdb_running **rows);
/* The sweeper's end of a running job, fenced by its attempt (status and
 * attempts as the scan found them): canceled; requeued with code and
 * message in a 'requeued' event; failed at stage. The rows changed, or
 * -1. */
int execdb_sweep_cancel(PGconn *c, const struct execdb_running *j);
int execdb_sweep_requeue(PGconn *c, const struct execdb_running *j,
    const char *code, const char *message);
int execdb_sweep_fail(PGconn *c, const struct execdb_running *j, const char *code,
    const char *message, const char *stage);
/* Up to limit jobs that ended failed or canceled with a path recorded:
 * columns id, storage_path; NULL (logged). Caller PQclear()s. */
PGresult *execdb_ended_with_objects(PGconn *c, int limit);
/* id::text and status of the jobs named in ids (a uuid[] literal);
 * NULL (logged). Caller PQclear()s. */
PGresult *execdb_statuses(PGconn *c, const char *ids);

/* ---- jobs waiting on a remote model (sql/015_provider_request.sql) ---- */

/* generating (at attempt, no cancel asked) → waiting on the provider's
 * request_id: recorded, the first poll grace_s from now, with the outcome
 * of a webhook that came first (execdb_webhook_keep). 1, 0 when the job
 * is no longer ours, as the writer answers otherwise. */
int execdb_set_waiting(const struct execdb_writer *w, const char *id,
    const char *attempt, const char *provider, const char *request_id,
    long grace_s);
/* The outcome of provider's request_id (JSON text) from a webhook or a
 * poll (from: "webhook", "poll"), when its job still waits for it. The
 * job's id into job_id (37 bytes) when one matched: 1; 0 none; -1. */
int execdb_set_outcome(PGconn *c, const char *provider, const char *request_id,
    const char *outcome, const char *from, char *job_id);
/* webhook_id received once: 1 the first time, 0 a replay, -1. */
int execdb_webhook_seen(PGconn *c, const char *webhook_id, const char *provider,
    const char *request_id);
/* Keeps an ended request's outcome with its webhook's receipt: no job
 * waited on it yet (execdb_set_waiting() takes it). 1, 0, -1. */
int execdb_webhook_keep(PGconn *c, const char *webhook_id, const char *outcome);
/* A job waiting without an outcome that the sweeper must look at (its
 * poll is due, it was asked to cancel, or its deadline passed). */
struct execdb_waiting {
	char id[37], request_id[128], attempts[16];
	int cancel, past, requeue_ok;
};
/* Up to limit of them into *rows (malloc'd, caller frees): how many, -1. */
int execdb_waiting_due(PGconn *c, int limit, struct execdb_waiting **rows);
/* The next poll of a waiting job: after grace_s doubled per poll so far,
 * at most 300 s. 1, 0, -1. */
int execdb_poll_later(PGconn *c, const char *id, long grace_s);
/* The job no longer waits (it was canceled, failed or requeued). */
int execdb_waiting_done(PGconn *c, const char *id);

#endif
