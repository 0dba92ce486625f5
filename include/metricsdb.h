/* metricsdb.h - the figures of /metrics that live in the database
 * (metrics_db.c): jobs now, the running totals of ended ones, budgets. */
#ifndef IG_METRICSDB_H
#define IG_METRICSDB_H

#include <libpq-fe.h>

#include "err.h"

/* The results, in text format, rows in the order given. */
struct metricsdb_rows {
	/* every status: status, count, estimated cost, age in seconds of
	 * the oldest row (0: none) */
	PGresult *jobs;
	/* canceled, completed, failed (sql/009_job_totals.sql, only
	 * growing): status, jobs, actual cost, estimated cost, duration
	 * sum, duration count */
	PGresult *totals;
	PGresult *failures;		/* failed jobs: code, jobs */
	PGresult *provider_errors;	/* failed provider calls: code, errors */
	/* budgets (sql/011_budgets.sql): scope, period, the highest
	 * (spent + reserved) / limit of the current UTC window's usage rows
	 * with a limit above 0; only pairs that have such rows */
	PGresult *budget;
	PGresult *alerts;		/* one row: count of public.cost_alerts */
};

/*
 * Reads them on the responder's worker-role connection
 * (db_worker_get), as service_role (all users), in one transaction rolled
 * back after. IG_OK with *out filled (caller frees with
 * metricsdb_free()); else IG_EUNAVAILABLE/IG_EINTERNAL with *out empty,
 * and *queried 0 when no connection or transaction could be had, 1 when
 * a query failed (logged).
 */
enum ig_err metricsdb_read(struct metricsdb_rows *out, int *queried);
/* Clears the results of metricsdb_read() (safe on an empty *m). */
void metricsdb_free(struct metricsdb_rows *m);

#endif
