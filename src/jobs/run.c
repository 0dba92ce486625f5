/* run.c - the executor's loop: claim a job, run it through its stages to
 * completed (or failed, canceled, requeued), take the next. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "db.h"
#include "exec.h"
#include "exec_db.h"
#include "exec_int.h"
#include "log.h"
#include "prompt.h"
#include "provider.h"
#include "retry.h"
#include "slots.h"
#include "spool.h"
#include "webhooks.h"
#include "storage.h"

/* After a stop: a job that ended (failed, canceled) loses its spool file
 * and any object its row points at; a requeued one keeps both for the
 * next attempt. Nothing is touched when a later attempt has the job, or
 * when the database cannot say (the sweeper cleans up then). */
static void
after_stop(struct job_run *r)
{
	char *status = NULL, *path = NULL;

	if (execdb_status_at(r->conn, r->j->id, r->j->attempt, &status, &path) != 1)
		return;
	if (strcmp(status, "failed") == 0 || strcmp(status, "canceled") == 0 ||
	    strcmp(status, "completed") == 0)
		spool_remove(r->cf, r->j->id, SPOOL_ALL);
	if ((strcmp(status, "failed") == 0 || strcmp(status, "canceled") == 0) &&
	    path != NULL)
		(void)sweep_drop_object(r->conn, r->sg, r->j->id, path);
	free(status);
	free(path);
}

/* Stored; the row says so last. A lost connection is waited out (the
 * object stays, and the spool, until the row is completed); a refusal is
 * tried again a few times, then the job fails at persisting. */
static enum step
complete(struct job_run *r, const char *path, const struct prov_result *img)
{
	const struct exec_job *j = r->j;
	char w[16], h[16];
	int n, try;

	/* The image's type and size again: the object may be another
	 * attempt's, adopted by stage_upload(). */
	snprintf(w, sizeof(w), "%d", img->width);
	snprintf(h, sizeof(h), "%d", img->height);
	for (try = 1;; try++) {
		n = execdb_complete(&r->w, j->id, path, j->attempt, img->mime, w, h);
		if (n >= 0 || PQstatus(r->conn) != CONNECTION_OK ||
		    try == RETRY_PERSIST_TRIES)
			break;
		clock_sleep_ms(RETRY_DB_BACKOFF_MS);
	}
	if (n == 1) {
		log_info("job %s completed: %s", j->id, path);
		return STEP_OK;
	}
	if (n < 0 && PQstatus(r->conn) != CONNECTION_OK)
		return STEP_DB;
	if (n < 0)
		return step_end_uploading(r, path,
		    exec_fail_stage(EXEC_FAIL_PERSIST_ERROR),
		    exec_fail_code(EXEC_FAIL_PERSIST_ERROR),
		    exec_fail_message(EXEC_FAIL_PERSIST_ERROR));
	/* Nothing matched: canceled meanwhile (then the object goes), or the
	 * job is no longer ours (then it is left as it is). */
	n = execdb_is(&r->w, j->id, j->attempt, EXECDB_UPLOAD_CANCEL_ASKED);
	if (n == 1)
		return step_end_uploading(r, path, "uploading", NULL, NULL);
	log_warn("job %s is no longer uploading; leaving it", j->id);
	return n < 0 ? STEP_DB : STEP_STOP;
}

/* The image, from the spool, from storage or from the provider: STEP_OK
 * with img filled and the job generating. */
static enum step
get_image(struct job_run *r, const char *final_prompt, struct prov_result *img)
{
	const struct exec_job *j = r->j;
	int n;

	if (j->outcome != NULL)
		return stage_collect(r, img);	/* its remote model ended */
	if (stage_spooled_image(r, img)) {
		log_info("job %s: re-upload of the spooled image (attempt %d); not generating "
		    "again", j->id, j->attempts);
		return step_advance(r, "processing", "generating", final_prompt);
	}
	n = stage_stored_image(r, img);
	if (n == -1)
		return step_requeue(r, "processing",
		    exec_fail_code(EXEC_FAIL_STORAGE_ERROR), "storage did not answer whether"
		    " the image of an earlier attempt is stored");
	if (n == 1) {
		log_info("job %s: its image is already stored at %s (attempt %d); not "
		    "generating again", j->id, j->storage_path, j->attempts);
		return step_advance(r, "processing", "generating", final_prompt);
	}
	if (j->attempts > j->max_attempts) {
		/* The sweeper's extra attempt to store a paid image: without it
		 * there is nothing to store, and no attempt is left to buy one. */
		return step_fail(r, "processing", "uploading",
		    exec_fail_code(EXEC_FAIL_WORKER_LOST), "executor lost while uploading;"
		    " its image is gone and no attempts are left");
	}
	return stage_generate(r, final_prompt, img);
}

