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
#include "exec.h"
#include "log.h"
#include "provider.h"
#include "slots.h"
#include "storage.h"

/* Serialises claims so the running-jobs cap is exact across executors. */
#define CLAIM_LOCK_KEY "7596237913650"
#define PERSIST_TRIES 3
#define DEADLINE_GRACE_S 10	/* past the deadline, the executor is dead */

struct job {
	char id[37], project_id[37], branch_id[37], job_type[16];
	char asset_id[37], scene_id[37], shot_id[37];
	char *prompt, *style;
	int width, height, attempts, max_attempts;
};

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(long long ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

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
	PGresult *r = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
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
	    "  WHERE s.id = j.visual_style_capsule_id),"
	    "  pg_advisory_lock(hashtextextended(j.id::text, 0))", 3, p);
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
	if (j->prompt == NULL) {
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

static char *
compose_prompt(const struct job *j)
{
	size_t n;
	char *s;

	if (j->style == NULL || j->style[0] == '\0')
		return strdup(j->prompt);
	n = strlen(j->prompt) + strlen(j->style) + 16;
	s = malloc(n);
	if (s != NULL)
		snprintf(s, n, "%s\n\nStyle: %s", j->prompt, j->style);
	return s;
}

/* The provider, with capped exponential backoff and jitter for the
 * retryable classes, never past the deadline. */
static enum prov_err
generate(struct provider *pv, const struct prov_request *req,
    struct prov_result *res, const struct job *j)
{
	enum prov_err e;
	long long wait, backoff = 500;
	unsigned char rnd;
	int attempt;

	for (attempt = 1;; attempt++) {
		prov_result_free(res);
		e = provider_generate(pv, req, res);
		if (e == PROV_OK || !prov_err_retryable(e) || attempt >= 4)
			return e;
		wait = res->retry_after_ms > 0 ? res->retry_after_ms : backoff;
		if (RAND_bytes(&rnd, 1) == 1)
			wait += wait * rnd / 512;	/* up to +50% jitter */
		if (req->deadline_ms != 0 && mono_ms() + wait >= req->deadline_ms)
			return e;
		log_info("job %s: %s, retry %d in %lld ms", j->id, prov_err_code(e),
		    attempt, wait);
		sleep_ms(wait);
		backoff = backoff * 2 > 8000 ? 8000 : backoff * 2;
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
	struct timespec now;
	char path[1024], url[2048], msg[512], cost[32], w[16], h[16];
	const char *p[9];
	char *final_prompt = NULL;
	enum step s = STEP_DB;
	enum stor_err se;
	enum prov_err pe;
	PGresult *r;
	int try;

	memset(&res, 0, sizeof(res));
	/* A hard stop past the deadline: the sweeper then recovers the job. */
	alarm((unsigned)(cf->job_timeout + DEADLINE_GRACE_S / 2));
	final_prompt = compose_prompt(j);
	if (final_prompt == NULL)
		goto out;
	s = advance(c, j, "processing", "generating", final_prompt);
	if (s != STEP_OK)
		goto out;

	memset(&req, 0, sizeof(req));
	req.job_type = j->job_type;
	req.prompt = final_prompt;
	req.width = j->width;
	req.height = j->height;
	req.deadline_ms = mono_ms() + cf->job_timeout * 1000;
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
		sleep_ms(250LL << try);
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
		sleep_ms(200);
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
	return s;
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

	(void)slot_fd;	/* held, not used: the lock ends with the process */
	conn = db_connect(c, "imagegen-executor", err, sizeof(err));
	if (conn == NULL) {
		log_warn("executor cannot connect, job stays queued: %s", err);
		goto out;
	}
	/* The executor works for no user: service_role, which RLS lets by. */
	r = exec_q(conn, "SET ROLE service_role", 0, NULL);
	if (r == NULL)
		goto out;
	PQclear(r);
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
		if (got == 0)
			break;
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
			    " WHERE id = $1 AND status = $2", 4, q);
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
	PGresult *r;
	char err[512];
	int i, rc;

	conn = db_connect(c, "imagegen-sweeper", err, sizeof(err));
	if (conn == NULL) {
		log_warn("sweeper cannot connect: %s", err);
		return -1;
	}
	r = exec_q(conn, "SET ROLE service_role", 0, NULL);
	PQclear(r);
	rc = r != NULL ? exec_sweep(conn, c, st) : -1;
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
