/* exec.h - running jobs: slots, the double fork, the executor, the sweeper.
 * (src/jobs/spawn.c, run.c, steps.c, stages.c, retry.c, sweep.c; their SQL
 * in src/db/exec_db.c.) */
#ifndef IG_EXEC_H
#define IG_EXEC_H

#include <libpq-fe.h>

#include "cfg.h"

/*
 * Hands job_id (or, when NULL, the oldest queued job) to a new executor
 * process if one of the host's IMAGEGEN_MAX_RUNNING_JOBS slots is free:
 * fork, fork again, the grandchild closes every inherited descriptor,
 * setsid()s and runs exec_run(); the middle child is reaped at once. With
 * no free slot the job stays queued for a finishing executor or the
 * sweeper. Returns 1 when an executor was started, 0 when no slot was
 * free, -1 on error (logged; a failed second fork included: the job stays
 * queued for the sweeper). Never blocks on the job.
 */
int exec_spawn(const struct cfg *c, const char *job_id);
/*
 * The executor: claims job_id (or the oldest queued job) and runs it
 * through generating (the image spooled at once; a spooled or already
 * stored image of an earlier attempt is used instead of the provider),
 * uploading (the path recorded first) and completed, then keeps taking
 * queued jobs until there are none. It exits when the running-jobs cap is
 * full, and after SIGTERM/SIGINT/SIGQUIT at the next stage boundary with
 * the job requeued. slot_fd is the flock'd slot it holds; it is given
 * back before one last look for queued work, and taken again when there
 * is some. Every log line about a job ends with its id and the request
 * that created it (kept on the job's first event; "-" for a job created
 * before that was kept). Returns the process exit status.
 */
int exec_run(const struct cfg *c, const char *job_id, int slot_fd);

struct sweep_stats {
	int requeued, failed, canceled, queued_left;
	int objects_removed, spool_removed;	/* cleaned up this pass */
	int secrets_sealed;	/* legacy webhook signing secrets sealed */
};
/*
 * One recovery pass (SPEC §5): a running job whose executor is gone (its
 * advisory lock is free) or far past its deadline ends canceled when its
 * owner asked, else is requeued while attempts remain (a 'requeued' event
 * says why), else failed at the stage it reached (WORKER_LOST, or
 * JOB_TIMEOUT once past its deadline). Then the objects of jobs that ended
 * failed or canceled are deleted, and this host's spool files no job
 * needs are removed. conn is a service connection. 0, or -1 (logged).
 */
int exec_sweep(PGconn *conn, const struct cfg *c, struct sweep_stats *st);
/* Sweeps, then starts executors for queued jobs while slots are free,
 * then sends due webhook deliveries (webhooks.h). Connects on its own. 0,
 * or -1 when the database can't be reached. */
int exec_sweep_and_kick(const struct cfg *c, struct sweep_stats *st);

#endif
