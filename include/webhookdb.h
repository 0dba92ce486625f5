/* webhookdb.h - the outbox deliverers' SQL (sql/014_webhook_outbox.sql),
 * on a worker-role connection (service_role). The logic is in
 * src/jobs/webhooks.c. */
#ifndef IG_WEBHOOKDB_H
#define IG_WEBHOOKDB_H

#include <libpq-fe.h>

#define WHDB_LEASE_S 60		/* a claimed row's lease: more than one POST */

/*
 * Claims the oldest due pending delivery (of job_id only, when not NULL)
 * whose job has no earlier pending one, skipping rows another deliverer
 * holds (FOR UPDATE SKIP LOCKED): attempts + 1, next_attempt_at moved
 * WHDB_LEASE_S ahead (so a deliverer that dies gives the row back). One
 * row (id, msg_id, user_id, url, body, attempts, event, job_id), none
 * when nothing is due, NULL on failure (logged). Caller PQclear()s.
 * Due rows that wait behind a row of their job due later are moved to
 * that row's time (so they do not stay at the head of the due scan).
 */
PGresult *whdb_claim(PGconn *c, const char *job_id);
/*
 * Records an attempt of row id claimed with attempts: state ("pending",
 * "delivered", "gone", "failed", "dropped"), the reply's status (0: none)
 * and error (NULL: none); a pending row is due again in delay_ms. Fenced
 * by attempts: a row claimed again since is left alone. The job's later
 * pending rows are due with it again (pending) or now (otherwise). 1 written, 0
 * fenced off, -1 on failure (logged).
 */
int whdb_finish(PGconn *c, const char *id, const char *attempts,
    const char *state, long status, const char *error, long delay_ms);
/*
 * user_id's stored signing secrets (sealed, or legacy plain text; see
 * include/whsecret.h): no row when the user has none yet, else one
 * (secret, previous or NULL once its 24 hours passed, previous as
 * stored); NULL on failure (logged). Caller wipes and PQclear()s.
 */
PGresult *whdb_user_secrets(PGconn *c, const char *user_id);
/* user_id's first secret, sealed, unless they have one already. 0, or -1
 * (logged). */
int whdb_secret_insert(PGconn *c, const char *user_id, const char *sealed);
/* Replaces user_id's legacy plain value plain (secret or previous) with
 * sealed, if the row still holds it. 1 when it was replaced, 0 when the
 * row no longer holds it, or -1 (logged). */
int whdb_secret_reseal(PGconn *c, const char *user_id, const char *plain,
    const char *sealed);
/* Up to max rows still holding a legacy plain value (user_id, secret,
 * previous), in user_id order from a random point (wrapping around), so
 * rows that cannot be sealed do not starve the others; NULL on failure
 * (logged). Caller wipes and PQclear()s. */
PGresult *whdb_legacy_secrets(PGconn *c, int max);

#endif
