/* jobs_db.c - image jobs in Postgres, as the request's user: owner
 * predicates in every query, and RLS behind them. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base64.h"
#include "clock.h"
#include "db.h"
#include "job_json.h"
#include "jobsdb.h"
#include "jsonw.h"
#include "uuid.h"
#include "log.h"

static const char *const job_states[] = { "queued", "processing", "generating",
	"uploading", "completed", "failed", "canceled", NULL };

/*
 * The request queries. Each says whose rows it may touch itself, in an
 * owner predicate, although row-level security says the same: the two are
 * independent walls, and a mistake in one (a policy dropped, RLS disabled,
 * a query edited) leaves the other standing. OWNER_PRED marks each one
 * for the tests (jobsdb_queries); auth.uid() is the token's sub, from the
 * request.jwt.claims the request's transaction set.
 */
#define OWNER_PRED(p) " " JOBSDB_OWNER_BEGIN "(" p ")" JOBSDB_OWNER_END " "

/*
 * The columns a new job is written with, by create and by retry alike.
 * JOB_REQUEST_COLS are what the request asked for (a retry copies them
 * from the job it retries, in this order), JOB_RUN_COLS how it is run
 * (provider, model, estimated cost, attempts: from the configuration).
 */
#define JOB_REQUEST_COLS \
	"project_id, branch_id, job_type, prompt, width, height," \
	" visual_style_capsule_id, asset_id, scene_id, shot_id," \
	" source_image_url, mask_image_url, webhook_url, webhook_events"
#define JOB_RUN_COLS "provider, model, estimated_cost, max_attempts"

/* Bounds of the listings' answers (as SQL text). */
#define JOBSDB_MAX_PROJECTS_S "200"
#define JOBSDB_MAX_BRANCHES_S "100"
#define JOBSDB_MAX_EVENTS_S "1000"

/* Ownership, before the INSERT: the project is the caller's, the branch
 * is in it, and the capsule (if any) is the caller's, shared or public. */
static const char sql_create_owned[] =
    "SELECT EXISTS (SELECT 1 FROM public.projects p WHERE p.id = $1 AND"
    OWNER_PRED("p.owner_id = auth.uid()") "),"
    " EXISTS (SELECT 1 FROM public.branches b JOIN public.projects p"
    "  ON p.id = b.project_id WHERE b.id = $2 AND b.project_id = $1 AND"
    OWNER_PRED("p.owner_id = auth.uid()") "),"
    " $3::uuid IS NULL OR EXISTS (SELECT 1 FROM public.visual_style_capsules c"
    "  WHERE c.id = $3 AND"
    OWNER_PRED("c.user_id = auth.uid() OR c.user_id IS NULL OR c.is_public")
    ")";
/* The project's main branch, for a request without branchId: no row when
 * it has none (or is not the caller's: sql_create_owned tells which). */
static const char sql_create_main[] =
    "SELECT b.id FROM public.branches b JOIN public.projects p"
    " ON p.id = b.project_id WHERE b.project_id = $1 AND b.is_main AND"
    OWNER_PRED("p.owner_id = auth.uid()");
/* An idempotent replay: the caller's own job with this key, and the
 * caller's rate limit as it stands (a replay takes no token; NULL when
 * rate limits are off). */
static const char sql_create_replay[] =
    "SELECT id, status, request_fingerprint,"
    " public.image_job_rate_peek() FROM public.image_generation_jobs"
    " WHERE idempotency_key = $1 AND" OWNER_PRED("user_id = auth.uid()");
/* The caller's bucket (auth.uid()'s, inside the function): no owner
 * predicate to add, no row of anyone's read. */
static const char sql_rate_peek[] = "SELECT public.image_job_rate_peek()";
static const char sql_get[] =
    "SELECT " JOB_JSON_COLUMNS " FROM public.image_generation_jobs j"
    " WHERE j.id = $1 AND" OWNER_PRED("j.user_id = auth.uid()");
/* Keyset pagination on (created_at, id): rows inserted meanwhile land
 * before the first page, never between pages. The owner predicate also
 * lets the planner use the (user_id, created_at) index. */
static const char sql_list[] =
    "SELECT (EXTRACT(EPOCH FROM j.created_at) * 1000000)::bigint, "
    JOB_JSON_COLUMNS
    " FROM public.image_generation_jobs j"
    " WHERE" OWNER_PRED("j.user_id = auth.uid()")
    " AND ($1::uuid IS NULL OR j.project_id = $1)"
    " AND ($2::text IS NULL OR j.status = $2)"
    " AND ($3::bigint IS NULL OR (j.created_at, j.id) <"
    "  ('epoch'::timestamptz + $3::bigint * interval '1 microsecond', $4::uuid))"
    " ORDER BY j.created_at DESC, j.id DESC LIMIT $5";
/* queued: canceled at once; running: flagged, and the executor stops at
 * its next stage boundary. */
static const char sql_cancel[] =
    "UPDATE public.image_generation_jobs j SET"
    " status = CASE WHEN j.status = 'queued' THEN 'canceled' ELSE j.status END,"
    " cancel_requested = true"
    " WHERE j.id = $1 AND j.status IN ('queued', 'processing', 'generating', 'uploading')"
    " AND" OWNER_PRED("j.user_id = auth.uid()")
    " RETURNING " JOB_JSON_COLUMNS;
