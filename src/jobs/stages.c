/* stages.c - the stages of a claimed job: its image from the spool, from
 * storage or from the provider (generating, spooled at once), and the
 * upload. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "exec_db.h"
#include "exec_int.h"
#include "log.h"
#include "provider.h"
#include "retry.h"
#include "spool.h"
#include "storage.h"

/*
 * Reads an inpaint input (the source or the mask, named by what) from our
 * own bucket: PROV_OK with *data (malloc'd, caller frees), *len and *mime;
 * else PROV_INVALID_REQUEST (not ours, not an image) or PROV_TEMPORARY
 * (storage did not answer), the job to fail with it and msg.
 */
static enum prov_err
load_input(struct storage *sg, const struct cfg *cf, const char *what,
    const char *url, unsigned char **data, size_t *len, const char **mime,
    char *msg, size_t msglen)
{
	char path[STORAGE_PATH_MAX + 1], smsg[256];
	enum stor_err se;
	int w, h;

	*data = NULL;
	*len = 0;
	if (storage_path_of_url(sg, url, path, sizeof(path)) != 0) {
		snprintf(msg, msglen, "%s: not an object of this service's bucket", what);
		return PROV_INVALID_REQUEST;
	}
	se = storage_get(sg, path, (size_t)cf->provider_max_bytes, data, len, smsg,
	    sizeof(smsg));
	if (se != STOR_OK) {
		snprintf(msg, msglen, "%s: %s", what, smsg);
		return se == STOR_TEMPORARY ? PROV_TEMPORARY : PROV_INVALID_REQUEST;
	}
	if (prov_image_sniff(*data, *len, mime, &w, &h) != 0) {
		free(*data);
		*data = NULL;
		snprintf(msg, msglen, "%s: not a PNG, JPEG or WebP image", what);
		return PROV_INVALID_REQUEST;
	}
	return PROV_OK;
}

/*
 * The provider, at most RETRY_GEN_MAX_TRIES calls: only RATE_LIMIT,
 * TEMPORARY and TIMEOUT are retried. The wait is what the provider asked
 * for (Retry-After, RetryInfo), exactly; else a capped exponential backoff
 * with up to +50% jitter. A wait that would pass the deadline is not
 * taken: the last error stands. *lost is STEP_OK, or STEP_DB/STEP_STOP
 * when the job was found no longer ours before a retry.
 */
static enum prov_err
generate(struct job_run *r, const struct prov_request *req,
    const char *webhook, char *id, size_t idlen, struct prov_result *res,
    enum step *lost)
{
	const struct exec_job *j = r->j;
	enum prov_err e = PROV_OK;
	long long wait, backoff = RETRY_GEN_BACKOFF_MS;
	int attempt, n;

	*lost = STEP_OK;
	for (attempt = 1;; attempt++) {
		if (attempt > 1 && exec_stopping())
			return e;	/* told to stop: the caller gives the job back */
		/* Every call is paid for: before a retry, the job must still be
		 * ours (a Postgres restart frees our lock, and a sweeper that
		 * took us for dead may have given the job to another executor). */
		if (attempt > 1) {
			n = execdb_is(&r->w, j->id, j->attempt, EXECDB_STILL_GENERATING);
			if (n != 1) {
				log_warn("job %s: %s before retry %d; not calling the provider",
				    j->id, n < 0 ? "the database is away" :
				    "no longer ours (requeued or canceled)", attempt - 1);
				*lost = n < 0 ? STEP_DB : STEP_STOP;
				return e;
			}
		}
		prov_result_free(res);
		if (webhook != NULL)
			e = prov_submit(r->pv, req, webhook, id, idlen, res);
		else
			e = prov_generate(r->pv, req, res);
		if (res->abandoned && !exec_stopping()) {
			/* Canceled (or taken from us) while the model ran. */
			log_info("job %s: no longer generating; the provider's job was "
			    "canceled", j->id);
			*lost = STEP_STOP;
			return e;
		}
		if (e != PROV_OK && !res->abandoned)
			execdb_count_provider_error(r->conn, prov_err_code(e));
		if (res->abandoned)
			return e;	/* stopping: the caller gives the job back */
		if (!retry_provider_again(e, attempt))
			return e;
		wait = retry_provider_wait(res->retry_after_ms, backoff);
		if (retry_passes_deadline(clock_mono_ms(), wait, req->deadline_ms)) {
			log_info("job %s: %s, no retry: a %lld ms wait passes the deadline",
			    j->id, prov_err_code(e), wait);
			return e;
		}
		log_info("job %s: %s, retry %d in %lld ms", j->id, prov_err_code(e),
		    attempt, wait);
		exec_sleep_ms(wait);
		backoff = retry_doubled(backoff, RETRY_GEN_BACKOFF_MAX_MS);
	}
}

