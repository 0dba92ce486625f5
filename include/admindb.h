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
/* LISTEN on the channel new jobs are announced on (sql/006_job_notify.sql),
 * ignoring failure: the worker sweeps on its interval anyway. */
void admindb_listen_jobs(PGconn *conn);

#endif
