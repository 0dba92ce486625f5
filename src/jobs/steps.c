/* steps.c - a claimed job's state changes, each one fenced by its attempt
 * and carried over a lost database connection until the deadline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "db.h"
#include "exec_db.h"
#include "exec_int.h"
#include "log.h"
#include "retry.h"

static int step_write(struct job_run *r, const char *sql, int n,
    const char *const *p);

/* step_write() as the writer of exec_db.h. */
static int
run_write(void *ctx, const char *sql, int n, const char *const *p)
{
	return step_write(ctx, sql, n, p);
}

void
step_init(struct job_run *r, PGconn *c, const struct cfg *cf, struct provider *pv,
    struct storage *sg, const struct exec_job *j)
{
	memset(r, 0, sizeof(*r));
	r->conn = c;
	r->cf = cf;
	r->pv = pv;
	r->sg = sg;
	r->j = j;
	r->deadline_ms = clock_mono_ms() + cf->job_timeout * 1000;
	r->w.write = run_write;
	r->w.ctx = r;
}

/*
 * After the connection broke: connects again (the same settings), takes
 * the job's lock again so the sweeper sees it alive. 0 when the session
 * is back (even without the lock: every write is fenced by the attempt),
 * -1 when the database is still away.
 */
static int
reattach(struct job_run *r)
{
	const char *id = r->j->id;
	int locked, ours;

	PQreset(r->conn);
	db_forget();	/* a new session has no prepared statements */
	if (PQstatus(r->conn) != CONNECTION_OK)
		return -1;
	if (execdb_set_role(r->conn) != 0)
		return -1;
	/* A sweeper holds free locks while it walks the running jobs: wait
	 * for ours as long as the job is still our attempt (without the lock
	 * the next sweep would take us for dead), until the deadline. When
	 * another attempt has the job, go on: the fenced write finds it. */
	for (;;) {
		if (execdb_relock(r->conn, id, r->j->attempt, &locked, &ours) != 0)
			return -1;
		if (locked || !ours)
			break;
		if (exec_stopping() || retry_passes_deadline(clock_mono_ms(),
		    RETRY_RELOCK_WAIT_MS, r->deadline_ms)) {
			log_warn("job %s: reconnected, but its lock stayed held elsewhere", id);
			return -1;
		}
		clock_sleep_ms(RETRY_RELOCK_WAIT_MS);
	}
	if (!locked)
		log_warn("job %s: reconnected; another attempt has it now", id);
	else
		log_info("job %s: reconnected to the database", id);
	return 0;
}

/*
 * Runs one write of the job (sql with n params). When the connection is
 * lost it reconnects and runs it again, with backoff, until the deadline:
 * a database blip must not cost a paid image. Writes are idempotent and
 * fenced by the attempt, so running one twice is harmless. The rows
 * changed, or -1 (the database refused, or stayed away).
 */
static int
step_write(struct job_run *r, const char *sql, int n, const char *const *p)
{
	long long backoff = RETRY_DB_BACKOFF_MS;
	PGresult *res;
	int rows;

	for (;;) {
		res = execdb_q(r->conn, sql, n, p);
		if (res != NULL) {
			rows = atoi(PQcmdTuples(res));
			PQclear(res);
			return rows;
		}
		if (PQstatus(r->conn) == CONNECTION_OK)
			return -1;	/* refused, not lost */
		for (;;) {
			if (exec_stopping())
				return -1;	/* told to stop: the sweeper requeues it */
			if (retry_passes_deadline(clock_mono_ms(), backoff, r->deadline_ms)) {
				log_warn("job %s: the database stayed away until the deadline",
				    r->j->id);
				return -1;
			}
			exec_sleep_ms(backoff);
			backoff = retry_doubled(backoff, RETRY_DB_BACKOFF_MAX_MS);
			if (reattach(r) == 0)
				break;
		}
	}
}

