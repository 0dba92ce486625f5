/*
 * replicate.c - Nano Banana as hosted on Replicate (SPEC §6):
 *
 *   POST {REPLICATE_API_URL}/models/{owner}/{name}/predictions
 *   Authorization: Bearer {REPLICATE_API_TOKEN}
 *   {"input":{"prompt":…,"aspect_ratio":"16:9","output_format":"png",
 *             "image_input":[source URL, mask URL]}}
 *
 * answers a prediction {id, status, output, error, urls, …} that is
 * starting or processing; GET {REPLICATE_API_URL}/predictions/{id} is polled
 * with a doubling wait until it is succeeded, failed or canceled. The
 * output is a file URL, downloaded under the outbound URL policy. A job
 * canceled (or an executor told to stop) while the model runs cancels the
 * prediction: POST {REPLICATE_API_URL}/predictions/{id}/cancel.
 *
 * The token is sent only to REPLICATE_API_URL: the prediction's own urls
 * are not followed, its id is checked and the URLs built here.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "base64.h"
#include "clock.h"
#include "jsonr.h"
#include "log.h"
#include "prov_remote.h"
#include "secret.h"
#include "settings.h"

#define REPLICATE_DEFAULT_URL "https://api.replicate.com/v1"
#define REPLICATE_DEFAULT_MODEL "google/nano-banana"
#define REPLICATE_POLL_MAX_MS 5000	/* the longest wait between polls */
#define REPLICATE_ID_MAX 64
#define REPLICATE_FETCH_TRIES 3	/* downloads of the output file */

/* Its settings (c->provider_conf). */
struct replicate_conf {
	char *api_token;	/* REPLICATE_API_TOKEN (secret) */
	char *model;		/* REPLICATE_MODEL, owner/name */
	char *api_url;		/* REPLICATE_API_URL, no trailing / */
	long poll_ms;		/* REPLICATE_POLL_MS: the first wait */
	char *webhook_secret;	/* REPLICATE_WEBHOOK_SECRET (secret) */
};

#define REPLICATE_SECRET_MS 3000LL	/* GET /webhooks/default/secret */
/* A sweeper's look at a prediction (peek) and any cancel: a few seconds,
 * whatever IMAGEGEN_PROVIDER_TIMEOUT_MS says, so a slow Replicate cannot
 * hold the sweeper (or an executor's cleanup) for the full timeout. */
#define REPLICATE_LOOK_MS 5000LL

/* p->state: the shared remote state and what polling needs. */
struct replicate {
	struct prov_http *h;
	char *base;		/* REPLICATE_API_URL */
	long poll_ms;
	char *webhook_secret;	/* REPLICATE_WEBHOOK_SECRET, or NULL */
};

/* ---- classification ---------------------------------------------------- */

int
replicate_policy_refusal(const char *error)
{
	static const char *const words[] = { "nsfw", "sensitive", "safety",
	    "flagged", "content policy", "moderation", NULL };
	size_t i, n, k;

	if (error == NULL)
		return 0;
	n = strlen(error);
	for (i = 0; words[i] != NULL; i++) {
		k = strlen(words[i]);
		for (size_t at = 0; at + k <= n; at++)
			if (strncasecmp(error + at, words[i], k) == 0)
				return 1;
	}
	return 0;
}

enum prov_err
replicate_parse_error(long status, const char *body, size_t len,
    long retry_after_ms, struct prov_result *res)
{
	json_object *root;
	const char *title, *detail;
	enum prov_err e = prov_http_class(status);

	if (e == PROV_OK)
		e = PROV_PROVIDER_ERROR;
	root = jr_parse(body, len);
	/* Problem details (RFC 7807): {"title","detail","status"}; older
	 * answers say {"detail"} alone. */
	title = jr_str(root, "title");
	detail = jr_str(root, "detail");
	if (title != NULL || detail != NULL)
		prov_msg(res, NULL, "replicate: HTTP %ld %s%s%s", status,
		    title != NULL ? title : "", title != NULL && detail != NULL ?
		    ": " : "", detail != NULL ? detail : "");
	else
		prov_msg_http(res, "replicate", status, body, len);
	if (prov_err_retryable(e))
		res->retry_after_ms = retry_after_ms;
	json_object_put(root);
	return e;
}

