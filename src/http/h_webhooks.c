/* h_webhooks.c - the caller's webhook signing secret and a job's
 * deliveries (docs/WEBHOOKS.md, sql/014_webhook_outbox.sql). */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "app.h"
#include "auth.h"
#include "db.h"
#include "jobsdb.h"
#include "stdwh.h"
#include "uuid.h"

/* db_run_retry() work: BEGIN as the user whose claims arg is. */
static enum ig_err
begin_user(PGconn *conn, void *arg)
{
	return db_begin_user(conn, arg);
}

/* The caller's job id of the path, or NULL. */
static const char *
job_id_param(struct http_req *r)
{
	const char *id = r->nparams > 0 ? r->params[0] : "";

	return strlen(id) == 36 && uuid_valid(id) ? id : NULL;
}

/* GET /api/webhooks/secret and POST /api/webhooks/secret/rotate: the
 * secret in the caller's transaction (made on first use), as
 * {"key": "whsec_…"}, the shape of Replicate's /webhooks/default/secret. */
static enum ig_err
secret(struct http_req *r, int rotate)
{
	char fresh[STDWH_SECRET_MAX], body[STDWH_SECRET_MAX + 16];
	const char *s;
	struct auth_user u;
	PGconn *conn;
	enum ig_err e;

	e = auth_request(r, &u);
	if (e != IG_OK)
		return e;
	if (stdwh_secret_new(fresh, sizeof(fresh)) != 0)
		return http_fail(r, IG_EINTERNAL, "no random source");
	e = db_run_retry(begin_user, (void *)u.claims, &conn);
	if (e != IG_OK) {
		OPENSSL_cleanse(fresh, sizeof(fresh));
		return http_fail(r, e, "database unavailable");
	}
	s = jobsdb_webhook_secret(conn, r->arena, fresh, rotate, &e);
	OPENSSL_cleanse(fresh, sizeof(fresh));
	if (s == NULL || strlen(s) >= STDWH_SECRET_MAX) {
		db_rollback(conn);
		return http_fail(r, e != IG_OK && e != IG_ENOTFOUND ? e : IG_EINTERNAL,
		    "could not read the signing secret");
	}
	e = db_commit(conn);
	if (e != IG_OK)
		return http_fail(r, e, "could not commit");
	/* a whsec_ secret is base64: nothing in it needs escaping */
	snprintf(body, sizeof(body), "{\"key\":\"%s\"}", s);
	http_send_json_text(r, 200, body);
	OPENSSL_cleanse(body, sizeof(body));
	OPENSSL_cleanse((char *)s, strlen(s));
	return IG_OK;
}

enum ig_err
handle_webhook_secret(struct http_req *r)
{
	return secret(r, 0);
}

enum ig_err
handle_webhook_secret_rotate(struct http_req *r)
{
	return secret(r, 1);
}

/* What deliveries_get() reads. */
struct list_work {
	struct arena *a;
	const char *claims, *id, *json;
};

static enum ig_err
list_once(PGconn *conn, void *arg)
{
	struct list_work *w = arg;
	enum ig_err e;

	w->json = jobsdb_webhooks_json(conn, w->a, w->claims, w->id, &e);
	return e;
}

/* GET /api/images/jobs/{jobId}/webhooks */
enum ig_err
handle_job_webhooks(struct http_req *r)
{
	const char *id = job_id_param(r);
	struct auth_user u;
	struct list_work w;
	enum ig_err e;

	e = auth_request(r, &u);
	if (e != IG_OK)
		return e;
	if (id == NULL)
		return http_fail(r, IG_EVALIDATION, "jobId: must be a UUID");
	w.a = r->arena;
	w.claims = u.claims;
	w.id = id;
	w.json = NULL;
	e = db_run_retry(list_once, &w, NULL);
	if (e != IG_OK)
		return http_fail(r, e, "%s", e == IG_EUNAVAILABLE ? "database unavailable" :
		    e == IG_ENOTFOUND ? "no such job" : "internal error");
	http_send_json_text(r, 200, w.json);
	return IG_OK;
}

/* POST /api/images/jobs/{jobId}/webhooks/redeliver: the job's last event
 * queued again (the sweeper or the next executor sends it). */
enum ig_err
handle_job_webhooks_redeliver(struct http_req *r)
{
	const char *id = job_id_param(r), *did;
	struct auth_user u;
	PGconn *conn;
	enum ig_err e;
	char body[128];

	e = auth_request(r, &u);
	if (e != IG_OK)
		return e;
	if (id == NULL)
		return http_fail(r, IG_EVALIDATION, "jobId: must be a UUID");
	e = db_run_retry(begin_user, (void *)u.claims, &conn);
	if (e != IG_OK)
		return http_fail(r, e, "database unavailable");
	did = jobsdb_redeliver(conn, r->arena, id, &e);
	if (did == NULL) {
		db_rollback(conn);
		return http_fail(r, e, "%s", e == IG_ENOTFOUND ?
		    "no such job of yours with a webhook event to send again" :
		    "could not queue the event");
	}
	e = db_commit(conn);
	if (e != IG_OK)
		return http_fail(r, e, "could not commit");
	snprintf(body, sizeof(body), "{\"jobId\":\"%s\",\"deliveryId\":%s}", id,
	    did);
	http_send_json_text(r, 202, body);
	return IG_OK;
}
