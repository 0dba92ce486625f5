/* admin_db.c - the SQL of the imagegen CLI's commands; main_cli.c prints. */
#include "admindb.h"

PGresult *
admindb_cost_per_job_type(PGconn *conn)
{
	return PQexec(conn,
	    "SELECT job_type, round(AVG(cost_credits), 6) AS avg_cost,"
	    " SUM(cost_credits) AS total_cost, COUNT(*) AS job_count"
	    " FROM image_generation_jobs WHERE status = 'completed'"
	    " GROUP BY job_type ORDER BY job_type");
}

PGresult *
admindb_jobs_last_day(PGconn *conn)
{
	return PQexec(conn,
	    "SELECT status, COUNT(*) AS count,"
	    " round(AVG(EXTRACT(EPOCH FROM (completed_at - created_at))), 3)"
	    " AS avg_duration_sec FROM image_generation_jobs"
	    " WHERE created_at > NOW() - INTERVAL '24 hours'"
	    " GROUP BY status ORDER BY status");
}

void
admindb_listen_jobs(PGconn *conn)
{
	PQclear(PQexec(conn, "LISTEN image_jobs"));
}