/* The wanted() of a provider's request: 0 once the executor is told to
 * stop or the job is no longer generating at our attempt (canceled,
 * requeued); a database that cannot say leaves it wanted. */
static int
still_wanted(void *arg)
{
	struct job_run *r = arg;

	if (exec_stopping())
		return 0;
	return execdb_is(&r->w, r->j->id, r->j->attempt,
	    EXECDB_STILL_GENERATING) != 0;
}

static enum step paid(struct job_run *r, struct prov_result *img);
static enum step hand_off(struct job_run *r, const char *rid);

/* 1 when the object at path holds exactly data (an earlier attempt of ours
 * stored it), 0 otherwise. */
static int
stored_already(struct storage *sg, const char *path, const unsigned char *data,
    size_t len)
{
	unsigned char *got = NULL;
	size_t glen = 0;
	char msg[256];
	int same;

	if (storage_get(sg, path, len, &got, &glen, msg, sizeof(msg)) != STOR_OK)
		return 0;
	same = glen == len && memcmp(got, data, len) == 0;
	free(got);
	return same;
}

/* The extension storage_path_for gives mime, with its dot; "" if unknown. */
static const char *
mime_ext(const char *mime)
{
	if (strcmp(mime, "image/png") == 0)
		return ".png";
	if (strcmp(mime, "image/jpeg") == 0)
		return ".jpg";
	if (strcmp(mime, "image/webp") == 0)
		return ".webp";
	return "";
}

/* img becomes data (malloc'd, now img's), an image of mime, w x h, that
 * cost cost_usd; its old bytes are freed. */
static void
img_take(struct prov_result *img, unsigned char *data, size_t len, const char *mime,
    int w, int h, double cost_usd)
{
	prov_result_free(img);
	memset(img, 0, sizeof(*img));
	img->data = data;
	img->len = len;
	snprintf(img->mime, sizeof(img->mime), "%s", mime);
	img->width = w;
	img->height = h;
	img->cost_usd = cost_usd;
}

/*
 * The object at path when it holds an image of the type path names: 1
 * with img filled (cost as given; img's old bytes freed), 0 when there is
 * none, -1 when storage did not answer (retried with backoff until the
 * deadline or a stop): then nobody can tell whether the image is stored,
 * and it must not be bought again on a guess.
 */
static int
read_stored(struct job_run *r, const char *path, double cost, struct prov_result *img)
{
	unsigned char *data = NULL;
	const char *mime, *dot;
	char msg[256];
	size_t len = 0;
	long long backoff = RETRY_PUT_BACKOFF_MS;
	enum stor_err se;
	int w, h;

	if (path[0] == '\0' || !storage_path_ok(path))
		return 0;
	for (;;) {
		se = storage_get(r->sg, path, (size_t)r->cf->provider_max_bytes, &data, &len,
		    msg, sizeof(msg));
		if (se != STOR_TEMPORARY)
			break;
		if (exec_stopping() ||
		    retry_passes_deadline(clock_mono_ms(), backoff, r->deadline_ms)) {
			log_warn("job %s: storage: %s; cannot tell whether %s is stored",
			    r->j->id, msg, path);
			return -1;
		}
		exec_sleep_ms(backoff);
		backoff = retry_doubled(backoff, RETRY_PUT_BACKOFF_MAX_MS);
	}
	if (se != STOR_OK)
		return 0;	/* no such object */
	dot = strrchr(path, '.');
	if (prov_image_sniff(data, len, &mime, &w, &h) != 0 ||
	    strcmp(mime_ext(mime), dot != NULL ? dot : "") != 0) {
		free(data);
		return 0;
	}
	img_take(img, data, len, mime, w, h, cost);
	return 1;
}

/*
 * An object already there with the same bytes is ours from an earlier
 * attempt: that is success; so is another attempt's image at the path,
 * which the job then completes with.
 */
