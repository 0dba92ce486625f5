/* h_webhooks.c - the caller's webhook signing secret and a job's
 * deliveries (docs/WEBHOOKS.md, sql/014_webhook_outbox.sql). */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "app.h"
#include "auth.h"
#include "db.h"
#include "jobsdb.h"
#include "log.h"
#include "seal.h"
#include "stdwh.h"
#include "uuid.h"
#include "whsecret.h"

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

/* The caller's secret in their transaction: read (made on first use;
 * a legacy plain one sealed on the way) or, rotate, replaced by a new one.
 * IG_OK with the plain secret in plain, or the failure with *msg. */
static enum ig_err
secret_tx(struct http_req *r, PGconn *conn, const struct seal_key *k,
    int rotate, char plain[STDWH_SECRET_MAX], const char **msg)
{
	char sealed[SEAL_TEXT_MAX], fresh[STDWH_SECRET_MAX];
	const char *stored, *owner;
	enum ig_err e;
	int legacy = 0, opened;

	*msg = "could not read the signing secret";
	fresh[0] = '\0';
	stored = jobsdb_webhook_secret(conn, r->arena, NULL, &owner, &e);
	if (owner == NULL)
		goto out;
	opened = stored != NULL &&
	    whsecret_open(k, owner, stored, plain, &legacy) == 0;
	/* a legacy value is the secret itself: not left in the arena */
	if (stored != NULL && !seal_is_sealed(stored))
		OPENSSL_cleanse((char *)stored, strlen(stored));
	if (stored != NULL && !opened && !rotate) {
		/* another key, or a row altered: only a rotation mends it */
		log_error("%s: the caller's signing secret does not open with "
		    "IMAGEGEN_WEBHOOK_SECRET_KEY", __func__);
		*msg = "the signing secret cannot be read with this server's key; "
		    "POST /api/webhooks/secret/rotate makes a new one";
		e = IG_EINTERNAL;
		goto out;
	}
	/* a legacy plain secret is sealed before it is kept as previous */
	if (opened && legacy) {
		e = IG_EINTERNAL;
		if (whsecret_seal(k, owner, plain, sealed) != 0)
			goto out;
		e = jobsdb_webhook_secret_reseal(conn, plain, sealed);
		if (e != IG_OK)
			goto out;
	}
	if (!rotate && opened) {
		e = IG_OK;
		goto out;
	}
	e = IG_EINTERNAL;
	if (whsecret_new(k, owner, fresh, sealed) != 0)
		goto out;
	if (rotate) {
		e = jobsdb_webhook_secret_rotate(conn, sealed);
		if (e == IG_OK)
			memcpy(plain, fresh, STDWH_SECRET_MAX);
		goto out;
	}
	/* the first one: a concurrent first use may have stored its own */
	stored = jobsdb_webhook_secret(conn, r->arena, sealed, &owner, &e);
	if (stored == NULL || owner == NULL) {
		e = e != IG_OK ? e : IG_EINTERNAL;
		goto out;
	}
	e = whsecret_open(k, owner, stored, plain, &legacy) == 0 ? IG_OK :
	    IG_EINTERNAL;
out:
	OPENSSL_cleanse(fresh, sizeof(fresh));
	OPENSSL_cleanse(sealed, sizeof(sealed));
	if (e != IG_OK)
		OPENSSL_cleanse(plain, STDWH_SECRET_MAX);
	return e;
}

/* GET /api/webhooks/secret and POST /api/webhooks/secret/rotate: the
 * secret in the caller's transaction (made on first use), as
 * {"key": "whsec_…"}, the shape of Replicate's /webhooks/default/secret.
 * The database holds it sealed (include/whsecret.h): without
 * IMAGEGEN_WEBHOOK_SECRET_KEY both answer 503. */
static enum ig_err
secret(struct http_req *r, int rotate)
{
	char body[STDWH_SECRET_MAX + 16], plain[STDWH_SECRET_MAX];
	struct seal_key k;
	struct auth_user u;
	const char *msg;
	PGconn *conn;
	enum ig_err e;

	e = auth_request(r, &u);
	if (e != IG_OK)
		return e;
	if (whsecret_key(r->cfg, &k) != 0)
		return http_fail(r, IG_EUNAVAILABLE, "%s", WHSECRET_UNSET_MSG);
	e = db_run_retry(begin_user, (void *)u.claims, &conn);
	if (e != IG_OK) {
		seal_key_wipe(&k);
		return http_fail(r, e, "database unavailable");
	}
	plain[0] = '\0';
	e = secret_tx(r, conn, &k, rotate, plain, &msg);
	seal_key_wipe(&k);
	if (e != IG_OK) {
		db_rollback(conn);
		return http_fail(r, e, "%s", msg);
	}
	e = db_commit(conn);
	if (e != IG_OK) {
		OPENSSL_cleanse(plain, sizeof(plain));
		return http_fail(r, e, "could not commit");
	}
	/* a whsec_ secret is base64: nothing in it needs escaping */
	snprintf(body, sizeof(body), "{\"key\":\"%s\"}", plain);
	http_send_json_text(r, 200, body);
	OPENSSL_cleanse(body, sizeof(body));
	OPENSSL_cleanse(plain, sizeof(plain));
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
 * queued again (the sweeper or the next executor sends it): 202; or, while
 * the job has a pending delivery, that one and nothing added: 200. */
enum ig_err
handle_job_webhooks_redeliver(struct http_req *r)
{
	const char *id = job_id_param(r), *did;
	struct auth_user u;
	PGconn *conn;
	enum ig_err e;
	char body[160];
	int queued;

	e = auth_request(r, &u);
	if (e != IG_OK)
		return e;
	if (id == NULL)
		return http_fail(r, IG_EVALIDATION, "jobId: must be a UUID");
	e = db_run_retry(begin_user, (void *)u.claims, &conn);
	if (e != IG_OK)
		return http_fail(r, e, "database unavailable");
	did = jobsdb_redeliver(conn, r->arena, id, &queued, &e);
	if (did == NULL) {
		db_rollback(conn);
		return http_fail(r, e, "%s", e == IG_ENOTFOUND ?
		    "no such job of yours with a webhook event to send again" :
		    "could not queue the event");
	}
	e = db_commit(conn);
	if (e != IG_OK)
		return http_fail(r, e, "could not commit");
	snprintf(body, sizeof(body),
	    "{\"jobId\":\"%s\",\"deliveryId\":%s,\"queued\":%s}", id, did,
	    queued ? "true" : "false");
	http_send_json_text(r, queued ? 202 : 200, body);
	return IG_OK;
}
