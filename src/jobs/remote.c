/* remote.c - jobs waiting on a remote model: the provider's webhook and
 * the sweeper's polls (see remote.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "exec_db.h"
#include "exec_fail.h"
#include "log.h"
#include "provider.h"
#include "remote.h"
#include "secret.h"
#include "stdwh.h"

#define REMOTE_BATCH 64		/* waiting jobs looked at per sweep */

/* The provider's webhook secret, asked for once per process (a responder
 * serves many webhooks; the secret does not change under it). */
static char remote_secret[STDWH_SECRET_MAX];

/* The secret into remote_secret: 0, or -1 with msg. */
static int
secret_load(const struct cfg *c, char *msg, size_t msglen)
{
	struct provider p;
	char err[512];
	int rc;

	if (remote_secret[0] != '\0')
		return 0;
	if (prov_open(&p, c, err, sizeof(err)) != 0) {
		snprintf(msg, msglen, "%s", err);
		return -1;
	}
	rc = p.ops->webhook_secret(&p, remote_secret, sizeof(remote_secret), err,
	    sizeof(err));
	prov_close(&p);
	if (rc != 0) {
		remote_secret[0] = '\0';
		snprintf(msg, msglen, "no webhook secret: %s", err);
	}
	return rc;
}

enum remote_wh
remote_webhook(const struct cfg *c, const char *id, const char *ts,
    const char *sig, const char *body, size_t len, char job_id[37], char *msg,
    size_t msglen)
{
	const struct prov_ops *ops = prov_find(c->provider);
	struct stdwh_key key;
	enum stdwh_res v;
	enum ig_err e;
	PGconn *conn;
	char rid[128];
	int ended, n;
	enum remote_wh rc = REMOTE_WH_UNAVAILABLE;

	job_id[0] = '\0';
	memset(&key, 0, sizeof(key));
	if (ops == NULL || ops->webhook_read == NULL || ops->webhook_secret == NULL) {
		snprintf(msg, msglen, "provider %s sends no webhooks",
		    c->provider != NULL ? c->provider : "local");
		return REMOTE_WH_OFF;
	}
	if (secret_load(c, msg, msglen) != 0)
		return REMOTE_WH_UNAVAILABLE;
	if (stdwh_key_parse(remote_secret, &key) != 0) {
		snprintf(msg, msglen, "the webhook secret is not a whsec_ key");
		remote_secret[0] = '\0';
		return REMOTE_WH_UNAVAILABLE;
	}
	/* Nothing is read or written before the signature holds. */
	v = stdwh_verify(&key, 1, id, ts, sig, body, len, time(NULL), 0);
	stdwh_key_wipe(&key);
	if (v != STDWH_OK) {
		snprintf(msg, msglen, "webhook refused: %s", stdwh_strerror(v));
		return REMOTE_WH_UNSIGNED;
	}
	ended = ops->webhook_read(body, len, rid, sizeof(rid));
	if (ended < 0) {
		snprintf(msg, msglen, "a signed webhook that is not a %s prediction",
		    ops->name);
		return REMOTE_WH_BAD;
	}
	conn = db_worker_get(&e);
	if (conn == NULL || db_begin_service(conn) != IG_OK) {
		snprintf(msg, msglen, "database unavailable");
		return REMOTE_WH_UNAVAILABLE;
	}
	n = execdb_webhook_seen(conn, id, ops->name, rid);
	if (n == 0) {
		rc = REMOTE_WH_REPLAY;
		snprintf(msg, msglen, "webhook %.64s received before; ignored", id);
		goto commit;
	}
	if (n < 0)
		goto fail;
	rc = REMOTE_WH_OK;
	if (ended) {
		n = execdb_set_outcome(conn, ops->name, rid, body, "webhook", job_id);
		if (n < 0)
			goto fail;
		/* None yet: the model may have been quicker than the executor
		 * recording its id, which then takes the outcome from here. */
		if (n == 0 && execdb_webhook_keep(conn, id, body) < 0)
			goto fail;
		if (n == 0)
			log_info("webhook %.64s: %s request %s: no job waits on it (yet)",
			    id, ops->name, rid);
	}
commit:
	if (db_commit(conn) != IG_OK) {
		job_id[0] = '\0';
		snprintf(msg, msglen, "database unavailable");
		return REMOTE_WH_UNAVAILABLE;
	}
	if (job_id[0] != '\0')
		log_info("job %s: %s request %s ended (webhook %.64s)", job_id,
		    ops->name, rid, id);
	return rc;
fail:
	db_rollback(conn);
	job_id[0] = '\0';
	snprintf(msg, msglen, "database unavailable");
	return REMOTE_WH_UNAVAILABLE;
}

