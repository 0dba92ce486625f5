/* budgetdb.h - the SQL of `imagegen budget` (budget_db.c): operators'
 * overrides in public.budgets and what the current UTC windows hold
 * (sql/011_budgets.sql). Each runs on a worker-role connection inside a
 * transaction the caller began with db_begin_service(); each returns the
 * result as PQexecParams gives it (check its status; caller PQclear()s). */
#ifndef IG_BUDGETDB_H
#define IG_BUDGETDB_H

#include <libpq-fe.h>

/* The deployment's scope_id in public.budget_usage. */
#define BUDGETDB_NIL_UUID "00000000-0000-0000-0000-000000000000"

/*
 * Upserts the row of scope ("user", "project") and id: daily and monthly
 * are numeric text ("Infinity": no limit) or NULL to keep the row's value
 * (a new row: NULL, the default). One row: daily_usd, monthly_usd, each
 * as text: 'default' (NULL), 'none' ('Infinity') or the amount.
 */
PGresult *budgetdb_set(PGconn *conn, const char *scope, const char *id,
    const char *daily, const char *monthly);
/*
 * With neither flag, deletes the row; else sets the flagged limits back
 * to NULL (the default) and deletes a row left with neither limit. Rows
 * as budgetdb_set's (the row as it was deleted or is now; none when there
 * was no row).
 */
PGresult *budgetdb_clear(PGconn *conn, const char *scope, const char *id,
    int daily, int monthly);
/* set_config('imagegen.budget_defaults', defaults, true): the settings'
 * limits (struct cfg's budget_defaults) for image_budget_limits(). */
PGresult *budgetdb_set_defaults(PGconn *conn, const char *defaults);
/*
 * The budgets of scope ("user", "project", "deployment" with
 * BUDGETDB_NIL_UUID) for the current UTC windows: day, then month
 * (not for the deployment). Columns: period, window_start, limit_usd
 * ('none' or the amount), source ('override' or 'default'), spent_usd,
 * reserved_usd, remaining_usd ('-' without a limit, never below 0).
 * Spent and reserved come from the window's public.budget_usage row, or,
 * before it exists, image_budget_backfill() and 0, as image_usage() does.
 */
PGresult *budgetdb_windows(PGconn *conn, const char *scope, const char *id);
/* Every row of public.budgets: scope, scope_id, daily_usd, monthly_usd
 * (text as budgetdb_set's), updated_at (UTC). */
PGresult *budgetdb_overrides(PGconn *conn);

#endif
