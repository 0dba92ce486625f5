/* create.c - a new job, or a failed one again: the business part of
 * POST /api/images/generate and …/retry (the handler parses and answers,
 * jobs_db.c writes). */
#include <string.h>

#include "jobs_create.h"
#include "provider.h"
#include "whsecret.h"

/* How a job of width x height runs under c: the configured provider,
 * model and attempts, and its estimate (the fixed price, else the price
 * table's; cfg_load() refused a configuration with neither). Can't fail. */
static void
run_of(const struct cfg *c, int width, int height, struct job_plan *run)
{
	run->provider = c->provider;
	run->model = prov_model(c);
	run->estimated_cost = prov_job_estimate(c, width, height);
	run->max_attempts = c->max_attempts;
}

enum ig_err
jobs_create(PGconn *conn, struct arena *a, const struct cfg *c,
    const char *user_id, const struct job_request *jr,
    struct job_created *out, const char **msg)
{
	struct job_plan run;
	enum ig_err e;

	/* its events could not be signed: refused, not queued unsent; the
	 * replay of a job made while the key was set answers as ever */
	if (jr->webhook != NULL && c->webhook_secret_key == NULL) {
		e = jobsdb_replay(conn, jr, out, msg);
		if (e == IG_ENOTFOUND) {
			*msg = "webhook: " WHSECRET_UNSET_MSG;
			e = IG_EUNAVAILABLE;
		}
		return e;
	}
	run_of(c, jr->width, jr->height, &run);
	return jobsdb_create(conn, a, user_id, jr, &run, out, msg);
}

enum ig_err
jobs_retry(PGconn *conn, struct arena *a, const struct cfg *c,
    const char *user_id, const char *id, struct job_created *out,
    const char **msg)
{
	struct job_plan run;
	int width = 0, height = 0, webhook = 0;
	enum ig_err e;

	memset(out, 0, sizeof(*out));
	/* Locked until the transaction ends: two retries of one job at once
	 * make two jobs, but each prices the job as it is. */
	e = jobsdb_retry_lock(conn, a, id, &width, &height, &webhook, msg);
	if (e != IG_OK)
		return e;
	/* the retry copies the webhook: as POST /api/images/generate, no
	 * job is made whose events could not be signed */
	if (webhook && c->webhook_secret_key == NULL) {
		*msg = "webhook: " WHSECRET_UNSET_MSG;
		return IG_EUNAVAILABLE;
	}
	run_of(c, width, height, &run);
	return jobsdb_retry(conn, a, user_id, id, &run, out, msg);
}
