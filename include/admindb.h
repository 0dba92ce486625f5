/* admindb.h - the SQL of the imagegen CLI's commands (admin_db.c), on a
 * worker-role connection (db_connect_worker): the stats reports and the
 * worker's wake-up channel. */
#ifndef IG_ADMINDB_H
#define IG_ADMINDB_H

#include <libpq-fe.h>

/*
 * imagegen stats, the product guide's two monitoring queries: cost per
 * job type of completed jobs (job_type, avg_cost, total_cost,
 * job_count), and jobs by status of the last 24 hours (status, count,
 * avg_duration_sec). The result as PQexec gives it (check its status);
 * caller PQclear()s.
 */
PGresult *admindb_cost_per_job_type(PGconn *conn);
PGresult *admindb_jobs_last_day(PGconn *conn);
/* What admindb_spend_today() groups by. */
enum admindb_by { ADMINDB_BY_USER, ADMINDB_BY_PROJECT };
/*
 * imagegen stats, today's (UTC) spend of jobs created today, the top 20
 * users or projects by it: user_id or project_id, spent_usd (ended jobs,
 * public.image_job_charge), reserved_usd (estimates of jobs not ended),
 * jobs. An operator's report over the jobs table, not the budgets'
 * bookkeeping (public.budget_usage). Run as service_role; caller
 * PQclear()s.
 */
PGresult *admindb_spend_today(PGconn *conn, enum admindb_by by);
/* The cost alerts raised today (UTC), oldest first: time_utc, scope,
 * scope_id ('-' for the deployment), period, threshold, spent_usd,
 * reserved_usd, limit_usd. Caller PQclear()s. */
PGresult *admindb_alerts_today(PGconn *conn);
/* LISTEN on the channel new jobs are announced on (sql/006_job_notify.sql),
 * ignoring failure: the worker sweeps on its interval anyway. */
void admindb_listen_jobs(PGconn *conn);

#endif
