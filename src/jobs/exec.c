/* exec.c - the executor: double fork, claim, generate, spool, upload, complete. */
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
#include "spool.h"
#include "storage.h"

/* A capsule is applied when the job's owner may read it: their own, or a
 * shared one (no owner, or public); the same rule as its RLS policy. */
#define CAPSULE_VISIBLE " AND (s.user_id = j.user_id OR s.user_id IS NULL OR s.is_public)"

/*
 * Serialises claims so the running-jobs cap is exact across executors.
 * The key is derived from a namespaced name, not a bare number, so it
 * cannot meet another application's advisory locks in a shared (Supabase)
 * database by accident: docs/RUNNING.md gives its value.
 */
#define CLAIM_LOCK_KEY "hashtextextended('imagegen:claim', 0)"
/* A job's own lock: held by its executor for as long as it runs it. */
#define JOB_LOCK_KEY "hashtextextended($1::text, 0)"
#define CLAIM_CANDIDATES 32	/* queued jobs looked at per claim */
#define DEADLINE_GRACE_S 10	/* past the deadline, the executor is dead */
#define PERSIST_TRIES 3		/* a refused (not lost) completing write */
#define DEADLINE_SLACK_MS 100	/* a call that ended this near it hit it */
#define GEN_MAX_TRIES 4		/* provider calls per job attempt */
#define GEN_BACKOFF_MS 500	/* first wait, doubled each retry … */
#define GEN_BACKOFF_MAX_MS 8000	/* … up to this */
#define PUT_BACKOFF_MS 250	/* storage: first wait, doubled … */
#define PUT_BACKOFF_MAX_MS 4000	/* … up to this, until the deadline */
#define DB_BACKOFF_MS 200	/* a lost database: first wait, doubled … */
#define DB_BACKOFF_MAX_MS 2000	/* … up to this, until the deadline */
#define SWEEP_BATCH 256		/* objects and spool files looked at per pass */
#define RELOCK_WAIT_MS 50	/* a job's lock asked for again after a reconnect */
#define EXEC_SLEEP_STEP_MS 100	/* a wait looks at the stop flag this often */

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
	/* Where an earlier attempt meant to store the image ("" when none),
	 * and the cost it recorded for it (< 0 when none). */
	char *storage_path;
	double recorded_cost;
	/* This claim's fencing token: every write of ours names it. */
	char attempt[16];
};

/* ---- spawning --------------------------------------------------------- */

/* Set by SIGTERM, SIGINT or SIGQUIT in an executor: stop at the next stage
 * boundary, give the job back to the queue, exit. */
static volatile sig_atomic_t exec_stop;

static void
on_stop(int sig)
{
	(void)sig;
	exec_stop = 1;
}

/* The grandchild's own signals: handlers of its own, nothing of the
 * responder's (which blocks its stop signals outside ppoll() and would
 * leave them pending here forever), and an empty mask. */
static void
executor_signals(void)
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGALRM, SIG_DFL);	/* the hard stop past the deadline */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Sleeps ms, in short steps, or less when told to stop: a stop signal is
 * acted on in bounded time, not after a Retry-After or backoff wait. */
static void
exec_sleep_ms(long long ms)
{
	long long end = clock_mono_ms() + ms, left;

	for (;;) {
		left = end - clock_mono_ms();
		if (exec_stop || left <= 0)
			break;
		clock_sleep_ms(left < EXEC_SLEEP_STEP_MS ? left : EXEC_SLEEP_STEP_MS);
	}
}

/* ms doubled, up to max: the next wait of a capped exponential backoff. */
static long long
doubled(long long ms, long long max)
{
	return ms * 2 > max ? max : ms * 2;
}

/* ms plus up to 50% of it, at random, so that waiters do not come back
 * all at once. */
static long long
jittered(long long ms)
{
	unsigned char rnd;

	return RAND_bytes(&rnd, 1) == 1 ? ms + ms * rnd / 512 : ms;
}

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
	pid_t pid, grandchild, w;
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
		/* Test-only: the second fork failing, as under RLIMIT_NPROC. */
		if (c->test_fail_second_fork) {
			grandchild = -1;
			errno = EAGAIN;
		} else {
			grandchild = fork();
		}
		if (grandchild < 0) {
			log_error("executor for job %s not started: fork: %s",
			    id[0] != '\0' ? id : "(next)", strerror(errno));
			_exit(1);	/* the slot dies with us; the job stays queued */
		}
		if (grandchild > 0)
			_exit(0);	/* the middle child: reaped below */
		executor_signals();
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
	do {
		w = waitpid(pid, &st, 0);
	} while (w < 0 && errno == EINTR);
	if (w == pid && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
		return -1;	/* logged by the middle child; the sweeper starts it */
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
	free(j->storage_path);
	memset(j, 0, sizeof(*j));
}

static void
cpy(char *dst, size_t n, PGresult *r, int col)
{
	snprintf(dst, n, "%s", PQgetisnull(r, 0, col) ? "" : PQgetvalue(r, 0, col));
}

static void
job_unlock(PGconn *c, const char *id)
{
	PQclear(PQexecParams(c, "SELECT pg_advisory_unlock(" JOB_LOCK_KEY ")", 1, NULL,
	    &id, NULL, NULL, 0));
}

enum claim_rc { CLAIM_ERROR = -1, CLAIM_NONE = 0, CLAIM_GOT = 1, CLAIM_CAP_FULL = 2 };

/* queued → processing for id, whose advisory lock we hold: attempts + 1, a
 * deadline. CLAIM_GOT with *j filled, CLAIM_NONE when it is no longer
 * queued (canceled meanwhile), CLAIM_ERROR. */