/* FOR UPDATE: two retries of one job at once make two jobs, but each
 * sees the job as it is, and the estimate uses its resolution. */
static const char sql_retry_lock[] =
    "SELECT status, width, height, webhook_url IS NOT NULL"
    " FROM public.image_generation_jobs WHERE id = $1 AND" OWNER_PRED("user_id = auth.uid()") " FOR UPDATE";
static const char sql_retry_insert[] =
    "INSERT INTO public.image_generation_jobs (user_id, " JOB_REQUEST_COLS ","
    " " JOB_RUN_COLS ", retry_of)"
    " SELECT $2, " JOB_REQUEST_COLS ", $5, $6, $3, $4, id"
    " FROM public.image_generation_jobs j WHERE j.id = $1 AND"
    /* The caller's job, and still a project, branch and capsule the
     * caller may write a job with (as the INSERT policy asks): a project
     * given away since is not retried into. */
    OWNER_PRED("j.user_id = auth.uid() AND EXISTS (SELECT 1"
    " FROM public.projects p JOIN public.branches b ON b.project_id = p.id"
    " WHERE p.id = j.project_id AND b.id = j.branch_id"
    " AND p.owner_id = auth.uid()) AND (j.visual_style_capsule_id IS NULL"
    " OR EXISTS (SELECT 1 FROM public.visual_style_capsules c"
    " WHERE c.id = j.visual_style_capsule_id AND (c.user_id = auth.uid()"
    " OR c.user_id IS NULL OR c.is_public)))")
    " RETURNING id, status";

/* The new job (no row read: its wall is sql_create_owned before it).
 * The unique (user_id, idempotency_key) index decides between concurrent
 * first requests: the loser waits for the winner's commit, inserts
 * nothing, and replays the winner's job (sql_create_replay). A row
 * inserted, and only one (the insert trigger, sql/019), takes a token
 * from the caller's bucket (the limit is the transaction's
 * imagegen.rate_limit, db.c) and reserves its estimate in the caller's
 * budgets; either refusal fails the statement (SQLSTATE IG429, IG402). */
static const char sql_create_insert[] =
    "INSERT INTO public.image_generation_jobs (user_id, " JOB_REQUEST_COLS ","
    " idempotency_key, request_fingerprint, " JOB_RUN_COLS ")"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
    " $12, $13, $14, $15::text[], $16, $17, $18, $19, $20, $21)"
    " ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL"
    " DO NOTHING RETURNING id, status";
/* What the insert's rate-limit take left, 'REMAINING;RESET' (the insert
 * trigger's, sql/019; '' or NULL when it took none: a replay), read
 * between the INSERT and its COMMIT. */
static const char sql_rate_state[] =
    "SELECT current_setting('imagegen.rate_state', true)";

/* The caller's projects, newest first, each with its branches, the main
 * one first, then by name: at most JOBSDB_MAX_PROJECTS projects of
 * JOBSDB_MAX_BRANCHES branches (a bounded answer). A project without a
 * branch is one row with NULL branch columns. $1: NULL, or one project
 * (for the owner-predicate test; the handler passes NULL). */
static const char sql_projects[] =
    "WITH p AS (SELECT p.id, p.title, p.created_at FROM public.projects p"
    " WHERE" OWNER_PRED("p.owner_id = auth.uid()")
    " AND ($1::uuid IS NULL OR p.id = $1)"
    " ORDER BY p.created_at DESC, p.id DESC LIMIT " JOBSDB_MAX_PROJECTS_S ")"
    " SELECT p.id, p.title, p.created_at, b.id, b.name, b.is_main FROM p"
    " LEFT JOIN LATERAL (SELECT b.id, b.name, b.is_main FROM public.branches b"
    "  WHERE b.project_id = p.id ORDER BY b.is_main DESC, b.name, b.id"
    "  LIMIT " JOBSDB_MAX_BRANCHES_S ") b ON true"
    " ORDER BY p.created_at DESC, p.id DESC, b.is_main DESC, b.name, b.id";
/* The caller's job and its events, oldest first (at most
 * JOBSDB_MAX_EVENTS): no row when the job is not the caller's, one row
 * with NULL event columns when it has none. */
static const char sql_events[] =
    "SELECT j.id, e.id, e.event, e.from_status, e.to_status, e.detail,"
    " e.created_at FROM public.image_generation_jobs j"
    " LEFT JOIN public.image_generation_job_events e ON e.job_id = j.id"
    " WHERE j.id = $1 AND" OWNER_PRED("j.user_id = auth.uid()")
    " ORDER BY e.id LIMIT " JOBSDB_MAX_EVENTS_S;

/* The caller's job and its webhook deliveries, oldest first (at most
 * JOBSDB_MAX_EVENTS): no row when the job is not the caller's, one row
 * with NULL delivery columns when it has none. */
static const char sql_webhooks[] =
    "SELECT j.id, j.webhook_url, d.id, d.msg_id, d.event, d.state, d.attempts,"
    " d.last_status_code, d.last_error, d.next_attempt_at, d.last_attempt_at,"
    " d.delivered_at, d.created_at FROM public.image_generation_jobs j"
    " LEFT JOIN public.webhook_deliveries d ON d.job_id = j.id"
    " WHERE j.id = $1 AND" OWNER_PRED("j.user_id = auth.uid()")
    " ORDER BY d.id LIMIT " JOBSDB_MAX_EVENTS_S;
