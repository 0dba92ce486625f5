/* h_jobs.c - /api/images/generate and /api/images/jobs… (SPEC §3). */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "app.h"
#include "auth.h"
#include "clock.h"
#include "db.h"
#include "exec.h"
#include "jobreq.h"
#include "jobs_create.h"
#include "jobsdb.h"
#include "uuid.h"
#include "log.h"
#include "pool_signals.h"
#include "pool_stats.h"
#include "storage.h"
#include "urlpolicy.h"

/* db_run_retry() work: BEGIN as the user whose claims arg is. */
static enum ig_err
begin_user(PGconn *conn, void *arg)
{
	return db_begin_user(conn, arg);
}

/* Opens the request's transaction as the caller u, reconnecting once
 * when a restarted server broke the connection (nothing of the request
 * has run yet). On IG_OK the caller ends it with finish(). */
static enum ig_err
open_tx(struct http_req *r, const struct auth_user *u, PGconn **conn)
{
	enum ig_err e;

	e = db_run_retry(begin_user, (void *)u->claims, conn);
	if (e != IG_OK)
		return http_fail(r, e, "database unavailable");
	return IG_OK;
}

/* Commits after success, rolls back after e; msg (when set) is the
 * message of a failure. */
static enum ig_err
finish(struct http_req *r, PGconn *conn, enum ig_err e, const char *msg)
{
	if (e != IG_OK) {
		if (msg != NULL)
			http_fail(r, e, "%s", msg);
		db_rollback(conn);
		return e;
	}
	e = db_commit(conn);
	if (e != IG_OK)
		return http_fail(r, e, "could not commit");
	return IG_OK;
}

static const char *
job_id_param(struct http_req *r)
{
	const char *id = r->nparams > 0 ? r->params[0] : "";

	return strlen(id) == 36 && uuid_valid(id) ? id : NULL;
}

/* A header of a whole number. */
static void
add_num_header(struct http_req *r, const char *name, long long v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%lld", v);
	http_add_header(r, name, buf);
}

/* A whole-number member of a refusal's JSON, or -1. */
static long long
refusal_num(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) &&
	    json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
}

/*
 * What the spending limits say on a create's or retry's answer: the
 * caller's rate limit in the RateLimit header fields of the IETF draft
 * (RateLimit-Limit: the bucket's size; -Remaining: creations left;
 * -Reset: seconds until it is full), with Retry-After (seconds until a
 * token is back) when e refused for it; the refusing budget as the
 * error's "budget" member when e is IG_EBUDGET (sql/011_budgets.sql).
 */
static void
limits_answer(struct http_req *r, const struct job_created *jc, enum ig_err e)
{
	struct json_object *o;
	long long rem = -1, reset = -1;

	if (e == IG_EBUDGET && jc->refusal != NULL) {
		r->err_extra_name = "budget";
		r->err_extra_json = jc->refusal;
		return;
	}
	if (e == IG_ERATE_LIMITED && jc->refusal != NULL) {
		o = json_tokener_parse(jc->refusal);
		if (o != NULL) {
			if (refusal_num(o, "retryAfter") > 0)
				add_num_header(r, "Retry-After",
				    refusal_num(o, "retryAfter"));
			rem = refusal_num(o, "remaining");
			reset = refusal_num(o, "reset");
			json_object_put(o);
		}
	} else if (e == IG_OK && jc->rate[0] != '\0' &&
	    sscanf(jc->rate, "%lld;%lld", &rem, &reset) != 2) {
		rem = reset = -1;
	}
	if (rem < 0 || reset < 0 || r->cfg->rate_limit_per_minute <= 0)
		return;
	add_num_header(r, "RateLimit-Limit", r->cfg->rate_limit_burst);
	add_num_header(r, "RateLimit-Remaining", rem);
	add_num_header(r, "RateLimit-Reset", reset);
}

/* A 402 carries the RateLimit fields too, as every generate answer does:
 * the refused INSERT took no token (it rolled back), so they are the
 * bucket as it stands, read after the rollback. Nothing when the read
 * fails: the refusal is the answer. */