/* ---- the request ------------------------------------------------------- */

/* A data: URL of an input image (malloc'd), NULL out of memory. */
static char *
data_url(const unsigned char *d, size_t n, const char *mime)
{
	size_t bl;
	char *b64 = base64_encode(d, n, &bl), *out = NULL;
	size_t ol;

	if (b64 == NULL)
		return NULL;
	ol = strlen("data:;base64,") + strlen(mime) + bl + 1;
	out = malloc(ol);
	if (out != NULL)
		snprintf(out, ol, "data:%s;base64,%s", mime, b64);
	free(b64);
	return out;
}

/* Adds one inpaint input to arr: its URL in our bucket, else its bytes.
 * -1 out of memory. */
static int
add_input(json_object *arr, const char *url, const unsigned char *d, size_t n,
    const char *mime)
{
	char *du;

	if (url != NULL && strncmp(url, "https://", 8) == 0) {
		json_object_array_add(arr, json_object_new_string(url));
		return 0;
	}
	if (d == NULL)
		return 0;
	du = data_url(d, n, mime != NULL ? mime : "image/png");
	if (du == NULL)
		return -1;
	json_object_array_add(arr, json_object_new_string(du));
	free(du);
	return 0;
}

char *
replicate_request_json(const struct prov_request *req, const char *webhook)
{
	json_object *root = json_object_new_object(), *in, *imgs, *flt;
	char *out = NULL;

	in = json_object_new_object();
	json_object_object_add(in, "prompt", json_object_new_string(
	    req->prompt != NULL ? req->prompt : ""));
	json_object_object_add(in, "aspect_ratio", json_object_new_string(
	    gemini_aspect_ratio(req->width, req->height)));
	json_object_object_add(in, "output_format", json_object_new_string("png"));
	if (req->source != NULL || req->source_url != NULL) {
		imgs = json_object_new_array();
		json_object_object_add(in, "image_input", imgs);
		if (add_input(imgs, req->source_url, req->source, req->source_len,
		    req->source_mime) != 0 || add_input(imgs, req->mask_url,
		    req->mask, req->mask_len, req->mask_mime) != 0)
			goto out;
	}
	json_object_object_add(root, "input", in);
	if (webhook != NULL) {
		json_object_object_add(root, "webhook",
		    json_object_new_string(webhook));
		flt = json_object_new_array();
		json_object_array_add(flt, json_object_new_string("completed"));
		json_object_object_add(root, "webhook_events_filter", flt);
	}
	out = strdup(json_object_to_json_string_ext(root,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
out:
	json_object_put(root);
	return out;
}

/* ---- a prediction ------------------------------------------------------ */

int
replicate_id_ok(const char *id)
{
	size_t i;

	if (id == NULL)
		return 0;
	for (i = 0; id[i] != '\0'; i++)
		if (!isalnum((unsigned char)id[i]))
			return 0;
	return i > 0 && i <= REPLICATE_ID_MAX;
}

const char *
replicate_output_url(json_object *pred)
{
	json_object *o = NULL, *first;

	if (!json_object_object_get_ex(pred, "output", &o) || o == NULL)
		return NULL;
	if (json_object_is_type(o, json_type_string))
		return json_object_get_string(o);
	if (json_object_is_type(o, json_type_array) &&
	    json_object_array_length(o) > 0) {
		first = json_object_array_get_idx(o, 0);
		if (json_object_is_type(first, json_type_string))
			return json_object_get_string(first);
	}
	return NULL;
}

enum prov_err
replicate_outcome(const char *status, const char *error, const char *id,
    struct prov_result *res)
{
	if (strcmp(status, "failed") == 0) {
		prov_msg(res, NULL, "replicate: prediction %s failed: %.400s", id,
		    error != NULL ? error : "(no error given)");
		return replicate_policy_refusal(error) ? PROV_CONTENT_POLICY :
		    PROV_PROVIDER_ERROR;
	}
	if (strcmp(status, "canceled") == 0) {
		prov_msg(res, NULL, "replicate: prediction %s was canceled at "
		    "Replicate", id);
		return PROV_PROVIDER_ERROR;
	}
	return PROV_OK;
}

/* 1 for a status that ends a prediction. */
static int
terminal(const char *s)
{
	return strcmp(s, "succeeded") == 0 || strcmp(s, "failed") == 0 ||
	    strcmp(s, "canceled") == 0;
}

/* "{base}/predictions/{id}{tail}" into out. */
static void
pred_url(const struct replicate *rp, const char *id, const char *tail,
    char *out, size_t n)
{
	snprintf(out, n, "%s/predictions/%s%s", rp->base, id, tail);
}

/* Asks Replicate to stop the prediction; what it answers is only logged
 * (the job ends the same way). */
static void
cancel_prediction(struct replicate *rp, const char *id)
{
	struct prov_http_reply rep;
	struct prov_result tmp;
	char url[1024];

	memset(&tmp, 0, sizeof(tmp));
	pred_url(rp, id, "/cancel", url, sizeof(url));
	if (prov_remote_call(rp->h, "POST", url, NULL, 0,
	    clock_mono_ms() + REPLICATE_LOOK_MS, &rep, &tmp) != PROV_OK)
		log_warn("replicate: cancel of prediction %s: %s", id, tmp.message);
	else
		log_info("replicate: prediction %s canceled (HTTP %ld)", id,
		    rep.status);
	prov_remote_reply_free(&rep);
}

/* The prediction in a 2xx body: PROV_OK with *root (caller puts), its id
 * and status pointing into it; else PROVIDER_ERROR with res->message. */
static enum prov_err
read_prediction(const struct prov_http_reply *rep, json_object **root,
    const char **id, const char **status, struct prov_result *res)
{
	*root = jr_parse(rep->body, rep->len);
	*id = jr_str(*root, "id");
	*status = jr_str(*root, "status");
	if (*root == NULL || !replicate_id_ok(*id) || *status == NULL) {
		prov_msg(res, NULL, "replicate: HTTP %ld: not a prediction (%zu "
		    "bytes)", rep->status, rep->len);
		json_object_put(*root);
		*root = NULL;
		return PROV_PROVIDER_ERROR;
	}
	return PROV_OK;
}

/* A terminal prediction: its image downloaded, or why there is none. */
static enum prov_err
finish(struct provider *p, const struct prov_request *req, json_object *pred,
    const char *id, const char *status, struct prov_result *res)
{
	struct replicate *rp = p->state;
	const char *url;
	enum prov_err e;
	long wait = 500;
	int try;
	char why[sizeof(res->message)];

	e = replicate_outcome(status, jr_str(pred, "error"), id, res);
	if (e != PROV_OK)
		return e;
	url = replicate_output_url(pred);
	if (url == NULL) {
		prov_msg(res, NULL, "replicate: prediction %s succeeded without an "
		    "output file", id);
		return PROV_NO_IMAGE;
	}
	/* The model is paid for: a download that may clear up is tried
	 * again here, not by creating another prediction. */
	for (try = 1;; try++) {
		e = prov_http_fetch(rp->h, url, req->deadline_ms, res);
		if (!prov_err_retryable(e) || try == REPLICATE_FETCH_TRIES ||
		    (req->deadline_ms != 0 &&
		    clock_mono_ms() + wait >= req->deadline_ms))
			break;
		log_info("replicate: prediction %s: output download: %s; again in "
		    "%ld ms", id, res->message, wait);
		prov_result_free(res);
		res->message[0] = '\0';
		clock_sleep_ms(wait);
		wait *= 2;
	}
	if (e != PROV_OK) {
		memcpy(why, res->message, sizeof(why));
		prov_msg(res, NULL, "%s%.480s", strncmp(why, "replicate:", 10) == 0 ?
		    "" : "replicate: ", why);
		return e;
	}
	res->cost_usd = prov_cost_estimate("replicate", p->model, req->width,
	    req->height);
	return PROV_OK;
}

/*
 * Polls the prediction until it ends, the deadline passes or the job is no
 * longer wanted (then the prediction is canceled). A poll that fails on
 * the way (5xx, a broken connection) is waited out like a running
 * prediction; a refusal (401, 404) ends it.
 */
static enum prov_err
poll_prediction(struct provider *p, const struct prov_request *req, const char *id,
    struct prov_result *res)
{
	struct replicate *rp = p->state;
	struct prov_http_reply rep;
	json_object *pred = NULL;
	const char *pid, *status;
	long long wait = rp->poll_ms, left;
	char url[1024];
	enum prov_err e;

	memset(&rep, 0, sizeof(rep));
	pred_url(rp, id, "", url, sizeof(url));
	for (;;) {
		if (req->deadline_ms != 0) {
			left = req->deadline_ms - clock_mono_ms();
			if (left <= 0) {
				cancel_prediction(rp, id);
				prov_msg(res, NULL, "replicate: prediction %s did not end "
				    "before the job's deadline", id);
				e = PROV_TIMEOUT;
				goto out;
			}
			if (wait > left)
				wait = left;
		}
		clock_sleep_ms(wait);
		if (req->wanted != NULL && !req->wanted(req->wanted_arg)) {
			cancel_prediction(rp, id);
			res->abandoned = 1;
			prov_msg(res, NULL, "replicate: prediction %s canceled: the "
			    "job is no longer wanted", id);
			e = PROV_PROVIDER_ERROR;
			goto out;
		}
		wait = wait * 2 > REPLICATE_POLL_MAX_MS ? REPLICATE_POLL_MAX_MS :
		    wait * 2;
		prov_remote_reply_free(&rep);
		e = prov_remote_call(rp->h, "GET", url, NULL, 0, req->deadline_ms,
		    &rep, res);
		/* The prediction runs on (and is paid for) whatever one poll
		 * met: only the job's deadline ends the waiting. */
		if (e == PROV_TEMPORARY || e == PROV_TIMEOUT ||
		    (e == PROV_OK && rep.status >= 500)) {
			log_info("replicate: poll of %s: %s; polling again", id,
			    e == PROV_OK ? "a server error" : res->message);
			res->message[0] = '\0';
			continue;
		}
		if (e != PROV_OK)
			goto out;
		if (rep.status < 200 || rep.status >= 300) {
			e = replicate_parse_error(rep.status, rep.body, rep.len,
			    rep.retry_after_ms, res);
			if (e == PROV_RATE_LIMIT) {
				if (rep.retry_after_ms > wait)
					wait = rep.retry_after_ms;
				res->message[0] = '\0';
				continue;
			}
			if (e == PROV_INVALID_REQUEST)
				e = PROV_PROVIDER_ERROR;	/* the prediction is gone */
			goto out;
		}
		json_object_put(pred);
		e = read_prediction(&rep, &pred, &pid, &status, res);
		if (e != PROV_OK)
			goto out;
		if (terminal(status)) {
			e = finish(p, req, pred, id, status, res);
			goto out;
		}
	}
out:
	json_object_put(pred);
	prov_remote_reply_free(&rep);
	return e;
}

/*
 * Creates the prediction (with webhook as its callback when not NULL):
 * PROV_OK with its id in id and, when it ended at once, *pred (caller
 * puts) and *status; else a classified failure.
 */
static enum prov_err
create(struct provider *p, const struct prov_request *req, const char *webhook,
    char id[REPLICATE_ID_MAX + 1], json_object **pred, const char **status,
    struct prov_result *res)
{
	struct replicate *rp = p->state;
	struct prov_http_reply rep;
	const char *pid;
	char *body;
	enum prov_err e;

	*pred = NULL;
	memset(&rep, 0, sizeof(rep));
	body = replicate_request_json(req, webhook);
	if (body == NULL) {
		prov_msg(res, NULL, "replicate: out of memory building the request");
		return PROV_PROVIDER_ERROR;
	}
	e = prov_remote_call(rp->h, "POST", NULL, body, strlen(body),
	    req->deadline_ms, &rep, res);
	free(body);
	if (e != PROV_OK)
		goto out;
	if (rep.status < 200 || rep.status >= 300) {
		e = replicate_parse_error(rep.status, rep.body, rep.len,
		    rep.retry_after_ms, res);
		goto out;
	}
	e = read_prediction(&rep, pred, &pid, status, res);
	if (e != PROV_OK)
		goto out;
	snprintf(id, REPLICATE_ID_MAX + 1, "%s", pid);
	log_info("replicate: prediction %s %s%s", id, *status,
	    webhook != NULL ? " (a webhook will tell when it ends)" : "");
out:
	prov_redact(res->message, sizeof(res->message), rp->h->secret);
	prov_remote_reply_free(&rep);
	return e;
}

static enum prov_err
replicate_generate(struct provider *p, const struct prov_request *req,
    struct prov_result *res)
{
	struct replicate *rp = p->state;
	json_object *pred = NULL;
	const char *status = NULL;
	char id[REPLICATE_ID_MAX + 1];
	enum prov_err e;

	e = create(p, req, NULL, id, &pred, &status, res);
	if (e != PROV_OK)
		goto out;
	if (terminal(status))
		e = finish(p, req, pred, id, status, res);
	else
		e = poll_prediction(p, req, id, res);
out:
	prov_redact(res->message, sizeof(res->message), rp->h->secret);
	json_object_put(pred);
	return e;
}

/* ---- calling back (IMAGEGEN_PUBLIC_URL) -------------------------------- */

static enum prov_err
replicate_submit(struct provider *p, const struct prov_request *req,
    const char *webhook, char *id, size_t idlen, struct prov_result *res)
{
	json_object *pred = NULL;
	const char *status = NULL;
	char pid[REPLICATE_ID_MAX + 1];
	enum prov_err e;

	e = create(p, req, webhook, pid, &pred, &status, res);
	if (e == PROV_OK)
		snprintf(id, idlen, "%s", pid);
	json_object_put(pred);
	return e;
}

static int
replicate_peek(struct provider *p, const char *id, char **outcome,
    struct prov_result *res)
{
	struct replicate *rp = p->state;
	struct prov_http_reply rep;
	json_object *pred = NULL;
	const char *pid, *status;
	char url[1024];
	int rc = -1;

	*outcome = NULL;
	if (!replicate_id_ok(id)) {
		prov_msg(res, NULL, "replicate: not a prediction id");
		return -1;
	}
	pred_url(rp, id, "", url, sizeof(url));
	if (prov_remote_call(rp->h, "GET", url, NULL, 0,
	    clock_mono_ms() + REPLICATE_LOOK_MS, &rep, res) != PROV_OK)
		goto out;
	if (rep.status < 200 || rep.status >= 300) {
		(void)replicate_parse_error(rep.status, rep.body, rep.len, 0, res);
		goto out;
	}
	if (read_prediction(&rep, &pred, &pid, &status, res) != PROV_OK)
		goto out;
	if (strcmp(pid, id) != 0) {
		prov_msg(res, NULL, "replicate: asked for prediction %s, got %s", id,
		    pid);
		goto out;
	}
	rc = 0;
	if (terminal(status)) {
		*outcome = strdup(rep.body);
		rc = *outcome != NULL ? 1 : -1;
	}
out:
	prov_redact(res->message, sizeof(res->message), rp->h->secret);
	json_object_put(pred);
	prov_remote_reply_free(&rep);
	return rc;
}

static enum prov_err
replicate_collect(struct provider *p, const struct prov_request *req,
    const char *outcome, struct prov_result *res)
{
	struct replicate *rp = p->state;
	json_object *pred;
	const char *id, *status;
	enum prov_err e;

	pred = jr_parse(outcome, outcome != NULL ? strlen(outcome) : 0);
	id = jr_str(pred, "id");
	status = jr_str(pred, "status");
	if (pred == NULL || !replicate_id_ok(id) || status == NULL ||
	    !terminal(status)) {
		prov_msg(res, NULL, "replicate: the recorded prediction is not an "
		    "ended one");
		e = PROV_PROVIDER_ERROR;
		goto out;
	}
	e = finish(p, req, pred, id, status, res);
out:
	prov_redact(res->message, sizeof(res->message), rp->h->secret);
	json_object_put(pred);
	return e;
}

static void
replicate_cancel(struct provider *p, const char *id)
{
	if (replicate_id_ok(id))
		cancel_prediction(p->state, id);
}

static int
replicate_webhook_secret(struct provider *p, char *out, size_t n, char *err,
    size_t errlen)
{
	struct replicate *rp = p->state;
	struct prov_http_reply rep;
	struct prov_result tmp;
	json_object *root = NULL;
	const char *key;
	char url[1024];
	int rc = -1;

	if (rp->webhook_secret != NULL) {
		snprintf(out, n, "%s", rp->webhook_secret);
		return strlen(rp->webhook_secret) < n ? 0 : -1;
	}
	memset(&tmp, 0, sizeof(tmp));
	snprintf(url, sizeof(url), "%s/webhooks/default/secret", rp->base);
	/* A responder asks this while answering a webhook: a few seconds at
	 * most, whatever IMAGEGEN_PROVIDER_TIMEOUT_MS says. */
	if (prov_remote_call(rp->h, "GET", url, NULL, 0, clock_mono_ms() +
	    REPLICATE_SECRET_MS, &rep, &tmp) != PROV_OK) {
		snprintf(err, errlen, "%s", tmp.message);
		goto out;
	}
	root = jr_parse(rep.body, rep.len);
	key = jr_str(root, "key");
	if (rep.status != 200 || key == NULL || strlen(key) >= n) {
		snprintf(err, errlen, "replicate: GET /webhooks/default/secret: HTTP "
		    "%ld without a key", rep.status);
		goto out;
	}
	snprintf(out, n, "%s", key);
	rc = 0;
out:
	prov_redact(err, errlen, rp->h->secret);
	json_object_put(root);
	prov_remote_reply_free(&rep);
	return rc;
}

int
replicate_webhook_read(const char *body, size_t len, char *id, size_t idlen)
{
	json_object *pred = jr_parse(body, len);
	const char *pid = jr_str(pred, "id"), *status = jr_str(pred, "status");
	int rc = -1;

	if (pred != NULL && replicate_id_ok(pid) && status != NULL) {
		snprintf(id, idlen, "%s", pid);
		rc = terminal(status) ? 1 : 0;
	}
	json_object_put(pred);
	return rc;
}

/* ---- settings, open, close --------------------------------------------- */

/* 1 for owner/name, each 1-63 of [a-z0-9._-] (Replicate's names). */
static int
model_ok(const char *m)
{
	const char *slash = strchr(m, '/');
	size_t i, n = strlen(m);

	if (slash == NULL || slash == m || slash[1] == '\0' ||
	    strchr(slash + 1, '/') != NULL || n >= 64)
		return 0;
	for (i = 0; i < n; i++)
		if (m[i] != '/' && !(islower((unsigned char)m[i]) ||
		    isdigit((unsigned char)m[i]) || m[i] == '.' || m[i] == '-' ||
		    m[i] == '_'))
			return 0;
	return 1;
}

static const char *
replicate_model(const void *conf)
{
	const struct replicate_conf *rc = conf;

	return rc->model;
}

static int
replicate_check(const struct cfg *c, const void *conf, char *err, size_t errlen)
{
	const struct replicate_conf *rc = conf;

	(void)c;
	if (rc->model != NULL && !model_ok(rc->model)) {
		snprintf(err, errlen, "REPLICATE_MODEL: expected owner/name (1-63 of "
		    "[a-z0-9._-/]), got '%.64s'", rc->model);
		return -1;
	}
	return 0;
}

static void
replicate_close(struct provider *p)
{
	struct replicate *rp = p->state;

	if (rp == NULL)
		return;
	p->state = rp->h;
	prov_remote_close(p);
	free(rp->base);
	secret_free(rp->webhook_secret);
	free(rp);
	p->state = NULL;
}

static int
replicate_open(struct provider *p, const struct cfg *c, char *err, size_t errlen)
{
	static const struct replicate_conf none;
	const struct replicate_conf *rc = c->provider_conf != NULL ?
	    c->provider_conf : &none;
	const char *model = rc->model != NULL ? rc->model : REPLICATE_DEFAULT_MODEL;
	const char *base = rc->api_url != NULL ? rc->api_url : REPLICATE_DEFAULT_URL;
	const char *url[5];
	struct prov_api api = { 0 };
	struct replicate *rp;

	if (!model_ok(model)) {
		snprintf(err, errlen, "REPLICATE_MODEL: expected owner/name, got "
		    "'%.64s'", model);
		return -1;
	}
	url[0] = base;
	url[1] = "/models/";
	url[2] = model;
	url[3] = "/predictions";
	url[4] = NULL;
	api.name = "replicate";
	api.model = model;
	api.url = url;
	api.key_prefix = "Authorization: Bearer ";
	api.key = rc->api_token;
	api.key_var = "REPLICATE_API_TOKEN";
	if (prov_remote_open(p, c, &api, err, errlen) != 0)
		return -1;
	rp = calloc(1, sizeof(*rp));
	if (rp == NULL || (rp->base = strdup(base)) == NULL) {
		free(rp);
		prov_remote_close(p);
		snprintf(err, errlen, "IMAGEGEN_PROVIDER: out of memory");
		return -1;
	}
	rp->h = p->state;
	rp->poll_ms = rc->poll_ms > 0 ? rc->poll_ms : 500;
	if (rc->webhook_secret != NULL &&
	    (rp->webhook_secret = strdup(rc->webhook_secret)) == NULL) {
		p->state = rp;
		replicate_close(p);
		snprintf(err, errlen, "IMAGEGEN_PROVIDER: out of memory");
		return -1;
	}
	p->state = rp;
	return 0;
}

static const struct setting replicate_settings[] = {
	{ "REPLICATE_API_TOKEN", SET_STR, NULL, 0, 0,
	  offsetof(struct replicate_conf, api_token), SET_SECRET | SET_NEEDED,
	  NULL, NULL,
	  "Replicate's API token (`r8_…`; secret, redacted from every stored "
	  "message)" },
	{ "REPLICATE_MODEL", SET_STR, REPLICATE_DEFAULT_MODEL, 0, 0,
	  offsetof(struct replicate_conf, model), 0, NULL, NULL,
	  "the model, `owner/name`; recorded on jobs and priced by the price "
	  "table (one it lacks is refused unless `IMAGEGEN_PRICE_PER_IMAGE_USD` "
	  "is set)" },
	{ "REPLICATE_API_URL", SET_STR, REPLICATE_DEFAULT_URL, 0, 0,
	  offsetof(struct replicate_conf, api_url), SET_HTTP | SET_STRIP, NULL,
	  NULL, "the API base URL (the token is sent only there)" },
	{ "REPLICATE_POLL_MS", SET_LONG, "500", 50, 60000,
	  offsetof(struct replicate_conf, poll_ms), 0, NULL, NULL,
	  "the first wait before a prediction is polled; each next one doubles, "
	  "up to 5 s" },
	{ "REPLICATE_WEBHOOK_SECRET", SET_STR, NULL, 0, 0,
	  offsetof(struct replicate_conf, webhook_secret), SET_SECRET, NULL,
	  "(asked of `GET /webhooks/default/secret` by each responder on the first signed webhook)",
	  "the `whsec_…` secret Replicate signs webhooks with (secret); with "
	  "`IMAGEGEN_PUBLIC_URL` set, `POST /api/webhooks/nano-banana` refuses "
	  "a webhook it did not sign" },
	{ NULL, 0, NULL, 0, 0, 0, 0, NULL, NULL, NULL }
};

/* Replicate bills google/nano-banana per image. */
static const struct prov_price replicate_prices[] = {
	{ "google/nano-banana", 0, 0.039, -1, -1, -1, -1 },
};

const struct prov_ops prov_replicate = {
	.name = "replicate",
	.about = "Nano Banana on Replicate (predictions: polled, or signed webhooks "
	    "with `IMAGEGEN_PUBLIC_URL`)",
	.settings = replicate_settings,
	.conf_size = sizeof(struct replicate_conf),
	.check = replicate_check,
	.model = replicate_model,
	.model_var = "REPLICATE_MODEL",
	.prices = replicate_prices,
	.n_prices = sizeof(replicate_prices) / sizeof(replicate_prices[0]),
	.open = replicate_open,
	.close = replicate_close,
	.generate = replicate_generate,
	.submit = replicate_submit,
	.peek = replicate_peek,
	.collect = replicate_collect,
	.cancel = replicate_cancel,
	.webhook_secret = replicate_webhook_secret,
	.webhook_read = replicate_webhook_read,
};
