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

/* The start of today's UTC day, as a timestamptz. */
#define TODAY_UTC "(date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"

/* One query per grouping: a column name cannot be a parameter. The cost
 * of ended jobs as the budgets charge it (image_job_charge), the
 * estimates of the others as what they hold reserved. */
#define SPEND_SQL(col) \
	"SELECT " col ", round(sum(public.image_job_charge(status, actual_cost," \
	" estimated_cost)), 6) AS spent_usd," \
	" round(coalesce(sum(estimated_cost) FILTER (WHERE status IN" \
	" ('queued', 'processing', 'generating', 'uploading')), 0), 6)" \
	" AS reserved_usd, count(*) AS jobs" \
	" FROM public.image_generation_jobs WHERE created_at >= " TODAY_UTC \
	" GROUP BY " col " ORDER BY 2 DESC, 3 DESC, 1 LIMIT 20"

PGresult *
admindb_spend_today(PGconn *conn, enum admindb_by by)
{
	return PQexec(conn, by == ADMINDB_BY_PROJECT ? SPEND_SQL("project_id") :
	    SPEND_SQL("user_id"));
}

PGresult *
admindb_alerts_today(PGconn *conn)
{
	return PQexec(conn,
	    "SELECT to_char(a.created_at AT TIME ZONE 'UTC', 'HH24:MI:SS')"
	    " AS time_utc, a.scope, CASE WHEN a.scope = 'deployment' THEN '-'"
	    " ELSE a.scope_id::text END AS scope_id, a.period,"
	    " a.threshold || '%' AS threshold, round(a.spent_usd, 6) AS spent_usd,"
	    " round(a.reserved_usd, 6) AS reserved_usd,"
	    " round(a.limit_usd, 6) AS limit_usd"
	    " FROM public.cost_alerts a WHERE a.created_at >= " TODAY_UTC
	    " ORDER BY a.created_at, a.id");
}

void
admindb_listen_jobs(PGconn *conn)
{
	PQclear(PQexec(conn, "LISTEN image_jobs"));
}