/* Runs a claimed job to its end. STEP_DB when the database went away
 * (the job is left to the sweeper, its spooled image kept). */
static enum step
run_one(PGconn *c, const struct cfg *cf, struct provider *pv,
    struct storage *sg, const struct exec_job *j)
{
	const char *storage_error = exec_fail_code(EXEC_FAIL_STORAGE_ERROR);
	struct job_run r;
	struct prov_result img;
	struct prompt_in pin;
	char path[1024], url[2048], msg[512], cost[32], w[16], h[16];
	char *final_prompt = NULL;
	enum step s = STEP_DB;
	enum stor_err se;
	int n;

	memset(&img, 0, sizeof(img));
	step_init(&r, c, cf, pv, sg, j);
	/* A hard stop past the deadline: the sweeper then recovers the job. */
	alarm((unsigned)(cf->job_timeout + RETRY_DEADLINE_GRACE_S / 2));
	memset(&pin, 0, sizeof(pin));
	pin.job_type = j->job_type;
	pin.prompt = j->prompt;
	pin.style = j->style;
	pin.has_mask = j->mask_url != NULL;
	final_prompt = prompt_compose(&pin);
	if (final_prompt == NULL)
		goto out;
	s = step_boundary(&r, j->outcome != NULL ? "generating" : "processing");
	if (s != STEP_OK)
		goto out;
	s = get_image(&r, final_prompt, &img);
	if (s != STEP_OK)
		goto out;
	s = step_boundary(&r, "generating");
	if (s != STEP_OK)
		goto out;

	/* The intent before the upload: where the object goes, its cost and
	 * size, so that whoever finds the job next can finish or clean up. */
	if (stage_object_path(&r, &img, path, sizeof(path)) != 0 ||
	    storage_public_url(sg, path, url, sizeof(url)) != 0) {
		s = step_fail(&r, "generating", "uploading", storage_error,
		    "cannot build the object path");
		goto out;
	}
	snprintf(cost, sizeof(cost), "%.6f", img.cost_usd >= 0 ? img.cost_usd : 0.0);
	snprintf(w, sizeof(w), "%d", img.width);
	snprintf(h, sizeof(h), "%d", img.height);
	n = execdb_set_uploading(&r.w, j->id, path, url, img.cost_usd >= 0 ? cost : NULL,
	    img.mime, w, h, j->attempt);
	if (n < 0) {
		s = STEP_DB;
		goto out;
	}
	if (n == 0) {
		s = step_not_ours(&r, "generating", "uploading");
		goto out;
	}
	if (cf->test_stage_delay_ms > 0) {
		log_info("job %s: test stage delay of %ld ms before the upload", j->id,
		    cf->test_stage_delay_ms);
		clock_sleep_ms(cf->test_stage_delay_ms);
	}
	s = step_boundary(&r, "uploading");
	if (s != STEP_OK)
		goto out;
	if (retry_at_deadline(clock_mono_ms(), r.deadline_ms)) {
		snprintf(msg, sizeof(msg), "the job ran past IMAGEGEN_JOB_TIMEOUT (%ld s) "
		    "before its upload", cf->job_timeout);
		s = step_give_up_uploading(&r, path, EXEC_FAIL_JOB_TIMEOUT, msg);
		goto out;
	}
	se = stage_upload(&r, path, &img, msg, sizeof(msg));
	if (se != STOR_OK && exec_stopping()) {
		s = step_boundary(&r, "uploading");
		goto out;
	}
	if (se == STOR_TEMPORARY) {
		/* Storage stayed away until the deadline. */
		s = step_give_up_uploading(&r, path, EXEC_FAIL_STORAGE_ERROR, msg);
		goto out;
	}
	if (se != STOR_OK) {
		s = step_end_uploading(&r, path, "uploading", storage_error, msg);
		goto out;
	}
	s = complete(&r, path, &img);
out:
	alarm(0);
	if (s == STEP_OK)
		spool_remove(cf, j->id, SPOOL_ALL);
	else if (s == STEP_STOP && !r.handed_off)
		after_stop(&r);
	/* STEP_DB: the spool stays; the next attempt re-uploads it. */
	prov_result_free(&img);
	free(final_prompt);
	return s;
}