/* A waiting job as sweep_job's rows know it (generating, its attempt). */
static void
as_running(const struct execdb_waiting *w, struct execdb_running *j)
{
	memset(j, 0, sizeof(*j));
	snprintf(j->id, sizeof(j->id), "%s", w->id);
	snprintf(j->status, sizeof(j->status), "generating");
	snprintf(j->attempts, sizeof(j->attempts), "%s", w->attempts);
	j->requeue_ok = w->requeue_ok;
	j->cancel = w->cancel;
	j->past = w->past;
}

/* One waiting job; p opened (lazily) by the caller. */
static void
sweep_one(PGconn *conn, const struct cfg *c, struct provider *p,
    const struct execdb_waiting *w, struct sweep_stats *st)
{
	struct execdb_running j;
	struct prov_result res;
	char *outcome = NULL, job_id[37];
	int n;

	as_running(w, &j);
	memset(&res, 0, sizeof(res));
	if (w->cancel || w->past) {
		p->ops->cancel(p, w->request_id);
		if (w->cancel)
			n = execdb_sweep_cancel(conn, &j);
		else if (w->requeue_ok)
			n = execdb_sweep_requeue(conn, &j,
			    exec_fail_code(EXEC_FAIL_JOB_TIMEOUT), "the remote model "
			    "did not end within IMAGEGEN_JOB_TIMEOUT; requeued");
		else
			n = execdb_sweep_fail(conn, &j,
			    exec_fail_code(EXEC_FAIL_JOB_TIMEOUT), "the remote model "
			    "did not end within IMAGEGEN_JOB_TIMEOUT and no attempts are "
			    "left", "generating");
		if (n == 1) {
			(void)execdb_waiting_done(conn, w->id);
			log_warn("job %s: waiting on %s request %s: %s", w->id,
			    p->ops->name, w->request_id, w->cancel ? "canceled (its "
			    "owner asked)" : w->requeue_ok ? "past its deadline, requeued" :
			    "past its deadline, failed");
			if (w->cancel)
				st->canceled++;
			else if (w->requeue_ok)
				st->requeued++;
			else
				st->failed++;
		}
		return;
	}
	n = p->ops->peek(p, w->request_id, &outcome, &res);
	if (n == 1) {
		if (execdb_set_outcome(conn, p->ops->name, w->request_id, outcome,
		    "poll", job_id) == 1)
			log_info("job %s: %s request %s ended (polled: its webhook is "
			    "late)", w->id, p->ops->name, w->request_id);
		free(outcome);
		return;
	}
	if (n < 0)
		log_warn("job %s: poll of %s request %s: %s", w->id, p->ops->name,
		    w->request_id, res.message);
	(void)execdb_poll_later(conn, w->id, c->webhook_grace_s);
}

int
remote_sweep(PGconn *conn, const struct cfg *c, struct sweep_stats *st)
{
	struct execdb_waiting *rows = NULL;
	struct provider p;
	char err[512];
	int i, n, opened = 0;

	n = execdb_waiting_due(conn, REMOTE_BATCH, &rows);
	if (n < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (!opened) {
			if (prov_open(&p, c, err, sizeof(err)) != 0 || !prov_async(&p)) {
				if (p.ops != NULL)
					prov_close(&p);
				log_error("sweeper: %d jobs wait on a remote model, but "
				    "the provider cannot look: %s", n, err);
				break;
			}
			opened = 1;
		}
		sweep_one(conn, c, &p, &rows[i], st);
	}
	if (opened)
		prov_close(&p);
	free(rows);
	return 0;
}