/* sql/014's functions work on auth.uid()'s rows only. */
static const char sql_redeliver[] =
    "SELECT delivery_id, queued FROM public.image_job_webhook_redeliver($1)";
static const char sql_secret[] =
    "SELECT owner, stored FROM public.image_webhook_secret($1)";
static const char sql_secret_rotate[] =
    "SELECT public.image_webhook_secret_rotate($1)";
static const char sql_secret_reseal[] =
    "SELECT public.image_webhook_secret_reseal($1, $2)";

const struct jobsdb_query jobsdb_queries[] = {
	{ "create_owned", sql_create_owned, 3 },
	{ "create_main", sql_create_main, 1 },
	{ "create_replay", sql_create_replay, 1 },
	{ "get", sql_get, 1 },
	{ "list", sql_list, 5 },
	{ "cancel", sql_cancel, 1 },
	{ "cancel_after", sql_get, 1 },	/* why a cancel changed nothing */
	{ "retry_lock", sql_retry_lock, 1 },
	{ "retry_insert", sql_retry_insert, 6 },
	{ "projects", sql_projects, 1 },
	{ "events", sql_events, 1 },
	{ "webhooks", sql_webhooks, 1 },
	{ NULL, NULL, 0 }
};

/* Runs a parameterised query; NULL (logged, mapped into *e) on failure.
 * Caller PQclear()s. */
static PGresult *
q(PGconn *c, const char *sql, int n, const char *const *params, enum ig_err *e,
    ExecStatusType want)
{
	PGresult *r = db_exec(c, sql, n, params);

	if (PQresultStatus(r) != want) {
		*e = db_error(c, r, "job query");
		PQclear(r);
		return NULL;
	}
	*e = IG_OK;
	return r;
}

static const char *
num(struct arena *a, double v)
{
	return arena_printf(a, "%.6f", v);
}

static const char *
lng(struct arena *a, long v)
{
	return arena_printf(a, "%ld", v);
}

/* job_json_row(), IG_EINTERNAL (logged) when it fails. */
static char *
row_json(struct arena *a, const PGresult *r, int row, int col, enum ig_err *e)
{
	char *json = job_json_row(a, r, row, col);

	if (json == NULL) {
		log_error("job %.36s: cannot write its JSON (out of memory or an"
		    " unexpected column value)", PQgetvalue(r, row, col));
		*e = IG_EINTERNAL;
	}
	return json;
}

/* The new job's id and status, columns 0 and 1 of r's first row, and
 * the caller's rate limit, column rate_col (none: -1), into out. Can't
 * fail. */
static void
created(struct job_created *out, const PGresult *r, int rate_col)
{
	snprintf(out->id, sizeof(out->id), "%s", PQgetvalue(r, 0, 0));
	snprintf(out->status, sizeof(out->status), "%s", PQgetvalue(r, 0, 1));
	out->rate[0] = '\0';
	if (rate_col >= 0)
		snprintf(out->rate, sizeof(out->rate), "%s",
		    PQgetvalue(r, 0, rate_col));
}

/* A budget's or rate limit's refusal (SQLSTATE IG402, IG429, raised by
 * the insert trigger of sql/019_admission_last.sql): its code, with the server's message in *msg and
 * the limit's JSON in out->refusal (arena); IG_OK when r is another
 * failure. */
static enum ig_err
refused(struct arena *a, const PGresult *r, struct job_created *out,
    const char **msg)
{
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	const char *text = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	const char *detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
	enum ig_err e;

	if (state == NULL || detail == NULL || text == NULL)
		return IG_OK;
	if (strcmp(state, "IG402") == 0)
		e = IG_EBUDGET;
	else if (strcmp(state, "IG429") == 0)
		e = IG_ERATE_LIMITED;
	else
		return IG_OK;
	*msg = arena_strdup(a, text);
	out->refusal = arena_strdup(a, detail);
	return *msg != NULL && out->refusal != NULL ? e : IG_EINTERNAL;
}

/* Runs sql, an INSERT … RETURNING id, status of at most one job, with
 * params p[0..n-1], and commits right after it, in the same round trip
 * (db_exec_commit: the user's budget and rate-limit rows it updated are
 * not held locked while the answer travels back); with a rate limit on,
 * what its take left is read in that round trip too (sql_rate_state).
 * IG_OK with *made 1 and the job in *out, or *made 0 when it inserted
 * none (*out zeroed), committed either way; IG_EBUDGET or
 * IG_ERATE_LIMITED with *msg and out->refusal; else q()'s failure;
 * failed: the transaction is the caller's to roll back. */
static enum ig_err
insert_job(PGconn *c, struct arena *a, const char *sql, int n,
    const char *const *p, struct job_created *out, int *made,
    const char **msg)
{
	PGresult *r, *rate = NULL;
	enum ig_err e;

	memset(out, 0, sizeof(*out));
	*made = 0;
	r = db_exec_commit(c, sql, n, p, db_rate_limit_on() ? sql_rate_state :
	    NULL, &rate);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		e = refused(a, r, out, msg);
		if (e == IG_OK)
			e = db_error(c, r, "job insert");
		PQclear(r);
		return e;
	}
	if (PQntuples(r) == 1) {
		created(out, r, -1);
		if (rate != NULL && PQntuples(rate) == 1)
			snprintf(out->rate, sizeof(out->rate), "%s",
			    PQgetvalue(rate, 0, 0));
		*made = 1;
	}
	PQclear(rate);
	PQclear(r);
	return IG_OK;
}

