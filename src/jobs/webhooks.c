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
#include "whsecret.h"

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
	long long until;	/* 0, or when every attempt must have ended */
	long connect_ms;	/* 0: httpc's default */
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

/* Seals user_id's legacy plain secret plain and writes it back (by, the
 * deliverer or the sweeper, for the log); a failure is logged and changes
 * nothing (the next read tries again). 1 when it was sealed, 0 when the
 * row no longer held it (a concurrent seal or rotation), -1 on failure. */
static int
reseal(PGconn *conn, const struct seal_key *k, const char *user_id,
    const char *plain, const char *by)
{
	char sealed[SEAL_TEXT_MAX];
	int rc = -1;

	if (whsecret_seal(k, user_id, plain, sealed) == 0)
		rc = whdb_secret_reseal(conn, user_id, plain, sealed);
	OPENSSL_cleanse(sealed, sizeof(sealed));
	if (rc < 0)
		log_warn("webhooks: user %s: could not seal the legacy signing "
		    "secret", user_id);
	else if (rc > 0)
		log_info("webhooks: user %s: legacy signing secret sealed by the "
		    "%s", user_id, by);
	return rc;
}

/* user_id's stored secrets, their first one made and stored sealed when
 * they have none: one row as whdb_user_secrets(), or NULL. */
static PGresult *
user_secrets(PGconn *conn, const struct seal_key *k, const char *user_id)
{
	char plain[STDWH_SECRET_MAX], sealed[SEAL_TEXT_MAX];
	PGresult *r = whdb_user_secrets(conn, user_id);

	if (r == NULL || PQntuples(r) == 1)
		return r;
	PQclear(r);
	r = NULL;
	if (whsecret_new(k, user_id, plain, sealed) == 0 &&
	    whdb_secret_insert(conn, user_id, sealed) == 0)
		r = whdb_user_secrets(conn, user_id);
	OPENSSL_cleanse(plain, sizeof(plain));
	if (r != NULL && PQntuples(r) != 1) {
		log_error("webhooks: user %s: no signing secret row", user_id);
		PQclear(r);
		r = NULL;
	}
	return r;
}

/* The keys a row is signed with: the user's secret (and the previous one
 * for 24 hours after a rotation), opened with IMAGEGEN_WEBHOOK_SECRET_KEY
 * (a legacy plain one is sealed on the way), or the operator's alert
 * secret. The number of keys, 0 for an unsigned alert, -1 on failure with
 * *why (the row's last_error, which its user reads). */
static int
row_keys(PGconn *conn, const struct cfg *c, const char *user_id,
    struct stdwh_key keys[2], const char **why)
{
	static const int cols[2] = { 0, 2 };
	char plain[STDWH_SECRET_MAX];
	struct seal_key k;
	PGresult *r = NULL;
	int n = -1, i, legacy;

	*why = "no signing secret";
	if (user_id == NULL) {
		if (c->alert_webhook_secret == NULL)
			return 0;
		return stdwh_key_parse(c->alert_webhook_secret, &keys[0]) == 0 ? 1 : -1;
	}
	if (whsecret_key(c, &k) != 0) {
		*why = WHSECRET_UNSET_MSG;
		goto out;
	}
	r = user_secrets(conn, &k, user_id);
	if (r == NULL)
		goto out;
	n = 0;
	for (i = 0; i < 2; i++) {
		const char *v = PQgetvalue(r, 0, cols[i]);

		if (PQgetisnull(r, 0, cols[i]))
			continue;
		/* a previous one past its 24 hours: only sealed if still plain */
		if (i == 1 && PQgetisnull(r, 0, 1) && seal_is_sealed(v))
			continue;
		if (whsecret_open(&k, user_id, v, plain, &legacy) != 0) {
			if (i == 0) {
				log_error("webhooks: user %s: the current signing secret "
				    "does not open with IMAGEGEN_WEBHOOK_SECRET_KEY",
				    user_id);
				*why = "the signing secret cannot be read: rotate it";
				n = -1;
				goto out;
			}
			/* the one rotated away from (maybe for this very reason):
			 * the current one signs, nothing to report every attempt */
			log_debug("webhooks: user %s: the previous signing secret "
			    "does not open, not signed with", user_id);
			continue;
		}
		if (legacy)
			(void)reseal(conn, &k, user_id, plain, "deliverer");
		/* the previous one signs only while its 24 hours last */
		if ((i == 0 || !PQgetisnull(r, 0, 1)) &&
		    stdwh_key_parse(plain, &keys[n]) == 0)
			n++;
		OPENSSL_cleanse(plain, sizeof(plain));
	}
	if (n == 0)
		n = -1;
out:
	OPENSSL_cleanse(plain, sizeof(plain));
	seal_key_wipe(&k);
	if (r != NULL) {
		for (i = 0; i < 3; i++)
			OPENSSL_cleanse(PQgetvalue(r, 0, i),
			    (size_t)PQgetlength(r, 0, i));
		PQclear(r);
	}
	return n;
}

/* What a failed attempt's row says (last_error, which its user reads):
 * no host names, addresses or resolver messages, which the log keeps. */
