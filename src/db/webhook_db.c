/* webhook_db.c - the outbox deliverers' SQL (see include/webhookdb.h). */
#include <stdio.h>
#include <stdlib.h>

#include "db.h"
#include "log.h"
#include "webhookdb.h"

#define S_(x) #x
#define S(x) S_(x)

/* The order per job: a row waits while an earlier row of its job is
 * pending (due or leased), so event N+1 never overtakes event N. */
static const char sql_claim[] =
    "WITH c AS (SELECT d.id FROM public.webhook_deliveries d"
    " WHERE d.state = 'pending' AND d.next_attempt_at <= now()"
    " AND ($1::uuid IS NULL OR d.job_id = $1)"
    " AND NOT EXISTS (SELECT 1 FROM public.webhook_deliveries e"
    "  WHERE e.job_id = d.job_id AND e.state = 'pending' AND e.id < d.id)"
    " ORDER BY d.next_attempt_at, d.id LIMIT 1 FOR UPDATE OF d SKIP LOCKED)"
    " UPDATE public.webhook_deliveries d SET attempts = d.attempts + 1,"
    " next_attempt_at = now() + interval '" S(WHDB_LEASE_S) " seconds',"
    " last_attempt_at = now()"
    " FROM c WHERE d.id = c.id"
    " RETURNING d.id, d.msg_id, d.user_id, d.url, d.body, d.attempts, d.event,"
    " d.job_id";
static const char sql_finish[] =
    "UPDATE public.webhook_deliveries SET state = $3,"
    " last_status_code = NULLIF($4::int, 0), last_error = $5,"
    " next_attempt_at = CASE WHEN $3 = 'pending'"
    "  THEN now() + $6::bigint * interval '1 millisecond' ELSE next_attempt_at END,"
    " delivered_at = CASE WHEN $3 = 'delivered' THEN now() END"
    " WHERE id = $1 AND attempts = $2 AND state = 'pending'";
/* The INSERT's row is not visible to the SELECT of the same statement:
 * one of the two branches gives the row. */
static const char sql_secrets[] =
    "WITH ins AS (INSERT INTO public.webhook_secrets (user_id, secret)"
    " VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING RETURNING secret)"
    " SELECT secret, CASE WHEN previous_until > now() THEN previous END"
    " FROM public.webhook_secrets WHERE user_id = $1"
    " UNION ALL SELECT secret, NULL FROM ins";

PGresult *
whdb_claim(PGconn *c, const char *job_id)
{
	PGresult *r = db_exec(c, sql_claim, 1, &job_id);

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		db_error(c, r, "webhook claim");
		PQclear(r);
		return NULL;
	}
	return r;
}

int
whdb_finish(PGconn *c, const char *id, const char *attempts,
    const char *state, long status, const char *error, long delay_ms)
{
	char st[16], delay[24];
	const char *p[6] = { id, attempts, state, st, error, delay };
	PGresult *r;
	int n;

	snprintf(st, sizeof(st), "%ld", status);
	snprintf(delay, sizeof(delay), "%ld", delay_ms);
	r = db_exec(c, sql_finish, 6, p);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		db_error(c, r, "webhook delivery update");
		PQclear(r);
		return -1;
	}
	n = atoi(PQcmdTuples(r));
	PQclear(r);
	return n > 0 ? 1 : 0;
}

PGresult *
whdb_user_secrets(PGconn *c, const char *user_id, const char *fresh)
{
	const char *p[2] = { user_id, fresh };
	PGresult *r = db_exec(c, sql_secrets, 2, p);

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			db_error(c, r, "webhook secret");
		else
			log_error("webhook secret: no row for the user");
		PQclear(r);
		return NULL;
	}
	return r;
}