/* The caller's job of jr's idempotency key, as a replay into out (*found
 * 1), or *found 0 when there is none; IG_EIDEM_REUSED when the key's job
 * is of another request. */
static enum ig_err
find_replay(PGconn *c, const struct job_request *jr, struct job_created *out,
    int *found, const char **msg)
{
	PGresult *r;
	enum ig_err e;

	*found = 0;
	r = q(c, sql_create_replay, 1, &jr->idem_key, &e, PGRES_TUPLES_OK);
	if (r == NULL)
		return e;
	e = IG_OK;
	if (PQntuples(r) != 1) {
		/* none */
	} else if (strcmp(PQgetvalue(r, 0, 2), jr->fingerprint) != 0) {
		*msg = "idempotencyKey: already used with a different request";
		e = IG_EIDEM_REUSED;
	} else {
		created(out, r, 3);
		out->replayed = 1;
		*found = 1;
	}
	PQclear(r);
	return e;
}

enum ig_err
jobsdb_create(PGconn *c, struct arena *a, const char *user_id,
    const struct job_request *jr, const struct job_plan *run,
    struct job_created *out, const char **msg)
{
	const char *branch = jr->branch_id;
	const char *own[3] = { jr->project_id, NULL, jr->capsule_id };
	const char *p[21];
	PGresult *r;
	enum ig_err e;
	int made = 0, found = 0;

	memset(out, 0, sizeof(*out));
	/* No branchId: the project's main branch (the fingerprint is of the
	 * request as sent, jobreq.c, so a replay finds its job whatever is
	 * main now). */
	if (branch == NULL) {
		r = q(c, sql_create_main, 1, &jr->project_id, &e, PGRES_TUPLES_OK);
		if (r == NULL)
			return e;
		if (PQntuples(r) == 1) {
			branch = arena_strdup(a, PQgetvalue(r, 0, 0));
			if (branch == NULL) {
				PQclear(r);
				*msg = "out of memory";
				return IG_EINTERNAL;
			}
		}
		PQclear(r);
		/* None is main now: a replay still answers with the job made
		 * on the branch that was main then (the key's request, sent
		 * without branchId like this one) before "no main branch". */
		if (branch == NULL && jr->idem_key != NULL) {
			e = find_replay(c, jr, out, &found, msg);
			if (e != IG_OK || found)
				return e;
		}
	}
	own[1] = branch;
	/* Ownership, by the owner predicates and again by row-level
	 * security: another user's project or capsule is not visible. */
	r = q(c, sql_create_owned, 3, own, &e, PGRES_TUPLES_OK);
	if (r == NULL)
		return e;
	if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
		*msg = "projectId: no such project of yours";
		e = IG_EFORBIDDEN;
	} else if (branch == NULL) {
		*msg = "branchId: required: the project has no main branch";
		e = IG_EVALIDATION;
	} else if (strcmp(PQgetvalue(r, 0, 1), "t") != 0) {
		*msg = "branchId: not a branch of this project";
		e = IG_EFORBIDDEN;
	} else if (strcmp(PQgetvalue(r, 0, 2), "t") != 0) {
		*msg = "visualStyleCapsuleId: no such capsule visible to you";
		e = IG_EFORBIDDEN;
	}
	PQclear(r);
	if (e != IG_OK)
		return e;

	/* $1..$21 of sql_create_insert, in its column order */
	p[0] = user_id;
	p[1] = jr->project_id;
	p[2] = branch;
	p[3] = jr->job_type;
	p[4] = jr->prompt;
	p[5] = lng(a, jr->width);
	p[6] = lng(a, jr->height);
	p[7] = jr->capsule_id;
	p[8] = jr->asset_id;
	p[9] = jr->scene_id;
	p[10] = jr->shot_id;
	p[11] = jr->source_url;
	p[12] = jr->mask_url;
	p[13] = jr->webhook;
	p[14] = jr->webhook_events;
	p[15] = jr->idem_key;
	p[16] = jr->fingerprint;
	p[17] = run->provider;
	p[18] = run->model;
	p[19] = num(a, run->estimated_cost);
	p[20] = lng(a, run->max_attempts);
	e = insert_job(c, a, sql_create_insert, 21, p, out, &made, msg);
	if (e != IG_OK || made)
		return e;
	/* The key's job is another request's: read it as the user again, in
	 * a new transaction (the INSERT's ended with it). */
	e = db_begin_again(c);
	if (e != IG_OK)
		return e;
	e = find_replay(c, jr, out, &found, msg);
	if (e == IG_OK && !found) {
		*msg = "idempotency key conflict, try again";
		e = IG_EIDEM_IN_FLIGHT;
	}
	return e;
}

enum ig_err
jobsdb_replay(PGconn *c, const struct job_request *jr,
    struct job_created *out, const char **msg)
{
	enum ig_err e;
	int found = 0;

	memset(out, 0, sizeof(*out));
	if (jr->idem_key == NULL)
		return IG_ENOTFOUND;
	e = find_replay(c, jr, out, &found, msg);
	return e == IG_OK && !found ? IG_ENOTFOUND : e;
}

