/* webhooks.c - delivering the outbox (see include/webhooks.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "clock.h"
#include "httpc.h"
#include "log.h"
#include "retry.h"
#include "stdwh.h"
#include "urlpolicy.h"
#include "webhookdb.h"
#include "webhooks.h"

/* Standard Webhooks' suggested schedule after the first attempt. */
static const long long real_schedule[] = { 5000LL, 300000LL, 1800000LL,
	7200000LL, 18000000LL, 36000000LL, 50400000LL };

long long
wh_backoff_ms(const struct cfg *c, int n)
{
	long long sched[WH_SCHEDULE_MAX];
	char buf[256], *tok, *save = NULL;
	size_t k = 0;

	if (c != NULL && c->test_webhook_backoff != NULL &&
	    strlen(c->test_webhook_backoff) < sizeof(buf)) {
		memcpy(buf, c->test_webhook_backoff,
		    strlen(c->test_webhook_backoff) + 1);
		for (tok = strtok_r(buf, ",", &save); tok != NULL &&
		    k < WH_SCHEDULE_MAX; tok = strtok_r(NULL, ",", &save))
			sched[k++] = atoll(tok);
		/* tests: as given, no jitter */
		return n >= 1 && (size_t)n <= k ? sched[n - 1] : -1;
	}
	k = sizeof(real_schedule) / sizeof(real_schedule[0]);
	if (n < 1 || (size_t)n > k)
		return -1;
	return retry_jittered(real_schedule[n - 1]);
}

/* A deliverer's tools, made on its first row. */
struct wh_ctx {
	const struct cfg *c;
	struct httpc http;
	struct urlpol pol;
	int open;
};

static int
ctx_open(struct wh_ctx *x)
{
	char why[256];

	if (x->open)
		return 0;
	if (httpc_open(&x->http) != 0) {
		log_error("webhooks: no HTTP client");
		return -1;
	}
	if (urlpol_parse(&x->pol, x->c->fetch_allow, why, sizeof(why)) != 0) {
		log_error("webhooks: IMAGEGEN_FETCH_ALLOW: %s", why);
		httpc_close(&x->http);
		return -1;
	}
	x->open = 1;
	return 0;
}

static void
ctx_close(struct wh_ctx *x)
{
	if (!x->open)
		return;
	httpc_close(&x->http);
	urlpol_free(&x->pol);
	x->open = 0;
}

/* The keys a row is signed with: the user's secret (and the previous one
 * for 24 hours after a rotation), or the operator's alert secret. The
 * number of keys, 0 for an unsigned alert, -1 on failure. */
static int
row_keys(PGconn *conn, const struct cfg *c, const char *user_id,
    struct stdwh_key keys[2])
{
	char fresh[STDWH_SECRET_MAX];
	PGresult *r;
	int n = 0, i;

	if (user_id == NULL) {
		if (c->alert_webhook_secret == NULL)
			return 0;
		return stdwh_key_parse(c->alert_webhook_secret, &keys[0]) == 0 ? 1 : -1;
	}
	if (stdwh_secret_new(fresh, sizeof(fresh)) != 0)
		return -1;
	r = whdb_user_secrets(conn, user_id, fresh);
	OPENSSL_cleanse(fresh, sizeof(fresh));
	if (r == NULL)
		return -1;
	for (i = 0; i < 2; i++) {
		if (PQgetisnull(r, 0, i))
			continue;
		if (stdwh_key_parse(PQgetvalue(r, 0, i), &keys[n]) == 0)
			n++;
		OPENSSL_cleanse(PQgetvalue(r, 0, i), (size_t)PQgetlength(r, 0, i));
	}
	PQclear(r);
	return n > 0 ? n : -1;
}

