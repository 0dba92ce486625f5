/* h_metrics.c - GET /metrics: Prometheus text (nginx allows loopback only). */
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "auth.h"
#include "db.h"

/* Appends to a growing arena buffer; NULL on OOM. */
static char *
cat(struct arena *a, char *buf, const char *s)
{
	size_t n = buf != NULL ? strlen(buf) : 0;
	char *out = arena_alloc(a, n + strlen(s) + 1);

	if (out == NULL)
		return NULL;
	if (n > 0)
		memcpy(out, buf, n);
	memcpy(out + n, s, strlen(s) + 1);
	return out;
}

/* Jobs by status, cost totals, job durations and the running jobs, from
 * the database (on the worker-role connection, as service_role: all
 * users; the request role cannot reach it), plus this responder's own
 * token counters. A database that is down gives 503, not partial text. */
enum ig_err
handle_metrics(struct http_req *r)
{
	struct auth_stats as;
	PGconn *conn;
	PGresult *res = NULL;
	enum ig_err e;
	char *out = NULL, line[256];
	int i;

	conn = db_worker_get(&e);
	if (conn == NULL)
		return http_fail(r, e, "database unavailable");
	e = db_begin_service(conn);
	if (e != IG_OK)
		return http_fail(r, e, "database unavailable");
	res = PQexec(conn, "SELECT s.status, count(j.id),"
	    " coalesce(sum(j.actual_cost), 0), coalesce(sum(j.estimated_cost), 0),"
	    " coalesce(sum(EXTRACT(EPOCH FROM (j.completed_at - j.started_at)))"
	    "  FILTER (WHERE j.completed_at IS NOT NULL AND j.started_at IS NOT NULL), 0),"
	    " count(j.completed_at) FILTER (WHERE j.started_at IS NOT NULL)"
	    " FROM unnest(ARRAY['queued','processing','generating','uploading',"
	    "  'completed','failed','canceled']) AS s(status)"
	    " LEFT JOIN public.image_generation_jobs j ON j.status = s.status"
	    " GROUP BY s.status ORDER BY s.status");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		e = db_error(conn, res, "metrics");
		PQclear(res);
		db_rollback(conn);
		return http_fail(r, e, "metrics query failed");
	}
	out = cat(r->arena, out,
	    "# HELP imagegen_jobs Jobs by status.\n# TYPE imagegen_jobs gauge\n");
	for (i = 0; i < PQntuples(res) && out != NULL; i++) {
		snprintf(line, sizeof(line), "imagegen_jobs{status=\"%s\"} %s\n",
		    PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
		out = cat(r->arena, out, line);
	}
	out = cat(r->arena, out, "# HELP imagegen_job_cost_usd_total Cost by status, actual and estimated.\n"
	    "# TYPE imagegen_job_cost_usd_total counter\n");
	for (i = 0; i < PQntuples(res) && out != NULL; i++) {
		snprintf(line, sizeof(line),
		    "imagegen_job_cost_usd_total{status=\"%s\",kind=\"actual\"} %s\n"
		    "imagegen_job_cost_usd_total{status=\"%s\",kind=\"estimated\"} %s\n",
		    PQgetvalue(res, i, 0), PQgetvalue(res, i, 2), PQgetvalue(res, i, 0),
		    PQgetvalue(res, i, 3));
		out = cat(r->arena, out, line);
	}
	out = cat(r->arena, out, "# HELP imagegen_job_duration_seconds Time from start to end of finished jobs.\n"
	    "# TYPE imagegen_job_duration_seconds summary\n");
	for (i = 0; i < PQntuples(res) && out != NULL; i++) {
		snprintf(line, sizeof(line),
		    "imagegen_job_duration_seconds_sum{status=\"%s\"} %s\n"
		    "imagegen_job_duration_seconds_count{status=\"%s\"} %s\n",
		    PQgetvalue(res, i, 0), PQgetvalue(res, i, 4), PQgetvalue(res, i, 0),
		    PQgetvalue(res, i, 5));
		out = cat(r->arena, out, line);
	}
	PQclear(res);
	db_rollback(conn);
	auth_get_stats(&as);
	snprintf(line, sizeof(line),
	    "# HELP imagegen_tokens_total Tokens this responder checked.\n"
	    "# TYPE imagegen_tokens_total counter\n"
	    "imagegen_tokens_total{result=\"verified\"} %lu\n"
	    "imagegen_tokens_total{result=\"cached\"} %lu\n"
	    "imagegen_tokens_total{result=\"refused\"} %lu\n",
	    as.verified, as.cache_hits, as.refused);
	out = cat(r->arena, out, line);
	if (out == NULL)
		return http_fail(r, IG_EINTERNAL, "out of memory");
	http_send_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", out);
	return IG_OK;
}