enum stor_err
stage_upload(struct job_run *r, const char *path, struct prov_result *img, char *msg,
    size_t msglen)
{
	long long wait, backoff = RETRY_PUT_BACKOFF_MS;
	enum stor_err se;
	int try;

	for (try = 1;; try++) {
		se = storage_put(r->sg, path, img->data, img->len, img->mime, msg, msglen);
		if (se == STOR_OK)
			return STOR_OK;
		if (se != STOR_TEMPORARY) {
			if (stored_already(r->sg, path, img->data, img->len)) {
				log_info("job %s: %s was stored by an earlier attempt", r->j->id,
				    path);
				return STOR_OK;
			}
			/* The path is this job's alone: another attempt of it
			 * (another host's spool) stored its own image there. That
			 * one is paid for as well; the job completes with it, and
			 * nothing paid for is deleted. */
			if (read_stored(r, path, img->cost_usd, img) == 1) {
				log_info("job %s: %s holds an earlier attempt's image; the job"
				    " completes with it", r->j->id, path);
				return STOR_OK;
			}
			return se;
		}
		wait = retry_fit_wait(clock_mono_ms(), retry_jittered(backoff),
		    r->deadline_ms);
		if (exec_stopping() || wait < 0)
			return se;
		log_info("job %s: storage: %s; retry %d in %lld ms", r->j->id, msg, try, wait);
		exec_sleep_ms(wait);
		backoff = retry_doubled(backoff, RETRY_PUT_BACKOFF_MAX_MS);
	}
}

/* The one an earlier attempt recorded when it fits the bytes (so a
 * re-upload lands where the row already points), else a new one. */
