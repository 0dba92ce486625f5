/*
 * prov_remote.h - what the remote providers (gemini, openai) share: their
 * open, close and generate around one httpc client, the classification of
 * SPEC §6, artifacts (base64, URL, raw bytes) and secret redaction. Also
 * the providers' pure reply parsers, declared here so the unit suites can
 * drive them with canned replies.
 */
#ifndef IG_PROV_REMOTE_H
#define IG_PROV_REMOTE_H

#include <stddef.h>
#include <time.h>

#include "cfg.h"
#include "httpc.h"
#include "provider.h"
#include "urlpolicy.h"

#define PROV_URL_MAX_REDIRS 3		/* artifact downloads */

/* A remote provider's state (its p->state), made in its open() (after
 * fork) by prov_remote_open(). */
struct prov_http {
	struct httpc client;		/* one handle, reused between calls */
	struct urlpol policy;		/* IMAGEGEN_FETCH_ALLOW, for artifact URLs */
	long timeout_ms;		/* IMAGEGEN_PROVIDER_TIMEOUT_MS */
	size_t max_bytes;		/* IMAGEGEN_PROVIDER_MAX_BYTES */
	char *secret;			/* the API key: redacted from messages */
	char *url;			/* the endpoint generate() posts to */
	char *key_header;		/* the header line with the key (secret) */
	char name[16];			/* "gemini", …: prefixes messages */
	const struct prov_wire *wire;	/* how the API is spoken */
};

/* One HTTP answer. body is NUL-terminated (malloc'd, may be NULL when
 * empty). */
struct prov_http_reply {
	long status;
	char *body;
	size_t len;
	long retry_after_ms;		/* Retry-After; 0 when absent */
};

/* What sets one remote provider apart, for prov_remote_open(). */
struct prov_api {
	const char *name;		/* "gemini": IMAGEGEN_PROVIDER, messages */
	const char *model;		/* the model, recorded on jobs */
	const char *model_rule;		/* NULL when model will do; else what
					 * NANO_BANANA_MODEL must be */
	const char *const *url;		/* the endpoint in pieces, NULL-ended */
	const char *key_prefix;		/* the key's header line, less the key */
	const struct prov_wire *wire;	/* how its API is spoken */
	/* The key (may be NULL: unset) and its variable, for messages;
	 * key_var NULL: NANO_BANANA_API_KEY. */
	const char *key, *key_var;
};

/* The conf (c->provider_conf, its ops' conf_size) of a remote provider
 * that reads the shared settings: prov_remote_settings' rows and its own
 * NANO_BANANA_API_URL row (each with its own default). */
struct prov_remote_conf {
	char *api_key;		/* NANO_BANANA_API_KEY (secret) */
	char *model;		/* NANO_BANANA_MODEL */
	char *api_url;		/* NANO_BANANA_API_URL, no trailing / */
};

/* The settings every remote provider reads (its shared_settings), into a
 * struct prov_remote_conf: the key and the model; each brings its own
 * NANO_BANANA_API_URL row (offsetof(struct prov_remote_conf, api_url)). */
extern const struct setting prov_remote_settings[];
/* c's provider conf as a struct prov_remote_conf; an empty one (all
 * unset) when c has none. Can't fail. */
const struct prov_remote_conf *prov_remote_conf(const struct cfg *c);
/* The model() of such a provider: conf's NANO_BANANA_MODEL. */
const char *prov_remote_model(const void *conf);

/*
 * The open() of a remote provider: the key (api->key) must be set and
 * the model acceptable, then p->state becomes a struct prov_http for api
 * and p->model api->model. 0, or -1 with err naming the variable at fault
 * (p->state left NULL).
 */
int prov_remote_open(struct provider *p, const struct cfg *c,
    const struct prov_api *api, char *err, size_t errlen);
/* The close() of a remote provider; the key is wiped. Accepts a provider
 * with no state. */
void prov_remote_close(struct provider *p);

/* Readers of a 2xx answer and of any other (gemini_parse_error, …). */
typedef enum prov_err (*prov_reply_fn)(struct provider *p,
    const struct prov_request *req, const struct prov_http_reply *rep,
    struct prov_result *res);
typedef enum prov_err (*prov_error_fn)(long status, const char *body,
    size_t len, long retry_after_ms, struct prov_result *res);

/* How a remote provider speaks its API: one static table per provider,
 * named by its prov_api. */