enum ig_err
jobsdb_rate_peek(PGconn *c, const char *claims, char *out, size_t n)
{
	PGresult *r;
	enum ig_err e = IG_OK;

	out[0] = '\0';
	r = db_read_as_user(c, claims, sql_rate_peek, 0, NULL);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		e = db_error(c, r, "rate limit peek");
	else if (!PQgetisnull(r, 0, 0))
		snprintf(out, n, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return e;
}

const char *
jobsdb_get_json(PGconn *c, struct arena *a, const char *claims, const char *id,
    enum ig_err *e)
{
	return jobsdb_get_job(c, a, claims, id, NULL, e);
}

const char *
jobsdb_get_job(PGconn *c, struct arena *a, const char *claims, const char *id,
    char status[16], enum ig_err *e)
{
	const char *p[1] = { id };
	const char *json = NULL;
	PGresult *r;

	/* Read-only and one statement: one round trip, no BEGIN or COMMIT.
	 * The JSON is written here: plain columns cost Postgres far less
	 * than building the object (jsonb_build_object, to_char). */
	r = db_read_as_user(c, claims, sql_get, 1, p);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		*e = db_error(c, r, "job query");
		PQclear(r);
		return NULL;
	}
	*e = IG_OK;
	if (PQntuples(r) == 1) {
		json = row_json(a, r, 0, 0, e);
		if (status != NULL)
			snprintf(status, 16, "%s", PQgetvalue(r, 0, 1));
	} else {
		*e = IG_ENOTFOUND;
	}
	PQclear(r);
	return json;
}

/* cursor = base64url("<created_at in µs since the epoch>.<job uuid>") */
static int
cursor_decode(struct arena *a, const char *cur, const char **us,
    const char **id)
{
	unsigned char buf[128];
	char *s, *dot;
	long n;
	size_t i;

	if (strlen(cur) > 120)
		return -1;
	n = b64url_decode(cur, strlen(cur), buf);
	if (n < 38 || n > 80)
		return -1;
	s = arena_strndup(a, (const char *)buf, (size_t)n);
	if (s == NULL || (dot = strchr(s, '.')) == NULL)
		return -1;
	*dot = '\0';
	for (i = 0; s[i] != '\0'; i++)
		if (s[i] < '0' || s[i] > '9' || i > 18)
			return -1;
	if (i == 0 || strlen(dot + 1) != 36 || !uuid_valid(dot + 1))
		return -1;
	*us = s;
	*id = dot + 1;
	return 0;
}

static char *
cursor_encode(struct arena *a, const char *us, const char *id)
{
	char *raw = arena_printf(a, "%s.%s", us, id), *out;

	if (raw == NULL)
		return NULL;
	out = arena_alloc(a, b64url_encoded_len(strlen(raw)) + 1);
	if (out != NULL)
		b64url_encode((const unsigned char *)raw, strlen(raw), out);
	return out;
}

const char *
jobsdb_list(PGconn *c, struct arena *a, const char *project_id,
    const char *status, long limit, const char *cursor, enum ig_err *e,
    const char **msg)
{
	const char *p[5] = { project_id, status, NULL, NULL, NULL };
	char *out, *item, *next = NULL;
	struct jsonw w;
	PGresult *r;
	int i, n, rows;
	size_t k;

	if (status != NULL) {
		for (k = 0; job_states[k] != NULL; k++)
			if (strcmp(status, job_states[k]) == 0)
				break;
		if (job_states[k] == NULL) {
			*e = IG_EVALIDATION;
			*msg = "status: must be one of queued, processing, generating, uploading, completed, failed, canceled";
			return NULL;
		}
	}
	if (cursor != NULL && cursor_decode(a, cursor, &p[2], &p[3]) != 0) {
		*e = IG_EVALIDATION;
		*msg = "cursor: not a cursor from an earlier page";
		return NULL;
	}
	p[4] = lng(a, limit + 1);
	r = q(c, sql_list, 5, p, e, PGRES_TUPLES_OK);
	if (r == NULL)
		return NULL;
	rows = PQntuples(r);
	n = rows > limit ? (int)limit : rows;
	if (rows > limit)
		next = cursor_encode(a, PQgetvalue(r, n - 1, 0), PQgetvalue(r, n - 1, 1));
	jw_init(&w, a, 1024 * (size_t)(n + 1));
	jw_lit(&w, "{\"jobs\":[");
	for (i = 0; i < n; i++) {
		item = row_json(a, r, i, 1, e);
		if (item == NULL) {
			PQclear(r);
			return NULL;
		}
		if (i > 0)
			jw_raw(&w, ",", 1);
		jw_lit(&w, item);
	}
	jw_lit(&w, "],\"nextCursor\":");
	if (next != NULL)
		jw_str(&w, next, strlen(next));
	else
		jw_lit(&w, "null");
	jw_lit(&w, "}");
	PQclear(r);
	out = jw_finish(&w, NULL);
	if (out == NULL)
		*e = IG_EINTERNAL;
	return out;
}

const char *
jobsdb_cancel(PGconn *c, struct arena *a, const char *id, enum ig_err *e,
    const char **msg)
{
	const char *p[1] = { id };
	const char *json = NULL;
	PGresult *r;

	r = q(c, sql_cancel, 1, p, e, PGRES_TUPLES_OK);
	if (r == NULL)
		return NULL;
	if (PQntuples(r) == 1) {
		json = row_json(a, r, 0, 0, e);
		PQclear(r);
		return json;
	}
	PQclear(r);
	r = q(c, sql_get, 1, p, e, PGRES_TUPLES_OK);	/* why nothing changed */
	if (r == NULL)
		return NULL;
	if (PQntuples(r) == 0) {
		*e = IG_ENOTFOUND;
	} else if (strcmp(PQgetvalue(r, 0, 1), "canceled") == 0) {
		json = row_json(a, r, 0, 0, e);	/* already: no-op */
	} else {
		*e = IG_EVALIDATION;
		*msg = arena_printf(a, "jobId: the job has already %s",
		    PQgetvalue(r, 0, 1));
	}
	PQclear(r);
	return json;
}

