/* sweep.c - recovery (SPEC §5): running jobs whose executor is gone,
 * objects of jobs that ended without completing, spool files no job
 * needs; then executors for what is queued. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "exec.h"
#include "exec_db.h"
#include "exec_fail.h"
#include "exec_int.h"
#include "log.h"
#include "remote.h"
#include "retry.h"
#include "spool.h"
#include "storage.h"
#include "webhooks.h"

#define SWEEP_BATCH 256		/* objects and spool files looked at per pass */
#define SWEEP_WEBHOOKS 64	/* outbox rows attempted per pass */
#define SWEEP_WEBHOOK_MS 20000LL	/* and time spent starting them */
#define SWEEP_SEALS 64		/* legacy plain secrets sealed per pass */

int
sweep_drop_object(PGconn *conn, struct storage *sg, const char *id, const char *path)
{
	char msg[256];
	int n;

	if (storage_delete(sg, path, msg, sizeof(msg)) != STOR_OK) {
		log_error("job %s: object %s could not be deleted: %s", id, path, msg);
		return -1;
	}
	n = execdb_forget_object(conn, id, path);
	if (n < 0)
		return -1;
	if (n == 1)
		log_info("job %s ended without completing: object %s removed", id, path);
	return 0;
}

/* Objects of jobs that ended failed or canceled with a path recorded (an
 * executor that died before its own cleanup): deleted, the path forgotten.
 * Storage is opened only when there is something to delete. */
static void
sweep_objects(PGconn *conn, const struct cfg *c, struct sweep_stats *st)
{
	struct storage sg;
	char err[512];
	PGresult *r;
	int i, n;

	r = execdb_ended_with_objects(conn, SWEEP_BATCH);
	if (r == NULL)
		return;
	n = PQntuples(r);
	if (n > 0 && storage_open(&sg, c, err, sizeof(err)) != 0) {
		log_error("sweeper: %s", err);
		n = 0;
	}
	for (i = 0; i < n; i++)
		if (sweep_drop_object(conn, &sg, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1)) == 0)
			st->objects_removed++;
	if (n > 0)
		storage_close(&sg);
	PQclear(r);
}

/* This host's spool files of jobs that no longer need them: an image of a
 * job that ended (or is gone), a half-written file of a job no executor
 * is generating. A queued or running job keeps its image (a requeued
 * attempt uploads it). */
static void
sweep_spool(PGconn *conn, const struct cfg *c, struct sweep_stats *st)
{
	struct spool_entry e[SWEEP_BATCH];
	char ids[SWEEP_BATCH * 38 + 3], *w = ids;
	const char *status;
	PGresult *r;
	int i, k, n, rows, drop;

	n = spool_scan(c, e, SWEEP_BATCH);
	if (n <= 0)
		return;
	*w++ = '{';
	for (i = 0; i < n; i++) {
		memcpy(w, e[i].id, 36);
		w += 36;
		*w++ = i + 1 < n ? ',' : '}';
	}
	*w = '\0';
	r = execdb_statuses(conn, ids);
	if (r == NULL)
		return;
	rows = PQntuples(r);
	for (i = 0; i < n; i++) {
		status = NULL;
		for (k = 0; k < rows; k++)
			if (strcmp(PQgetvalue(r, k, 0), e[i].id) == 0)
				status = PQgetvalue(r, k, 1);
		if (status == NULL || strcmp(status, "completed") == 0 ||
		    strcmp(status, "failed") == 0 || strcmp(status, "canceled") == 0)
			drop = 1;
		else if (e[i].partial)
			drop = strcmp(status, "processing") != 0 &&
			    strcmp(status, "generating") != 0;
		else
			drop = 0;
		if (!drop)
			continue;
		spool_remove(c, e[i].id, e[i].partial ? SPOOL_PARTIAL : SPOOL_IMAGE);
		log_info("sweeper: spool file of job %s (%s) removed", e[i].id,
		    status != NULL ? status : "no such job");
		st->spool_removed++;
	}
	PQclear(r);
}

