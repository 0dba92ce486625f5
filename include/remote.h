/*
 * remote.h - jobs waiting on a remote model (a provider that calls back,
 * IMAGEGEN_PUBLIC_URL set; sql/015_provider_request.sql): the webhook that
 * says the model ended, and the sweeper's pass over the waiting jobs.
 */
#ifndef IG_REMOTE_H
#define IG_REMOTE_H

#include <stddef.h>

#include <libpq-fe.h>

#include "cfg.h"
#include "exec.h"

enum remote_wh {
	REMOTE_WH_OK,		/* recorded; job_id set when a job is to resume */
	REMOTE_WH_REPLAY,	/* this webhook-id was received before: ignored */
	REMOTE_WH_UNSIGNED,	/* signature missing, stale or not matching */
	REMOTE_WH_BAD,		/* signed, but not the provider's body */
	REMOTE_WH_OFF,		/* the provider does not call back */
	REMOTE_WH_UNAVAILABLE	/* no secret, or the database did not answer */
};

/*
 * A webhook from c's provider: the Standard Webhooks headers (id, ts,
 * sig; NULL when absent) verified against its secret (configured, or asked
 * of the provider once per process) before anything else; then its
 * webhook-id recorded once and, when it tells of an ended request a job
 * waits on, that outcome recorded and the job's id put in job_id (37
 * bytes; "" otherwise) for an executor. msg says why on failure.
 */
enum remote_wh remote_webhook(const struct cfg *c, const char *id,
    const char *ts, const char *sig, const char *body, size_t len,
    char job_id[37], char *msg, size_t msglen);

/*
 * The sweeper's pass over jobs waiting on a remote model: one asked to
 * cancel has its remote job canceled and ends canceled; one past its
 * deadline has it canceled and is requeued or failed (JOB_TIMEOUT); one
 * whose webhook is late (IMAGEGEN_WEBHOOK_GRACE_S) is polled, then again
 * with a doubling wait, and its outcome recorded when the model ended (an
 * executor then resumes it). Counted in st. 0, or -1 (logged).
 */
int remote_sweep(PGconn *conn, const struct cfg *c, struct sweep_stats *st);

#endif