enum ig_err
jobsdb_retry_lock(PGconn *c, struct arena *a, const char *id, int *width,
    int *height, int *webhook, const char **msg)
{
	const char *p[1] = { id };
	const char *status;
	PGresult *r;
	enum ig_err e;

	r = q(c, sql_retry_lock, 1, p, &e, PGRES_TUPLES_OK);
	if (r == NULL)
		return e;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return IG_ENOTFOUND;
	}
	status = PQgetvalue(r, 0, 0);
	if (strcmp(status, "failed") != 0 && strcmp(status, "canceled") != 0) {
		*msg = arena_printf(a, "jobId: only failed or canceled jobs can be retried (this one is %s)",
		    status);
		PQclear(r);
		return IG_EVALIDATION;
	}
	*width = atoi(PQgetvalue(r, 0, 1));
	*height = atoi(PQgetvalue(r, 0, 2));
	*webhook = strcmp(PQgetvalue(r, 0, 3), "t") == 0;
	PQclear(r);
	return IG_OK;
}

enum ig_err
jobsdb_retry(PGconn *c, struct arena *a, const char *user_id, const char *id,
    const struct job_plan *run, struct job_created *out, const char **msg)
{
	const char *p[6] = { id, user_id, num(a, run->estimated_cost),
		lng(a, run->max_attempts), run->provider, run->model };
	enum ig_err e;
	int made = 0;

	e = insert_job(c, a, sql_retry_insert, 6, p, out, &made, msg);
	if (e == IG_OK && !made) {
		/* locked above as the caller's: its project or capsule is not */
		*msg = "jobId: the job's project, branch or style capsule is no longer yours";
		e = IG_EFORBIDDEN;
	}
	return e;
}

/* ts (Postgres' ISO text of a timestamptz) as the API's "…Z" string, or
 * null; -1 when it is neither. */
static int
put_ts(struct jsonw *w, const PGresult *r, int row, int col)
{
	char ts[JOB_TS_ISO_SIZE];

	if (PQgetisnull(r, row, col)) {
		jw_lit(w, "null");
		return 0;
	}
	if (job_ts_iso(PQgetvalue(r, row, col), ts) != 0)
		return -1;
	jw_str(w, ts, strlen(ts));
	return 0;
}

