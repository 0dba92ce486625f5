/* usage_db.c - the caller's budgets and rate limit, for GET /api/usage:
 * one statement as the user (public.image_usage() and
 * public.image_job_rate_peek() of sql/011_budgets.sql key on auth.uid()). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "jsonw.h"
#include "usagedb.h"

/*
 * One row even with no budget (the LEFT JOIN): whether the project is the
 * caller's, the rate limit, then a budget's window, limit, spent and
 * reserved (NULL scope: none). Owner predicate on the project as in every
 * request query; image_usage() gives no project rows for another's.
 */
static const char sql_usage[] =
    "SELECT $1::uuid IS NULL OR EXISTS (SELECT 1 FROM public.projects p"
    "  WHERE p.id = $1 AND /*owner*/(p.owner_id = auth.uid())/*end owner*/),"
    " public.image_job_rate_peek(),"
    " u.scope, u.period, u.window_start,"
    " CASE u.period WHEN 'month' THEN u.window_start + interval '1 month'"
    "  ELSE u.window_start + 1 END::date,"
    " u.limit_usd::float8, u.spent_usd::float8, u.reserved_usd::float8,"
    " greatest(u.limit_usd - u.spent_usd - u.reserved_usd, 0)::float8"
    " FROM (SELECT 1) one LEFT JOIN public.image_usage($1) u ON true";

/* A float8 column's text as a JSON number (Postgres prints plain decimal
 * or exponent forms JSON accepts; "Infinity" does not occur: no limit
 * means no row). */
static void
num(struct jsonw *w, const char *key, const char *v)
{
	jw_key(w, key);
	jw_lit(w, v);
}

static void
str(struct jsonw *w, const char *key, const char *v)
{
	jw_key(w, key);
	jw_str(w, v, strlen(v));
}

const char *
usagedb_json(PGconn *conn, struct arena *a, const char *claims,
    const char *project_id, long per_minute, long burst, enum ig_err *e,
    const char **msg)
{
	char reset[40];
	const char *p[1] = { project_id };
	const char *out = NULL;
	long long left = 0, full = 0;
	struct jsonw w;
	PGresult *r;
	int i, n;

	r = db_read_as_user(conn, claims, sql_usage, 1, p);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1) {
		*e = db_error(conn, r, "usage query");
		PQclear(r);
		return NULL;
	}
	*e = IG_OK;
	if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
		*e = IG_EFORBIDDEN;
		*msg = "projectId: no such project of yours";
		PQclear(r);
		return NULL;
	}
	n = PQntuples(r);
	jw_init(&w, a, 512);
	jw_lit(&w, "{\"currency\":\"USD\",\"budgets\":[");
	for (i = 0; i < n && !PQgetisnull(r, i, 2); i++) {
		if (i > 0)
			jw_lit(&w, ",");
		jw_lit(&w, "{");
		str(&w, "scope", PQgetvalue(r, i, 2));
		if (strcmp(PQgetvalue(r, i, 2), "project") == 0)
			str(&w, "projectId", project_id);
		str(&w, "period", PQgetvalue(r, i, 3));
		str(&w, "windowStart", PQgetvalue(r, i, 4));
		snprintf(reset, sizeof(reset), "%sT00:00:00Z", PQgetvalue(r, i, 5));
		str(&w, "resetsAt", reset);
		num(&w, "limitUsd", PQgetvalue(r, i, 6));
		num(&w, "spentUsd", PQgetvalue(r, i, 7));
		num(&w, "reservedUsd", PQgetvalue(r, i, 8));
		num(&w, "remainingUsd", PQgetvalue(r, i, 9));
		jw_lit(&w, "}");
	}
	jw_lit(&w, "],\"rateLimit\":");
	if (per_minute > 0 && !PQgetisnull(r, 0, 1) &&
	    sscanf(PQgetvalue(r, 0, 1), "%lld;%lld", &left, &full) == 2) {
		jw_lit(&w, arena_printf(a, "{\"perMinute\":%ld,\"burst\":%ld,"
		    "\"remaining\":%lld,\"resetSeconds\":%lld}", per_minute, burst,
		    left, full));
	} else {
		jw_lit(&w, "null");
	}
	jw_lit(&w, "}");
	PQclear(r);
	out = jw_finish(&w, NULL);
	if (out == NULL)
		*e = IG_EINTERNAL;
	return out;
}