static enum claim_rc
claim_one(PGconn *c, const struct cfg *cf, const char *id, struct job *j)
{
	char timeout[24];
	const char *p[2] = { id, timeout };
	PGresult *r;
	enum claim_rc rc = CLAIM_ERROR;

	snprintf(timeout, sizeof(timeout), "%ld", cf->job_timeout);
	r = exec_q(c, "UPDATE public.image_generation_jobs j SET status = 'processing',"
	    "  attempts = j.attempts + 1,"
	    "  deadline_at = now() + $2::int * interval '1 second'"
	    " WHERE j.id = $1 AND j.status = 'queued'"
	    " RETURNING j.id, j.project_id, j.branch_id, j.job_type, j.prompt,"
	    "  j.width, j.height, j.asset_id, j.scene_id, j.shot_id, j.attempts,"
	    "  j.max_attempts, (SELECT s.style_text FROM public.visual_style_capsules s"
	    "  WHERE s.id = j.visual_style_capsule_id" CAPSULE_VISIBLE "),"
	    "  j.storage_path,"
	    "  (SELECT s.id FROM public.visual_style_capsules s"
	    "  WHERE s.id = j.visual_style_capsule_id" CAPSULE_VISIBLE "),"
	    "  (SELECT s.name FROM public.visual_style_capsules s"
	    "  WHERE s.id = j.visual_style_capsule_id" CAPSULE_VISIBLE "),"
	    "  (SELECT s.user_id IS DISTINCT FROM j.user_id"
	    "  FROM public.visual_style_capsules s"
	    "  WHERE s.id = j.visual_style_capsule_id" CAPSULE_VISIBLE "),"
	    "  j.source_image_url, j.mask_image_url, j.actual_cost", 2, p);
	if (r == NULL)
		return CLAIM_ERROR;
	if (PQntuples(r) == 0) {
		rc = CLAIM_NONE;
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
	cpy(j->attempt, sizeof(j->attempt), r, 10);
	j->max_attempts = atoi(PQgetvalue(r, 0, 11));
	j->style = PQgetisnull(r, 0, 12) ? NULL : strdup(PQgetvalue(r, 0, 12));
	j->storage_path = strdup(PQgetisnull(r, 0, 13) ? "" : PQgetvalue(r, 0, 13));
	cpy(j->capsule_id, sizeof(j->capsule_id), r, 14);
	j->capsule_name = PQgetisnull(r, 0, 15) ? NULL : strdup(PQgetvalue(r, 0, 15));
	j->capsule_shared = strcmp(PQgetvalue(r, 0, 16), "t") == 0;
	j->source_url = PQgetisnull(r, 0, 17) ? NULL : strdup(PQgetvalue(r, 0, 17));
	j->mask_url = PQgetisnull(r, 0, 18) ? NULL : strdup(PQgetvalue(r, 0, 18));
	j->recorded_cost = PQgetisnull(r, 0, 19) ? -1 : atof(PQgetvalue(r, 0, 19));
	if (j->prompt == NULL || j->storage_path == NULL ||
	    (!PQgetisnull(r, 0, 17) && j->source_url == NULL) ||
	    (!PQgetisnull(r, 0, 18) && j->mask_url == NULL)) {
		job_free(j);
		goto out;
	}
	rc = CLAIM_GOT;
out:
	PQclear(r);
	return rc;
}

/*
 * Claims job_id (or the oldest queued job) under the deployment-wide cap,
 * inside the global claim lock: queued → processing with the job's
 * session advisory lock taken before the claim commits, so the sweeper
 * never sees it running without its lock. A queued job whose lock is held
 * (its old executor still lives) is skipped with a try-lock, never waited
 * for: a wait here would hold the claim lock and stall every claimer.
 * CLAIM_GOT, CLAIM_NONE (nothing claimable), CLAIM_CAP_FULL (the cap is
 * reached; whatever is queued waits), CLAIM_ERROR.
 */
static enum claim_rc
claim(PGconn *c, const struct cfg *cf, const char *job_id, struct job *j)
{
	char cap[24], limit[16];
	const char *pc[1] = { cap }, *pq[2] = { job_id, limit };
	const char *id;
	PGresult *r = NULL, *l;
	enum claim_rc rc = CLAIM_ERROR;
	int i, n, locked;

	memset(j, 0, sizeof(*j));
	snprintf(cap, sizeof(cap), "%ld", cf->max_running_jobs);
	snprintf(limit, sizeof(limit), "%d", CLAIM_CANDIDATES);
	r = exec_q(c, "BEGIN", 0, NULL);
	if (r == NULL)
		return CLAIM_ERROR;
	PQclear(r);
	r = exec_q(c, "SELECT pg_advisory_xact_lock(" CLAIM_LOCK_KEY ")", 0, NULL);
	if (r == NULL)
		goto out;
	PQclear(r);
	/* The cap first: at the cap, whatever is queued waits. */
	r = exec_q(c, "SELECT count(*) >= $1::int FROM public.image_generation_jobs"
	    " WHERE status IN ('processing', 'generating', 'uploading')", 1, pc);
	if (r == NULL)
		goto out;
	if (strcmp(PQgetvalue(r, 0, 0), "t") == 0) {
		rc = CLAIM_CAP_FULL;
		goto out;
	}
	PQclear(r);
	/* Then the oldest queued jobs, the first whose lock is free. */
	r = exec_q(c, "SELECT id::text FROM public.image_generation_jobs"
	    " WHERE status = 'queued' AND ($1::uuid IS NULL OR id = $1)"
	    " ORDER BY created_at, id LIMIT $2::int", 2, pq);
	if (r == NULL)
		goto out;
	n = PQntuples(r);
	rc = CLAIM_NONE;
	for (i = 0; i < n; i++) {
		id = PQgetvalue(r, i, 0);
		l = exec_q(c, "SELECT pg_try_advisory_lock(" JOB_LOCK_KEY ")", 1, &id);
		if (l == NULL) {
			rc = CLAIM_ERROR;
			break;
		}
		locked = strcmp(PQgetvalue(l, 0, 0), "t") == 0;
		PQclear(l);
		if (!locked) {
			log_debug("job %s: its lock is held (an old executor lives); skipped", id);
			continue;
		}
		rc = claim_one(c, cf, id, j);
		if (rc == CLAIM_GOT)
			break;
		job_unlock(c, id);	/* canceled meanwhile, or an error */
		if (rc == CLAIM_ERROR)
			break;
	}
out:
	PQclear(r);
	r = exec_q(c, rc != CLAIM_ERROR ? "COMMIT" : "ROLLBACK", 0, NULL);
	if (r == NULL && rc == CLAIM_GOT) {
		job_unlock(c, j->id);	/* the claim did not commit */
		job_free(j);
		rc = CLAIM_ERROR;
	}
	PQclear(r);
	return rc;
}

/* One claimed job at work: what every stage needs. */
struct run {
	PGconn *conn;
	const struct cfg *cf;
	struct provider *pv;
	struct storage *sg;
	const struct job *j;
	long long deadline_ms;		/* CLOCK_MONOTONIC: IMAGEGEN_JOB_TIMEOUT */
};

enum step { STEP_OK, STEP_STOP, STEP_DB };

/*
 * After the connection broke: connects again (the same settings), takes
 * the job's lock again so the sweeper sees it alive. 0 when the session
 * is back (even without the lock: every write is fenced by the attempt),
 * -1 when the database is still away.
 */
static int
reattach(struct run *r)
{
	const char *id = r->j->id;
	const char *p[2] = { r->j->id, r->j->attempt };
	PGresult *res;
	int locked, ours;

	PQreset(r->conn);
	db_forget();	/* a new session has no prepared statements */
	if (PQstatus(r->conn) != CONNECTION_OK)
		return -1;
	res = exec_q(r->conn, "SET ROLE service_role", 0, NULL);
	if (res == NULL)
		return -1;
	PQclear(res);
	/* A sweeper holds free locks while it walks the running jobs: wait
	 * for ours as long as the job is still our attempt (without the lock
	 * the next sweep would take us for dead), until the deadline. When
	 * another attempt has the job, go on: the fenced write finds it. */
	for (;;) {
		res = exec_q(r->conn, "SELECT pg_try_advisory_lock(" JOB_LOCK_KEY "),"
		    " EXISTS (SELECT 1 FROM public.image_generation_jobs WHERE id = $1::uuid"
		    "  AND attempts = $2::int"
		    "  AND status IN ('processing', 'generating', 'uploading'))", 2, p);
		if (res == NULL)
			return -1;
		locked = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		ours = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
		PQclear(res);
		if (locked || !ours)
			break;
		if (exec_stop || clock_mono_ms() + RELOCK_WAIT_MS >= r->deadline_ms) {
			log_warn("job %s: reconnected, but its lock stayed held elsewhere", id);
			return -1;
		}
		clock_sleep_ms(RELOCK_WAIT_MS);
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
job_write(struct run *r, const char *sql, int n, const char *const *p)
{
	long long backoff = DB_BACKOFF_MS;
	PGresult *res;
	int rows;

	for (;;) {
		res = exec_q(r->conn, sql, n, p);
		if (res != NULL) {
			rows = atoi(PQcmdTuples(res));
			PQclear(res);
			return rows;
		}
		if (PQstatus(r->conn) == CONNECTION_OK)
			return -1;	/* refused, not lost */
		for (;;) {
			if (exec_stop)
				return -1;	/* told to stop: the sweeper requeues it */
			if (clock_mono_ms() + backoff >= r->deadline_ms) {
				log_warn("job %s: the database stayed away until the deadline",
				    r->j->id);
				return -1;
			}
			exec_sleep_ms(backoff);
			backoff = doubled(backoff, DB_BACKOFF_MAX_MS);
			if (reattach(r) == 0)
				break;
		}
	}
}

/* Records why a running job went back to the queue: the row itself keeps no
 * error (GET must not show one on a queued job); the event log does. */
#define REQUEUE_SQL(cond) \
	"WITH u AS (UPDATE public.image_generation_jobs SET status = 'queued'," \
	" deadline_at = NULL WHERE " cond " RETURNING id)" \
	" INSERT INTO public.image_generation_job_events (job_id, event, detail)" \
	" SELECT id, 'requeued', jsonb_build_object('code', $4::text," \
	" 'message', $5::text, 'from', $2::text) FROM u"

static enum step not_ours(struct run *r, const char *from, const char *before);

/* The job back to the queue from status from, unless canceled meanwhile
 * (then canceled). Always STEP_STOP (or STEP_DB). */
static enum step
requeue(struct run *r, const char *from, const char *code, const char *why)
{
	const char *p[5] = { r->j->id, from, r->j->attempt, code, why };
	int n;

	n = job_write(r, REQUEUE_SQL("id = $1 AND status = $2 AND attempts = $3::int"
	    " AND NOT cancel_requested"), 5, p);
	if (n < 0)
		return STEP_DB;
	if (n == 1) {
		log_warn("job %s (%s): %s, requeued: %s", r->j->id, from, code, why);
		return STEP_STOP;
	}
	return not_ours(r, from, "the requeue");
}

/* A write of ours matched nothing at status from: the job became canceled
 * if that was asked for, else someone else (the sweeper) moved it and we
 * leave it. Always STEP_STOP (or STEP_DB). */
static enum step
not_ours(struct run *r, const char *from, const char *before)
{
	const char *p[3] = { r->j->id, from, r->j->attempt };
	int n;

	n = job_write(r, "UPDATE public.image_generation_jobs SET status = 'canceled'"
	    " WHERE id = $1 AND status = $2 AND attempts = $3::int AND cancel_requested",
	    3, p);
	if (n < 0)
		return STEP_DB;
	if (n == 1)
		log_info("job %s canceled before %s", r->j->id, before);
	else
		log_warn("job %s is no longer %s; leaving it", r->j->id, from);
	return STEP_STOP;
}

/* from → to unless canceled meanwhile, in which case the job becomes
 * canceled and the executor stops. STEP_STOP also when someone else (the
 * sweeper) moved the job. */
static enum step
advance(struct run *r, const char *from, const char *to, const char *final_prompt)
{
	const char *p[5] = { r->j->id, from, to, final_prompt, r->j->attempt };
	int n;

	n = job_write(r, "UPDATE public.image_generation_jobs SET status = $3,"
	    " final_prompt = coalesce($4, final_prompt)"
	    " WHERE id = $1 AND status IN ($2, $3) AND attempts = $5::int"
	    " AND NOT cancel_requested", 5, p);
	if (n < 0)
		return STEP_DB;
	if (n == 1)
		return STEP_OK;
	return not_ours(r, from, to);
}

static enum step
fail_job(struct run *r, const char *from, const char *stage, const char *code,
    const char *message)
{
	const char *p[6] = { r->j->id, from, stage, code, message, r->j->attempt };

	log_warn("job %s failed at %s: %s: %.200s", r->j->id, stage, code, message);
	if (job_write(r, "UPDATE public.image_generation_jobs SET status = 'failed',"
	    " failure_stage = $3, error_code = $4, error_message = left($5, 1000)"
	    " WHERE id = $1 AND status = $2 AND attempts = $6::int", 6, p) < 0)
		return STEP_DB;
	return STEP_STOP;
}

/* The deadline passed at stage (status from): requeued while attempts
 * remain, else failed JOB_TIMEOUT there, as the sweeper rules. */
static enum step
out_of_time(struct run *r, const char *from, const char *stage)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "the job ran past IMAGEGEN_JOB_TIMEOUT (%ld s) while %s",
	    r->cf->job_timeout, stage);
	if (r->j->attempts < r->j->max_attempts)
		return requeue(r, from, "JOB_TIMEOUT", msg);
	return fail_job(r, from, stage, "JOB_TIMEOUT", msg);
}

/*
 * Ends a job of ours that is uploading, without completing it: failed
 * with code at stage, or canceled when code is NULL. Only while the job
 * is still our attempt is its object deleted (another attempt may have
 * stored, or completed the job with, an object at the same path); the
 * row forgets the path only when that worked, else the sweeper deletes
 * it later. STEP_STOP or STEP_DB.
 */
static enum step
end_uploading(struct run *r, const char *path, const char *stage, const char *code,
    const char *message)
{
	char msg[256];
	const char *p[6] = { r->j->id, r->j->attempt, "true", stage, code, message };
	int n;

	n = job_write(r, "SELECT 1 FROM public.image_generation_jobs WHERE id = $1"
	    " AND status = 'uploading' AND attempts = $2::int", 2, p);
	if (n < 0)
		return STEP_DB;
	if (n == 0) {
		log_warn("job %s is no longer ours; its object is left to its owner", r->j->id);
		return STEP_STOP;
	}
	if (storage_delete(r->sg, path, msg, sizeof(msg)) != STOR_OK) {
		log_error("job %s: object %s could not be deleted (the sweeper will): %s",
		    r->j->id, path, msg);
		p[2] = "false";
	}
	if (code == NULL) {
		n = job_write(r, "UPDATE public.image_generation_jobs SET status = 'canceled',"
		    " storage_path = CASE WHEN $3::boolean THEN NULL ELSE storage_path END,"
		    " public_url = CASE WHEN $3::boolean THEN NULL ELSE public_url END"
		    " WHERE id = $1 AND status = 'uploading' AND attempts = $2::int", 3, p);
		if (n == 1)
			log_info("job %s canceled while uploading", r->j->id);
	} else {
		log_warn("job %s failed at %s: %s: %.200s", r->j->id, stage, code, message);
		n = job_write(r, "UPDATE public.image_generation_jobs SET status = 'failed',"
		    " failure_stage = $4, error_code = $5, error_message = left($6, 1000),"
		    " storage_path = CASE WHEN $3::boolean THEN NULL ELSE storage_path END,"
		    " public_url = CASE WHEN $3::boolean THEN NULL ELSE public_url END"
		    " WHERE id = $1 AND status = 'uploading' AND attempts = $2::int", 6, p);
	}
	return n < 0 ? STEP_DB : STEP_STOP;
}

/* The upload cannot happen before the deadline (code, msg): the next
 * attempt re-uploads the spooled image to the same path while attempts
 * remain; else the job fails at uploading, its object deleted. */
static enum step
give_up_uploading(struct run *r, const char *path, const char *code, const char *msg)
{
	if (r->j->attempts < r->j->max_attempts)
		return requeue(r, "uploading", code, msg);
	return end_uploading(r, path, "uploading", code, msg);
}

/* A stage boundary: a stop signal gives the job back (its spooled image,
 * if any, stays for the next attempt). STEP_OK to go on. */
static enum step
boundary(struct run *r, const char *status)
{
	if (!exec_stop)
		return STEP_OK;
	return requeue(r, status, "EXECUTOR_STOPPED", "the executor was told to stop");
}

/*
 * Deletes the object of a job that ended without completing and forgets
 * its path, so no object is left that no completed row points at. conn may
 * be the sweeper's. 0, or -1 (logged; the sweeper tries again).
 */
static int
drop_object(PGconn *conn, struct storage *sg, const char *id, const char *path)
{
	const char *p[2] = { id, path };
	char msg[256];
	PGresult *r;

	if (storage_delete(sg, path, msg, sizeof(msg)) != STOR_OK) {
		log_error("job %s: object %s could not be deleted: %s", id, path, msg);
		return -1;
	}
	r = exec_q(conn, "UPDATE public.image_generation_jobs SET storage_path = NULL,"
	    " public_url = NULL WHERE id = $1 AND storage_path = $2"
	    " AND status IN ('failed', 'canceled')", 2, p);
	if (r == NULL)
		return -1;
	if (atoi(PQcmdTuples(r)) == 1)
		log_info("job %s ended without completing: object %s removed", id, path);
	PQclear(r);
	return 0;
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
	char path[STORAGE_PATH_MAX + 1], smsg[256];
	enum stor_err se;
	int w, h;

	*data = NULL;
	*len = 0;
	if (storage_path_of_url(sg, url, path, sizeof(path)) != 0) {
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

/* One failed provider call, counted for /metrics'
 * imagegen_provider_errors_total (sql/009_job_totals.sql). Best effort: a
 * count lost with the database is not worth failing the job for. */
static void
count_provider_error(PGconn *c, enum prov_err e)
{
	const char *code = prov_err_code(e);
	PGresult *r;

	if (c == NULL)
		return;
	r = exec_q(c, "INSERT INTO public.image_provider_error_totals AS t (code, errors)"
	    " VALUES ($1, 1) ON CONFLICT (code) DO UPDATE SET errors = t.errors + 1",
	    1, &code);
	PQclear(r);
}

/*
 * The provider, at most GEN_MAX_TRIES calls: only RATE_LIMIT, TEMPORARY
 * and TIMEOUT are retried. The wait is what the provider asked for
 * (Retry-After, RetryInfo), exactly; else a capped exponential backoff
 * with up to +50% jitter. A wait that would pass the deadline is not
 * taken: the last error stands.
 */
static enum prov_err
generate(struct run *r, const struct prov_request *req,
    struct prov_result *res, enum step *lost)
{
	const struct job *j = r->j;
	const char *p[2] = { j->id, j->attempt };
	enum prov_err e;
	long long wait, backoff = GEN_BACKOFF_MS;
	int attempt, n;

	*lost = STEP_OK;
	for (attempt = 1;; attempt++) {
		if (attempt > 1 && exec_stop)
			return e;	/* told to stop: the caller gives the job back */
		/* Every call is paid for: before a retry, the job must still be
		 * ours (a Postgres restart frees our lock, and a sweeper that
		 * took us for dead may have given the job to another executor). */
		if (attempt > 1) {
			n = job_write(r, "SELECT 1 FROM public.image_generation_jobs"
			    " WHERE id = $1 AND attempts = $2::int AND status = 'generating'"
			    " AND NOT cancel_requested", 2, p);
			if (n != 1) {
				log_warn("job %s: %s before retry %d; not calling the provider",
				    j->id, n < 0 ? "the database is away" :
				    "no longer ours (requeued or canceled)", attempt - 1);
				*lost = n < 0 ? STEP_DB : STEP_STOP;
				return e;
			}
		}
		prov_result_free(res);
		e = provider_generate(r->pv, req, res);
		if (e != PROV_OK)
			count_provider_error(r->conn, e);
		if (e == PROV_OK || !prov_err_retryable(e) || attempt >= GEN_MAX_TRIES)
			return e;
		if (res->retry_after_ms > 0) {
			wait = res->retry_after_ms;
		} else {
			wait = jittered(backoff);
		}
		if (req->deadline_ms != 0 && clock_mono_ms() + wait >= req->deadline_ms) {
			log_info("job %s: %s, no retry: a %lld ms wait passes the deadline",
			    j->id, prov_err_code(e), wait);
			return e;
		}
		log_info("job %s: %s, retry %d in %lld ms", j->id, prov_err_code(e),
		    attempt, wait);
		exec_sleep_ms(wait);
		backoff = doubled(backoff, GEN_BACKOFF_MAX_MS);
	}
}

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

/*
 * Stores the image at path, retrying temporary failures with a capped
 * exponential backoff (jittered) until the deadline or a stop signal. An
 * object already there with the same bytes is ours from an earlier
 * attempt: that is success. STOR_OK, else the last failure with msg.
 */
static int read_stored(struct run *r, const char *path, double cost,
    struct prov_result *img);

static enum stor_err
upload(struct run *r, const char *path, struct prov_result *img, char *msg,
    size_t msglen)
{
	long long wait, backoff = PUT_BACKOFF_MS;
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
		wait = jittered(backoff);
		if (exec_stop || clock_mono_ms() + wait >= r->deadline_ms)
			return se;
		log_info("job %s: storage: %s; retry %d in %lld ms", r->j->id, msg, try, wait);
		exec_sleep_ms(wait);
		backoff = doubled(backoff, PUT_BACKOFF_MAX_MS);
	}
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

/* The object path for the image: the one an earlier attempt recorded when
 * it fits the bytes (so a re-upload lands where the row already points),
 * else a new one. 0, or -1. */
static int
object_path(struct run *r, const struct prov_result *img, char *path, size_t n)
{
	const struct job *j = r->j;
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

/* The image a requeued attempt finds in the spool: 1 with img filled (the
 * bytes its predecessor was paid for), 0 when there is none. */
static int
spooled_image(struct run *r, struct prov_result *img)
{
	unsigned char *data;
	const char *mime;
	size_t len;
	double cost;
	int w, h;

	if (spool_read(r->cf, r->j->id, (size_t)r->cf->provider_max_bytes, &data, &len,
	    &cost) != 1)
		return 0;
	if (image_sniff(data, len, &mime, &w, &h) != 0) {
		log_error("job %s: the spooled file is not an image; generating again", r->j->id);
		free(data);
		spool_remove(r->cf, r->j->id, SPOOL_ALL);
		return 0;
	}
	img_take(img, data, len, mime, w, h, cost);
	return 1;
}

/*
 * The object at path when it holds an image of the type path names: 1
 * with img filled (cost as given; img's old bytes freed), 0 when there is
 * none, -1 when storage did not answer (retried with backoff until the
 * deadline or a stop): then nobody can tell whether the image is stored,
 * and it must not be bought again on a guess.
 */
static int
read_stored(struct run *r, const char *path, double cost, struct prov_result *img)
{
	unsigned char *data = NULL;
	const char *mime, *dot;
	char msg[256];
	size_t len = 0;
	long long backoff = PUT_BACKOFF_MS;
	enum stor_err se;
	int w, h;

	if (path[0] == '\0' || !storage_path_ok(path))
		return 0;
	for (;;) {
		se = storage_get(r->sg, path, (size_t)r->cf->provider_max_bytes, &data, &len,
		    msg, sizeof(msg));
		if (se != STOR_TEMPORARY)
			break;
		if (exec_stop || clock_mono_ms() + backoff >= r->deadline_ms) {
			log_warn("job %s: storage: %s; cannot tell whether %s is stored",
			    r->j->id, msg, path);
			return -1;
		}
		exec_sleep_ms(backoff);
		backoff = doubled(backoff, PUT_BACKOFF_MAX_MS);
	}
	if (se != STOR_OK)
		return 0;	/* no such object */
	dot = strrchr(path, '.');
	if (image_sniff(data, len, &mime, &w, &h) != 0 ||
	    strcmp(mime_ext(mime), dot != NULL ? dot : "") != 0) {
		free(data);
		return 0;
	}
	img_take(img, data, len, mime, w, h, cost);
	return 1;
}

/* The image an earlier attempt stored at its recorded path, when the
 * spool has none (it ran on another host, or the spool was lost): as
 * read_stored(), the cost the one that attempt recorded. */
static int
stored_image(struct run *r, struct prov_result *img)
{
	return read_stored(r, r->j->storage_path, r->j->recorded_cost, img);
}

/* Generates the image: generating, the provider, the spool. STEP_OK with
 * *img filled; else the job is finished with (or left). */
static enum step
stage_generate(struct run *r, const char *final_prompt, struct prov_result *img)
{
	const struct job *j = r->j;
	struct prov_request req;
	unsigned char *source = NULL, *mask = NULL;
	const char *code;
	char msg[512];
	enum prov_err pe;
	enum step s;

	memset(&req, 0, sizeof(req));
	s = advance(r, "processing", "generating", final_prompt);
	if (s != STEP_OK)
		goto out;
	if (record_capsule(r->conn, j) != 0) {
		s = STEP_DB;
		goto out;
	}
	req.job_type = j->job_type;
	req.prompt = final_prompt;
	req.width = j->width;
	req.height = j->height;
	req.deadline_ms = r->deadline_ms;
	if (strcmp(j->job_type, "inpaint") == 0 && j->source_url != NULL) {
		code = load_input(r->sg, r->cf, "sourceImageUrl", j->source_url, &source,
		    &req.source_len, &req.source_mime, msg, sizeof(msg));
		if (code == NULL && j->mask_url != NULL)
			code = load_input(r->sg, r->cf, "maskImageUrl", j->mask_url, &mask,
			    &req.mask_len, &req.mask_mime, msg, sizeof(msg));
		if (code != NULL) {
			s = fail_job(r, "generating", "generating", code, msg);
			goto out;
		}
		req.source = source;
		req.mask = mask;
	}
	pe = generate(r, &req, img, &s);
	if (s != STEP_OK) {
		if (s == STEP_STOP)
			s = not_ours(r, "generating", "generating");
		goto out;
	}
	if (pe == PROV_TIMEOUT && clock_mono_ms() >= r->deadline_ms - DEADLINE_SLACK_MS) {
		s = out_of_time(r, "generating", "generating");
		goto out;
	}
	if (pe != PROV_OK && exec_stop) {
		s = boundary(r, "generating");	/* requeued, not failed */
		goto out;
	}
	if (pe != PROV_OK) {
		s = fail_job(r, "generating", "generating", prov_err_code(pe),
		    img->message[0] != '\0' ? img->message : prov_err_code(pe));
		goto out;
	}
	/* Paid for: on disk before anything else can go wrong, so that a
	 * requeued attempt uploads these bytes instead of buying them again. */
	if (spool_write(r->cf, j->id, img->data, img->len, img->cost_usd) != 0)
		log_error("job %s: the image is not spooled; a crash before it is stored "
		    "would generate it again", j->id);
	s = STEP_OK;
out:
	free(source);
	free(mask);
	return s;
}

/* After a stop: a job that ended (failed, canceled) loses its spool file
 * and any object its row points at; a requeued one keeps both for the
 * next attempt. Nothing is touched when a later attempt has the job, or
 * when the database cannot say (the sweeper cleans up then). */
static void
after_stop(struct run *r)
{
	const char *p[2] = { r->j->id, r->j->attempt };
	const char *status;
	PGresult *res;

	res = exec_q(r->conn, "SELECT status, storage_path FROM public.image_generation_jobs"
	    " WHERE id = $1 AND attempts = $2::int", 2, p);
	if (res == NULL)
		return;
	if (PQntuples(res) == 1) {
		status = PQgetvalue(res, 0, 0);
		if (strcmp(status, "failed") == 0 || strcmp(status, "canceled") == 0 ||
		    strcmp(status, "completed") == 0)
			spool_remove(r->cf, r->j->id, SPOOL_ALL);
		if ((strcmp(status, "failed") == 0 || strcmp(status, "canceled") == 0) &&
		    !PQgetisnull(res, 0, 1))
			(void)drop_object(r->conn, r->sg, r->j->id, PQgetvalue(res, 0, 1));
	}
	PQclear(res);
}

/* Runs a claimed job to its end. STEP_DB when the database went away
 * (the job is left to the sweeper, its spooled image kept). */
static enum step
run_one(PGconn *c, const struct cfg *cf, struct provider *pv,
    struct storage *sg, const struct job *j)
{
	struct run r = { c, cf, pv, sg, j, 0 };
	struct prov_result img;
	struct prompt_in pin;
	char path[1024], url[2048], msg[512], cost[32], w[16], h[16];
	const char *p[8];
	char *final_prompt = NULL;
	enum step s = STEP_DB;
	enum stor_err se;
	int n, try;

	memset(&img, 0, sizeof(img));
	r.deadline_ms = clock_mono_ms() + cf->job_timeout * 1000;
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
	s = boundary(&r, "processing");
	if (s != STEP_OK)
		goto out;

	if (spooled_image(&r, &img)) {
		log_info("job %s: re-upload of the spooled image (attempt %d); not generating "
		    "again", j->id, j->attempts);
		s = advance(&r, "processing", "generating", final_prompt);
	} else if ((n = stored_image(&r, &img)) == -1) {
		s = requeue(&r, "processing", "STORAGE_ERROR", "storage did not answer whether"
		    " the image of an earlier attempt is stored");
		goto out;
	} else if (n == 1) {
		log_info("job %s: its image is already stored at %s (attempt %d); not "
		    "generating again", j->id, j->storage_path, j->attempts);
		s = advance(&r, "processing", "generating", final_prompt);
	} else if (j->attempts > j->max_attempts) {
		/* The sweeper's extra attempt to store a paid image: without it
		 * there is nothing to store, and no attempt is left to buy one. */
		s = fail_job(&r, "processing", "uploading", "WORKER_LOST",
		    "executor lost while uploading; its image is gone and no attempts are left");
		goto out;
	} else {
		s = stage_generate(&r, final_prompt, &img);
	}
	if (s != STEP_OK)
		goto out;
	s = boundary(&r, "generating");
	if (s != STEP_OK)
		goto out;

	/* The intent before the upload: where the object goes, its cost and
	 * size, so that whoever finds the job next can finish or clean up. */
	if (object_path(&r, &img, path, sizeof(path)) != 0 ||
	    storage_public_url(sg, path, url, sizeof(url)) != 0) {
		s = fail_job(&r, "generating", "uploading", "STORAGE_ERROR",
		    "cannot build the object path");
		goto out;
	}
	snprintf(cost, sizeof(cost), "%.6f", img.cost_usd >= 0 ? img.cost_usd : 0.0);
	snprintf(w, sizeof(w), "%d", img.width);
	snprintf(h, sizeof(h), "%d", img.height);
	p[0] = j->id;
	p[1] = path;
	p[2] = url;
	p[3] = img.cost_usd >= 0 ? cost : NULL;
	p[4] = img.mime;
	p[5] = w;
	p[6] = h;
	p[7] = j->attempt;
	n = job_write(&r, "UPDATE public.image_generation_jobs SET status = 'uploading',"
	    " storage_path = $2, public_url = $3, actual_cost = $4::numeric,"
	    " mime_type = $5, image_width = $6::int, image_height = $7::int"
	    " WHERE id = $1 AND status IN ('generating', 'uploading')"
	    " AND attempts = $8::int AND NOT cancel_requested", 8, p);
	if (n < 0) {
		s = STEP_DB;
		goto out;
	}
	if (n == 0) {
		s = not_ours(&r, "generating", "uploading");
		goto out;
	}
	if (cf->test_stage_delay_ms > 0) {
		log_info("job %s: test stage delay of %ld ms before the upload", j->id,
		    cf->test_stage_delay_ms);
		clock_sleep_ms(cf->test_stage_delay_ms);
	}
	s = boundary(&r, "uploading");
	if (s != STEP_OK)
		goto out;
	if (clock_mono_ms() >= r.deadline_ms - DEADLINE_SLACK_MS) {
		snprintf(msg, sizeof(msg), "the job ran past IMAGEGEN_JOB_TIMEOUT (%ld s) "
		    "before its upload", cf->job_timeout);
		s = give_up_uploading(&r, path, "JOB_TIMEOUT", msg);
		goto out;
	}
	se = upload(&r, path, &img, msg, sizeof(msg));
	if (se != STOR_OK && exec_stop) {
		s = boundary(&r, "uploading");
		goto out;
	}
	if (se == STOR_TEMPORARY) {
		/* Storage stayed away until the deadline. */
		s = give_up_uploading(&r, path, "STORAGE_ERROR", msg);
		goto out;
	}
	if (se != STOR_OK) {
		s = end_uploading(&r, path, "uploading", "STORAGE_ERROR", msg);
		goto out;
	}

	/* Stored; the row says so last. A lost connection is waited out (the
	 * object stays, and the spool, until the row is completed); a refusal
	 * is tried again a few times, then the job fails at persisting. */
	/* The image's type and size again: the object may be another
	 * attempt's, adopted by upload(). */
	snprintf(w, sizeof(w), "%d", img.width);
	snprintf(h, sizeof(h), "%d", img.height);
	p[1] = path;
	p[2] = j->attempt;
	p[3] = img.mime;
	p[4] = w;
	p[5] = h;
	for (try = 1;; try++) {
		n = job_write(&r, "UPDATE public.image_generation_jobs SET status = 'completed',"
		    " mime_type = $4, image_width = $5::int, image_height = $6::int"
		    " WHERE id = $1 AND storage_path = $2 AND attempts = $3::int"
		    " AND (status = 'uploading' AND NOT cancel_requested OR status = 'completed')",
		    6, p);
		if (n >= 0 || PQstatus(c) != CONNECTION_OK || try == PERSIST_TRIES)
			break;
		clock_sleep_ms(DB_BACKOFF_MS);
	}
	if (n == 1) {
		log_info("job %s completed: %s", j->id, path);
		s = STEP_OK;
		goto out;
	}
	if (n < 0 && PQstatus(c) != CONNECTION_OK) {
		s = STEP_DB;
		goto out;
	}
	if (n < 0) {
		s = end_uploading(&r, path, "persisting", "PERSIST_ERROR",
		    "the completed job could not be recorded");
		goto out;
	}
	/* Nothing matched: canceled meanwhile (then the object goes), or the
	 * job is no longer ours (then it is left as it is). */
	p[1] = j->attempt;
	n = job_write(&r, "SELECT 1 FROM public.image_generation_jobs WHERE id = $1"
	    " AND attempts = $2::int AND status = 'uploading' AND cancel_requested", 2, p);
	if (n == 1) {
		s = end_uploading(&r, path, "uploading", NULL, NULL);
		goto out;
	}
	log_warn("job %s is no longer uploading; leaving it", j->id);
	s = n < 0 ? STEP_DB : STEP_STOP;
out:
	alarm(0);
	if (s == STEP_OK)
		spool_remove(cf, j->id, SPOOL_ALL);
	else if (s == STEP_STOP)
		after_stop(&r);
	/* STEP_DB: the spool stays; the next attempt re-uploads it. */
	prov_result_free(&img);
	free(final_prompt);
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
	char err[512];
	int rc = 1, opened_p = 0, opened_s = 0, done = 0, relooked = 0;
	enum claim_rc got;
	enum step s;

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
	if (spool_prepare(c) != 0)
		log_error("executor: no spool; a requeued job would be generated again");
	while (!exec_stop) {
		got = claim(conn, c, job_id, &j);
		if (got == CLAIM_ERROR)
			goto out;
		if (got == CLAIM_CAP_FULL) {
			/* Waiting here would spin on the claim lock: whoever finishes
			 * next, or the sweeper, starts the queued work. */
			log_debug("the running-jobs cap (%ld) is reached; executor exits",
			    c->max_running_jobs);
			break;
		}
		if (got == CLAIM_NONE && job_id != NULL) {
			job_id = NULL;	/* taken by another executor: take the next */
			continue;
		}
		if (got == CLAIM_NONE) {
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
			if (queued_count(conn) <= 0)
				break;
			slot_fd = slot_acquire(c);
			if (slot_fd < 0)
				break;	/* another executor has it */
			continue;
		}
		job_id = NULL;
		relooked = 0;
		s = run_one(conn, c, &pv, &sg, &j);
		if (s == STEP_DB) {
			job_free(&j);
			goto out;	/* the sweeper requeues it: our lock died */
		}
		job_unlock(conn, j.id);
		job_free(&j);
		done++;
	}
	log_debug("executor done after %d jobs%s", done, exec_stop ? " (told to stop)" : "");
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

/* Objects of jobs that ended failed or canceled with a path recorded (an
 * executor that died before its own cleanup): deleted, the path forgotten.
 * Storage is opened only when there is something to delete. */
static void
sweep_objects(PGconn *conn, const struct cfg *c, struct sweep_stats *st)
{
	struct storage sg;
	char err[512], limit[16];
	const char *p[1] = { limit };
	PGresult *r;
	int i, n;

	snprintf(limit, sizeof(limit), "%d", SWEEP_BATCH);
	r = exec_q(conn, "SELECT id, storage_path FROM public.image_generation_jobs"
	    " WHERE status IN ('failed', 'canceled') AND storage_path IS NOT NULL"
	    " LIMIT $1::int", 1, p);
	if (r == NULL)
		return;
	n = PQntuples(r);
	if (n > 0 && storage_open(&sg, c, err, sizeof(err)) != 0) {
		log_error("sweeper: %s", err);
		n = 0;
	}
	for (i = 0; i < n; i++)
		if (drop_object(conn, &sg, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1)) == 0)
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
	const char *p[1] = { ids };
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
	r = exec_q(conn, "SELECT id::text, status FROM public.image_generation_jobs"
	    " WHERE id = ANY($1::uuid[])", 1, p);
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
 * Row i of the sweep's scan, a running job whose executor is gone (or
 * hopelessly late): ends canceled when its owner asked (whatever attempts
 * remain), else requeued while attempts remain, else failed at the stage
 * it reached. Fenced by the attempt, so a job claimed again meanwhile is
 * left alone. Counted in st.
 */
static void
sweep_job(PGconn *conn, PGresult *r, int i, struct sweep_stats *st)
{
	const char *id = PQgetvalue(r, i, 0), *status = PQgetvalue(r, i, 1);
	int requeue_ok = strcmp(PQgetvalue(r, i, 2), "t") == 0;
	int past = strcmp(PQgetvalue(r, i, 5), "t") == 0;
	int cancel = strcmp(PQgetvalue(r, i, 6), "t") == 0;
	const char *code = past ? "JOB_TIMEOUT" : "WORKER_LOST";
	const char *q[6] = { id, status, PQgetvalue(r, i, 3), code, NULL,
		strcmp(status, "uploading") == 0 ? "uploading" : "generating" };
	PGresult *u;

	if (cancel) {
		u = exec_q(conn, "UPDATE public.image_generation_jobs SET status = 'canceled'"
		    " WHERE id = $1 AND status = $2 AND attempts = $3::int", 3, q);
	} else if (requeue_ok) {
		q[4] = past ? "the job ran past IMAGEGEN_JOB_TIMEOUT; requeued" :
		    "executor lost; requeued";
		u = exec_q(conn, REQUEUE_SQL("id = $1 AND status = $2 AND attempts = $3::int"),
		    5, q);
	} else {
		q[4] = past ? "the job ran past IMAGEGEN_JOB_TIMEOUT and no attempts are left" :
		    "executor lost and no attempts left";
		u = exec_q(conn, "UPDATE public.image_generation_jobs SET status = 'failed',"
		    " error_code = $4, error_message = $5, failure_stage = $6"
		    " WHERE id = $1 AND status = $2 AND attempts = $3::int", 6, q);
	}
	if (u != NULL && atoi(PQcmdTuples(u)) == 1) {
		log_warn("job %s (%s): %s, %s", id, status, code, cancel ?
		    "canceled (its owner asked)" : requeue_ok ? "requeued" : "failed");
		if (cancel)
			st->canceled++;
		else if (requeue_ok)
			st->requeued++;
		else
			st->failed++;
	}
	PQclear(u);
}

int
exec_sweep(PGconn *conn, const struct cfg *c, struct sweep_stats *st)
{
	char grace[16];
	const char *p[1] = { grace };
	PGresult *r;
	int i, n, free_lock, late;

	memset(st, 0, sizeof(*st));
	snprintf(grace, sizeof(grace), "%d", DEADLINE_GRACE_S);
	/* Attempts left, or one more for a job lost while uploading with its
	 * object's path recorded: that attempt only stores (from the spool or
	 * the object already there) and never calls the provider, so an image
	 * paid for is not thrown away for want of an attempt. */
	r = exec_q(conn, "SELECT id, status, attempts < max_attempts OR (status = 'uploading'"
	    "  AND storage_path IS NOT NULL AND attempts = max_attempts), attempts,"
	    " deadline_at IS NOT NULL AND deadline_at < now() - $1::int * interval '1 second',"
	    " deadline_at IS NOT NULL AND deadline_at < now(), cancel_requested,"
	    " pg_try_advisory_lock(hashtextextended(id::text, 0)),"
	    " updated_at < pg_postmaster_start_time()"
	    " FROM public.image_generation_jobs"
	    " WHERE status IN ('processing', 'generating', 'uploading')", 1, p);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	for (i = 0; i < n; i++) {
		late = strcmp(PQgetvalue(r, i, 4), "t") == 0;
		free_lock = strcmp(PQgetvalue(r, i, 7), "t") == 0;
		if (!free_lock && !late)
			continue;	/* its executor is alive and in time */
		/* Not written to since the server (re)started: its lock went
		 * with the restart, not with its executor, which may be alive
		 * and waiting on the provider. It takes the lock again on its
		 * next write; until the deadline it is not taken for dead. */
		if (free_lock && !late && strcmp(PQgetvalue(r, i, 8), "t") == 0) {
			log_debug("job %s: lock free since the database restarted; waiting"
			    " for its executor or its deadline", PQgetvalue(r, i, 0));
			job_unlock(conn, PQgetvalue(r, i, 0));
			continue;
		}
		sweep_job(conn, r, i, st);
		if (free_lock)
			job_unlock(conn, PQgetvalue(r, i, 0));
	}
	PQclear(r);
	sweep_objects(conn, c, st);
	sweep_spool(conn, c, st);
	r = exec_q(conn, "SELECT count(*) FROM public.image_generation_jobs"
	    " WHERE status = 'queued'", 0, NULL);
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