int
stage_object_path(struct job_run *r, const struct prov_result *img, char *path,
    size_t n)
{
	const struct exec_job *j = r->j;
	const char *ext = mime_ext(img->mime);
	size_t pl = strlen(j->storage_path), el = strlen(ext);
	struct timespec now;

	if (pl > el && el > 0 && strcmp(j->storage_path + pl - el, ext) == 0 &&
	    storage_path_ok(j->storage_path) && pl < n) {
		snprintf(path, n, "%s", j->storage_path);
		return 0;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	return storage_path_for(path, n, j->job_type, j->project_id, j->branch_id, j->id,
	    j->asset_id[0] ? j->asset_id : NULL, j->scene_id[0] ? j->scene_id : NULL,
	    j->shot_id[0] ? j->shot_id : NULL,
	    (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000, img->mime);
}

/* The bytes its predecessor was paid for. */
int
stage_spooled_image(struct job_run *r, struct prov_result *img)
{
	unsigned char *data;
	const char *mime;
	size_t len;
	double cost;
	int w, h;

	if (spool_read(r->cf, r->j->id, (size_t)r->cf->provider_max_bytes, &data, &len,
	    &cost) != 1)
		return 0;
	if (prov_image_sniff(data, len, &mime, &w, &h) != 0) {
		log_error("job %s: the spooled file is not an image; generating again", r->j->id);
		free(data);
		spool_remove(r->cf, r->j->id, SPOOL_ALL);
		return 0;
	}
	img_take(img, data, len, mime, w, h, cost);
	return 1;
}

/* When the spool has none (it ran on another host, or the spool was
 * lost): as read_stored(), the cost the one that attempt recorded. */
int
stage_stored_image(struct job_run *r, struct prov_result *img)
{
	return read_stored(r, r->j->storage_path, r->j->recorded_cost, img);
}

enum step
stage_generate(struct job_run *r, const char *final_prompt, struct prov_result *img)
{
	const struct exec_job *j = r->j;
	struct prov_request req;
	unsigned char *source = NULL, *mask = NULL;
	char msg[512], webhook[2048], rid[128];
	const char *hook = NULL;
	enum prov_err pe;
	enum step s;

	memset(&req, 0, sizeof(req));
	s = step_advance(r, "processing", "generating", final_prompt);
	if (s != STEP_OK)
		goto out;
	if (execdb_record_capsule(r->conn, j) != 0) {
		s = STEP_DB;
		goto out;
	}
	req.job_type = j->job_type;
	req.prompt = final_prompt;
	req.width = j->width;
	req.height = j->height;
	req.deadline_ms = r->deadline_ms;
	req.wanted = still_wanted;
	req.wanted_arg = r;
	if (strcmp(j->job_type, "inpaint") == 0 && j->source_url != NULL) {
		pe = load_input(r->sg, r->cf, "sourceImageUrl", j->source_url, &source,
		    &req.source_len, &req.source_mime, msg, sizeof(msg));
		if (pe == PROV_OK && j->mask_url != NULL)
			pe = load_input(r->sg, r->cf, "maskImageUrl", j->mask_url, &mask,
			    &req.mask_len, &req.mask_mime, msg, sizeof(msg));
		if (pe != PROV_OK) {
			s = step_fail(r, "generating", "generating", prov_err_code(pe), msg);
			goto out;
		}
		req.source = source;
		req.mask = mask;
		req.source_url = j->source_url;
		req.mask_url = j->mask_url;
	}
	if (r->cf->public_url != NULL && prov_async(r->pv)) {
		snprintf(webhook, sizeof(webhook), "%s" PROV_WEBHOOK_PATH,
		    r->cf->public_url);
		hook = webhook;
	}
	pe = generate(r, &req, hook, rid, sizeof(rid), img, &s);
	if (s != STEP_OK) {
		if (s == STEP_STOP)
			s = step_not_ours(r, "generating", "generating");
		goto out;
	}
	if (pe == PROV_TIMEOUT && retry_at_deadline(clock_mono_ms(), r->deadline_ms)) {
		s = step_out_of_time(r, "generating", "generating");
		goto out;
	}
	if (pe != PROV_OK && exec_stopping()) {
		s = step_boundary(r, "generating");	/* requeued, not failed */
		goto out;
	}
	if (pe != PROV_OK) {
		s = step_fail(r, "generating", "generating", prov_err_code(pe),
		    img->message[0] != '\0' ? img->message : prov_err_code(pe));
		goto out;
	}
	if (hook != NULL) {
		s = hand_off(r, rid);
		goto out;
	}
	s = paid(r, img);
out:
	free(source);
	free(mask);
	return s;
}

/* The image is paid for: its cost noted, its bytes spooled. STEP_OK. */
static enum step
paid(struct job_run *r, struct prov_result *img)
{
	const struct exec_job *j = r->j;

	/* Paid for: the cost goes with whatever ends the job now (a cancel
	 * seen at the next boundary, a failure before the upload) ... */
	if (img->cost_usd >= 0)
		snprintf(r->paid_cost, sizeof(r->paid_cost), "%.6f", img->cost_usd);
	/* ... and the image is on disk before anything else can go wrong, so
	 * that a requeued attempt uploads these bytes instead of buying them
	 * again. */
	if (spool_write(r->cf, j->id, img->data, img->len, img->cost_usd) != 0)
		log_error("job %s: the image is not spooled; a crash before it is stored "
		    "would generate it again", j->id);
	return STEP_OK;
}

/*
 * The remote job rid was created with a webhook: recorded on the job,
 * which stays generating with no executor (sql/015), and this executor
 * lets it go (STEP_STOP: nothing else is done with it here). When the job
 * is no longer ours the remote job is canceled.
 */
static enum step
hand_off(struct job_run *r, const char *rid)
{
	const struct exec_job *j = r->j;
	int n;

	n = execdb_set_waiting(&r->w, j->id, j->attempt, r->pv->ops->name, rid,
	    r->cf->webhook_grace_s);
	if (n == 1) {
		/* Its webhook may be in already: then a claim resumes the job at
		 * once (this executor's next, or the sweeper's). */
		log_info("job %s: %s request %s is running; its webhook (or a poll "
		    "after %ld s) hands the job on", j->id, r->pv->ops->name, rid,
		    r->cf->webhook_grace_s);
		r->handed_off = 1;
		return STEP_STOP;
	}
	r->pv->ops->cancel(r->pv, rid);
	if (n < 0)
		return STEP_DB;
	return step_not_ours(r, "generating", "generating");
}

enum step
stage_collect(struct job_run *r, struct prov_result *img)
{
	const struct exec_job *j = r->j;
	struct prov_request req;
	enum prov_err pe = PROV_OK;
	long long backoff = RETRY_GEN_BACKOFF_MS;
	int attempt;

	memset(&req, 0, sizeof(req));
	req.job_type = j->job_type;
	req.prompt = j->prompt;
	req.width = j->width;
	req.height = j->height;
	req.deadline_ms = r->deadline_ms;
	/* The model's answer is there: only its download may be retried. */
	for (attempt = 1; attempt <= RETRY_GEN_MAX_TRIES; attempt++) {
		prov_result_free(img);
		pe = prov_collect(r->pv, &req, j->outcome, img);
		if (pe == PROV_OK || !prov_err_retryable(pe) || exec_stopping() ||
		    attempt == RETRY_GEN_MAX_TRIES ||
		    retry_passes_deadline(clock_mono_ms(), backoff, r->deadline_ms))
			break;
		log_info("job %s: %s collecting the outcome, retry %d in %lld ms", j->id,
		    prov_err_code(pe), attempt, backoff);
		exec_sleep_ms(backoff);
		backoff = retry_doubled(backoff, RETRY_GEN_BACKOFF_MAX_MS);
	}
	if (pe != PROV_OK) {
		execdb_count_provider_error(r->conn, prov_err_code(pe));
		if (exec_stopping())
			return step_boundary(r, "generating");
		return step_fail(r, "generating", "generating", prov_err_code(pe),
		    img->message[0] != '\0' ? img->message : prov_err_code(pe));
	}
	return paid(r, img);
}
