/* webhook_db.c - the outbox deliverers' SQL (see include/webhookdb.h). */
#include <stdio.h>
#include <stdlib.h>

#include "db.h"
#include "log.h"
#include "webhookdb.h"

#define S_(x) #x
#define S(x) S_(x)

/* The order per job: a row waits while an earlier row of its job is
 * pending (due or leased), so event N+1 never overtakes event N.  A
 * waiting row must not stay due either (at the head of the due index,
 * read again by every claim): push moves due rows that wait behind a
 * row due later (backed off or leased) to that row's time, and finish
 * brings them along when that row is done or due again. */
static const char sql_claim[] =
    "WITH push AS (UPDATE public.webhook_deliveries b SET next_attempt_at ="
    "  (SELECT max(e.next_attempt_at) FROM public.webhook_deliveries e"
    "   WHERE e.job_id = b.job_id AND e.state = 'pending' AND e.id < b.id)"
    " WHERE b.id IN (SELECT d.id FROM public.webhook_deliveries d"
    "  WHERE d.state = 'pending' AND d.next_attempt_at <= now()"
    "  AND ($1::uuid IS NULL OR d.job_id = $1)"
    "  AND EXISTS (SELECT 1 FROM public.webhook_deliveries e"
    "   WHERE e.job_id = d.job_id AND e.state = 'pending' AND e.id < d.id"
    "   AND e.next_attempt_at > now())"
    "  ORDER BY d.next_attempt_at, d.id LIMIT 64 FOR UPDATE OF d SKIP LOCKED)),"
    " c AS (SELECT d.id FROM public.webhook_deliveries d"
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
    "WITH f AS (UPDATE public.webhook_deliveries SET state = $3,"
    " last_status_code = NULLIF($4::int, 0), last_error = $5,"
    " next_attempt_at = CASE WHEN $3 = 'pending'"
    "  THEN now() + $6::bigint * interval '1 millisecond' ELSE next_attempt_at END,"
    " delivered_at = CASE WHEN $3 = 'delivered' THEN now() END"
    " WHERE id = $1 AND attempts = $2 AND state = 'pending'"
    " RETURNING id, job_id, state, next_attempt_at),"
    " p AS (UPDATE public.webhook_deliveries b SET next_attempt_at ="
    "  CASE WHEN f.state = 'pending' THEN f.next_attempt_at"
    "  ELSE least(b.next_attempt_at, now()) END"
    " FROM f WHERE b.job_id = f.job_id AND b.id > f.id AND b.state = 'pending')"
    " SELECT count(*) FROM f";
/* The user's stored secrets (sealed, or legacy plain text from before
 * sql/018): the current one, the previous one while its 24 hours last,
 * and the previous one as stored (to seal a legacy value even when it no
 * longer signs).  No row when the user has none yet: the deliverer makes
 * one (sql_secret_insert), so no candidate is made on every attempt. */
static const char sql_secrets[] =
    "SELECT secret, CASE WHEN previous_until > now() THEN previous END,"
    " previous FROM public.webhook_secrets WHERE user_id = $1";
static const char sql_secret_insert[] =
    "INSERT INTO public.webhook_secrets (user_id, secret) VALUES ($1, $2)"
    " ON CONFLICT (user_id) DO NOTHING";
/* A legacy plain value replaced by its sealed form, only where the row
 * still holds that value (a concurrent rotation wins). */
static const char sql_secret_reseal[] =
    "UPDATE public.webhook_secrets SET"
    " secret = CASE WHEN secret = $2 THEN $3 ELSE secret END,"
    " previous = CASE WHEN previous = $2 THEN $3 ELSE previous END"
    " WHERE user_id = $1 AND (secret = $2 OR previous = $2)";

/* Rows still holding plain text (the partial index of sql/018), a random
 * batch of them.  Rows that cannot be sealed (a plain value that is no
 * usable key: only a rotation mends it) stay in this set; read in one
 * order every pass they could be the whole batch every time, and the
 * others would wait for ever.  Any order from a fixed or random starting
 * point is unfair too (a row just after a run of unsealable ones is
 * rarely reached); a random order reaches each row with the same chance
 * every pass.  The set is small, and only shrinks. */
static const char sql_legacy[] =
    "SELECT w.user_id, w.secret, w.previous FROM public.webhook_secrets w"
    " WHERE (w.secret LIKE 'whsec\\_%' OR w.previous LIKE 'whsec\\_%')"
    " ORDER BY random() LIMIT $1";

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
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		db_error(c, r, "webhook delivery update");
		PQclear(r);
		return -1;
	}
	n = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return n > 0 ? 1 : 0;
}

PGresult *
whdb_user_secrets(PGconn *c, const char *user_id)
{
	PGresult *r = db_exec(c, sql_secrets, 1, &user_id);

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) > 1) {
		db_error(c, r, "webhook secret");
		PQclear(r);
		return NULL;
	}
	return r;
}

int
whdb_secret_insert(PGconn *c, const char *user_id, const char *sealed)
{
	const char *p[2] = { user_id, sealed };
	PGresult *r = db_exec(c, sql_secret_insert, 2, p);
	int rc = 0;

	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		db_error(c, r, "webhook secret insert");
		rc = -1;
	}
	PQclear(r);
	return rc;
}

int
whdb_secret_reseal(PGconn *c, const char *user_id, const char *plain,
    const char *sealed)
{
	const char *p[3] = { user_id, plain, sealed };
	PGresult *r = db_exec(c, sql_secret_reseal, 3, p);
	int rc = -1;

	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		db_error(c, r, "webhook secret reseal");
	else
		rc = atoi(PQcmdTuples(r)) > 0 ? 1 : 0;
	PQclear(r);
	return rc;
}

PGresult *
whdb_legacy_secrets(PGconn *c, int max)
{
	char n[16];
	const char *p = n;
	PGresult *r;

	snprintf(n, sizeof(n), "%d", max);
	r = db_exec(c, sql_legacy, 1, &p);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		db_error(c, r, "webhook legacy secrets");
		PQclear(r);
		return NULL;
	}
	return r;
}