static void
budget_refusal_rate(struct http_req *r, PGconn *conn, const struct auth_user *u)
{
	struct job_created peek;
	char rate[sizeof(peek.rate)];

	if (r->cfg->rate_limit_per_minute <= 0 ||
	    jobsdb_rate_peek(conn, u->claims, rate, sizeof(rate)) != IG_OK ||
	    rate[0] == '\0')
		return;
	memset(&peek, 0, sizeof(peek));
	memcpy(peek.rate, rate, sizeof(peek.rate));
	limits_answer(r, &peek, IG_OK);
}

static void
send_created(struct http_req *r, const struct job_created *jc)
{
	char body[128];

	snprintf(body, sizeof(body), "{\"jobId\":\"%s\",\"status\":\"%s\"}", jc->id,
	    jc->status);
	if (jc->replayed)
		http_add_header(r, "Idempotent-Replayed", "true");
	else
		memcpy(r->spawn_job, jc->id, sizeof(r->spawn_job));
	http_send_json_text(r, jc->replayed ? 200 : 202, body);
}

static int
job_ended(const char *status)
{
	return strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0 ||
	    strcmp(status, "canceled") == 0;
}

/*
 * The answer to a create asked to wait (Prefer: wait=N, RFC 7240), after
 * its commit: the job's JSON once it ended (201, 200 on a replay) or when
 * N seconds passed (202), with Preference-Applied. A responder waits only
 * with one of the pool's IMAGEGEN_MAX_WAITING_REQUESTS places, so held
 * requests never take every responder; without one (or without LISTEN)
 * the answer is the one without the preference, at once. The wait sleeps
 * on the connection's socket, woken by NOTIFY image_job_done (sql/012),
 * not by polling; a stop signal ends it early (202). A client that gives
 * up (the web server closes the connection) ends it too: the place is
 * given back at once and no answer is sent (logged as 499).
 */
static void
send_waited(struct http_req *r, const struct auth_user *u,
    const struct job_created *jc, long wait_s)
{
	const char *json = NULL, *again;
	char status[16] = "", pa[32];
	long long deadline = clock_mono_ms() + wait_s * 1000LL;
	PGconn *conn = NULL;
	enum ig_err e;
	int rc = 0;

	if (!pool_stats_wait_take(r->cfg->max_waiting_requests)) {
		log_debug("job %s: no place to wait, answering at once", jc->id);
		send_created(r, jc);
		return;
	}
	conn = db_get(&e);
	if (conn == NULL || jobsdb_listen_done(conn) != IG_OK) {
		pool_stats_wait_put();
		send_created(r, jc);
		return;
	}
	/* The executor now, not after the answer: the answer waits for it
	 * (none free: the job stays queued for the sweeper, as always). */
	if (!jc->replayed)
		exec_spawn(r->cfg, jc->id);
	/* LISTEN first, then read: an end between the two is not missed */
	json = jobsdb_get_job(conn, r->arena, u->claims, jc->id, status, &e);
	while (json != NULL && !job_ended(status)) {
		rc = jobsdb_wait_done(conn, jc->id, deadline, pool_sig_fd(),
		    &pool_sig_stop, r->fcgi != NULL ? r->fcgi->ipcFd : -1);
		if (rc < 0 || rc == 2)
			break;
		again = jobsdb_get_job(conn, r->arena, u->claims, jc->id, status, &e);
		if (again == NULL)
			break;
		json = again;
		if (rc == 0)
			break;
	}
	jobsdb_unlisten_done(conn);
	pool_stats_wait_put();
	if (rc == 2) {
		/* nobody to answer: the job runs on, its executor started */
		log_info("job %s: the client gave up waiting", jc->id);
		r->responded = 1;
		r->status = 499;
		return;
	}
	if (json == NULL) {
		/* the job was committed: its short answer, never an error */
		send_created(r, jc);
		r->spawn_job[0] = '\0';
		return;
	}
	snprintf(pa, sizeof(pa), "wait=%ld", wait_s);
	http_add_header(r, "Preference-Applied", pa);
	if (jc->replayed)
		http_add_header(r, "Idempotent-Replayed", "true");
	http_send_json_text(r, !job_ended(status) ? 202 : jc->replayed ? 200 : 201,
	    json);
}

