/* exec.c - the executor: double fork, claim, generate, upload, complete. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "db.h"
#include "clock.h"
#include "exec.h"
#include "log.h"
#include "prompt.h"
#include "provider.h"
#include "slots.h"
#include "storage.h"

/* A capsule is applied when the job's owner may read it: their own, or a
 * shared one (no owner, or public); the same rule as its RLS policy. */
#define CAPSULE_VISIBLE " AND (s.user_id = j.user_id OR s.user_id IS NULL OR s.is_public)"

/* Serialises claims so the running-jobs cap is exact across executors. */
#define CLAIM_LOCK_KEY "7596237913650"
#define PERSIST_TRIES 3
#define DEADLINE_GRACE_S 10	/* past the deadline, the executor is dead */
#define GEN_MAX_TRIES 4		/* provider calls per job attempt */
#define GEN_BACKOFF_MS 500	/* first wait, doubled each retry … */
#define GEN_BACKOFF_MAX_MS 8000	/* … up to this */

struct job {
	char id[37], project_id[37], branch_id[37], job_type[16];
	char asset_id[37], scene_id[37], shot_id[37];
	char *prompt, *style;
	int width, height, attempts, max_attempts;
	/* The capsule applied (caller's or shared), when style is set. */
	char capsule_id[37];
	char *capsule_name;
	int capsule_shared;
	/* inpaint: public URLs of our own bucket */
	char *source_url, *mask_url;
};

/* ---- spawning --------------------------------------------------------- */

/* In the grandchild: nothing of the responder survives but stderr (the
 * log) and the slot. fd 0 may be the listening socket, others the request
 * socket and the parent's database socket: all closed, never used. */
static int
detach(int slot_fd)
{
	int devnull;

	if (setsid() < 0)
		return -1;
	if (slot_fd != 3) {
		if (dup2(slot_fd, 3) < 0)
			return -1;
	}
	if (close_range(4, ~0U, 0) != 0)
		return -1;
	devnull = open("/dev/null", O_RDWR);
	if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0)
		return -1;
	if (devnull > 3)
		close(devnull);
	return 3;
}

