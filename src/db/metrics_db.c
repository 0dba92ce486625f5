/* metrics_db.c - the queries of GET /metrics, on the worker-role
 * connection: jobs as they are, the running totals of ended jobs,
 * failures and provider errors, and how full the budgets are. h_metrics.c writes the text. */
#include <string.h>

#include "db.h"
#include "metricsdb.h"

/* Jobs as they are now. Columns: status, count, estimated cost, age in
 * seconds of the oldest row. */
static const char jobs_sql[] =
    "SELECT s.status, count(j.id), coalesce(sum(j.estimated_cost), 0),"
    " coalesce(round(EXTRACT(EPOCH FROM (now() - min(j.created_at)))::numeric, 3), 0)"
    " FROM unnest(ARRAY['queued','processing','generating','uploading',"
    "  'completed','failed','canceled']) AS s(status)"
    " LEFT JOIN public.image_generation_jobs j ON j.status = s.status"
    " GROUP BY s.status ORDER BY s.status";

/* The running totals of ended jobs (sql/009_job_totals.sql), added to
 * when a job ends and never taken from: they only grow. Columns: status,
 * jobs, actual cost, estimated cost, duration sum, duration count. */
static const char totals_sql[] =
    "SELECT s.status, coalesce(t.jobs, 0), coalesce(t.actual_cost, 0),"
    " coalesce(t.estimated_cost, 0), coalesce(t.duration_sum, 0),"
    " coalesce(t.duration_count, 0)"
    " FROM unnest(ARRAY['canceled','completed','failed']) AS s(status)"
    " LEFT JOIN public.image_job_totals t ON t.status = s.status"
    " ORDER BY s.status";

/* Counters by code: failed jobs, and every failed provider call. */
static const char failures_sql[] =
    "SELECT code, jobs FROM public.image_job_failure_totals ORDER BY code";
static const char provider_errors_sql[] =
    "SELECT code, errors FROM public.image_provider_error_totals ORDER BY code";

/* How full the budgets of the current UTC windows are: day rows of
 * today, month rows of this month (public.image_budget_window), the
 * fullest row per scope and period. As float8: a ratio, not money. */
static const char budget_sql[] =
    "SELECT scope, period, max((spent_usd + reserved_usd) / limit_usd)::float8"
    " FROM public.budget_usage"
    " WHERE limit_usd > 0 AND window_start = public.image_budget_window(period,"
    "  public.image_job_budget_day(now()))"
    " GROUP BY scope, period ORDER BY scope, period";

/* Alerts are never deleted by imagegen: a counter. */
static const char alerts_sql[] = "SELECT count(*) FROM public.cost_alerts";

void
metricsdb_free(struct metricsdb_rows *m)
{
	PQclear(m->jobs);
	PQclear(m->totals);
	PQclear(m->failures);
	PQclear(m->provider_errors);
	PQclear(m->budget);
	PQclear(m->alerts);
	memset(m, 0, sizeof(*m));
}

enum ig_err
metricsdb_read(struct metricsdb_rows *out, int *queried)
{
	struct {
		const char *sql;
		PGresult **res;
	} q[] = {
		{ jobs_sql, &out->jobs },
		{ totals_sql, &out->totals },
		{ failures_sql, &out->failures },
		{ provider_errors_sql, &out->provider_errors },
		{ budget_sql, &out->budget },
		{ alerts_sql, &out->alerts },
	};
	PGconn *conn;
	PGresult *res;
	enum ig_err e;
	size_t i;

	memset(out, 0, sizeof(*out));
	*queried = 0;
	conn = db_worker_get(&e);
	if (conn == NULL)
		return e;
	e = db_begin_service(conn);
	if (e != IG_OK)
		return e;
	*queried = 1;
	/* Simple queries: nothing is prepared on the worker-role connection. */
	for (i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		res = PQexec(conn, q[i].sql);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			e = db_error(conn, res, "metrics");
			PQclear(res);
			metricsdb_free(out);
			db_rollback(conn);
			return e;
		}
		*q[i].res = res;
	}
	db_rollback(conn);
	return IG_OK;
}