/*
 * The storage backend's URL forms, which tell a URL of our bucket: they
 * need only the configuration, no connection. Worked out once per
 * process (a responder's configuration does not change: a reload starts
 * new workers). NULL, logged once, when the backend refuses its settings.
 */
static struct storage *
bucket_urls(const struct cfg *c)
{
	static struct storage sg;
	static int state;	/* 0 not yet, 1 ready, -1 refused */
	char err[256];

	if (state == 0) {
		state = 1;
		if (storage_urls(&sg, c, err, sizeof(err)) != 0) {
			log_error("storage URL forms: %s", err);
			state = -1;
		}
	}
	return state == 1 ? &sg : NULL;
}

/* The outbound URL policy of webhooks (IMAGEGEN_FETCH_ALLOW), parsed
 * once per process as bucket_urls(); NULL, logged, when it is refused
 * (cfg_load() checked it, so only out of memory). */
static const struct urlpol *
webhook_policy(const struct cfg *c)
{
	static struct urlpol pol;
	static int state;
	char why[256];

	if (state == 0) {
		state = 1;
		if (urlpol_parse(&pol, c->fetch_allow, why, sizeof(why)) != 0) {
			log_error("IMAGEGEN_FETCH_ALLOW: %s", why);
			state = -1;
		}
	}
	return state == 1 ? &pol : NULL;
}

/* POST /api/images/generate */
enum ig_err
handle_generate(struct http_req *r)
{
	struct job_request jr;
	struct job_created jc;
	struct auth_user u;
	struct storage *sg;
	const char *msg = NULL;
	PGconn *conn;
	enum ig_err e;
	long wait_s = 0;
	int wait;

	e = auth_request(r, &u);
	if (e != IG_OK)
		return e;
	/* wait=0 waits for nothing: the answer without the preference */
	wait = http_prefer_wait(http_param(r, "HTTP_PREFER"), r->cfg->max_wait_s,
	    &wait_s) && wait_s > 0;
	if (!http_is_json(r))
		return http_fail(r, IG_EMEDIA_TYPE, "Content-Type must be application/json");
	sg = bucket_urls(r->cfg);
	if (sg == NULL)
		return http_fail(r, IG_EINTERNAL, "storage is misconfigured");
	e = jobreq_parse(r->arena, r->body, r->body_len,
	    http_param(r, "HTTP_IDEMPOTENCY_KEY"), sg, &jr, &msg);
	if (e != IG_OK)
		return http_fail(r, e, "%s", msg != NULL ? msg : "invalid request");
	if (jr.webhook != NULL) {
		const struct urlpol *pol = webhook_policy(r->cfg);
		char why[256];

		/* without IMAGEGEN_WEBHOOK_SECRET_KEY: 503 from jobs_create(),
		 * after the replay lookup (a job made while it was set) */
		if (pol == NULL)
			return http_fail(r, IG_EINTERNAL, "the URL policy is misconfigured");
		if (jobreq_check_webhook(pol, jr.webhook, why, sizeof(why)) != 0)
			return http_fail(r, IG_EVALIDATION, "webhook: %s", why);
	}
	e = open_tx(r, &u, &conn);
	if (e != IG_OK)
		return e;
	e = jobs_create(conn, r->arena, r->cfg, u.sub, &jr, &jc, &msg);
	limits_answer(r, &jc, e);
	e = finish(r, conn, e, msg);
	if (e == IG_EBUDGET)
		budget_refusal_rate(r, conn, &u);
	if (e != IG_OK)
		return e;
	if (wait)
		send_waited(r, &u, &jc, wait_s);
	else
		send_created(r, &jc);
	return IG_OK;
}

enum job_op { JOB_GET, JOB_EVENTS, JOB_CANCEL, JOB_RETRY };

/* What job_get() reads, and the JSON it got. */
struct get_work {
	struct arena *a;
	const char *claims, *id, *json;
	enum job_op op;
};

/* db_run_retry() work: the job's (or its events') JSON into w->json. */
static enum ig_err
get_once(PGconn *conn, void *arg)
{
	struct get_work *w = arg;
	enum ig_err e;

	if (w->op == JOB_EVENTS)
		w->json = jobsdb_events_json(conn, w->a, w->claims, w->id, &e);
	else
		w->json = jobsdb_get_json(conn, w->a, w->claims, w->id, &e);
	return e;
}