/* A text column as a JSON string, or null. */
static void
put_text(struct jsonw *w, const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		jw_lit(w, "null");
	else
		jw_str(w, PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

/* db_read_as_user() of sql with params p, or NULL with *e. */
static PGresult *
read_user(PGconn *c, const char *claims, const char *sql, int n,
    const char *const *p, enum ig_err *e)
{
	PGresult *r = db_read_as_user(c, claims, sql, n, p);

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		*e = db_error(c, r, "job query");
		PQclear(r);
		return NULL;
	}
	*e = IG_OK;
	return r;
}

const char *
jobsdb_projects_json(PGconn *c, struct arena *a, const char *claims,
    enum ig_err *e)
{
	const char *p[1] = { NULL };
	const char *prev = "";
	struct jsonw w;
	PGresult *r;
	char *out;
	int i, n, nb = 0;

	r = read_user(c, claims, sql_projects, 1, p, e);
	if (r == NULL)
		return NULL;
	n = PQntuples(r);
	jw_init(&w, a, 256 * (size_t)(n + 1));
	jw_lit(&w, "{\"projects\":[");
	for (i = 0; i < n; i++) {
		if (strcmp(prev, PQgetvalue(r, i, 0)) != 0) {
			if (i > 0)
				jw_lit(&w, "]},");
			jw_lit(&w, "{");
			jw_key(&w, "id");
			put_text(&w, r, i, 0);
			jw_key(&w, "name");
			put_text(&w, r, i, 1);
			jw_key(&w, "createdAt");
			if (put_ts(&w, r, i, 2) != 0)
				goto bad;
			jw_key(&w, "branches");
			jw_lit(&w, "[");
			prev = PQgetvalue(r, i, 0);
			nb = 0;
		}
		if (PQgetisnull(r, i, 3))
			continue;
		jw_lit(&w, nb++ > 0 ? ",{" : "{");
		jw_key(&w, "id");
		put_text(&w, r, i, 3);
		jw_key(&w, "name");
		put_text(&w, r, i, 4);
		jw_key(&w, "isMain");
		jw_lit(&w, strcmp(PQgetvalue(r, i, 5), "t") == 0 ? "true" : "false");
		jw_lit(&w, "}");
	}
	jw_lit(&w, n > 0 ? "]}]}" : "]}");
	PQclear(r);
	out = jw_finish(&w, NULL);
	if (out == NULL)
		*e = IG_EINTERNAL;
	return out;
bad:
	log_error("project %.36s: unexpected created_at", PQgetvalue(r, i, 0));
	PQclear(r);
	*e = IG_EINTERNAL;
	return NULL;
}

const char *
jobsdb_events_json(PGconn *c, struct arena *a, const char *claims,
    const char *id, enum ig_err *e)
{
	const char *p[1] = { id };
	struct jsonw w;
	PGresult *r;
	char *out;
	int i, n;

	r = read_user(c, claims, sql_events, 1, p, e);
	if (r == NULL)
		return NULL;
	n = PQntuples(r);
	if (n == 0) {
		PQclear(r);
		*e = IG_ENOTFOUND;
		return NULL;
	}
	jw_init(&w, a, 256 * (size_t)(n + 1));
	jw_lit(&w, "{\"jobId\":");
	put_text(&w, r, 0, 0);
	jw_lit(&w, ",\"events\":[");
	for (i = 0; i < n; i++) {
		if (PQgetisnull(r, i, 1))
			continue;
		if (i > 0)
			jw_lit(&w, ",");
		jw_lit(&w, "{\"id\":");
		jw_lit(&w, PQgetvalue(r, i, 1));	/* bigserial: digits */
		jw_key(&w, "event");
		put_text(&w, r, i, 2);
		jw_key(&w, "fromStatus");
		put_text(&w, r, i, 3);
		jw_key(&w, "toStatus");
		put_text(&w, r, i, 4);
		jw_key(&w, "detail");
		/* jsonb's text form is JSON */
		jw_lit(&w, PQgetisnull(r, i, 5) ? "null" : PQgetvalue(r, i, 5));
		jw_key(&w, "createdAt");
		if (put_ts(&w, r, i, 6) != 0) {
			log_error("job %.36s: unexpected event created_at", id);
			PQclear(r);
			*e = IG_EINTERNAL;
			return NULL;
		}
		jw_lit(&w, "}");
	}
	jw_lit(&w, "]}");
	PQclear(r);
	out = jw_finish(&w, NULL);
	if (out == NULL)
		*e = IG_EINTERNAL;
	return out;
}

/* Frees every notification libpq has read on c. */
static void
drop_notifies(PGconn *c)
{
	PGnotify *n;

	while ((n = PQnotifies(c)) != NULL)
		PQfreemem(n);
}

/* A command (LISTEN, UNLISTEN) outside any transaction; IG_OK or the
 * mapped failure. */
static enum ig_err
command(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	enum ig_err e = IG_OK;

	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		e = db_error(c, r, sql);
	PQclear(r);
	return e;
}

enum ig_err
jobsdb_listen_done(PGconn *c)
{
	drop_notifies(c);
	return command(c, "LISTEN image_job_done");
}

void
jobsdb_unlisten_done(PGconn *c)
{
	if (c == NULL)
		return;
	/* A healthy connection is never left listening, whatever ended the
	 * wait: its next request would carry every job's end. */
	if (PQstatus(c) == CONNECTION_OK &&
	    command(c, "UNLISTEN image_job_done") == IG_OK) {
		/* read what arrived meanwhile, so no later request sees it */
		if (PQconsumeInput(c) == 1)
			drop_notifies(c);
		return;
	}
	/* Broken, or UNLISTEN failed: the connection goes (the next db_get()
	 * makes a new one), so no LISTEN outlives the wait. */
	db_check(c);
	db_drop(c);
}

int
jobsdb_wait_done(PGconn *c, const char *id, long long deadline_ms, int stop_fd,
    volatile sig_atomic_t *stop, int peer_fd)
{
	struct pollfd pfd[3];
	struct timespec ts;
	sigset_t mask;
	long long left;
	PGnotify *n;
	int found = 0, k, np;

	/* The stop signals the responder blocks while it serves (pool_worker.c)
	 * are let in while it sleeps here, so a stopping pool does not wait
	 * out every held request. */
	sigprocmask(SIG_BLOCK, NULL, &mask);
	sigdelset(&mask, SIGTERM);
	sigdelset(&mask, SIGQUIT);
	sigdelset(&mask, SIGINT);
	for (;;) {
		while ((n = PQnotifies(c)) != NULL) {
			if (strcmp(n->relname, "image_job_done") == 0 &&
			    strcmp(n->extra, id) == 0)
				found = 1;
			PQfreemem(n);
		}
		if (found)
			return 1;
		if (stop != NULL && *stop)
			return 0;
		left = deadline_ms - clock_mono_ms();
		if (left <= 0)
			return 0;
		pfd[0].fd = PQsocket(c);
		pfd[0].events = POLLIN;
		pfd[0].revents = 0;
		if (pfd[0].fd < 0)
			return -1;
		np = 1;
		if (stop_fd >= 0) {
			pfd[np].fd = stop_fd;
			pfd[np].events = POLLIN;
			pfd[np++].revents = 0;
		}
		/* The web server's connection: its request was read to the end
		 * (FCGI_STDIN's end seen) and it sends nothing more before the
		 * answer, so input or a hang-up there is the client gone
		 * (nginx closes the connection) or an FCGI_ABORT_REQUEST. */
		if (peer_fd >= 0) {
			pfd[np].fd = peer_fd;
			pfd[np].events = POLLIN | POLLRDHUP;
			pfd[np++].revents = 0;
		}
		ts.tv_sec = (time_t)(left / 1000);
		ts.tv_nsec = (long)(left % 1000) * 1000000L;
		k = ppoll(pfd, (nfds_t)np, &ts, &mask);
		if (k < 0 && errno != EINTR)
			return -1;
		if (k <= 0)
			continue;
		if ((pfd[0].revents & (POLLIN | POLLERR | POLLHUP)) &&
		    PQconsumeInput(c) != 1) {
			db_check(c);
			return -1;
		}
		/* the self-pipe: only stop signals write it; the accept loop
		 * drains it */
		if (stop_fd >= 0 && (pfd[1].revents & POLLIN))
			return 0;
		if (peer_fd >= 0 && (pfd[np - 1].revents &
		    (POLLIN | POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
			return 2;
	}
}

const char *
jobsdb_webhooks_json(PGconn *c, struct arena *a, const char *claims,
    const char *id, enum ig_err *e)
{
	static const char *const ts_keys[] = { "nextAttemptAt", "lastAttemptAt",
		"deliveredAt", "createdAt" };
	const char *p[1] = { id };
	struct jsonw w;
	PGresult *r;
	char *out;
	int i, k, n, nd = 0;

	r = read_user(c, claims, sql_webhooks, 1, p, e);
	if (r == NULL)
		return NULL;
	n = PQntuples(r);
	if (n == 0) {
		PQclear(r);
		*e = IG_ENOTFOUND;
		return NULL;
	}
	jw_init(&w, a, 512 * (size_t)(n + 1));
	jw_lit(&w, "{\"jobId\":");
	put_text(&w, r, 0, 0);
	jw_key(&w, "webhook");
	put_text(&w, r, 0, 1);
	jw_lit(&w, ",\"deliveries\":[");
	for (i = 0; i < n; i++) {
		if (PQgetisnull(r, i, 2))
			continue;
		jw_lit(&w, nd++ > 0 ? ",{\"id\":" : "{\"id\":");
		jw_lit(&w, PQgetvalue(r, i, 2));	/* bigserial: digits */
		jw_key(&w, "webhookId");
		put_text(&w, r, i, 3);
		jw_key(&w, "event");
		put_text(&w, r, i, 4);
		jw_key(&w, "state");
		put_text(&w, r, i, 5);
		jw_key(&w, "attempts");
		jw_lit(&w, PQgetvalue(r, i, 6));
		jw_key(&w, "lastStatusCode");
		jw_lit(&w, PQgetisnull(r, i, 7) ? "null" : PQgetvalue(r, i, 7));
		jw_key(&w, "lastError");
		put_text(&w, r, i, 8);
		for (k = 0; k < 4; k++) {
			jw_key(&w, ts_keys[k]);
			/* a settled row has no next attempt */
			if (k == 0 && strcmp(PQgetvalue(r, i, 5), "pending") != 0)
				jw_lit(&w, "null");
			else if (put_ts(&w, r, i, 9 + k) != 0) {
				log_error("job %.36s: unexpected delivery time", id);
				PQclear(r);
				*e = IG_EINTERNAL;
				return NULL;
			}
		}
		jw_lit(&w, "}");
	}
	jw_lit(&w, "]}");
	PQclear(r);
	out = jw_finish(&w, NULL);
	if (out == NULL)
		*e = IG_EINTERNAL;
	return out;
}

const char *
jobsdb_redeliver(PGconn *c, struct arena *a, const char *id, int *queued,
    enum ig_err *e)
{
	const char *out;
	PGresult *r;

	*queued = 0;
	r = q(c, sql_redeliver, 1, &id, e, PGRES_TUPLES_OK);
	if (r == NULL)
		return NULL;
	if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
		PQclear(r);
		*e = IG_ENOTFOUND;
		return NULL;
	}
	out = arena_strdup(a, PQgetvalue(r, 0, 0));
	*queued = PQgetvalue(r, 0, 1)[0] == 't';
	PQclear(r);
	*e = out != NULL ? IG_OK : IG_EINTERNAL;
	return out;
}

const char *
jobsdb_webhook_secret(PGconn *c, struct arena *a, const char *fresh,
    const char **owner, enum ig_err *e)
{
	const char *out = NULL;
	PGresult *r;

	*owner = NULL;
	r = q(c, sql_secret, 1, &fresh, e, PGRES_TUPLES_OK);
	if (r == NULL)
		return NULL;
	if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
		PQclear(r);
		*e = IG_EINTERNAL;
		return NULL;
	}
	*owner = arena_strdup(a, PQgetvalue(r, 0, 0));
	if (!PQgetisnull(r, 0, 1)) {
		out = arena_strdup(a, PQgetvalue(r, 0, 1));
		OPENSSL_cleanse(PQgetvalue(r, 0, 1), (size_t)PQgetlength(r, 0, 1));
		if (out == NULL)
			*owner = NULL;
	}
	PQclear(r);
	*e = *owner != NULL ? IG_OK : IG_EINTERNAL;
	return out;
}

enum ig_err
jobsdb_webhook_secret_rotate(PGconn *c, const char *fresh)
{
	enum ig_err e;
	PGresult *r = q(c, sql_secret_rotate, 1, &fresh, &e, PGRES_TUPLES_OK);

	PQclear(r);
	return e;
}

enum ig_err
jobsdb_webhook_secret_reseal(PGconn *c, const char *plain, const char *sealed)
{
	const char *p[2] = { plain, sealed };
	enum ig_err e;
	PGresult *r = q(c, sql_secret_reseal, 2, p, &e, PGRES_TUPLES_OK);

	PQclear(r);
	return e;
}