int
exec_run(const struct cfg *c, const char *job_id, int slot_fd)
{
	struct provider pv;
	struct storage sg;
	struct exec_job j;
	PGconn *conn = NULL;
	char err[512];
	int rc = 1, opened_p = 0, opened_s = 0, done = 0, relooked = 0;
	enum execdb_claim got;
	enum step s;

	/* The executor works for no user: the worker role, as service_role. */
	conn = db_connect_worker(c, "imagegen-executor", err, sizeof(err));
	if (conn == NULL) {
		log_warn("executor cannot connect, job stays queued: %s", err);
		goto out;
	}
	if (prov_open(&pv, c, err, sizeof(err)) != 0) {
		log_error("executor: %s", err);
		goto out;
	}
	opened_p = 1;
	if (storage_open(&sg, c, err, sizeof(err)) != 0) {
		log_error("executor: %s", err);
		goto out;
	}
	opened_s = 1;
	if (spool_prepare(c) != 0)
		log_error("executor: no spool; a requeued job would be generated again");
	while (!exec_stopping()) {
		got = execdb_claim(conn, c, job_id, &j);
		if (got == EXECDB_CLAIM_ERROR)
			goto out;
		if (got == EXECDB_CLAIM_CAP_FULL) {
			/* Waiting here would spin on the claim lock: whoever finishes
			 * next, or the sweeper, starts the queued work. */
			log_debug("the running-jobs cap (%ld) is reached; executor exits",
			    c->max_running_jobs);
			break;
		}
		if (got == EXECDB_CLAIM_NONE && job_id != NULL) {
			job_id = NULL;	/* taken by another executor: take the next */
			continue;
		}
		if (got == EXECDB_CLAIM_NONE) {
			/* Give the slot back before one last look: a responder that
			 * found every slot taken while we held ours committed its job
			 * before it tried, so it is queued by now and we see it. Only
			 * one look: jobs we skipped (locked) must not keep us here. */
			if (relooked)
				break;
			relooked = 1;
			if (slot_fd >= 0) {
				close(slot_fd);
				slot_fd = -1;
			}
			if (execdb_queued_count(conn) <= 0)
				break;
			slot_fd = slot_acquire(c);
			if (slot_fd < 0)
				break;	/* another executor has it */
			continue;
		}
		exec_log_job(j.id, j.request_id);
		job_id = NULL;
		relooked = 0;
		/* The claim's image_job.started, if the job asked for it: one
		 * attempt now, retries by the sweeper. */
		if (!exec_stopping())
			wh_deliver(conn, c, j.id, 1, WH_TIMEOUT_MS);
		s = run_one(conn, c, &pv, &sg, &j);
		if (s == STEP_DB) {
			execdb_job_free(&j);
			exec_log_job(NULL, NULL);
			goto out;	/* the sweeper requeues it: our lock died */
		}
		execdb_unlock(conn, j.id);
		/* Its end's event (and a started one still due), in order;
		 * told to stop, the sweeper sends them. */
		if (!exec_stopping())
			wh_deliver(conn, c, j.id, 2, 2 * WH_TIMEOUT_MS);
		execdb_job_free(&j);
		exec_log_job(NULL, NULL);
		done++;
	}
	log_debug("executor done after %d jobs%s", done,
	    exec_stopping() ? " (told to stop)" : "");
	rc = 0;
out:
	if (slot_fd >= 0)
		close(slot_fd);
	if (opened_s)
		storage_close(&sg);
	if (opened_p)
		prov_close(&pv);
	PQfinish(conn);
	return rc;
}
