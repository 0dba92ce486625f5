/* h_metrics.c - GET /metrics: Prometheus text (nginx allows loopback only). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "auth.h"
#include "metricsdb.h"
#include "pool.h"
#include "slots.h"

/* The text so far, grown in the request's arena; NULL after an OOM, and
 * every later append keeps it NULL. */
struct mtext {
	struct arena *a;
	char *buf;
	size_t len, cap;
	int oom;
};

static void
add(struct mtext *t, const char *fmt, ...)
{
	va_list ap;
	char *nb;
	int n;

	if (t->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf != NULL ? t->buf + t->len : NULL,
		    t->buf != NULL ? t->cap - t->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->oom = 1;
			return;
		}
		if (t->buf != NULL && (size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		nb = arena_alloc(t->a, (t->cap + (size_t)n + 1) * 2);
		if (nb == NULL) {
			t->oom = 1;
			return;
		}
		if (t->len > 0)
			memcpy(nb, t->buf, t->len);
		nb[t->len] = '\0';
		t->buf = nb;
		t->cap = (t->cap + (size_t)n + 1) * 2;
	}
}

/* A family's HELP and TYPE lines. */
static void
family(struct mtext *t, const char *name, const char *type, const char *help)
{
	add(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* s as a label value (backslash, quote and newline escaped), in the arena;
 * "" on OOM. */
static const char *
label(struct arena *a, const char *s)
{
	char *out = arena_alloc(a, strlen(s) * 2 + 1), *p;

	if (out == NULL)
		return "";
	for (p = out; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"') {
			*p++ = '\\';
			*p++ = *s;
		} else if (*s == '\n') {
			*p++ = '\\';
			*p++ = 'n';
		} else {
			*p++ = *s;
		}
	}
	*p = '\0';
	return out;
}

static int
terminal(const char *status)
{
	return strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0 ||
	    strcmp(status, "canceled") == 0;
}

static void
jobs_families(struct mtext *t, PGresult *res)
{
	long long queued = 0, running = 0;
	const char *age = "0";
	int i, n = PQntuples(res);

	family(t, "imagegen_jobs", "gauge", "Jobs by status, now.");
	for (i = 0; i < n; i++)
		add(t, "imagegen_jobs{status=\"%s\"} %s\n", PQgetvalue(res, i, 0),
		    PQgetvalue(res, i, 1));
	family(t, "imagegen_jobs_estimated_cost_usd", "gauge",
	    "Estimated cost of the jobs not yet ended, by status, now.");
	for (i = 0; i < n; i++)
		if (!terminal(PQgetvalue(res, i, 0)))
			add(t, "imagegen_jobs_estimated_cost_usd{status=\"%s\"} %s\n",
			    PQgetvalue(res, i, 0), PQgetvalue(res, i, 2));
	for (i = 0; i < n; i++) {
		if (strcmp(PQgetvalue(res, i, 0), "queued") == 0) {
			queued = strtoll(PQgetvalue(res, i, 1), NULL, 10);
			age = PQgetvalue(res, i, 3);
		} else if (!terminal(PQgetvalue(res, i, 0))) {
			running += strtoll(PQgetvalue(res, i, 1), NULL, 10);
		}
	}
	family(t, "imagegen_queue_queued_jobs", "gauge", "Jobs waiting for an executor.");
	add(t, "imagegen_queue_queued_jobs %lld\n", queued);
	family(t, "imagegen_queue_running_jobs", "gauge",
	    "Jobs an executor has claimed (processing, generating, uploading).");
	add(t, "imagegen_queue_running_jobs %lld\n", running);
	family(t, "imagegen_queue_oldest_queued_age_seconds", "gauge",
	    "Age of the oldest queued job (0: none queued).");
	add(t, "imagegen_queue_oldest_queued_age_seconds %s\n", age);
}

/*
 * The families of the running totals, from totals (status, jobs, actual
 * cost, estimated cost, duration sum, duration count): each writes one or
 * two samples a status, name{status="…"<label>} <column>.
 */
static const struct totals_family {
	const char *name, *type, *help;
	struct {
		const char *name, *label;
		int col;
	} sample[2];
} totals[] = {
	{ "imagegen_jobs_finished_total", "counter",
	    "Jobs that ended, by final status.",
	    { { "imagegen_jobs_finished_total", "", 1 }, { NULL, NULL, 0 } } },
	{ "imagegen_job_cost_usd_total", "counter",
	    "Cost of jobs that ended, by final status, actual and estimated.",
	    { { "imagegen_job_cost_usd_total", ",kind=\"actual\"", 2 },
	      { "imagegen_job_cost_usd_total", ",kind=\"estimated\"", 3 } } },
	{ "imagegen_job_duration_seconds", "summary",
	    "Time from start to end of jobs that ended, by final status.",
	    { { "imagegen_job_duration_seconds_sum", "", 4 },
	      { "imagegen_job_duration_seconds_count", "", 5 } } },
};

static void
totals_families(struct mtext *t, PGresult *res)
{
	const struct totals_family *f;
	size_t k;
	int i, j, n = PQntuples(res);

	for (k = 0; k < sizeof(totals) / sizeof(totals[0]); k++) {
		f = &totals[k];
		family(t, f->name, f->type, f->help);
		for (i = 0; i < n; i++)
			for (j = 0; j < 2 && f->sample[j].name != NULL; j++)
				add(t, "%s{status=\"%s\"%s} %s\n", f->sample[j].name,
				    PQgetvalue(res, i, 0), f->sample[j].label,
				    PQgetvalue(res, i, f->sample[j].col));
	}
}

/* A family of counters by code, from a (code, count) result. */
static void
code_family(struct mtext *t, struct arena *a, const char *name,
    const char *help, PGresult *res)
{
	int i;

	family(t, name, "counter", help);
	for (i = 0; i < PQntuples(res); i++)
		add(t, "%s{code=\"%s\"} %s\n", name, label(a, PQgetvalue(res, i, 0)),
		    PQgetvalue(res, i, 1));
}

/* How full the budgets are (budget: scope, period, ratio; only series
 * with rows) and the alerts raised so far (alerts: one count). */
static void
budget_families(struct mtext *t, struct arena *a, PGresult *budget,
    PGresult *alerts)
{
	int i;

	family(t, "imagegen_budget_spent_ratio", "gauge",
	    "Highest (spent + reserved) / limit of the budgets of the current UTC "
	    "window, by scope and period.");
	for (i = 0; i < PQntuples(budget); i++)
		add(t, "imagegen_budget_spent_ratio{scope=\"%s\",period=\"%s\"} %s\n",
		    label(a, PQgetvalue(budget, i, 0)), label(a, PQgetvalue(budget, i, 1)),
		    PQgetvalue(budget, i, 2));
	family(t, "imagegen_cost_alerts_total", "counter",
	    "Cost alerts raised (a budget window reaching 50, 80 or 100 %).");
	add(t, "imagegen_cost_alerts_total %s\n",
	    PQntuples(alerts) > 0 ? PQgetvalue(alerts, 0, 0) : "0");
}

/* Under a master, the pool's own shared figures; without one (spawn-fcgi
 * -F) only this responder's token counts, and no pool gauges. */
static void
pool_families(struct mtext *t, struct http_req *r)
{
	struct pool_stats ps;
	int used;

	pool_get_stats(&ps);
	family(t, "imagegen_tokens_total", "counter", ps.shared ?
	    "Access tokens checked by the pool's responders, by result." :
	    "Access tokens checked by this responder (no master), by result.");
	add(t, "imagegen_tokens_total{result=\"verified\"} %lu\n"
	    "imagegen_tokens_total{result=\"cached\"} %lu\n"
	    "imagegen_tokens_total{result=\"refused\"} %lu\n",
	    ps.tokens_verified, ps.tokens_cached, ps.tokens_refused);
	if (ps.shared) {
		family(t, "imagegen_pool_workers", "gauge",
		    "Responder processes, serving a request (busy) or waiting (idle).");
		add(t, "imagegen_pool_workers{state=\"busy\"} %lu\n"
		    "imagegen_pool_workers{state=\"idle\"} %lu\n",
		    ps.busy, ps.workers - ps.busy);
		family(t, "imagegen_pool_waiting_requests", "gauge",
		    "Generate requests held open by Prefer: wait.");
		add(t, "imagegen_pool_waiting_requests %lu\n", ps.waiting);
		family(t, "imagegen_pool_restarts_total", "counter",
		    "Responders replaced after exiting on their own (crash or --max-requests).");
		add(t, "imagegen_pool_restarts_total %lu\n", ps.restarts);
		family(t, "imagegen_pool_crashes_total", "counter",
		    "Responders that died of a signal or exited non-zero.");
		add(t, "imagegen_pool_crashes_total %lu\n", ps.crashes);
		family(t, "imagegen_pool_reloads_total", "counter",
		    "Reloads (SIGHUP) the master carried out.");
		add(t, "imagegen_pool_reloads_total %lu\n", ps.reloads);
	}
	used = slot_used_count(r->cfg);
	if (used >= 0) {
		family(t, "imagegen_executor_slots", "gauge",
		    "Executor slots of this host (IMAGEGEN_MAX_RUNNING_JOBS).");
		add(t, "imagegen_executor_slots %ld\n", r->cfg->max_running_jobs);
		family(t, "imagegen_executor_slots_in_use", "gauge",
		    "Executor slots of this host held by a running executor.");
		add(t, "imagegen_executor_slots_in_use %d\n", used);
	}
}

/* Jobs and the queue as they are, the running totals of ended jobs,
 * failures and provider errors, the budgets and cost alerts, from the
 * database (metricsdb_read: all users; the request role cannot reach
 * them); the pool's figures from shared memory; the host's executor
 * slots. Every counter only grows (a deleted job is not taken from the
 * totals). A database that is down gives 503, not partial text. */
enum ig_err
handle_metrics(struct http_req *r)
{
	struct mtext t = { .a = r->arena };
	struct metricsdb_rows m;
	enum ig_err e;
	int queried;

	e = metricsdb_read(&m, &queried);
	if (e != IG_OK)
		return http_fail(r, e, queried ? "metrics query failed" :
		    "database unavailable");
	jobs_families(&t, m.jobs);
	totals_families(&t, m.totals);
	code_family(&t, r->arena, "imagegen_job_failures_total",
	    "Jobs that ended failed, by error code.", m.failures);
	code_family(&t, r->arena, "imagegen_provider_errors_total",
	    "Failed provider calls, by error code (retried ones included).",
	    m.provider_errors);
	budget_families(&t, r->arena, m.budget, m.alerts);
	metricsdb_free(&m);
	pool_families(&t, r);
	if (t.oom || t.buf == NULL)
		return http_fail(r, IG_EINTERNAL, "out of memory");
	http_send_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", t.buf);
	return IG_OK;
}