struct prov_wire {
	/* The JSON request body for req (malloc'd), NULL out of memory. */
	char *(*request)(const struct prov_request *req, const char *model);
	prov_reply_fn on_reply;		/* reads a 2xx answer */
	prov_error_fn on_error;		/* reads any other */
	/* Why an inpaint request (with a source image) is refused as
	 * INVALID_REQUEST; NULL when the API takes them. */
	const char *no_inpaint;
};

/*
 * The generate() of a remote provider (its ops' generate): refuses an
 * inpaint its wire does not speak, else POSTs the wire's request body to
 * the endpoint with the key, within the configured timeout and req's
 * deadline, then reads a 2xx answer with on_reply and any other with
 * on_error. A body that could not be built, or a reply past max_bytes, is
 * PROVIDER_ERROR, a transport failure TIMEOUT, TEMPORARY or
 * PROVIDER_ERROR, with res->message; the key is redacted from it whatever
 * came back.
 */
enum prov_err prov_remote_generate(struct provider *p,
    const struct prov_request *req, struct prov_result *res);

/*
 * One call to the provider's own API with its key: method to url (NULL:
 * the endpoint generate() posts to), len bytes of JSON body when body is
 * not NULL, within the timeout and deadline_ms; not under the URL policy
 * (the operator named the endpoint). PROV_OK when an answer of any status
 * arrived whole into *rep (free it with prov_remote_reply_free()), else a
 * classified transport failure with res->message.
 */
enum prov_err prov_remote_call(struct prov_http *h, const char *method,
    const char *url, const char *body, size_t len, long long deadline_ms,
    struct prov_http_reply *rep, struct prov_result *res);
/* Frees rep's body and zeroes it; accepts a zeroed reply. */
void prov_remote_reply_free(struct prov_http_reply *rep);

/*
 * Downloads an artifact URL into res->data under the outbound URL policy
 * (urlpolicy.h, h->policy): https, or http to an allowed host; no
 * refused address; at most PROV_URL_MAX_REDIRS redirects, each checked;
 * at most max_bytes, within the timeout and deadline; no credentials are
 * sent. The bytes are then checked as by prov_artifact_bytes(). PROV_OK,
 * or a classified failure with message: a refusal is PROVIDER_ERROR
 * ("artifact URL refused by the outbound URL policy: …").
 */
enum prov_err prov_http_fetch(struct prov_http *h, const char *url,
    long long deadline_ms, struct prov_result *res);

/* The class of an HTTP status (SPEC §6): 2xx OK, 401/403 AUTH_ERROR, 408
 * TIMEOUT, 429 RATE_LIMIT, other 4xx INVALID_REQUEST, 5xx TEMPORARY,
 * anything else PROVIDER_ERROR. Can't fail. */
enum prov_err prov_http_class(long status);

/*
 * Artifacts. Each leaves a checked image in res->data/len (malloc'd) and
 * returns PROV_OK, or PROVIDER_ERROR with res->message: base64 that is
 * not strict standard base64 or decodes past max bytes (refused before
 * decoding), bytes that are not a whole PNG, JPEG or WebP.
 */
/* Checks buf (n bytes, malloc'd, owned from here on, freed on failure)
 * is a whole image and gives it to res->data. PROV_OK, or
 * PROV_PROVIDER_ERROR with res->message. (prov_artifact.c, as the two
 * below.) */
enum prov_err prov_artifact_take(unsigned char *buf, size_t n,
    struct prov_result *res);
enum prov_err prov_artifact_b64(const char *b64, size_t n, size_t max,
    struct prov_result *res);
enum prov_err prov_artifact_bytes(const unsigned char *data, size_t n,
    size_t max, struct prov_result *res);
/* 1 when the bytes are a PNG, JPEG or WebP by magic (prov_image_sniff) and
 * not cut short: PNG ends with IEND, JPEG with EOI, WebP's RIFF size is
 * the byte count. Can't fail. */
int prov_image_whole(const unsigned char *d, size_t n);

/* Retry-After (RFC 9110 §10.2.3): delta-seconds or an HTTP-date against
 * now, in ms; 0 when absent, malformed or in the past. Capped at a day. */
long prov_retry_after_ms(const char *value, time_t now);
/* A google.protobuf.Duration in JSON ("13s", "1.5s", "0.250s") in ms,
 * rounded up; -1 when malformed. Capped at a day. */
long prov_duration_ms(const char *s);

/* Replaces every occurrence of secret in s (and anything shaped like a
 * Google or OpenAI API key) with "[redacted]", in place, keeping s within
 * its size. Accepts a NULL or empty secret. */
void prov_redact(char *s, size_t size, const char *secret);
/* Formats into res->message, then makes it one printable line with no
 * secret in it. */
