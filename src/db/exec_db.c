/* exec_db.c - the executor's and the sweeper's SQL (see exec_db.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "exec_db.h"
#include "log.h"

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

/* Records why a running job went back to the queue: the row itself keeps no
 * error (GET must not show one on a queued job); the event log does. */
#define REQUEUE_SQL(cond) \
	"WITH u AS (UPDATE public.image_generation_jobs SET status = 'queued'," \
	" deadline_at = NULL WHERE " cond " RETURNING id)" \
	" INSERT INTO public.image_generation_job_events (job_id, event, detail)" \
	" SELECT id, 'requeued', jsonb_build_object('code', $4::text," \
	" 'message', $5::text, 'from', $2::text) FROM u"

PGresult *
execdb_q(PGconn *c, const char *sql, int n, const char *const *p)
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

void
execdb_job_free(struct exec_job *j)
{
	free(j->prompt);
	free(j->style);
	free(j->capsule_name);
	free(j->source_url);
	free(j->mask_url);
	free(j->storage_path);
	free(j->outcome);
	memset(j, 0, sizeof(*j));
}

static void
cpy(char *dst, size_t n, PGresult *r, int col)
{
	snprintf(dst, n, "%s", PQgetisnull(r, 0, col) ? "" : PQgetvalue(r, 0, col));
}

void
execdb_unlock(PGconn *c, const char *id)
{
	PQclear(PQexecParams(c, "SELECT pg_advisory_unlock(" JOB_LOCK_KEY ")", 1, NULL,
	    &id, NULL, NULL, 0));
}

/* queued → processing for id, whose advisory lock we hold: attempts + 1, a
 * deadline, the capsule the owner may read joined once. EXECDB_CLAIM_GOT
 * with *j filled, EXECDB_CLAIM_NONE when it is no longer queued (canceled
 * meanwhile), EXECDB_CLAIM_ERROR. */
#define CLAIM_QUEUED_HEAD \
	"WITH q AS (SELECT NULL::uuid AS job_id, NULL::jsonb AS outcome" \
	"  WHERE false)," \
	" u AS (UPDATE public.image_generation_jobs j" \
	"  SET status = 'processing'," \
	"  attempts = j.attempts + 1," \
	"  deadline_at = now() + $2::int * interval '1 second'" \
	"  WHERE j.id = $1 AND j.status = 'queued'" \
	"  RETURNING j.*)"
/* A job whose remote model ended: no longer waiting, a new deadline, the
 * same attempt (the model was paid for by it). */
#define CLAIM_RESUME_HEAD \
	"WITH q AS (UPDATE public.image_provider_requests q SET waiting = false" \
	"  FROM public.image_generation_jobs j" \
	"  WHERE q.job_id = $1 AND q.waiting AND q.outcome IS NOT NULL" \
	"  AND j.id = q.job_id AND j.status = 'generating'" \
	"  AND q.attempt = j.attempts AND NOT j.cancel_requested" \
	"  RETURNING q.job_id, q.outcome)," \
	" u AS (UPDATE public.image_generation_jobs j" \
	"  SET deadline_at = now() + $2::int * interval '1 second'" \
	"  FROM q WHERE j.id = q.job_id RETURNING j.*)"

/* queued → processing for id (resume: a generating job whose remote model
 * ended, sql/015), whose advisory lock we hold. EXECDB_CLAIM_GOT with *j
 * filled, EXECDB_CLAIM_NONE when it is no longer claimable (canceled
 * meanwhile), EXECDB_CLAIM_ERROR. */
static enum execdb_claim
claim_one(PGconn *c, const struct cfg *cf, const char *id, int resume,
    struct exec_job *j)
{
	char timeout[24];
	const char *p[2] = { id, timeout };
	PGresult *r;
	enum execdb_claim rc = EXECDB_CLAIM_ERROR;
	char sql[4096];