/* The poll every client makes (and its events): one pipelined round
 * trip, no transaction; reconnects once when a restarted server broke
 * the connection. */
static enum ig_err
job_get(struct http_req *r, const struct auth_user *u, const char *id,
    enum job_op op)
{
	struct get_work w = { r->arena, u->claims, id, NULL, op };
	enum ig_err e;

	e = db_run_retry(get_once, &w, NULL);
	if (e != IG_OK)
		return http_fail(r, e, "%s", e == IG_EUNAVAILABLE ? "database unavailable" :
		    e == IG_ENOTFOUND ? "no such job" : "internal error");
	http_send_json_text(r, 200, w.json);
	return IG_OK;
}

/* GET …/{jobId}, POST …/{jobId}/cancel and …/retry: one shape. */
static enum ig_err
job_by_id(struct http_req *r, enum job_op op)
{
	const char *id = job_id_param(r), *json = NULL, *msg = NULL;
	struct job_created jc;
	struct auth_user u;
	PGconn *conn;
	enum ig_err e;

	e = auth_request(r, &u);
	if (e != IG_OK)
		return e;
	if (id == NULL)
		return http_fail(r, IG_EVALIDATION, "jobId: must be a UUID");
	if (op == JOB_GET || op == JOB_EVENTS)
		return job_get(r, &u, id, op);
	e = open_tx(r, &u, &conn);
	if (e != IG_OK)
		return e;
	switch (op) {
	case JOB_GET:	/* job_get() above */
	case JOB_EVENTS:
		break;
	case JOB_CANCEL:
		json = jobsdb_cancel(conn, r->arena, id, &e, &msg);
		break;
	case JOB_RETRY:
		e = jobs_retry(conn, r->arena, r->cfg, u.sub, id, &jc, &msg);
		limits_answer(r, &jc, e);
		break;
	}
	e = finish(r, conn, e, msg);
	if (e != IG_OK)
		return e;
	if (op == JOB_RETRY)
		send_created(r, &jc);
	else
		http_send_json_text(r, 200, json);
	return IG_OK;
}

/* GET /api/images/jobs/{jobId} */
enum ig_err
handle_job_get(struct http_req *r)
{
	return job_by_id(r, JOB_GET);
}

/* GET /api/images/jobs/{jobId}/events */
enum ig_err
handle_job_events(struct http_req *r)
{
	return job_by_id(r, JOB_EVENTS);
}

/* POST /api/images/jobs/{jobId}/cancel */
enum ig_err
handle_job_cancel(struct http_req *r)
{
	return job_by_id(r, JOB_CANCEL);
}

/* POST /api/images/jobs/{jobId}/retry */
enum ig_err
handle_job_retry(struct http_req *r)
{
	return job_by_id(r, JOB_RETRY);
}

/* GET /api/images/jobs?projectId=&status=&limit=&cursor= */
enum ig_err
handle_job_list(struct http_req *r)
{
	const char *project, *status, *limit_s, *cursor, *json, *msg = NULL;
	struct auth_user u;
	PGconn *conn;
	enum ig_err e;
	long limit = 20;
	int bad = 0;

	e = auth_request(r, &u);
	if (e != IG_OK)
		return e;
	project = http_query_param(r, "projectId", &bad);
	status = http_query_param(r, "status", &bad);
	limit_s = http_query_param(r, "limit", &bad);
	cursor = http_query_param(r, "cursor", &bad);
	if (bad)
		return http_fail(r, IG_EVALIDATION, "query: malformed percent-encoding");
	if (project != NULL && (strlen(project) != 36 || !uuid_valid(project)))
		return http_fail(r, IG_EVALIDATION, "projectId: must be a UUID");
	if (limit_s != NULL && cfg_parse_long(limit_s, 1, 100, &limit) != 0)
		return http_fail(r, IG_EVALIDATION, "limit: must be a whole number from 1 to 100");
	e = open_tx(r, &u, &conn);
	if (e != IG_OK)
		return e;
	json = jobsdb_list(conn, r->arena, project, status, limit, cursor, &e, &msg);
	e = finish(r, conn, e, msg);
	if (e != IG_OK)
		return e;
	http_send_json_text(r, 200, json);
	return IG_OK;
}