void prov_msg(struct prov_result *res, const struct prov_http *h,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "name: HTTP status: …" into res->message with the first 200 bytes of
 * body: for an error answer with nothing readable in it. */
void prov_msg_http(struct prov_result *res, const char *name, long status,
    const char *body, size_t len);

/* ---- gemini (gemini.c), pure functions for the unit suite ------------ */

/* The supported ratio ("1:1", "16:9", …) nearest width/height (by the
 * log of the ratio; on a tie the squarer one). Can't fail. */
const char *gemini_aspect_ratio(int width, int height);
/* "1K", "2K" or "4K" for models that take imageConfig.imageSize (the
 * smallest whose longer side covers the request), NULL for the others. */
const char *gemini_image_size(const char *model, int width, int height);
/*
 * Reads a 200 reply: skips thought parts, takes the first inlineData
 * image (decoded into res->data, checked), maps promptFeedback.blockReason
 * and finishReason to CONTENT_POLICY or NO_IMAGE, and usageMetadata to
 * res->cost_usd / tokens (the estimate for model at width/height when no
 * usage is reported). max caps the decoded image.
 */
enum prov_err gemini_parse_reply(const char *body, size_t len,
    const char *model, int width, int height, size_t max,
    struct prov_result *res);
/* Reads a non-2xx reply {"error":{code,message,status,details}}: the
 * class (from status and the body), res->message, and
 * res->retry_after_ms from RetryInfo.retryDelay (else retry_after_ms,
 * the header's). */
enum prov_err gemini_parse_error(long status, const char *body, size_t len,
    long retry_after_ms, struct prov_result *res);
/* The generateContent request body for req (malloc'd, caller frees):
 * the prompt, inpaint's source and mask as inline_data, IMAGE modality,
 * aspect ratio and, where the model takes it, image size. NULL when out
 * of memory. */
char *gemini_request_json(const struct prov_request *req, const char *model);

/* ---- openai (openai.c) ------------------------------------------------ */

/* The "size" to ask for: the nearest a known model supports, else the
 * request's own "WxH". Writes into out. */
void openai_size(const char *model, int width, int height, char *out,
    size_t outlen);
/*
 * Reads a 2xx reply of HTTP status status: data[0].b64_json decoded into
 * res->data (at most max bytes, checked), or data[0].url into *url
 * (malloc'd, caller frees; res->data then empty: the caller downloads
 * it); usage → res->cost_usd and tokens (the estimate for model at
 * width/height without usage). An "error" object is read as
 * openai_parse_error(). *url is NULL on any failure.
 */
enum prov_err openai_parse_reply(long status, const char *body, size_t len,
    const char *model, int width, int height, size_t max, char **url,
    struct prov_result *res);
/* Reads an error reply {"error":{message,type,code}}. */
enum prov_err openai_parse_error(long status, const char *body, size_t len,
    long retry_after_ms, struct prov_result *res);

/* ---- replicate (replicate.c) ------------------------------------------ */

/* The create body {"input":{prompt, aspect_ratio, output_format "png",
 * image_input (inpaint: source and mask, by URL when stored on https,
 * else as data: URLs)}}, with webhook and webhook_events_filter
 * ["completed"] when webhook is not NULL (malloc'd; NULL out of memory). */
char *replicate_request_json(const struct prov_request *req,
    const char *webhook);
/* Reads a non-2xx answer (problem details {title, detail, status}). */
enum prov_err replicate_parse_error(long status, const char *body,
    size_t len, long retry_after_ms, struct prov_result *res);
/* 1 when a failed prediction's error says its input or output was
 * refused for its content (NSFW, sensitive, safety, flagged, …). */
int replicate_policy_refusal(const char *error);
/* What a terminal status means: PROV_OK for succeeded; failed is
 * CONTENT_POLICY when its error is a refusal, else PROVIDER_ERROR; so is
 * canceled. res->message says which. */
enum prov_err replicate_outcome(const char *status, const char *error,
    const char *id, struct prov_result *res);
struct json_object;
/* The first output file URL of a prediction: its output is one URL
 * (google/nano-banana) or a list of them. NULL when there is none; the
 * text is pred's. */
const char *replicate_output_url(struct json_object *pred);
/* The webhook_read() of replicate: a prediction body's id, 1 when it ended. */
int replicate_webhook_read(const char *body, size_t len, char *id,
    size_t idlen);
/* 1 when id looks like a prediction id: 1-64 of [A-Za-z0-9]. */
int replicate_id_ok(const char *id);

#endif