/*
 * A running job whose executor is gone (or hopelessly late): ends
 * canceled when its owner asked (whatever attempts remain), else requeued
 * while attempts remain, else failed at the stage it reached. Fenced by
 * the attempt, so a job claimed again meanwhile is left alone. Counted
 * in st.
 */
static void
sweep_job(PGconn *conn, const struct execdb_running *j, struct sweep_stats *st)
{
	const char *code = exec_fail_code(j->past ? EXEC_FAIL_JOB_TIMEOUT :
	    EXEC_FAIL_WORKER_LOST);
	const char *stage = strcmp(j->status, "uploading") == 0 ? "uploading" :
	    "generating";
	int n;

	if (j->cancel) {
		n = execdb_sweep_cancel(conn, j);
	} else if (j->requeue_ok) {
		n = execdb_sweep_requeue(conn, j, code, j->past ?
		    "the job ran past IMAGEGEN_JOB_TIMEOUT; requeued" :
		    "executor lost; requeued");
	} else {
		n = execdb_sweep_fail(conn, j, code, j->past ?
		    "the job ran past IMAGEGEN_JOB_TIMEOUT and no attempts are left" :
		    "executor lost and no attempts left", stage);
	}
	if (n != 1)
		return;
	log_warn("job %s (%s): %s, %s", j->id, j->status, code, j->cancel ?
	    "canceled (its owner asked)" : j->requeue_ok ? "requeued" : "failed");
	if (j->cancel)
		st->canceled++;
	else if (j->requeue_ok)
		st->requeued++;
	else
		st->failed++;
}

int
exec_sweep(PGconn *conn, const struct cfg *c, struct sweep_stats *st)
{
	struct execdb_running *rows = NULL;
	int i, n;

	memset(st, 0, sizeof(*st));
	n = execdb_sweep_running(conn, RETRY_DEADLINE_GRACE_S, &rows);
	if (n < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (!rows[i].free_lock && !rows[i].dead)
			continue;	/* its executor is alive and in time */
		/* Not written to since the server (re)started: its lock went
		 * with the restart, not with its executor, which may be alive
		 * and waiting on the provider. It takes the lock again on its
		 * next write; until the deadline it is not taken for dead. */
		if (rows[i].free_lock && !rows[i].dead && rows[i].stale) {
			log_debug("job %s: lock free since the database restarted; waiting"
			    " for its executor or its deadline", rows[i].id);
			execdb_unlock(conn, rows[i].id);
			continue;
		}
		sweep_job(conn, &rows[i], st);
		if (rows[i].free_lock)
			execdb_unlock(conn, rows[i].id);
	}
	free(rows);
	/* What needs no provider first: a slow one (remote_sweep's polls,
	 * bounded by their own budget) does not hold it up. */
	sweep_objects(conn, c, st);
	sweep_spool(conn, c, st);
	(void)remote_sweep(conn, c, st);
	n = execdb_queued_count(conn);
	if (n < 0)
		return -1;
	st->queued_left = n;
	return 0;
}

int
exec_sweep_and_kick(const struct cfg *c, struct sweep_stats *st)
{
	PGconn *conn;
	char err[512];
	int i, rc, n;

	conn = db_connect_worker(c, "imagegen-sweeper", err, sizeof(err));
	if (conn == NULL) {
		log_warn("sweeper cannot connect: %s", err);
		return -1;
	}
	rc = exec_sweep(conn, c, st);
	if (rc != 0) {
		PQfinish(conn);
		return rc;
	}
	/* One executor per queued job up to the free slots; each then keeps
	 * taking queued jobs until none are left. The request that created a
	 * job is not known here. */
	for (i = 0; i < st->queued_left; i++)
		if (exec_spawn(c, NULL) != 1)
			break;
	/* Then due outbox rows of any job (retries, and events of changes
	 * made outside an executor: a queued job canceled, the sweep's own),
	 * after the executors, whom a slow receiver must not hold up. */
	wh_deliver(conn, c, NULL, SWEEP_WEBHOOKS, SWEEP_WEBHOOK_MS);
	/* signing secrets still in plain text from before sql/018 */
	n = wh_seal_legacy(conn, c, SWEEP_SEALS);
	st->secrets_sealed = n > 0 ? n : 0;
	PQfinish(conn);
	return 0;
}