enum step
step_requeue(struct job_run *r, const char *from, const char *code, const char *why)
{
	int n;

	n = execdb_requeue(&r->w, r->j->id, from, r->j->attempt, code, why);
	if (n < 0)
		return STEP_DB;
	if (n == 1) {
		log_warn("job %s (%s): %s, requeued: %s", r->j->id, from, code, why);
		return STEP_STOP;
	}
	return step_not_ours(r, from, "the requeue");
}

enum step
step_not_ours(struct job_run *r, const char *from, const char *before)
{
	int n;

	n = execdb_cancel_asked(&r->w, r->j->id, from, r->j->attempt,
	    r->paid_cost[0] != '\0' ? r->paid_cost : NULL);
	if (n < 0)
		return STEP_DB;
	if (n == 1)
		log_info("job %s canceled before %s", r->j->id, before);
	else
		log_warn("job %s is no longer %s; leaving it", r->j->id, from);
	return STEP_STOP;
}

enum step
step_advance(struct job_run *r, const char *from, const char *to,
    const char *final_prompt)
{
	int n;

	n = execdb_advance(&r->w, r->j->id, from, to, final_prompt, r->j->attempt);
	if (n < 0)
		return STEP_DB;
	if (n == 1)
		return STEP_OK;
	return step_not_ours(r, from, to);
}

enum step
step_fail(struct job_run *r, const char *from, const char *stage, const char *code,
    const char *message)
{
	log_warn("job %s failed at %s: %s: %.200s", r->j->id, stage, code, message);
	if (execdb_fail(&r->w, r->j->id, from, stage, code, message, r->j->attempt,
	    r->paid_cost[0] != '\0' ? r->paid_cost : NULL) < 0)
		return STEP_DB;
	return STEP_STOP;
}

enum step
step_out_of_time(struct job_run *r, const char *from, const char *stage)
{
	const char *code = exec_fail_code(EXEC_FAIL_JOB_TIMEOUT);
	char msg[160];

	snprintf(msg, sizeof(msg), "the job ran past IMAGEGEN_JOB_TIMEOUT (%ld s) while %s",
	    r->cf->job_timeout, stage);
	if (retry_attempts_left(r->j->attempts, r->j->max_attempts))
		return step_requeue(r, from, code, msg);
	return step_fail(r, from, stage, code, msg);
}

/* Only while the job is still our attempt is its object deleted (another
 * attempt may have stored, or completed the job with, an object at the
 * same path); the row forgets the path only when that worked, else the
 * sweeper deletes it later. */
enum step
step_end_uploading(struct job_run *r, const char *path, const char *stage,
    const char *code, const char *message)
{
	char msg[256];
	int n, forget = 1;

	n = execdb_is(&r->w, r->j->id, r->j->attempt, EXECDB_UPLOADING);
	if (n < 0)
		return STEP_DB;
	if (n == 0) {
		log_warn("job %s is no longer ours; its object is left to its owner", r->j->id);
		return STEP_STOP;
	}
	if (storage_delete(r->sg, path, msg, sizeof(msg)) != STOR_OK) {
		log_error("job %s: object %s could not be deleted (the sweeper will): %s",
		    r->j->id, path, msg);
		forget = 0;
	}
	if (code != NULL)
		log_warn("job %s failed at %s: %s: %.200s", r->j->id, stage, code, message);
	n = execdb_end_uploading(&r->w, r->j->id, r->j->attempt, forget, stage, code,
	    message);
	if (code == NULL && n == 1)
		log_info("job %s canceled while uploading", r->j->id);
	return n < 0 ? STEP_DB : STEP_STOP;
}

enum step
step_give_up_uploading(struct job_run *r, const char *path, enum exec_fail f,
    const char *msg)
{
	if (retry_attempts_left(r->j->attempts, r->j->max_attempts))
		return step_requeue(r, "uploading", exec_fail_code(f), msg);
	return step_end_uploading(r, path, "uploading", exec_fail_code(f), msg);
}

enum step
step_boundary(struct job_run *r, const char *status)
{
	if (!exec_stopping())
		return STEP_OK;
	return step_requeue(r, status, exec_fail_code(EXEC_FAIL_EXECUTOR_STOPPED),
	    exec_fail_message(EXEC_FAIL_EXECUTOR_STOPPED));
}