/* One attempt of the claimed row r; 0, or -1 when the database failed. */
static int
attempt(PGconn *conn, struct wh_ctx *x, PGresult *r)
{
	const struct cfg *c = x->c;
	const char *id = PQgetvalue(r, 0, 0), *msg_id = PQgetvalue(r, 0, 1);
	const char *user = PQgetisnull(r, 0, 2) ? NULL : PQgetvalue(r, 0, 2);
	const char *url = PQgetisnull(r, 0, 3) ? NULL : PQgetvalue(r, 0, 3);
	const char *body = PQgetvalue(r, 0, 4), *attempts = PQgetvalue(r, 0, 5);
	const char *event = PQgetvalue(r, 0, 6);
	const char *job = PQgetisnull(r, 0, 7) ? "-" : PQgetvalue(r, 0, 7);
	struct stdwh_key keys[2];
	char h_id[STDWH_ID_MAX + 16], h_ts[48], h_sig[2 * STDWH_SIG_MAX + 24];
	char sig[2 * STDWH_SIG_MAX], err[320];
	const char *hdrs[6];
	struct httpc_req req;
	struct httpc_reply rep;
	enum httpc_err he;
	const char *state;
	long long ts = (long long)time(NULL), delay = 0;
	int nkeys, n = atoi(attempts), rc;

	memset(keys, 0, sizeof(keys));
	memset(&rep, 0, sizeof(rep));
	if (url == NULL && user == NULL)
		url = c->alert_webhook_url;
	if (url == NULL) {
		log_info("webhook %s: %s dropped: IMAGEGEN_ALERT_WEBHOOK_URL is not set",
		    msg_id, event);
		return whdb_finish(conn, id, attempts, "dropped", 0,
		    "IMAGEGEN_ALERT_WEBHOOK_URL is not set", 0) < 0 ? -1 : 0;
	}
	nkeys = row_keys(conn, c, user, keys);
	if (nkeys < 0) {
		snprintf(err, sizeof(err), "no signing secret");
		state = "pending";
		delay = wh_backoff_ms(c, n);
		goto record;
	}
	snprintf(h_id, sizeof(h_id), "webhook-id: %s", msg_id);
	snprintf(h_ts, sizeof(h_ts), "webhook-timestamp: %lld", ts);
	hdrs[0] = "Content-Type: application/json";
	hdrs[1] = h_id;
	hdrs[2] = h_ts;
	hdrs[3] = "Expect:";
	hdrs[4] = NULL;
	if (nkeys > 0) {
		if (stdwh_sign_header(keys, (size_t)nkeys, msg_id, ts, body,
		    strlen(body), sig, sizeof(sig)) != 0) {
			snprintf(err, sizeof(err), "signing failed");
			state = "pending";
			delay = wh_backoff_ms(c, n);
			goto record;
		}
		snprintf(h_sig, sizeof(h_sig), "webhook-signature: %s", sig);
		hdrs[4] = h_sig;
		hdrs[5] = NULL;
	}
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.url = url;
	req.headers = hdrs;
	req.body = body;
	req.len = strlen(body);
	req.timeout_ms = WH_TIMEOUT_MS;
	req.max_bytes = WH_REPLY_MAX;
	req.max_redirs = 0;
	req.user_agent = "imagegen-webhooks/1";
	/* A user's URL under the outbound URL policy (again: the name may
	 * resolve elsewhere now); the operator's alert URL as configured. */
	if (user != NULL)
		he = urlpol_fetch(&x->pol, &x->http, &req, &rep);
	else
		he = httpc_perform(&x->http, &req, &rep);
	err[0] = '\0';
	if ((he == HTTPC_OK || he == HTTPC_TOO_BIG) && rep.status >= 200 &&
	    rep.status <= 299) {
		state = "delivered";
	} else if ((he == HTTPC_OK || he == HTTPC_TOO_BIG) && rep.status == 410) {
		state = "gone";
		snprintf(err, sizeof(err), "HTTP 410: the endpoint is gone, not retried");
	} else if (he == HTTPC_REFUSED) {
		state = "failed";
		snprintf(err, sizeof(err), "%s: %.200s", rep.error, rep.detail);
	} else {
		if (he == HTTPC_OK || he == HTTPC_TOO_BIG)
			snprintf(err, sizeof(err), "HTTP %ld", rep.status);
		else
			snprintf(err, sizeof(err), "%s%s%.200s",
			    rep.error != NULL ? rep.error : "request failed",
			    rep.detail[0] != '\0' ? ": " : "", rep.detail);
		delay = wh_backoff_ms(c, n);
		state = delay < 0 ? "failed" : "pending";
	}
record:
	stdwh_key_wipe(&keys[0]);
	stdwh_key_wipe(&keys[1]);
	OPENSSL_cleanse(sig, sizeof(sig));
	OPENSSL_cleanse(h_sig, sizeof(h_sig));
	if (strcmp(state, "delivered") == 0)
		log_info("webhook %s: %s of job %s delivered (attempt %d, HTTP %ld)",
		    msg_id, event, job, n, rep.status);
	else
		log_warn("webhook %s: %s of job %s attempt %d: %s; %s%lld ms", msg_id,
		    event, job, n, err, strcmp(state, "pending") == 0 ?
		    "again in " : "given up, ", delay < 0 ? 0 : delay);
	rc = whdb_finish(conn, id, attempts, state, rep.status,
	    err[0] != '\0' ? err : NULL, delay < 0 ? 0 : (long)delay);
	httpc_reply_free(&rep);
	return rc < 0 ? -1 : 0;
}

int
wh_deliver(PGconn *conn, const struct cfg *c, const char *job_id, int max,
    long long budget_ms)
{
	struct wh_ctx x;
	long long until = clock_mono_ms() + budget_ms;
	PGresult *r;
	int done = 0, rc = 0;

	memset(&x, 0, sizeof(x));
	x.c = c;
	while (done < max && clock_mono_ms() < until) {
		r = whdb_claim(conn, job_id);
		if (r == NULL) {
			rc = -1;
			break;
		}
		if (PQntuples(r) != 1) {
			PQclear(r);
			break;
		}
		if (ctx_open(&x) != 0) {
			/* the lease gives the row back later */
			PQclear(r);
			break;
		}
		rc = attempt(conn, &x, r);
		PQclear(r);
		done++;
		if (rc != 0)
			break;
	}
	ctx_close(&x);
	return rc < 0 ? -1 : done;
}
