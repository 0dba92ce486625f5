/* remote.c - jobs waiting on a remote model: the provider's webhook and
 * the sweeper's polls (see remote.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "db.h"
#include "exec_db.h"
#include "exec_fail.h"
#include "log.h"
#include "provider.h"
#include "remote.h"
#include "retry.h"
#include "secret.h"
#include "stdwh.h"

#define REMOTE_BATCH 64		/* waiting jobs looked at per sweep */
#define REMOTE_BUDGET_MS 10000LL	/* polls started per sweep, at most */

#define SECRET_RETRY_S 60		/* after a failed fetch, no other before */

/* The provider's webhook secret, fetched once per process (a responder
 * serves many webhooks; the secret does not change under it); a failed
 * fetch is remembered for SECRET_RETRY_S, so a flood of webhooks cannot
 * make us ask the provider with our token once each. */
static char remote_secret[STDWH_SECRET_MAX];
static time_t remote_secret_failed;	/* when the last fetch failed, or 0 */

/* The secret into remote_secret: 0, or -1 with msg. */
static int
secret_load(const struct cfg *c, char *msg, size_t msglen)
{
	struct provider p;
	char err[512];
	time_t now = time(NULL);
	int rc;

	if (remote_secret[0] != '\0')
		return 0;
	if (remote_secret_failed != 0 && now >= remote_secret_failed &&
	    now - remote_secret_failed < SECRET_RETRY_S) {
		snprintf(msg, msglen, "no webhook secret (the last fetch failed "
		    "%lds ago; asked again after %ds)", (long)(now -
		    remote_secret_failed), SECRET_RETRY_S);
		return -1;
	}
	if (prov_open(&p, c, err, sizeof(err)) != 0) {
		remote_secret_failed = now;
		snprintf(msg, msglen, "%s", err);
		return -1;
	}
	rc = p.ops->webhook_secret(&p, remote_secret, sizeof(remote_secret), err,
	    sizeof(err));
	prov_close(&p);
	if (rc != 0) {
		remote_secret[0] = '\0';
		remote_secret_failed = now;
		snprintf(msg, msglen, "no webhook secret: %s", err);
		return -1;
	}
	remote_secret_failed = 0;
	return 0;
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
	/* What needs no key first: an unsigned or stale request never makes
	 * us fetch the secret. */
	v = stdwh_precheck(id, ts, sig, time(NULL), 0);
	if (v != STDWH_OK) {
		snprintf(msg, msglen, "webhook refused: %s", stdwh_strerror(v));
		return REMOTE_WH_UNSIGNED;
	}
	if (secret_load(c, msg, msglen) != 0)
		return REMOTE_WH_UNAVAILABLE;
	if (stdwh_key_parse(remote_secret, &key) != 0) {
		snprintf(msg, msglen, "the webhook secret is not a whsec_ key");
		remote_secret[0] = '\0';
		remote_secret_failed = time(NULL);
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

/* One waiting job; p opened (lazily) by the caller. */
static void
sweep_one(PGconn *conn, const struct cfg *c, struct provider *p,
    const struct execdb_waiting *w, struct sweep_stats *st)
{
	struct prov_result res;
	char *outcome = NULL, job_id[37];
	const char *code = exec_fail_code(EXEC_FAIL_JOB_TIMEOUT), *why;
	int n;

	memset(&res, 0, sizeof(res));
	if (w->cancel || w->past) {
		why = w->ended ? "the remote model ended but no executor resumed the "
		    "job within IMAGEGEN_JOB_TIMEOUT" : "the remote model did not "
		    "end within IMAGEGEN_JOB_TIMEOUT";
		/* The job first, fenced on the request still waiting as read;
		 * then, only if that held, the prediction. */
		if (w->cancel)
			n = execdb_waiting_end(conn, w, EXECDB_WAITING_CANCEL, NULL, NULL);
		else if (w->requeue_ok)
			n = execdb_waiting_end(conn, w, EXECDB_WAITING_REQUEUE, code, why);
		else
			n = execdb_waiting_end(conn, w, EXECDB_WAITING_FAIL, code, why);
		if (n != 1)
			return;		/* resumed or ended meanwhile */
		log_warn("job %s: waiting on %s request %s: %s", w->id,
		    p != NULL ? p->ops->name : "remote", w->request_id, w->cancel ?
		    "canceled (its owner asked)" : w->ended ? (w->requeue_ok ?
		    "ended but not resumed by its deadline, requeued" : "ended but "
		    "not resumed by its deadline, failed") : w->requeue_ok ?
		    "past its deadline, requeued" : "past its deadline, failed");
		if (w->cancel)
			st->canceled++;
		else if (w->requeue_ok)
			st->requeued++;
		else
			st->failed++;
		if (!w->ended && p != NULL)
			p->ops->cancel(p, w->request_id);
		return;
	}
	if (p == NULL)
		return;		/* no provider to poll with */
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
	struct provider p, *pp = NULL;
	char err[512];
	long long until;
	int i, n;

	err[0] = '\0';
	/* Receipts past twice the signature tolerance guard nothing (a replay
	 * of one is stale); a kept outcome no job took is dropped once no
	 * executor recording its id could still be alive. */
	n = execdb_webhooks_prune(conn, 2L * STDWH_TOLERANCE_S, c->job_timeout);
	if (n > 0)
		log_info("sweeper: %d old provider webhook receipts deleted", n);
	n = execdb_waiting_due(conn, REMOTE_BATCH, RETRY_DEADLINE_GRACE_S, &rows);
	if (n < 0)
		return -1;
	if (n == 0)
		goto out;
	memset(&p, 0, sizeof(p));
	if (prov_open(&p, c, err, sizeof(err)) != 0) {
		log_error("sweeper: %d jobs wait on a remote model, but the "
		    "provider cannot be opened: %s", n, err);
	} else if (!prov_async(&p)) {
		log_error("sweeper: %d jobs wait on a remote model, but provider "
		    "%s cannot look at them (no longer asynchronous?): their "
		    "cancels and deadlines still apply", n, p.ops->name);
		prov_close(&p);
	} else {
		pp = &p;
	}
	/* First what the database alone decides (cancels, deadlines): the
	 * remote cancel after each is short; then the polls, within a time
	 * budget, the rest left to the next pass. */
	for (i = 0; i < n; i++)
		if (rows[i].cancel || rows[i].past)
			sweep_one(conn, c, pp, &rows[i], st);
	until = clock_mono_ms() + REMOTE_BUDGET_MS;
	for (i = 0; i < n && pp != NULL; i++) {
		if (rows[i].cancel || rows[i].past)
			continue;
		if (clock_mono_ms() >= until) {
			log_warn("sweeper: %d polls of waiting jobs left to the next "
			    "pass (the provider is slow)", n - i);
			break;
		}
		sweep_one(conn, c, pp, &rows[i], st);
	}
	if (pp != NULL)
		prov_close(pp);
out:
	free(rows);
	return 0;
}