int
exec_spawn(const struct cfg *c, const char *job_id)
{
	char id[37] = "";
	sigset_t all, old;
	pid_t pid;
	int slot, st, fd;

	slot = slot_acquire(c);
	if (slot == -2) {
		log_debug("no free executor slot; job %s stays queued",
		    job_id != NULL ? job_id : "(next)");
		return 0;
	}
	if (slot < 0)
		return -1;
	if (job_id != NULL)
		snprintf(id, sizeof(id), "%s", job_id);
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid = fork();
	if (pid == 0) {
		if (fork() != 0)
			_exit(0);	/* the middle child: reaped below */
		/* The grandchild: no handler of the responder's may run here. */
		signal(SIGTERM, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_IGN);
		signal(SIGPIPE, SIG_IGN);
		signal(SIGCHLD, SIG_DFL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		db_forget();
		prctl(PR_SET_NAME, "ig-executor");	/* /proc/PID/comm, for operators */
		fd = detach(slot);
		if (fd < 0) {
			log_error("cannot detach the executor: %s", strerror(errno));
			_exit(1);
		}
		_exit(exec_run(c, id[0] != '\0' ? id : NULL, fd));
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(slot);	/* the grandchild holds the lock now */
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		return -1;
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return 1;
}

/* ---- database steps --------------------------------------------------- */

static PGresult *
exec_q(PGconn *c, const char *sql, int n, const char *const *p)
{
	PGresult *r = db_exec(c, sql, n, p);
	ExecStatusType s = PQresultStatus(r);

	if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
		log_warn("executor query failed: %.300s", PQerrorMessage(c));
		PQclear(r);
		return NULL;
	}
	return r;
}

static void
job_free(struct job *j)
{
	free(j->prompt);
	free(j->style);
	free(j->capsule_name);
	free(j->source_url);
	free(j->mask_url);
	memset(j, 0, sizeof(*j));
}

static void
cpy(char *dst, size_t n, PGresult *r, int col)
{
	snprintf(dst, n, "%s", PQgetisnull(r, 0, col) ? "" : PQgetvalue(r, 0, col));
}

/*
 * Claims job_id (or the oldest queued job) under the cap: queued →
 * processing, attempts + 1, a deadline, and the job's session advisory
 * lock taken before the claim commits, so the sweeper never sees it
 * running without its lock. 1 claimed, 0 nothing to do, -1 error.
 */
static int
claim(PGconn *c, const struct cfg *cf, const char *job_id, struct job *j)
{
	char timeout[24], cap[24];
	const char *p[3] = { job_id, timeout, cap };
	PGresult *r = NULL;
	int rc = -1;

	memset(j, 0, sizeof(*j));
	snprintf(timeout, sizeof(timeout), "%ld", cf->job_timeout);
	snprintf(cap, sizeof(cap), "%ld", cf->max_running_jobs);
	r = exec_q(c, "BEGIN", 0, NULL);
	if (r == NULL)
		return -1;
	PQclear(r);
	r = exec_q(c, "SELECT pg_advisory_xact_lock(" CLAIM_LOCK_KEY ")", 0, NULL);
	if (r == NULL)
		goto out;
	PQclear(r);
	r = exec_q(c, "WITH cand AS (SELECT id FROM public.image_generation_jobs"
	    "  WHERE status = 'queued' AND ($1::uuid IS NULL OR id = $1)"
	    "  ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
	    " UPDATE public.image_generation_jobs j SET status = 'processing',"
	    "  attempts = j.attempts + 1,"
	    "  deadline_at = now() + $2::int * interval '1 second'"
	    " FROM cand WHERE j.id = cand.id AND (SELECT count(*)"
	    "  FROM public.image_generation_jobs WHERE status IN"
	    "  ('processing', 'generating', 'uploading')) < $3::int"
	    " RETURNING j.id, j.project_id, j.branch_id, j.job_type, j.prompt,"
	    "  j.width, j.height, j.asset_id, j.scene_id, j.shot_id, j.attempts,"
	    "  j.max_attempts, (SELECT s.style_text FROM public.visual_style_capsules s"
	    "  WHERE s.id = j.visual_style_capsule_id" CAPSULE_VISIBLE "),"
	    "  pg_advisory_lock(hashtextextended(j.id::text, 0)),"
	    "  (SELECT s.id FROM public.visual_style_capsules s"
	    "  WHERE s.id = j.visual_style_capsule_id" CAPSULE_VISIBLE "),"
	    "  (SELECT s.name FROM public.visual_style_capsules s"
	    "  WHERE s.id = j.visual_style_capsule_id" CAPSULE_VISIBLE "),"
	    "  (SELECT s.user_id IS DISTINCT FROM j.user_id"
	    "  FROM public.visual_style_capsules s"
	    "  WHERE s.id = j.visual_style_capsule_id" CAPSULE_VISIBLE "),"
	    "  j.source_image_url, j.mask_image_url", 3, p);
	if (r == NULL)
		goto out;
	if (PQntuples(r) == 0) {
		rc = 0;
		goto out;
	}
	cpy(j->id, sizeof(j->id), r, 0);
	cpy(j->project_id, sizeof(j->project_id), r, 1);
	cpy(j->branch_id, sizeof(j->branch_id), r, 2);
	cpy(j->job_type, sizeof(j->job_type), r, 3);
	j->prompt = strdup(PQgetvalue(r, 0, 4));
	j->width = atoi(PQgetvalue(r, 0, 5));
	j->height = atoi(PQgetvalue(r, 0, 6));
	cpy(j->asset_id, sizeof(j->asset_id), r, 7);
	cpy(j->scene_id, sizeof(j->scene_id), r, 8);
	cpy(j->shot_id, sizeof(j->shot_id), r, 9);
	j->attempts = atoi(PQgetvalue(r, 0, 10));
	j->max_attempts = atoi(PQgetvalue(r, 0, 11));
	j->style = PQgetisnull(r, 0, 12) ? NULL : strdup(PQgetvalue(r, 0, 12));
	cpy(j->capsule_id, sizeof(j->capsule_id), r, 14);
	j->capsule_name = PQgetisnull(r, 0, 15) ? NULL : strdup(PQgetvalue(r, 0, 15));
	j->capsule_shared = strcmp(PQgetvalue(r, 0, 16), "t") == 0;
	j->source_url = PQgetisnull(r, 0, 17) ? NULL : strdup(PQgetvalue(r, 0, 17));
	j->mask_url = PQgetisnull(r, 0, 18) ? NULL : strdup(PQgetvalue(r, 0, 18));
	if (j->prompt == NULL || (!PQgetisnull(r, 0, 17) && j->source_url == NULL) ||
	    (!PQgetisnull(r, 0, 18) && j->mask_url == NULL)) {
		job_free(j);
		goto out;
	}
	rc = 1;
out:
	PQclear(r);
	r = exec_q(c, rc >= 0 ? "COMMIT" : "ROLLBACK", 0, NULL);
	if (r == NULL && rc == 1)
		rc = -1;	/* the claim did not commit; the lock dies with us */
	PQclear(r);
	return rc;
}

enum step { STEP_OK, STEP_STOP, STEP_DB };

/* from → to unless canceled meanwhile, in which case the job becomes
 * canceled and the executor stops. STEP_STOP also when someone else (the
 * sweeper) moved the job. */
static enum step
advance(PGconn *c, const struct job *j, const char *from, const char *to,
    const char *final_prompt)
{
	const char *p[4] = { j->id, from, to, final_prompt };
	PGresult *r;
	int n;

	r = exec_q(c, "UPDATE public.image_generation_jobs SET status = $3,"
	    " final_prompt = coalesce($4, final_prompt)"
	    " WHERE id = $1 AND status = $2 AND NOT cancel_requested", 4, p);
	if (r == NULL)
		return STEP_DB;
	n = atoi(PQcmdTuples(r));
	PQclear(r);
	if (n == 1)
		return STEP_OK;
	r = exec_q(c, "UPDATE public.image_generation_jobs SET status = 'canceled'"
	    " WHERE id = $1 AND status = $2 AND cancel_requested", 2, p);
	if (r == NULL)
		return STEP_DB;
	if (atoi(PQcmdTuples(r)) == 1)
		log_info("job %s canceled before %s", j->id, to);
	else
		log_warn("job %s is no longer %s; leaving it", j->id, from);
	PQclear(r);
	return STEP_STOP;
}

static enum step
fail_job(PGconn *c, const struct job *j, const char *from, const char *stage,
    const char *code, const char *message)
{
	const char *p[5] = { j->id, from, stage, code, message };
	PGresult *r;

	log_warn("job %s failed at %s: %s: %.200s", j->id, stage, code, message);
	r = exec_q(c, "UPDATE public.image_generation_jobs SET status = 'failed',"
	    " failure_stage = $3, error_code = $4, error_message = left($5, 1000)"
	    " WHERE id = $1 AND status = $2", 5, p);
	if (r == NULL)
		return STEP_DB;
	PQclear(r);
	return STEP_STOP;
}

/* ---- the stages ------------------------------------------------------- */

/* The audit trail of the capsule the final prompt used. 0, or -1 when
 * the database failed. */
static int
record_capsule(PGconn *c, const struct job *j)
{
	const char *p[5] = { j->id, j->capsule_id, j->capsule_name,
		j->capsule_shared ? "true" : "false", j->style };
	PGresult *r;

	if (j->capsule_id[0] == '\0' || j->style == NULL)
		return 0;
	r = exec_q(c, "INSERT INTO public.image_generation_job_events"
	    " (job_id, event, detail) VALUES ($1, 'style_capsule_applied',"
	    " jsonb_build_object('capsuleId', $2::uuid, 'name', $3::text,"
	    " 'shared', $4::boolean, 'styleText', $5::text))", 5, p);
	if (r == NULL)
		return -1;
	PQclear(r);
	log_info("job %s: style capsule %s applied", j->id, j->capsule_id);
	return 0;
}

/*
 * Reads an inpaint input (the source or the mask, named by what) from our
 * own bucket: NULL with *data (malloc'd, caller frees), *len and *mime,
 * or the error code to fail the job with and msg.
 */
static const char *
load_input(struct storage *sg, const struct cfg *cf, const char *what,
    const char *url, unsigned char **data, size_t *len, const char **mime,
    char *msg, size_t msglen)
{
	const char *path;
	enum stor_err se;
	char smsg[256];
	int w, h;

	*data = NULL;
	*len = 0;
	path = storage_path_of_url(sg, url);
	if (path == NULL) {
		snprintf(msg, msglen, "%s: not an object of this service's bucket", what);
		return "INVALID_REQUEST";
	}
	se = storage_get(sg, path, (size_t)cf->provider_max_bytes, data, len, smsg,
	    sizeof(smsg));
	if (se != STOR_OK) {
		snprintf(msg, msglen, "%s: %s", what, smsg);
		return se == STOR_TEMPORARY ? "TEMPORARY" : "INVALID_REQUEST";
	}
	if (image_sniff(*data, *len, mime, &w, &h) != 0) {
		free(*data);
		*data = NULL;
		snprintf(msg, msglen, "%s: not a PNG, JPEG or WebP image", what);
		return "INVALID_REQUEST";
	}
	return NULL;
}

/*
 * The provider, at most GEN_MAX_TRIES calls: only RATE_LIMIT, TEMPORARY
 * and TIMEOUT are retried. The wait is what the provider asked for
 * (Retry-After, RetryInfo), exactly; else a capped exponential backoff
 * with up to +50% jitter. A wait that would pass the deadline is not
 * taken: the last error stands.
 */
static enum prov_err
generate(struct provider *pv, const struct prov_request *req,
    struct prov_result *res, const struct job *j)
{
	enum prov_err e;
	long long wait, backoff = GEN_BACKOFF_MS;
	unsigned char rnd;
	int attempt;

	for (attempt = 1;; attempt++) {
		prov_result_free(res);
		e = provider_generate(pv, req, res);
		if (e == PROV_OK || !prov_err_retryable(e) || attempt >= GEN_MAX_TRIES)
			return e;
		if (res->retry_after_ms > 0) {
			wait = res->retry_after_ms;
		} else {
			wait = backoff;
			if (RAND_bytes(&rnd, 1) == 1)
				wait += wait * rnd / 512;
		}
		if (req->deadline_ms != 0 && clock_mono_ms() + wait >= req->deadline_ms) {
			log_info("job %s: %s, no retry: a %lld ms wait passes the deadline",
			    j->id, prov_err_code(e), wait);
			return e;
		}
		log_info("job %s: %s, retry %d in %lld ms", j->id, prov_err_code(e),
		    attempt, wait);
		clock_sleep_ms(wait);
		backoff = backoff * 2 > GEN_BACKOFF_MAX_MS ? GEN_BACKOFF_MAX_MS :
		    backoff * 2;
	}
}

/* Runs a claimed job to its end. STEP_DB when the database went away
 * (the job is left to the sweeper). */
static enum step
run_one(PGconn *c, const struct cfg *cf, struct provider *pv,
    struct storage *sg, const struct job *j)
{
	struct prov_request req;
	struct prov_result res;
	struct prompt_in pin;
	struct timespec now;
	char path[1024], url[2048], msg[512], cost[32], w[16], h[16];
	const char *p[9], *code;
	char *final_prompt = NULL;
	unsigned char *source = NULL, *mask = NULL;
	enum step s = STEP_DB;
	enum stor_err se;
	enum prov_err pe;
	PGresult *r;
	int try;

	memset(&res, 0, sizeof(res));
	memset(&req, 0, sizeof(req));
	/* A hard stop past the deadline: the sweeper then recovers the job. */
	alarm((unsigned)(cf->job_timeout + DEADLINE_GRACE_S / 2));
	memset(&pin, 0, sizeof(pin));
	pin.job_type = j->job_type;
	pin.prompt = j->prompt;
	pin.style = j->style;
	pin.has_mask = j->mask_url != NULL;
	final_prompt = prompt_compose(&pin);
	if (final_prompt == NULL)
		goto out;
	s = advance(c, j, "processing", "generating", final_prompt);
	if (s != STEP_OK)
		goto out;
	if (record_capsule(c, j) != 0) {
		s = STEP_DB;
		goto out;
	}

	req.job_type = j->job_type;
	req.prompt = final_prompt;
	req.width = j->width;
	req.height = j->height;
	req.deadline_ms = clock_mono_ms() + cf->job_timeout * 1000;
	if (strcmp(j->job_type, "inpaint") == 0 && j->source_url != NULL) {
		code = load_input(sg, cf, "sourceImageUrl", j->source_url, &source,
		    &req.source_len, &req.source_mime, msg, sizeof(msg));
		if (code == NULL && j->mask_url != NULL)
			code = load_input(sg, cf, "maskImageUrl", j->mask_url, &mask,
			    &req.mask_len, &req.mask_mime, msg, sizeof(msg));
		if (code != NULL) {
			s = fail_job(c, j, "generating", "generating", code, msg);
			goto out;
		}
		req.source = source;
		req.mask = mask;
	}
	pe = generate(pv, &req, &res, j);
	if (pe != PROV_OK) {
		s = fail_job(c, j, "generating", "generating", prov_err_code(pe),
		    res.message[0] != '\0' ? res.message : prov_err_code(pe));
		goto out;
	}
	s = advance(c, j, "generating", "uploading", NULL);
	if (s != STEP_OK)
		goto out;

	clock_gettime(CLOCK_REALTIME, &now);
	if (storage_path_for(path, sizeof(path), j->job_type, j->project_id,
	    j->branch_id, j->id, j->asset_id[0] ? j->asset_id : NULL,
	    j->scene_id[0] ? j->scene_id : NULL, j->shot_id[0] ? j->shot_id : NULL,
	    (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000, res.mime) != 0 ||
	    storage_public_url(sg, path, url, sizeof(url)) != 0) {
		s = fail_job(c, j, "uploading", "uploading", "STORAGE_ERROR",
		    "cannot build the object path");
		goto out;
	}
	for (try = 1;; try++) {
		se = storage_put(sg, path, res.data, res.len, res.mime, msg, sizeof(msg));
		if (se != STOR_TEMPORARY || try == 3)
			break;
		clock_sleep_ms(250LL << try);
	}
	if (se != STOR_OK) {
		s = fail_job(c, j, "uploading", "uploading", "STORAGE_ERROR", msg);
		goto out;
	}

	snprintf(cost, sizeof(cost), "%.6f", res.cost_usd >= 0 ? res.cost_usd : 0.0);
	snprintf(w, sizeof(w), "%d", res.width);
	snprintf(h, sizeof(h), "%d", res.height);
	p[0] = j->id;
	p[1] = path;
	p[2] = url;
	p[3] = res.cost_usd >= 0 ? cost : NULL;
	p[4] = res.mime;
	p[5] = w;
	p[6] = h;
	for (try = 1; try <= PERSIST_TRIES; try++) {
		r = exec_q(c, "UPDATE public.image_generation_jobs SET status = 'completed',"
		    " storage_path = $2, public_url = $3, actual_cost = $4::numeric,"
		    " mime_type = $5, image_width = $6::int, image_height = $7::int"
		    " WHERE id = $1 AND status = 'uploading' AND NOT cancel_requested", 7, p);
		if (r != NULL)
			break;
		if (PQstatus(c) != CONNECTION_OK)
			break;
		clock_sleep_ms(200);
	}
	if (r != NULL && atoi(PQcmdTuples(r)) == 1) {
		PQclear(r);
		log_info("job %s completed: %s", j->id, path);
		s = STEP_OK;
		goto out;
	}
	PQclear(r);
	/* Not recorded: never leave an object no row points at. */
	if (storage_delete(sg, path, msg, sizeof(msg)) != STOR_OK)
		log_error("job %s: orphan %s could not be deleted: %s", j->id, path, msg);
	if (r != NULL) {
		s = advance(c, j, "uploading", "uploading", NULL);	/* canceled? */
		goto out;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		s = STEP_DB;
		goto out;
	}
	s = fail_job(c, j, "uploading", "persisting", "PERSIST_ERROR",
	    "the completed job could not be recorded");
out:
	alarm(0);
	prov_result_free(&res);
	free(final_prompt);
	free(source);
	free(mask);
	return s;
}

/* Jobs waiting now; -1 on error. */
static int
queued_count(PGconn *c)
{
	PGresult *r = exec_q(c, "SELECT count(*) FROM public.image_generation_jobs"
	    " WHERE status = 'queued'", 0, NULL);
	int n;

	if (r == NULL)
		return -1;
	n = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return n;
}

int
exec_run(const struct cfg *c, const char *job_id, int slot_fd)
{
	struct provider pv;
	struct storage sg;
	struct job j;
	PGconn *conn = NULL;
	PGresult *r;
	char err[512];
	int rc = 1, got, opened_p = 0, opened_s = 0, done = 0;

	/* The executor works for no user: the worker role, as service_role. */
	conn = db_connect_worker(c, "imagegen-executor", err, sizeof(err));
	if (conn == NULL) {
		log_warn("executor cannot connect, job stays queued: %s", err);
		goto out;
	}
	if (provider_open(&pv, c, err, sizeof(err)) != 0) {
		log_error("executor: %s", err);
		goto out;
	}
	opened_p = 1;
	if (storage_open(&sg, c, err, sizeof(err)) != 0) {
		log_error("executor: %s", err);
		goto out;
	}
	opened_s = 1;
	for (;;) {
		got = claim(conn, c, job_id, &j);
		if (got < 0)
			goto out;
		if (got == 0 && job_id != NULL) {
			job_id = NULL;	/* taken by another executor: take the next */
			continue;
		}
		if (got == 0) {
			/* Give the slot back before the last look: a responder that
			 * found every slot taken while we held ours committed its job
			 * before it tried, so it is queued by now and we see it. */
			if (slot_fd >= 0) {
				close(slot_fd);
				slot_fd = -1;
			}
			if (queued_count(conn) <= 0)
				break;
			slot_fd = slot_acquire(c);
			if (slot_fd < 0)
				break;	/* another executor has it */
			continue;
		}
		job_id = NULL;
		if (run_one(conn, c, &pv, &sg, &j) == STEP_DB) {
			job_free(&j);
			goto out;	/* the sweeper requeues it: our lock died */
		}
		r = PQexecParams(conn, "SELECT pg_advisory_unlock(hashtextextended($1::text, 0))",
		    1, NULL, (const char *const[]){ j.id }, NULL, NULL, 0);
		PQclear(r);
		job_free(&j);
		done++;
	}
	log_debug("executor done after %d jobs", done);
	rc = 0;
out:
	if (slot_fd >= 0)
		close(slot_fd);
	if (opened_s)
		storage_close(&sg);
	if (opened_p)
		provider_close(&pv);
	PQfinish(conn);
	return rc;
}

/* ---- recovery --------------------------------------------------------- */

int
exec_sweep(PGconn *conn, const struct cfg *c, struct sweep_stats *st)
{
	char grace[16];
	const char *p[2] = { grace, NULL };
	PGresult *r, *u;
	int i, n, locked, overdue, requeue;
	const char *id, *status, *code;

	memset(st, 0, sizeof(*st));
	snprintf(grace, sizeof(grace), "%d", DEADLINE_GRACE_S);
	r = exec_q(conn, "SELECT id, status, attempts < max_attempts,"
	    " deadline_at IS NOT NULL AND deadline_at < now() - $1::int * interval '1 second',"
	    " pg_try_advisory_lock(hashtextextended(id::text, 0))"
	    " FROM public.image_generation_jobs"
	    " WHERE status IN ('processing', 'generating', 'uploading')", 1, p);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	for (i = 0; i < n; i++) {
		id = PQgetvalue(r, i, 0);
		status = PQgetvalue(r, i, 1);
		requeue = strcmp(PQgetvalue(r, i, 2), "t") == 0;
		overdue = strcmp(PQgetvalue(r, i, 3), "t") == 0;
		locked = strcmp(PQgetvalue(r, i, 4), "t") == 0;
		if (!locked && !overdue)
			continue;	/* its executor is alive and in time */
		code = overdue ? "JOB_TIMEOUT" : "WORKER_LOST";
		{
			const char *q[4] = { id, status, code,
				strcmp(status, "uploading") == 0 ? "uploading" : "generating" };

			u = exec_q(conn, requeue ?
			    "UPDATE public.image_generation_jobs SET status = 'queued',"
			    " error_code = $3, error_message = 'executor lost; requeued',"
			    " deadline_at = NULL WHERE id = $1 AND status = $2" :
			    "UPDATE public.image_generation_jobs SET status = 'failed',"
			    " error_code = $3, failure_stage = $4,"
			    " error_message = 'executor lost and no attempts left'"
			    " WHERE id = $1 AND status = $2", requeue ? 3 : 4, q);
		}
		if (u != NULL && atoi(PQcmdTuples(u)) == 1) {
			log_warn("job %s (%s): %s, %s", id, status, code,
			    requeue ? "requeued" : "failed");
			if (requeue)
				st->requeued++;
			else
				st->failed++;
		}
		PQclear(u);
		if (locked)
			PQclear(PQexecParams(conn, "SELECT pg_advisory_unlock(hashtextextended($1::text, 0))",
			    1, NULL, &id, NULL, NULL, 0));
	}
	PQclear(r);
	r = exec_q(conn, "SELECT count(*) FROM public.image_generation_jobs WHERE status = 'queued'",
	    0, NULL);
	if (r == NULL)
		return -1;
	st->queued_left = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

int
exec_sweep_and_kick(const struct cfg *c, struct sweep_stats *st)
{
	PGconn *conn;
	char err[512];
	int i, rc;

	conn = db_connect_worker(c, "imagegen-sweeper", err, sizeof(err));
	if (conn == NULL) {
		log_warn("sweeper cannot connect: %s", err);
		return -1;
	}
	rc = exec_sweep(conn, c, st);
	PQfinish(conn);
	if (rc != 0)
		return rc;
	/* One executor per queued job up to the free slots; each then keeps
	 * taking queued jobs until none are left. */
	for (i = 0; i < st->queued_left; i++)
		if (exec_spawn(c, NULL) != 1)
			break;
	return 0;
}