static const char *
gone_wrong(enum httpc_err he)
{
	switch (he) {
	case HTTPC_TIMEOUT:
		return "timed out";
	case HTTPC_TEMPORARY:
	case HTTPC_PERMANENT:
		return "could not connect";
	default:
		return "request failed";
	}
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
	char sig[2 * STDWH_SIG_MAX], err[320], detail[320];
	const char *hdrs[6];
	struct httpc_req req;
	struct httpc_reply rep;
	enum httpc_err he;
	const char *state, *why = NULL;
	long long ts = (long long)time(NULL), delay = 0;
	int nkeys, n = atoi(attempts), rc, delivered = 0;

	memset(keys, 0, sizeof(keys));
	memset(&rep, 0, sizeof(rep));
	detail[0] = '\0';
	if (url == NULL && user == NULL)
		url = c->alert_webhook_url;
	if (url == NULL) {
		log_info("webhook %s: %s dropped: IMAGEGEN_ALERT_WEBHOOK_URL is not set",
		    msg_id, event);
		return whdb_finish(conn, id, attempts, "dropped", 0,
		    "IMAGEGEN_ALERT_WEBHOOK_URL is not set", 0) < 0 ? -1 : 0;
	}
	nkeys = row_keys(conn, c, user, keys, &why);
	if (nkeys < 0) {
		snprintf(err, sizeof(err), "%s", why);
		delay = wh_backoff_ms(c, n);
		state = delay < 0 ? "failed" : "pending";
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
			delay = wh_backoff_ms(c, n);
			state = delay < 0 ? "failed" : "pending";
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
	if (x->until > 0 && x->until - clock_mono_ms() < req.timeout_ms)
		req.timeout_ms = (long)(x->until - clock_mono_ms());
	if (req.timeout_ms < 1)
		req.timeout_ms = 1;
	req.connect_ms = x->connect_ms;
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
		delivered = 1;
	} else if ((he == HTTPC_OK || he == HTTPC_TOO_BIG) && rep.status == 410) {
		state = "gone";
		snprintf(err, sizeof(err), "HTTP 410: the endpoint is gone, not retried");
	} else if (he == HTTPC_REFUSED) {
		state = "failed";
		snprintf(err, sizeof(err), "refused by the outbound URL policy");
	} else {
		if (he == HTTPC_OK || he == HTTPC_TOO_BIG)
			snprintf(err, sizeof(err), "HTTP %ld", rep.status);
		else
			snprintf(err, sizeof(err), "%s", gone_wrong(he));
		delay = wh_backoff_ms(c, n);
		state = delay < 0 ? "failed" : "pending";
	}
	/* the row (which the user reads) gets err; the log also the detail,
	 * which may name internal hosts and addresses */
	if (he != HTTPC_OK && he != HTTPC_TOO_BIG)
		snprintf(detail, sizeof(detail), " (%s%s%.200s)",
		    rep.error != NULL ? rep.error : "request failed",
		    rep.detail[0] != '\0' ? ": " : "", rep.detail);
record:
	stdwh_key_wipe(&keys[0]);
	stdwh_key_wipe(&keys[1]);
	OPENSSL_cleanse(sig, sizeof(sig));
	OPENSSL_cleanse(h_sig, sizeof(h_sig));
	if (delivered)
		log_info("webhook %s: %s of job %s delivered (attempt %d, HTTP %ld)",
		    msg_id, event, job, n, rep.status);
	else
		log_warn("webhook %s: %s of job %s attempt %d: %s%s; %s%lld ms", msg_id,
		    event, job, n, err, detail, strcmp(state, "pending") == 0 ?
		    "again in " : "given up, ", delay < 0 ? 0 : delay);
	rc = whdb_finish(conn, id, attempts, state, rep.status,
	    err[0] != '\0' ? err : NULL, delay < 0 ? 0 : (long)delay);
	httpc_reply_free(&rep);
	return rc < 0 ? -1 : 0;
}

/* wh_deliver(); hard: no attempt runs past the budget, each connects
 * within connect_ms. */
static int
deliver(PGconn *conn, const struct cfg *c, const char *job_id, int max,
    long long budget_ms, int hard, long connect_ms)
{
	struct wh_ctx x;
	long long until = clock_mono_ms() + budget_ms;
	PGresult *r;
	int done = 0, rc = 0;

	memset(&x, 0, sizeof(x));
	x.c = c;
	x.until = hard ? until : 0;
	x.connect_ms = connect_ms;
	/* hard: not an attempt that could only time out */
	while (done < max && clock_mono_ms() < until - (hard ? 500 : 0)) {
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

int
wh_deliver(PGconn *conn, const struct cfg *c, const char *job_id, int max,
    long long budget_ms)
{
	return deliver(conn, c, job_id, max, budget_ms, 0, 0);
}

int
wh_deliver_exec(PGconn *conn, const struct cfg *c, const char *job_id,
    int max)
{
	return deliver(conn, c, job_id, max, WH_EXEC_BUDGET_MS, 1,
	    WH_EXEC_CONNECT_MS);
}

int
wh_seal_legacy(PGconn *conn, const struct cfg *c, int max)
{
	char plain[STDWH_SECRET_MAX];
	struct seal_key k;
	PGresult *r;
	int i, col, legacy, n = 0;

	if (whsecret_key(c, &k) != 0)
		return 0;
	r = whdb_legacy_secrets(conn, max);
	if (r == NULL) {
		seal_key_wipe(&k);
		return -1;
	}
	for (i = 0; i < PQntuples(r); i++) {
		const char *user = PQgetvalue(r, i, 0);

		for (col = 1; col <= 2; col++) {
			const char *v = PQgetvalue(r, i, col);

			if (PQgetisnull(r, i, col) || seal_is_sealed(v))
				continue;
			if (whsecret_open(&k, user, v, plain, &legacy) != 0 || !legacy) {
				log_debug("webhooks: user %s: a plain value that is no "
				    "usable secret, left as it is", user);
				continue;
			}
			if (reseal(conn, &k, user, plain, "sweeper") > 0)
				n++;
			OPENSSL_cleanse(plain, sizeof(plain));
		}
		for (col = 1; col <= 2; col++)
			OPENSSL_cleanse(PQgetvalue(r, i, col),
			    (size_t)PQgetlength(r, i, col));
	}
	PQclear(r);
	seal_key_wipe(&k);
	return n;
}
