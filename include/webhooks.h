/*
 * webhooks.h - delivering the outbox (sql/014_webhook_outbox.sql): signed
 * POSTs of job events to the users' webhooks and of budget alerts to the
 * operator's IMAGEGEN_ALERT_WEBHOOK_URL, retried on a schedule of about a
 * day. Executors (their own job's events, after each state change), the
 * sweeper and `imagegen worker` (every due row) all call it; rows are
 * claimed with SKIP LOCKED, so any number may run at once.
 */
#ifndef IG_WEBHOOKS_H
#define IG_WEBHOOKS_H

#include <libpq-fe.h>

#include "cfg.h"

#define WH_TIMEOUT_MS 10000L		/* one attempt, connecting included */
/* An executor's sends (wh_deliver_exec()): it holds a running job's slot,
 * so a slow or silent receiver gets less; the sweeper retries. */
#define WH_EXEC_CONNECT_MS 2000L	/* connecting, per attempt */
#define WH_EXEC_BUDGET_MS 5000L		/* all attempts of one call */
#define WH_REPLY_MAX 4096		/* reply bytes read (and dropped) */
#define WH_SCHEDULE_MAX 16

/*
 * The wait before attempt n + 1 after attempt n (1-based) failed, with
 * jitter (up to +50 %), from c's schedule (IMAGEGEN_TEST_WEBHOOK_BACKOFF_MS
 * or 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h); -1 when the schedule is
 * exhausted (the delivery has failed). Can't fail otherwise.
 */
long long wh_backoff_ms(const struct cfg *c, int n);

/*
 * Delivers up to max due rows (of job_id only, when not NULL) on conn, a
 * worker-role connection, spending at most budget_ms starting new
 * attempts. The number of rows attempted, or -1 when the database failed.
 */
int wh_deliver(PGconn *conn, const struct cfg *c, const char *job_id, int max,
    long long budget_ms);
/*
 * An executor's wh_deliver() of its own job's due rows: each attempt
 * connects within WH_EXEC_CONNECT_MS and all of them end within
 * WH_EXEC_BUDGET_MS (an attempt cut short is a failed attempt, retried by
 * the sweeper on the schedule). The same result.
 */
int wh_deliver_exec(PGconn *conn, const struct cfg *c, const char *job_id,
    int max);
/*
 * Seals up to max users' legacy plain-text secrets (rows from before
 * sql/018) with IMAGEGEN_WEBHOOK_SECRET_KEY, on conn, a worker-role
 * connection; the sweeper's, so a secret nobody reads is sealed too. The
 * number of values sealed (0 without the key), or -1 when the database
 * failed (logged).
 */
int wh_seal_legacy(PGconn *conn, const struct cfg *c, int max);

#endif
