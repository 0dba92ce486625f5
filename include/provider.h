/* provider.h - image models behind one interface (SPEC §6). */
#ifndef IG_PROVIDER_H
#define IG_PROVIDER_H

#include <stddef.h>

#include "cfg.h"
#include "settings.h"

/* The classification of SPEC §6; the wire code is prov_err_code(). */
enum prov_err {
	PROV_OK = 0,
	PROV_AUTH_ERROR,	/* 401/403 */
	PROV_RATE_LIMIT,	/* 429 */
	PROV_TEMPORARY,		/* 5xx, connection errors */
	PROV_TIMEOUT,
	PROV_INVALID_REQUEST,	/* 400 */
	PROV_CONTENT_POLICY,	/* safety blocks */
	PROV_NO_IMAGE,		/* a reply without an image */
	PROV_PROVIDER_ERROR,	/* an unreadable reply */
	PROV_ERR_COUNT
};

/* "AUTH_ERROR", …; "PROVIDER_ERROR" for an out-of-range value. */
const char *prov_err_code(enum prov_err e);
/* 1 for RATE_LIMIT, TEMPORARY and TIMEOUT: the only ones retried. */
int prov_err_retryable(enum prov_err e);

struct prov_request {
	const char *job_type;		/* master_asset|start_frame|end_frame|inpaint */
	const char *prompt;		/* the final prompt */
	int width, height;		/* requested, 64-4096 */
	const unsigned char *source;	/* inpaint input image, or NULL */
	size_t source_len;
	const char *source_mime;
	const unsigned char *mask;	/* inpaint mask, or NULL */
	size_t mask_len;
	const char *mask_mime;
	long long deadline_ms;		/* CLOCK_MONOTONIC ms to give up at; 0: none */
	/* Where source and mask are stored (public URLs of our bucket), for
	 * an API that takes input files by URL; NULL when none. */
	const char *source_url, *mask_url;
	/* Asked between polls by a provider that waits on a remote job: 1
	 * to go on, 0 when the job is no longer wanted (canceled, or the
	 * executor told to stop); the provider then cancels its remote job
	 * and returns with prov_result.abandoned set. NULL: always wanted. */
	int (*wanted)(void *arg);
	void *wanted_arg;
};

struct prov_result {
	unsigned char *data;		/* the image (malloc'd) */
	size_t len;
	char mime[32];			/* image/png, image/jpeg, image/webp */
	int width, height;		/* the image's real size */
	double cost_usd;		/* actual, from the reported usage; < 0 unknown */
	long input_tokens, output_tokens;	/* -1 when not reported */
	char message[512];		/* on failure: what the provider said, no secrets */
	long retry_after_ms;		/* RATE_LIMIT/TEMPORARY hint; 0 when none */
	int abandoned;			/* 1: stopped because wanted() said 0 */
};

struct provider;

/* Where providers that call back are told to: IMAGEGEN_PUBLIC_URL + this
 * (the guide's endpoint, src/http/h_webhooks.c). */
#define PROV_WEBHOOK_PATH "/api/webhooks/nano-banana"

/*
 * A price row of a provider (prov_cost_estimate): model NULL matches any model,
 * max_side 0 any size (else the longer side must be at most max_side). usd
 * is the estimate per image; the four rates (USD per million tokens: input
 * text, input image, output text and thinking, output image) turn usage
 * into the actual cost, -1 where unknown.
 */
struct prov_price {
	const char *model;
	int max_side;
	double usd;
	double in_text, in_image, out_text, out_image;
};

struct prov_ops {
	const char *name;		/* its IMAGEGEN_PROVIDER value */
	const char *about;		/* one line for --help and the docs */
	/* Its settings (settings.h; struct settings_backend says how they
	 * are read and when it is the default), read by cfg_load(). */
	const struct setting *settings, *shared_settings;
	size_t conf_size;
	const char *const *default_if;
	int (*check)(const struct cfg *c, const void *conf, char *err,
	    size_t errlen);
	/* The model its conf names (NANO_BANANA_MODEL as read), which jobs
	 * record and prov_cost_estimate() prices before it is opened; conf
	 * is never NULL here. NULL: none. */
	const char *(*model)(const void *conf);
	/* The variable that names it (NANO_BANANA_MODEL): what the refusal
	 * of an unpriced model tells the operator to change. */
	const char *model_var;
	/* Its own price rows, tried before the model rows every provider
	 * shares (provider.c); may be NULL. */
	const struct prov_price *prices;
	size_t n_prices;
	/* After fork: reads its settings from c and its conf,
	 * c->provider_conf (NULL for a cfg not made by cfg_load(): all
	 * unset). 0, or -1 with err naming the variable at fault. */
	int (*open)(struct provider *p, const struct cfg *c, char *err,
	    size_t errlen);
	void (*close)(struct provider *p);
	/* One attempt, no retries (the runner retries). Fills *res: on
	 * PROV_OK data/len/mime/width/height, cost_usd; otherwise message. */
	enum prov_err (*generate)(struct provider *p,
	    const struct prov_request *req, struct prov_result *res);

