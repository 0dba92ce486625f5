/* jobs_create.h - a new job from a validated request, and a failed one
 * again: what it costs and how it runs (create.c). */
#ifndef IG_JOBS_CREATE_H
#define IG_JOBS_CREATE_H

#include <libpq-fe.h>

#include "arena.h"
#include "cfg.h"
#include "err.h"
#include "jobreq.h"
#include "jobsdb.h"

/*
 * Creates the job jr asks for, as the caller user_id (the token's sub),
 * in the caller's transaction on conn (db_begin_user()'s): for c's
 * provider and model, priced at the requested resolution, with c's
 * attempts. IG_OK with *out (created, or an idempotent replay of an
 * earlier job), else jobsdb_create()'s failure, with *msg (arena or
 * static) when there is more to say than the code. A request with a
 * webhook while IMAGEGEN_WEBHOOK_SECRET_KEY is not set creates nothing:
 * only its replay (a job of its idempotency key made while the key was
 * set), else IG_EUNAVAILABLE with *msg.
 */
enum ig_err jobs_create(PGconn *conn, struct arena *a, const struct cfg *c,
    const char *user_id, const struct job_request *jr,
    struct job_created *out, const char **msg);
/*
 * The caller's failed or canceled job id again, as a new job (retry_of
 * = id), in the caller's transaction on conn: for c's provider and model
 * now, priced at the job's resolution, with c's attempts. IG_OK with
 * *out, IG_ENOTFOUND, IG_EVALIDATION (not failed or canceled) or
 * IG_EFORBIDDEN (no longer the caller's to write), with *msg as for
 * jobs_create(); IG_EUNAVAILABLE with *msg when the job has a webhook and
 * IMAGEGEN_WEBHOOK_SECRET_KEY is not set (its events could not be
 * signed); IG_EUNAVAILABLE/IG_EINTERNAL.
 */
enum ig_err jobs_retry(PGconn *conn, struct arena *a, const struct cfg *c,
    const char *user_id, const char *id, struct job_created *out,
    const char **msg);

#endif
