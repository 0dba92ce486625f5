/* exec_int.h - between the executor's modules: spawn.c (the process),
 * steps.c (a job's fenced state changes), stages.c (generate, spool,
 * upload), run.c (one job to its end), sweep.c (recovery). Not for
 * callers outside src/jobs/: they use exec.h. */
#ifndef IG_EXEC_INT_H
#define IG_EXEC_INT_H

#include <libpq-fe.h>

#include "cfg.h"
#include "exec_db.h"
#include "exec_fail.h"
#include "provider.h"
#include "storage.h"

/* ---- spawn.c ----------------------------------------------------------- */

/* 1 once SIGTERM, SIGINT or SIGQUIT reached this executor: stop at the
 * next stage boundary, give the job back to the queue, exit. */
int exec_stopping(void);
/* Sleeps ms, in short steps, or less when told to stop: a stop signal is
 * acted on in bounded time, not after a Retry-After or backoff wait. */
void exec_sleep_ms(long long ms);
/* The job (and the request that created it, NULL: unknown) every log line
 * of this executor names from now on; NULL, NULL for none. */
void exec_log_job(const char *job_id, const char *request_id);

/* ---- steps.c ----------------------------------------------------------- */

/* One claimed job at work: what every stage needs. */
struct job_run {
	PGconn *conn;
	const struct cfg *cf;
	struct provider *pv;
	struct storage *sg;
	const struct exec_job *j;
	long long deadline_ms;		/* CLOCK_MONOTONIC: IMAGEGEN_JOB_TIMEOUT */
	struct execdb_writer w;		/* its fenced writes (steps.c) */
	/* What the provider billed for this attempt's image, as numeric
	 * text, once it answered ("" before, or unknown): written with a
	 * cancel or a failure, so that a job that ends without its upload
	 * is still charged what it cost (sql/011_budgets.sql). */
	char paid_cost[32];
	/* 1 once the job waits on a remote model (stage_generate): no
	 * executor holds it from then on. */
	int handed_off;
};

enum step { STEP_OK, STEP_STOP, STEP_DB };

/* r ready for the job j, its deadline IMAGEGEN_JOB_TIMEOUT from now.
 * Can't fail. */
void step_init(struct job_run *r, PGconn *c, const struct cfg *cf,
    struct provider *pv, struct storage *sg, const struct exec_job *j);
/* The job back to the queue from status from with code and why, unless
 * canceled meanwhile (then canceled). Always STEP_STOP (or STEP_DB). */
enum step step_requeue(struct job_run *r, const char *from, const char *code,
    const char *why);
/* A write of ours matched nothing at status from (before names what was
 * to come next): the job became canceled if that was asked for, else
 * someone else moved it and we leave it. STEP_STOP (or STEP_DB). */
enum step step_not_ours(struct job_run *r, const char *from, const char *before);
/* from → to unless canceled meanwhile; final_prompt recorded when not
 * NULL. STEP_OK, or STEP_STOP/STEP_DB. */
enum step step_advance(struct job_run *r, const char *from, const char *to,
    const char *final_prompt);
/* from → failed at stage with code and message. STEP_STOP (or STEP_DB). */
enum step step_fail(struct job_run *r, const char *from, const char *stage,
    const char *code, const char *message);
/* The deadline passed at stage (status from): requeued while attempts
 * remain, else failed JOB_TIMEOUT there, as the sweeper rules. */
enum step step_out_of_time(struct job_run *r, const char *from, const char *stage);
/* Ends an uploading job of ours without completing it: failed with code
 * at stage, or canceled when code is NULL; its object at path deleted
 * while it is still our attempt. STEP_STOP or STEP_DB. */
enum step step_end_uploading(struct job_run *r, const char *path,
    const char *stage, const char *code, const char *message);
/* The upload cannot happen before the deadline (f, msg): requeued while
 * attempts remain, else failed at uploading, its object deleted. */
enum step step_give_up_uploading(struct job_run *r, const char *path,
    enum exec_fail f, const char *msg);
/* A stage boundary: a stop signal gives the job back (its spooled image,
 * if any, stays for the next attempt). STEP_OK to go on. */
enum step step_boundary(struct job_run *r, const char *status);

/* ---- stages.c ---------------------------------------------------------- */

/* The image a requeued attempt finds in the spool: 1 with img filled,
 * 0 when there is none. */
int stage_spooled_image(struct job_run *r, struct prov_result *img);
/* The image an earlier attempt stored at its recorded path: 1 with img
 * filled, 0 when there is none, -1 when storage did not answer. */
int stage_stored_image(struct job_run *r, struct prov_result *img);
/* Generates the image: generating, the provider, the spool. STEP_OK with
 * *img filled; else the job is finished with (or left). */
enum step stage_generate(struct job_run *r, const char *final_prompt,
    struct prov_result *img);
/* A resumed job (j->outcome set): the image of its ended remote job,
 * downloaded (retried) and spooled. STEP_OK with *img, else the job is
 * failed at generating with the provider's code (or left). */
enum step stage_collect(struct job_run *r, struct prov_result *img);
/* The object path for img (n bytes at path): 0, or -1. */
int stage_object_path(struct job_run *r, const struct prov_result *img, char *path,
    size_t n);
/* Stores img at path, with retries until the deadline or a stop signal.
 * STOR_OK, else the last failure with msg. */
enum stor_err stage_upload(struct job_run *r, const char *path,
    struct prov_result *img, char *msg, size_t msglen);

/* ---- sweep.c ----------------------------------------------------------- */

/* Deletes the object of a job that ended without completing and forgets
 * its path; conn may be the executor's. 0, or -1 (logged). */
int sweep_drop_object(PGconn *conn, struct storage *sg, const char *id,
    const char *path);

#endif