	/* A provider that can call back (all NULL for the others). */
	/* Creates the remote job with webhook as its callback URL: PROV_OK
	 * with its id in id (idlen bytes), else a classified failure. */
	enum prov_err (*submit)(struct provider *p,
	    const struct prov_request *req, const char *webhook, char *id,
	    size_t idlen, struct prov_result *res);
	/* One look at remote job id: 1 when it ended, with *outcome its
	 * JSON (malloc'd); 0 while it runs; -1 when the provider did not say
	 * (res->message). */
	int (*peek)(struct provider *p, const char *id, char **outcome,
	    struct prov_result *res);
	/* The image of an ended remote job (its JSON, as peek() or the
	 * webhook gave it): as generate(). */
	enum prov_err (*collect)(struct provider *p,
	    const struct prov_request *req, const char *outcome,
	    struct prov_result *res);
	/* Asks the provider to stop remote job id; best effort, logged. */
	void (*cancel)(struct provider *p, const char *id);
	/* The Standard Webhooks secret ("whsec_…") its webhooks are signed
	 * with, into out (n bytes): configured, or asked of the provider
	 * once. 0, or -1 with err. */
	int (*webhook_secret)(struct provider *p, char *out, size_t n,
	    char *err, size_t errlen);
	/* A webhook body: 1 when it tells of an ended remote job (its id in
	 * id), 0 for one still running (id set too), -1 when it is not the
	 * provider's. Pure. */
	int (*webhook_read)(const char *body, size_t len, char *id,
	    size_t idlen);
};

struct provider {
	const struct prov_ops *ops;
	char model[64];			/* recorded on the job */
	void *state;
	/* IMAGEGEN_PRICE_PER_IMAGE_USD when fixed is 1 (prov_open): every
	 * image's actual cost, whatever the provider reported. */
	int fixed;
	double fixed_usd;
};

/* The provider table's row named name, or NULL. */
const struct prov_ops *prov_find(const char *name);
/* Fills out[0..max) with the table's rows as the configuration loader
 * sees them; returns how many there are (may exceed max). */
size_t prov_backends(struct settings_backend *out, size_t max);

/* The model c's provider records on jobs: its model() of
 * c->provider_conf; NULL when it names none or c has no conf. Can't
 * fail. */
const char *prov_model(const struct cfg *c);

/*
 * Opens the provider the configuration names (IMAGEGEN_PROVIDER; by
 * default the one its default_if chooses). 0, or -1 with err.
 * Close with prov_close().
 */
int prov_open(struct provider *p, const struct cfg *c, char *err,
    size_t errlen);
void prov_close(struct provider *p);
/* One attempt through p->ops->generate; res is zeroed first. */
enum prov_err prov_generate(struct provider *p,
    const struct prov_request *req, struct prov_result *res);
/* 1 when p's provider can call back (it has submit, peek, collect,
 * cancel, webhook_secret and webhook_read). */
int prov_async(const struct provider *p);
/* Creates p's remote job with webhook as its callback: PROV_OK with its
 * id (idlen bytes), else a classified failure in res. */
enum prov_err prov_submit(struct provider *p, const struct prov_request *req,
    const char *webhook, char *id, size_t idlen, struct prov_result *res);
/* prov_generate() for an ended remote job's outcome: p->ops->collect,
 * the image checked as prov_generate() checks it. */
enum prov_err prov_collect(struct provider *p, const struct prov_request *req,
    const char *outcome, struct prov_result *res);

/* Frees res->data; accepts a zeroed result. */
void prov_result_free(struct prov_result *res);

/*
 * The price table's estimate in USD of one image: the first matching row
 * of the provider's own prices, then of the model rows every provider
 * shares (Gemini 2.5 Flash Image $0.039 per image; Gemini 3 Pro Image
 * $0.134 at 1K/2K, $0.24 at 4K, longer side over 2048; …). -1 when no row
 * prices model: the table never guesses. Can't fail.
 */
double prov_cost_estimate(const char *provider, const char *model, int width,
    int height);
/*
 * Actual cost in USD from reported token usage, by the same price table's
 * per-million-token rates: input text and image tokens, output text
 * (thinking included) and image tokens. -1 when the model has no token
 * prices there (the caller then keeps the estimate). Can't fail.
 */
double prov_cost_from_usage(const char *provider, const char *model, long in_text,
    long in_image, long out_text, long out_image);

/* IMAGEGEN_PRICE_PER_IMAGE_USD of c as a number: the fixed price of every
 * image of c's provider and model, estimate and actual alike; -1 when it
 * is unset (the price table applies). Can't fail. */
double prov_fixed_price(const struct cfg *c);
/* What an image of width x height is estimated to cost under c: the fixed
 * price when set, else prov_cost_estimate() of c's provider and model
 * (prov_model()). -1 when neither prices it, which prov_price_check()
 * refuses at start. Can't fail. */
double prov_job_estimate(const struct cfg *c, int width, int height);
/* 0 when every image c's provider makes is priced: the fixed price is set,
 * or its model has a row at every size. Else -1 with one line in err
 * naming the provider's model variable and IMAGEGEN_PRICE_PER_IMAGE_USD.
 * cfg_load() calls it. */
int prov_price_check(const struct cfg *c, char *err, size_t errlen);

/*
 * The image's type and size from its bytes: PNG, JPEG or WebP by magic
 * (and their headers for width and height). 0 with mime ("image/png"…)
 * and *w, *h set; -1 when the bytes are none of the three.
 */
int prov_image_sniff(const unsigned char *data, size_t len, const char **mime,
    int *w, int *h);

#endif
