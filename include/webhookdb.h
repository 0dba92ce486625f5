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
 */
PGresult *whdb_claim(PGconn *c, const char *job_id);
/*
 * Records an attempt of row id claimed with attempts: state ("pending",
 * "delivered", "gone", "failed", "dropped"), the reply's status (0: none)
 * and error (NULL: none); a pending row is due again in delay_ms. Fenced
 * by attempts: a row claimed again since is left alone. 1 written, 0
 * fenced off, -1 on failure (logged).
 */
int whdb_finish(PGconn *c, const char *id, const char *attempts,
    const char *state, long status, const char *error, long delay_ms);
/*
 * user_id's signing secrets, the current one made from fresh when the
 * user has none: one row (secret, previous or NULL once its 24 hours
 * passed); NULL on failure. Caller wipes and PQclear()s.
 */
PGresult *whdb_user_secrets(PGconn *c, const char *user_id, const char *fresh);

#endif
