/* jobs.h - image jobs: the request, its persistence, its execution. */
#ifndef IG_JOBS_H
#define IG_JOBS_H

#include <stddef.h>

#include <libpq-fe.h>

#include "arena.h"
#include "cfg.h"
#include "err.h"

#define JOB_PROMPT_MAX 4000		/* characters */
#define JOB_IDEM_KEY_MAX 255

/* A validated POST /api/images/generate body. Strings live in an arena;
 * optional ones are NULL when absent. UUIDs are lower-cased. */
struct storage;

struct job_request {
	const char *project_id, *branch_id, *job_type, *prompt;
	int width, height;
	const char *capsule_id, *asset_id, *scene_id, *shot_id;
	const char *source_url, *mask_url;
	const char *idem_key;
	char fingerprint[65];		/* SHA-256 hex of the normalised request */
};

/*
 * Validates a request body (SPEC §3) into *out. header_key is the
 * Idempotency-Key header or NULL. sg (storage_urls() is enough) tells
 * the URLs of this service's bucket: source and mask URLs must be one.
 * IG_OK, or IG_EVALIDATION with *msg (arena) naming the offending field.
 */
enum ig_err jobreq_parse(struct arena *a, const char *body, size_t len,
    const char *header_key, struct storage *sg, struct job_request *out,
    const char **msg);
/* 1 when s (n bytes) is valid UTF-8 of 1..max characters (code points). */
int jobreq_utf8_ok(const char *s, size_t n, size_t max);

/* The result of creating a job. */
struct job_created {
	char id[37];
	char status[16];
	int replayed;			/* an idempotent replay of an earlier job */
};

/*
 * Inserts the job as the request's user (inside db_begin_user()): checks
 * the project is the caller's, the branch in it and the capsule visible,
 * then inserts with the idempotency key. IG_OK (created or replayed),
 * IG_EFORBIDDEN (ownership, with *msg), IG_EIDEM_REUSED (same key, other
 * request), IG_EUNAVAILABLE/IG_EINTERNAL.
 */
enum ig_err jobsdb_create(PGconn *c, struct arena *a, const char *user_id,
    const struct job_request *jr, const char *provider, const char *model,
    double estimated_cost, long max_attempts, struct job_created *out,
    const char **msg);
/* The job's JSON text (arena), read as the user of claims in one round
 * trip (no transaction of the caller's), or NULL with *e (IG_ENOTFOUND). */
const char *jobsdb_get_json(PGconn *c, struct arena *a, const char *claims,
    const char *id, enum ig_err *e);
/*
 * One page of the caller's jobs, newest first: {"jobs":[…],"nextCursor":…}
 * (arena). project_id and status may be NULL; cursor is NULL or a value
 * from an earlier page. NULL with *e (IG_EVALIDATION for a bad cursor).
 */
const char *jobsdb_list(PGconn *c, struct arena *a, const char *project_id,
    const char *status, long limit, const char *cursor, enum ig_err *e,
    const char **msg);
/* Cancels: queued → canceled at once; running → cancel_requested. The
 * job's JSON afterwards, or NULL with *e (IG_ENOTFOUND; IG_EVALIDATION
 * with *msg when it already ended). */
const char *jobsdb_cancel(PGconn *c, struct arena *a, const char *id,
    enum ig_err *e, const char **msg);
/* A failed or canceled job again, as a new job (retry_of = id) for the
 * current provider and model, estimated at the job's resolution. Its
 * creation, or IG_ENOTFOUND / IG_EVALIDATION (not failed or canceled). */
enum ig_err jobsdb_retry(PGconn *c, struct arena *a, const char *user_id,
    const char *id, const char *provider, const char *model,
    long max_attempts, struct job_created *out, const char **msg);

/*
 * Every query a request runs on rows that already exist, for tests: each
 * carries its own owner predicates, each between JOBSDB_OWNER_BEGIN and
 * JOBSDB_OWNER_END (SQL comments), so that a test can remove one at a time
 * and see row-level security still refuse another user's rows, and
 * disable RLS and see the predicates still refuse them. nparams: $1..$n.
 * Ends with a NULL name. (jobsdb_create's INSERT … VALUES reads no row:
 * its wall is the ownership check before it, "create_owned".)
 */
struct jobsdb_query {
	const char *name;
	const char *sql;
	int nparams;
};
extern const struct jobsdb_query jobsdb_queries[];
#define JOBSDB_OWNER_BEGIN "/*owner*/"
#define JOBSDB_OWNER_END "/*end owner*/"

/*
 * The columns of image_generation_jobs j that job_json_row() reads, in
 * its order, for a SELECT list: JOB_JSON_NCOLS of them.
 */
#define JOB_JSON_COLUMNS \
	"j.id, j.status, j.job_type, j.project_id, j.branch_id, j.asset_id," \
	" j.scene_id, j.shot_id, j.visual_style_capsule_id, j.prompt," \
	" j.final_prompt, j.width, j.height, j.provider, j.model," \
	" j.public_url, j.storage_path, j.mime_type, j.estimated_cost," \
	" j.actual_cost, j.currency, j.attempts, j.retry_of," \
	" j.cancel_requested, j.created_at, j.started_at, j.completed_at," \
	" j.updated_at, j.error_code, j.error_message, j.failure_stage"
#define JOB_JSON_NCOLS 31

/*
 * The JSON of the job in row of r, whose JOB_JSON_COLUMNS start at column
 * col (text format): the shape of SPEC §3 and of SQL's image_job_json().
 * Arena text, or NULL when memory ran out or a value is not what its
 * column holds.
 */
char *job_json_row(struct arena *a, const PGresult *r, int row, int col);
/* How many columns job_json_row()'s layout reads: JOB_JSON_NCOLS, or the
 * layout and the column list have drifted apart (it then refuses). */
int job_json_layout_columns(void);

/* "2026-11-24T08:11:23.516Z" and its NUL */
#define JOB_TS_ISO_SIZE 25
/* A timestamptz in PostgreSQL's ISO output ("2026-11-24 09:11:23.516789+01")
 * as UTC with milliseconds (truncated, as to_char's MS) into out. 0, or
 * -1 when pg is not such a timestamp of years 1 to 9999. */
int job_ts_iso(const char *pg, char out[JOB_TS_ISO_SIZE]);

#endif
