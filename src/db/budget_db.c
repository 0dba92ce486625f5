/* budget_db.c - the SQL of `imagegen budget`: public.budgets and the
 * current windows of public.budget_usage. cmd_budget.c prints. Nothing is
 * prepared on the worker-role connection: PQexecParams. */
#include <stddef.h>

#include "budgetdb.h"

/* A limit of public.budgets as the operator reads it. */
#define USD_TEXT(col) \
	"CASE WHEN " col " IS NULL THEN 'default' WHEN " col " = 'Infinity'" \
	" THEN 'none' ELSE round(" col ", 6)::text END"
#define ROW_TEXT USD_TEXT("daily_usd") " AS daily_usd, " \
	USD_TEXT("monthly_usd") " AS monthly_usd"

static PGresult *
run(PGconn *conn, const char *sql, int n, const char *const *params)
{
	return PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
}

PGresult *
budgetdb_set(PGconn *conn, const char *scope, const char *id,
    const char *daily, const char *monthly)
{
	const char *p[] = { scope, id, daily, monthly };

	return run(conn,
	    "INSERT INTO public.budgets AS b (scope, scope_id, daily_usd,"
	    " monthly_usd) VALUES ($1::text, $2::uuid, $3::numeric, $4::numeric)"
	    " ON CONFLICT (scope, scope_id) DO UPDATE"
	    " SET daily_usd = coalesce(EXCLUDED.daily_usd, b.daily_usd),"
	    " monthly_usd = coalesce(EXCLUDED.monthly_usd, b.monthly_usd),"
	    " updated_at = now()"
	    " RETURNING " ROW_TEXT, 4, p);
}

PGresult *
budgetdb_clear(PGconn *conn, const char *scope, const char *id,
    int daily, int monthly)
{
	const char *p[] = { scope, id, daily ? "t" : "f", monthly ? "t" : "f" };
	PGresult *r, *d;

	if (!daily && !monthly)
		return run(conn,
		    "DELETE FROM public.budgets WHERE scope = $1::text"
		    " AND scope_id = $2::uuid RETURNING " ROW_TEXT, 2, p);
	r = run(conn,
	    "UPDATE public.budgets SET"
	    " daily_usd = CASE WHEN $3::boolean THEN NULL ELSE daily_usd END,"
	    " monthly_usd = CASE WHEN $4::boolean THEN NULL ELSE monthly_usd END,"
	    " updated_at = now()"
	    " WHERE scope = $1::text AND scope_id = $2::uuid"
	    " RETURNING " ROW_TEXT, 4, p);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) == 0)
		return r;
	/* A row of defaults only says nothing: keep the table to overrides. */
	d = run(conn,
	    "DELETE FROM public.budgets WHERE scope = $1::text"
	    " AND scope_id = $2::uuid AND daily_usd IS NULL"
	    " AND monthly_usd IS NULL", 2, p);
	if (PQresultStatus(d) != PGRES_COMMAND_OK) {
		PQclear(r);
		return d;
	}
	PQclear(d);
	return r;
}

PGresult *
budgetdb_set_defaults(PGconn *conn, const char *defaults)
{
	const char *p[] = { defaults };

	return run(conn,
	    "SELECT set_config('imagegen.budget_defaults', $1::text, true)", 1, p);
}

PGresult *
budgetdb_windows(PGconn *conn, const char *scope, const char *id)
{
	const char *p[] = { scope, id };

	return run(conn,
	    "WITH d AS (SELECT public.image_job_budget_day(now()) AS day),"
	    " l AS (SELECT * FROM public.image_budget_limits("
	    "  CASE WHEN $1::text = 'user' THEN $2::uuid END,"
	    "  CASE WHEN $1::text = 'project' THEN $2::uuid END)),"
	    " b AS (SELECT daily_usd, monthly_usd FROM public.budgets"
	    "  WHERE scope = $1::text AND scope_id = $2::uuid),"
	    " w AS (SELECT 1 AS n, 'day'::text AS per, d.day AS ws,"
	    "   CASE $1::text WHEN 'user' THEN l.user_day"
	    "   WHEN 'project' THEN l.project_day ELSE l.deployment_day END AS lim,"
	    "   (SELECT b.daily_usd FROM b) AS ovr FROM d, l"
	    "  UNION ALL"
	    "  SELECT 2, 'month', public.image_budget_window('month', d.day),"
	    "   CASE $1::text WHEN 'user' THEN l.user_month"
	    "   ELSE l.project_month END,"
	    "   (SELECT b.monthly_usd FROM b) FROM d, l"
	    "  WHERE $1::text <> 'deployment'),"
	    " x AS (SELECT w.*, coalesce(u.spent_usd, public.image_budget_backfill("
	    "   $1::text, $2::uuid, w.per, w.ws)) AS spent,"
	    "   coalesce(u.reserved_usd, 0) AS reserved"
	    "  FROM w LEFT JOIN public.budget_usage u ON u.scope = $1::text"
	    "   AND u.scope_id = $2::uuid AND u.period = w.per"
	    "   AND u.window_start = w.ws)"
	    " SELECT per AS period, ws AS window_start,"
	    "  CASE WHEN lim IS NULL THEN 'none' ELSE round(lim, 6)::text END"
	    "  AS limit_usd,"
	    "  CASE WHEN ovr IS NULL THEN 'default' ELSE 'override' END AS source,"
	    "  round(spent, 6) AS spent_usd, round(reserved, 6) AS reserved_usd,"
	    "  CASE WHEN lim IS NULL THEN '-'"
	    "  ELSE round(greatest(lim - spent - reserved, 0), 6)::text END"
	    "  AS remaining_usd"
	    " FROM x ORDER BY n", 2, p);
}

PGresult *
budgetdb_overrides(PGconn *conn)
{
	return run(conn,
	    "SELECT scope, scope_id, " ROW_TEXT ","
	    " to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
	    " AS updated_utc FROM public.budgets ORDER BY scope, scope_id",
	    0, NULL);
}