	snprintf(timeout, sizeof(timeout), "%ld", cf->job_timeout);
	/* A capsule is applied when the job's owner may read it: their own,
	 * or a shared one (no owner, or public); the same rule as its RLS
	 * policy. */
	snprintf(sql, sizeof(sql), "%s%s", resume ? CLAIM_RESUME_HEAD :
	    CLAIM_QUEUED_HEAD,
	    " SELECT u.id, u.project_id, u.branch_id, u.job_type, u.prompt,"
	    "  u.width, u.height, u.asset_id, u.scene_id, u.shot_id, u.attempts,"
	    "  u.max_attempts, s.style_text, u.storage_path, s.id, s.name,"
	    "  s.id IS NOT NULL AND s.user_id IS DISTINCT FROM u.user_id,"
	    "  u.source_image_url, u.mask_image_url, u.actual_cost,"
	    "  (SELECT e.detail ->> 'request_id'"
	    "   FROM public.image_generation_job_events e"
	    "   WHERE e.job_id = u.id AND e.event = 'status'"
	    "   AND e.from_status IS NULL ORDER BY e.id LIMIT 1),"
	    /* q's rows: this statement's snapshot does not see its update */
	    "  (SELECT q.outcome::text FROM q WHERE q.job_id = u.id)"
	    " FROM u LEFT JOIN public.visual_style_capsules s"
	    "  ON s.id = u.visual_style_capsule_id"
	    "  AND (s.user_id = u.user_id OR s.user_id IS NULL OR s.is_public)");
	r = execdb_q(c, sql, 2, p);
	if (r == NULL)
		return EXECDB_CLAIM_ERROR;
	if (PQntuples(r) == 0) {
		rc = EXECDB_CLAIM_NONE;
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
	cpy(j->request_id, sizeof(j->request_id), r, 20);
	if (resume && !PQgetisnull(r, 0, 21))
		j->outcome = strdup(PQgetvalue(r, 0, 21));
	if ((resume && j->outcome == NULL) || j->prompt == NULL || j->storage_path == NULL ||
	    (!PQgetisnull(r, 0, 17) && j->source_url == NULL) ||
	    (!PQgetisnull(r, 0, 18) && j->mask_url == NULL)) {
		execdb_job_free(j);
		goto out;
	}
	rc = EXECDB_CLAIM_GOT;
out:
	PQclear(r);
	return rc;
}

enum execdb_claim
execdb_claim(PGconn *c, const struct cfg *cf, const char *job_id, struct exec_job *j)
{
	char cap[24], limit[16], remote[4];
	const char *pc[2] = { cap, remote }, *pq[2] = { job_id, limit };
	const char *id;
	PGresult *r = NULL, *l;
	enum execdb_claim rc = EXECDB_CLAIM_ERROR;
	int i, n, locked;

	memset(j, 0, sizeof(*j));
	snprintf(cap, sizeof(cap), "%ld", cf->max_running_jobs);
	snprintf(limit, sizeof(limit), "%d", CLAIM_CANDIDATES);
	snprintf(remote, sizeof(remote), "%d", cf->cap_counts_remote);
	r = execdb_q(c, "BEGIN", 0, NULL);
	if (r == NULL)
		return EXECDB_CLAIM_ERROR;
	PQclear(r);
	r = execdb_q(c, "SELECT pg_advisory_xact_lock(" CLAIM_LOCK_KEY ")", 0, NULL);
	if (r == NULL)
		goto out;
	PQclear(r);
	/* The cap first: at the cap, whatever is queued waits. */
	/* Jobs waiting on a remote model hold no executor: they count only
	 * with IMAGEGEN_CAP_COUNTS_REMOTE=1. */
	r = execdb_q(c, "SELECT count(*) >= $1::int FROM public.image_generation_jobs j"
	    " WHERE status IN ('processing', 'generating', 'uploading')"
	    " AND ($2::int = 1 OR NOT EXISTS (SELECT 1 FROM"
	    "  public.image_provider_requests q WHERE q.job_id = j.id AND q.waiting))",
	    2, pc);
	if (r == NULL)
		goto out;
	if (strcmp(PQgetvalue(r, 0, 0), "t") == 0) {
		rc = EXECDB_CLAIM_CAP_FULL;
		goto out;
	}
	PQclear(r);
	/* Then the oldest queued jobs, the first whose lock is free: a wait
	 * here would hold the claim lock and stall every claimer. */
	/* Jobs whose remote model ended come first: they are paid for. */
	r = execdb_q(c, "(SELECT j.id::text, 1 FROM public.image_generation_jobs j"
	    "  JOIN public.image_provider_requests q ON q.job_id = j.id"
	    "  WHERE j.status = 'generating' AND q.waiting AND q.outcome IS NOT NULL"
	    "  AND q.attempt = j.attempts AND NOT j.cancel_requested"
	    "  AND ($1::uuid IS NULL OR j.id = $1)"
	    "  ORDER BY q.outcome_at, j.id LIMIT $2::int)"
	    " UNION ALL (SELECT id::text, 0 FROM public.image_generation_jobs"
	    " WHERE status = 'queued' AND ($1::uuid IS NULL OR id = $1)"
	    " ORDER BY created_at, id LIMIT $2::int)", 2, pq);
	if (r == NULL)
		goto out;
	n = PQntuples(r);
	rc = EXECDB_CLAIM_NONE;
	for (i = 0; i < n; i++) {
		id = PQgetvalue(r, i, 0);
		l = execdb_q(c, "SELECT pg_try_advisory_lock(" JOB_LOCK_KEY ")", 1, &id);
		if (l == NULL) {
			rc = EXECDB_CLAIM_ERROR;
			break;
		}
		locked = strcmp(PQgetvalue(l, 0, 0), "t") == 0;
		PQclear(l);
		if (!locked) {
			log_debug("job %s: its lock is held (an old executor lives); skipped", id);
			continue;
		}
		rc = claim_one(c, cf, id, strcmp(PQgetvalue(r, i, 1), "1") == 0, j);
		if (rc == EXECDB_CLAIM_GOT)
			break;
		execdb_unlock(c, id);	/* canceled meanwhile, or an error */
		if (rc == EXECDB_CLAIM_ERROR)
			break;
	}
out:
	PQclear(r);
	r = execdb_q(c, rc != EXECDB_CLAIM_ERROR ? "COMMIT" : "ROLLBACK", 0, NULL);
	if (r == NULL && rc == EXECDB_CLAIM_GOT) {
		execdb_unlock(c, j->id);	/* the claim did not commit */
		execdb_job_free(j);
		rc = EXECDB_CLAIM_ERROR;
	}
	PQclear(r);
	return rc;
}

int
execdb_set_role(PGconn *c)
{
	PGresult *res = execdb_q(c, "SET ROLE service_role", 0, NULL);

	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

int
execdb_relock(PGconn *c, const char *id, const char *attempt, int *locked, int *ours)
{
	const char *p[2] = { id, attempt };
	PGresult *res;

	res = execdb_q(c, "SELECT pg_try_advisory_lock(" JOB_LOCK_KEY "),"
	    " EXISTS (SELECT 1 FROM public.image_generation_jobs WHERE id = $1::uuid"
	    "  AND attempts = $2::int"
	    "  AND status IN ('processing', 'generating', 'uploading'))", 2, p);
	if (res == NULL)
		return -1;
	*locked = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	*ours = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	PQclear(res);
	return 0;
}

/* ---- the executor's fenced writes -------------------------------------- */

/* One fenced statement through w: its n (at most 8) text parameters
 * follow n. */
static int
fenced(const struct execdb_writer *w, const char *sql, int n, ...)
{
	const char *p[8];
	va_list ap;
	int i;

	va_start(ap, n);
	for (i = 0; i < n && i < 8; i++)
		p[i] = va_arg(ap, const char *);
	va_end(ap);
	return w->write(w->ctx, sql, i, p);
}

int
execdb_requeue(const struct execdb_writer *w, const char *id, const char *from,
    const char *attempt, const char *code, const char *why)
{
	return fenced(w, REQUEUE_SQL("id = $1 AND status = $2 AND attempts = $3::int"
	    " AND NOT cancel_requested"), 5,
	    id, from, attempt, code, why);
}

int
execdb_cancel_asked(const struct execdb_writer *w, const char *id, const char *from,
    const char *attempt, const char *cost)
{
	return fenced(w, "UPDATE public.image_generation_jobs SET status = 'canceled',"
	    " actual_cost = coalesce(actual_cost, $4::numeric)"
	    " WHERE id = $1 AND status = $2 AND attempts = $3::int AND cancel_requested", 4,
	    id, from, attempt, cost);
}

int
execdb_advance(const struct execdb_writer *w, const char *id, const char *from,
    const char *to, const char *final_prompt, const char *attempt)
{
	return fenced(w, "UPDATE public.image_generation_jobs SET status = $3,"
	    " final_prompt = coalesce($4, final_prompt)"
	    " WHERE id = $1 AND status IN ($2, $3) AND attempts = $5::int"
	    " AND NOT cancel_requested", 5,
	    id, from, to, final_prompt, attempt);
}

int
execdb_fail(const struct execdb_writer *w, const char *id, const char *from,
    const char *stage, const char *code, const char *message, const char *attempt,
    const char *cost)
{
	return fenced(w, "UPDATE public.image_generation_jobs SET status = 'failed',"
	    " failure_stage = $3, error_code = $4, error_message = left($5, 1000),"
	    " actual_cost = coalesce(actual_cost, $7::numeric)"
	    " WHERE id = $1 AND status = $2 AND attempts = $6::int", 7,
	    id, from, stage, code, message, attempt, cost);
}

int
execdb_is(const struct execdb_writer *w, const char *id, const char *attempt,
    enum execdb_state q)
{
	static const char *const sql[] = {
		[EXECDB_UPLOADING] = "SELECT 1 FROM public.image_generation_jobs"
		    " WHERE id = $1 AND status = 'uploading' AND attempts = $2::int",
		[EXECDB_UPLOAD_CANCEL_ASKED] = "SELECT 1 FROM public.image_generation_jobs"
		    " WHERE id = $1 AND attempts = $2::int AND status = 'uploading'"
		    " AND cancel_requested",
		[EXECDB_STILL_GENERATING] = "SELECT 1 FROM public.image_generation_jobs"
		    " WHERE id = $1 AND attempts = $2::int AND status = 'generating'"
		    " AND NOT cancel_requested",
	};

	return fenced(w, sql[q], 2, id, attempt);
}

int
execdb_end_uploading(const struct execdb_writer *w, const char *id,
    const char *attempt, int forget, const char *stage, const char *code,
    const char *message)
{
	const char *p[6] = { id, attempt, forget ? "true" : "false", stage, code,
		message };

	if (code == NULL)
		return w->write(w->ctx, "UPDATE public.image_generation_jobs"
		    " SET status = 'canceled',"
		    " storage_path = CASE WHEN $3::boolean THEN NULL ELSE storage_path END,"
		    " public_url = CASE WHEN $3::boolean THEN NULL ELSE public_url END"
		    " WHERE id = $1 AND status = 'uploading' AND attempts = $2::int", 3, p);
	return w->write(w->ctx, "UPDATE public.image_generation_jobs SET status = 'failed',"
	    " failure_stage = $4, error_code = $5, error_message = left($6, 1000),"
	    " storage_path = CASE WHEN $3::boolean THEN NULL ELSE storage_path END,"
	    " public_url = CASE WHEN $3::boolean THEN NULL ELSE public_url END"
	    " WHERE id = $1 AND status = 'uploading' AND attempts = $2::int", 6, p);
}

int
execdb_set_uploading(const struct execdb_writer *w, const char *id,
    const char *path, const char *url, const char *cost, const char *mime,
    const char *width, const char *height, const char *attempt)
{
	return fenced(w, "UPDATE public.image_generation_jobs"
	    " SET status = 'uploading',"
	    " storage_path = $2, public_url = $3, actual_cost = $4::numeric,"
	    " mime_type = $5, image_width = $6::int, image_height = $7::int"
	    " WHERE id = $1 AND status IN ('generating', 'uploading')"
	    " AND attempts = $8::int AND NOT cancel_requested", 8,
	    id, path, url, cost, mime, width, height, attempt);
}

int
execdb_complete(const struct execdb_writer *w, const char *id, const char *path,
    const char *attempt, const char *mime, const char *width, const char *height)
{
	return fenced(w, "UPDATE public.image_generation_jobs"
	    " SET status = 'completed',"
	    " mime_type = $4, image_width = $5::int, image_height = $6::int"
	    " WHERE id = $1 AND storage_path = $2 AND attempts = $3::int"
	    " AND (status = 'uploading' AND NOT cancel_requested OR status = 'completed')", 6,
	    id, path, attempt, mime, width, height);
}

/* ---- plain statements -------------------------------------------------- */

int
execdb_status_at(PGconn *c, const char *id, const char *attempt, char **status,
    char **path)
{
	const char *p[2] = { id, attempt };
	PGresult *res;
	int rc = -1;

	*status = NULL;
	*path = NULL;
	res = execdb_q(c, "SELECT status, storage_path FROM public.image_generation_jobs"
	    " WHERE id = $1 AND attempts = $2::int", 2, p);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		rc = 0;
		goto out;
	}
	*status = strdup(PQgetvalue(res, 0, 0));
	if (!PQgetisnull(res, 0, 1))
		*path = strdup(PQgetvalue(res, 0, 1));
	if (*status == NULL || (!PQgetisnull(res, 0, 1) && *path == NULL)) {
		free(*status);
		free(*path);
		*status = NULL;
		*path = NULL;
		goto out;
	}
	rc = 1;
out:
	PQclear(res);
	return rc;
}

int
execdb_forget_object(PGconn *c, const char *id, const char *path)
{
	const char *p[2] = { id, path };
	PGresult *r;
	int n;

	r = execdb_q(c, "UPDATE public.image_generation_jobs SET storage_path = NULL,"
	    " public_url = NULL WHERE id = $1 AND storage_path = $2"
	    " AND status IN ('failed', 'canceled')", 2, p);
	if (r == NULL)
		return -1;
	n = atoi(PQcmdTuples(r));
	PQclear(r);
	return n;
}

int
execdb_record_capsule(PGconn *c, const struct exec_job *j)
{
	const char *p[5] = { j->id, j->capsule_id, j->capsule_name,
		j->capsule_shared ? "true" : "false", j->style };
	PGresult *r;

	if (j->capsule_id[0] == '\0' || j->style == NULL)
		return 0;
	r = execdb_q(c, "INSERT INTO public.image_generation_job_events"
	    " (job_id, event, detail) VALUES ($1, 'style_capsule_applied',"
	    " jsonb_build_object('capsuleId', $2::uuid, 'name', $3::text,"
	    " 'shared', $4::boolean, 'styleText', $5::text))", 5, p);
	if (r == NULL)
		return -1;
	PQclear(r);
	log_info("job %s: style capsule %s applied", j->id, j->capsule_id);
	return 0;
}

void
execdb_count_provider_error(PGconn *c, const char *code)
{
	PGresult *r;

	if (c == NULL)
		return;
	r = execdb_q(c, "INSERT INTO public.image_provider_error_totals AS t (code, errors)"
	    " VALUES ($1, 1) ON CONFLICT (code) DO UPDATE SET errors = t.errors + 1",
	    1, &code);
	PQclear(r);
}

int
execdb_queued_count(PGconn *c)
{
	/* Queued, and waiting on a remote model that ended (to resume). */
	PGresult *r = execdb_q(c, "SELECT (SELECT count(*) FROM"
	    " public.image_generation_jobs WHERE status = 'queued') +"
	    " (SELECT count(*) FROM public.image_provider_requests q"
	    "  JOIN public.image_generation_jobs j ON j.id = q.job_id"
	    "  WHERE q.waiting AND q.outcome IS NOT NULL AND j.status = 'generating'"
	    "  AND NOT j.cancel_requested)", 0, NULL);
	int n;

	if (r == NULL)
		return -1;
	n = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return n;
}

/* ---- the sweeper ------------------------------------------------------- */

static int
is_true(PGresult *r, int i, int col)
{
	return strcmp(PQgetvalue(r, i, col), "t") == 0;
}

int
execdb_sweep_running(PGconn *c, int grace, struct execdb_running **rows)
{
	char g[16];
	const char *p[1] = { g };
	struct execdb_running *v = NULL;
	PGresult *r;
	int i, n, rc = -1;

	*rows = NULL;
	snprintf(g, sizeof(g), "%d", grace);
	/* Attempts left, or one more for a job lost while uploading with its
	 * object's path recorded: that attempt only stores (from the spool or
	 * the object already there) and never calls the provider, so an image
	 * paid for is not thrown away for want of an attempt. */
	r = execdb_q(c, "SELECT id, status, attempts < max_attempts OR (status = 'uploading'"
	    "  AND storage_path IS NOT NULL AND attempts = max_attempts), attempts,"
	    " deadline_at IS NOT NULL AND deadline_at < now() - $1::int * interval '1 second',"
	    " deadline_at IS NOT NULL AND deadline_at < now(), cancel_requested,"
	    " pg_try_advisory_lock(hashtextextended(id::text, 0)),"
	    " updated_at < pg_postmaster_start_time()"
	    " FROM public.image_generation_jobs j"
	    " WHERE status IN ('processing', 'generating', 'uploading')"
	    /* No executor holds a job waiting on a remote model: its own pass
	     * (execdb_waiting_due) looks after it. */
	    " AND NOT EXISTS (SELECT 1 FROM public.image_provider_requests q"
	    "  WHERE q.job_id = j.id AND q.waiting)", 1, p);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	v = calloc((size_t)n + 1, sizeof(*v));
	if (v == NULL) {
		log_error("sweeper: out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		snprintf(v[i].id, sizeof(v[i].id), "%s", PQgetvalue(r, i, 0));
		snprintf(v[i].status, sizeof(v[i].status), "%s", PQgetvalue(r, i, 1));
		v[i].requeue_ok = is_true(r, i, 2);
		snprintf(v[i].attempts, sizeof(v[i].attempts), "%s", PQgetvalue(r, i, 3));
		v[i].dead = is_true(r, i, 4);
		v[i].past = is_true(r, i, 5);
		v[i].cancel = is_true(r, i, 6);
		v[i].free_lock = is_true(r, i, 7);
		v[i].stale = is_true(r, i, 8);
	}
	*rows = v;
	v = NULL;
	rc = n;
out:
	free(v);
	PQclear(r);
	return rc;
}

/* The rows an UPDATE changed, or -1 when it failed (logged). */
static int
changed(PGresult *u)
{
	int n;

	if (u == NULL)
		return -1;
	n = atoi(PQcmdTuples(u));
	PQclear(u);
	return n;
}

int
execdb_sweep_cancel(PGconn *c, const struct execdb_running *j)
{
	const char *q[3] = { j->id, j->status, j->attempts };

	return changed(execdb_q(c, "UPDATE public.image_generation_jobs"
	    " SET status = 'canceled'"
	    " WHERE id = $1 AND status = $2 AND attempts = $3::int", 3, q));
}

int
execdb_sweep_requeue(PGconn *c, const struct execdb_running *j, const char *code,
    const char *message)
{
	const char *q[5] = { j->id, j->status, j->attempts, code, message };

	return changed(execdb_q(c, REQUEUE_SQL("id = $1 AND status = $2"
	    " AND attempts = $3::int"), 5, q));
}

int
execdb_sweep_fail(PGconn *c, const struct execdb_running *j, const char *code,
    const char *message, const char *stage)
{
	const char *q[6] = { j->id, j->status, j->attempts, code, message, stage };

	return changed(execdb_q(c, "UPDATE public.image_generation_jobs SET status = 'failed',"
	    " error_code = $4, error_message = $5, failure_stage = $6"
	    " WHERE id = $1 AND status = $2 AND attempts = $3::int", 6, q));
}

PGresult *
execdb_ended_with_objects(PGconn *c, int limit)
{
	char l[16];
	const char *p[1] = { l };

	snprintf(l, sizeof(l), "%d", limit);
	return execdb_q(c, "SELECT id, storage_path FROM public.image_generation_jobs"
	    " WHERE status IN ('failed', 'canceled') AND storage_path IS NOT NULL"
	    " LIMIT $1::int", 1, p);
}

PGresult *
execdb_statuses(PGconn *c, const char *ids)
{
	return execdb_q(c, "SELECT id::text, status FROM public.image_generation_jobs"
	    " WHERE id = ANY($1::uuid[])", 1, &ids);
}

/* ---- jobs waiting on a remote model (sql/015) -------------------------- */

int
execdb_set_waiting(const struct execdb_writer *w, const char *id,
    const char *attempt, const char *provider, const char *request_id,
    long grace_s)
{
	char g[24];
	const char *p[5] = { id, attempt, provider, request_id, g };

	snprintf(g, sizeof(g), "%ld", grace_s);
	/* A webhook may have come first (the model was quick): its outcome,
	 * kept with its receipt, is taken at once. */
	return w->write(w->ctx, "INSERT INTO public.image_provider_requests"
	    " (job_id, provider, request_id, attempt, poll_at, outcome,"
	    "  outcome_from, outcome_at)"
	    " SELECT j.id, $3, $4, $2::int, now() + $5::int * interval '1 second',"
	    "  e.outcome, CASE WHEN e.outcome IS NOT NULL THEN 'webhook' END,"
	    "  CASE WHEN e.outcome IS NOT NULL THEN now() END"
	    " FROM public.image_generation_jobs j LEFT JOIN LATERAL"
	    "  (SELECT w.outcome FROM public.image_provider_webhooks w"
	    "   WHERE w.provider = $3 AND w.request_id = $4"
	    "   AND w.outcome IS NOT NULL LIMIT 1) e ON true"
	    " WHERE j.id = $1::uuid"
	    " AND j.status = 'generating' AND j.attempts = $2::int"
	    " AND NOT j.cancel_requested"
	    " ON CONFLICT (job_id) DO UPDATE SET provider = EXCLUDED.provider,"
	    " request_id = EXCLUDED.request_id, attempt = EXCLUDED.attempt,"
	    " waiting = true, submitted_at = now(), poll_at = EXCLUDED.poll_at,"
	    " polls = 0, outcome = EXCLUDED.outcome,"
	    " outcome_from = EXCLUDED.outcome_from, outcome_at = EXCLUDED.outcome_at",
	    5, p);
}

int
execdb_set_outcome(PGconn *c, const char *provider, const char *request_id,
    const char *outcome, const char *from, char *job_id)
{
	const char *p[4] = { provider, request_id, outcome, from };
	PGresult *r;
	int n;

	r = execdb_q(c, "UPDATE public.image_provider_requests q"
	    " SET outcome = $3::jsonb, outcome_from = $4, outcome_at = now()"
	    " FROM public.image_generation_jobs j"
	    " WHERE q.provider = $1 AND q.request_id = $2 AND q.waiting"
	    " AND q.outcome IS NULL AND j.id = q.job_id AND j.status = 'generating'"
	    " AND j.attempts = q.attempt RETURNING q.job_id::text", 4, p);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	if (n == 1)
		snprintf(job_id, 37, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return n == 1;
}

int
execdb_webhook_seen(PGconn *c, const char *webhook_id, const char *provider,
    const char *request_id)
{
	const char *p[3] = { webhook_id, provider, request_id };
	PGresult *r;
	int n;

	r = execdb_q(c, "INSERT INTO public.image_provider_webhooks"
	    " (webhook_id, provider, request_id, job_id)"
	    " SELECT $1, $2, $3, (SELECT job_id FROM public.image_provider_requests"
	    "  WHERE provider = $2 AND request_id = $3)"
	    " ON CONFLICT (webhook_id) DO NOTHING", 3, p);
	if (r == NULL)
		return -1;
	n = atoi(PQcmdTuples(r));
	PQclear(r);
	return n == 1;
}

int
execdb_webhook_keep(PGconn *c, const char *webhook_id, const char *outcome)
{
	const char *p[2] = { webhook_id, outcome };

	return changed(execdb_q(c, "UPDATE public.image_provider_webhooks"
	    " SET outcome = $2::jsonb WHERE webhook_id = $1", 2, p));
}

int
execdb_waiting_due(PGconn *c, int limit, struct execdb_waiting **rows)
{
	char l[16];
	const char *p[1] = { l };
	struct execdb_waiting *v;
	PGresult *r;
	int i, n;

	*rows = NULL;
	snprintf(l, sizeof(l), "%d", limit);
	r = execdb_q(c, "SELECT j.id::text, q.request_id, j.attempts,"
	    " j.cancel_requested, j.deadline_at IS NOT NULL AND j.deadline_at < now(),"
	    " j.attempts < j.max_attempts"
	    " FROM public.image_provider_requests q"
	    " JOIN public.image_generation_jobs j ON j.id = q.job_id"
	    " WHERE q.waiting AND j.status = 'generating' AND (j.cancel_requested"
	    "  OR (q.outcome IS NULL AND (q.poll_at <= now() OR j.deadline_at < now())))"
	    " ORDER BY q.poll_at LIMIT $1::int", 1, p);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	v = calloc((size_t)n + 1, sizeof(*v));
	if (v == NULL) {
		PQclear(r);
		return -1;
	}
	for (i = 0; i < n; i++) {
		snprintf(v[i].id, sizeof(v[i].id), "%s", PQgetvalue(r, i, 0));
		snprintf(v[i].request_id, sizeof(v[i].request_id), "%s",
		    PQgetvalue(r, i, 1));
		snprintf(v[i].attempts, sizeof(v[i].attempts), "%s", PQgetvalue(r, i, 2));
		v[i].cancel = is_true(r, i, 3);
		v[i].past = is_true(r, i, 4);
		v[i].requeue_ok = is_true(r, i, 5);
	}
	PQclear(r);
	*rows = v;
	return n;
}

int
execdb_poll_later(PGconn *c, const char *id, long grace_s)
{
	char g[24];
	const char *p[2] = { id, g };

	snprintf(g, sizeof(g), "%ld", grace_s);
	return changed(execdb_q(c, "UPDATE public.image_provider_requests"
	    " SET polls = polls + 1, poll_at = now() + least(300,"
	    "  $2::int * power(2, least(polls, 16))) * interval '1 second'"
	    " WHERE job_id = $1::uuid AND waiting", 2, p));
}

int
execdb_waiting_done(PGconn *c, const char *id)
{
	const char *p[1] = { id };

	return changed(execdb_q(c, "UPDATE public.image_provider_requests"
	    " SET waiting = false WHERE job_id = $1::uuid", 1, p));
}
