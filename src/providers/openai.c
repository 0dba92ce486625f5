/*
 * openai.c - OpenAI-compatible image generation (SPEC §6), which OpenAI
 * and many Nano Banana gateways speak:
 *
 *   POST {NANO_BANANA_API_URL}/v1/images/generations
 *   Authorization: Bearer {NANO_BANANA_API_KEY}
 *   {"model":…,"prompt":…,"n":1,"size":"1024x1024","response_format":"b64_json"}
 *
 * The reply's data[0] carries b64_json or a url to download; usage (the
 * GPT image models, and gateways that pass Gemini's usage through) gives
 * the actual cost, else the estimate stands. A base URL that already ends
 * in /v1 is not given a second one.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "jsonr.h"
#include "log.h"
#include "prov_remote.h"
#include "settings.h"

#define OPENAI_DEFAULT_URL "https://api.openai.com"

/* Sizes the OpenAI models accept, by model name prefix; a model not
 * listed (a gateway's) gets the requested size as it is. */
static const struct openai_sizes {
	const char *prefix;
	const char *sizes[4];
	int by_area;		/* 1: smallest that covers; 0: nearest shape */
} openai_sizes_table[] = {
	{ "gpt-image-", { "1024x1024", "1536x1024", "1024x1536", NULL }, 0 },
	{ "dall-e-3", { "1024x1024", "1792x1024", "1024x1792", NULL }, 0 },
	{ "dall-e-2", { "256x256", "512x512", "1024x1024", NULL }, 1 },
};

void
openai_size(const char *model, int width, int height, char *out,
    size_t outlen)
{
	const struct openai_sizes *t = NULL;
	double want, d, best_d = 0;
	int w, h, side = width > height ? width : height;
	size_t i;
	const char *best = NULL;

	for (i = 0; model != NULL &&
	    i < sizeof(openai_sizes_table) / sizeof(openai_sizes_table[0]); i++) {
		if (strncmp(model, openai_sizes_table[i].prefix,
		    strlen(openai_sizes_table[i].prefix)) == 0) {
			t = &openai_sizes_table[i];
			break;
		}
	}
	if (t == NULL || width <= 0 || height <= 0) {
		snprintf(out, outlen, "%dx%d", width, height);
		return;
	}
	want = log((double)width / height);
	for (i = 0; t->sizes[i] != NULL; i++) {
		if (sscanf(t->sizes[i], "%dx%d", &w, &h) != 2)
			continue;
		if (t->by_area) {
			best = t->sizes[i];
			if (w >= side)
				break;
			continue;
		}
		d = fabs(want - log((double)w / h));
		if (best == NULL || d < best_d - 1e-12) {
			best = t->sizes[i];
			best_d = d;
		}
	}
	snprintf(out, outlen, "%s", best != NULL ? best : t->sizes[0]);
}

/* ---- errors ------------------------------------------------------------ */

/* 1 when an error code or type says the prompt or image was refused for
 * its content. */
static int
policy_refusal(const char *s)
{
	return s != NULL && (strstr(s, "content_policy") != NULL ||
	    strstr(s, "moderation") != NULL || strstr(s, "safety") != NULL);
}

enum prov_err
openai_parse_error(long status, const char *body, size_t len,
    long retry_after_ms, struct prov_result *res)
{
	json_object *root, *err;
	const char *msg = NULL, *type = NULL, *code = NULL;
	enum prov_err e = prov_http_class(status);

	if (e == PROV_OK)
		e = PROV_PROVIDER_ERROR;	/* a 2xx carrying an error object */
	root = jr_parse(body, len);
	err = jr_get(root, "error", json_type_object);
	if (err != NULL) {
		msg = jr_str(err, "message");
		type = jr_str(err, "type");
		code = jr_str(err, "code");
		if (e != PROV_RATE_LIMIT && e != PROV_TEMPORARY &&
		    (policy_refusal(code) || policy_refusal(type)))
			e = PROV_CONTENT_POLICY;
		if (code != NULL && strcmp(code, "invalid_api_key") == 0)
			e = PROV_AUTH_ERROR;
	}
	if (msg != NULL || code != NULL || type != NULL) {
		prov_msg(res, NULL, "openai: HTTP %ld %s: %s", status,
		    code != NULL ? code : type != NULL ? type : "",
		    msg != NULL ? msg : "(no message)");
	} else {
		prov_msg_http(res, "openai", status, body, len);
	}
	if (prov_err_retryable(e))
		res->retry_after_ms = retry_after_ms;
	json_object_put(root);
	return e;
}

/* ---- the provider ------------------------------------------------------ */

static char *
openai_request_json(const struct prov_request *req, const char *model)
{
	json_object *root = json_object_new_object();
	char size[32];
	char *out;

	openai_size(model, req->width, req->height, size, sizeof(size));
	json_object_object_add(root, "model", json_object_new_string(model));
	json_object_object_add(root, "prompt", json_object_new_string(
	    req->prompt != NULL ? req->prompt : ""));
	json_object_object_add(root, "n", json_object_new_int(1));
	json_object_object_add(root, "size", json_object_new_string(size));
	/* The GPT image models always answer in base64 and refuse the field. */
	if (strncmp(model, "gpt-image-", 10) != 0)
		json_object_object_add(root, "response_format",
		    json_object_new_string("b64_json"));
	out = strdup(json_object_to_json_string_ext(root,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
	return out;
}

enum prov_err
openai_parse_reply(long status, const char *body, size_t len,
    const char *model, int width, int height, size_t max, char **url,
    struct prov_result *res)
{
	json_object *root, *data, *item, *usage, *det;
	const char *b64, *u;
	long in, out, in_text, in_image;
	enum prov_err e;
	double cost = -1;
	char why[sizeof(res->message)];

	*url = NULL;
	root = jr_parse(body, len);
	if (root == NULL || !json_object_is_type(root, json_type_object)) {
		prov_msg(res, NULL, "openai: the reply is not a JSON object "
		    "(%zu bytes)", len);
		e = PROV_PROVIDER_ERROR;
		goto out;
	}
	data = jr_get(root, "data", json_type_array);
	if (data == NULL && jr_get(root, "error", json_type_object) != NULL) {
		e = openai_parse_error(status, body, len, 0, res);
		goto out;
	}
	item = data != NULL && json_object_array_length(data) > 0 ?
	    json_object_array_get_idx(data, 0) : NULL;
	b64 = jr_str(item, "b64_json");
	u = jr_str(item, "url");
	if (b64 != NULL) {
		e = prov_artifact_b64(b64, jr_strlen(item, "b64_json"), max, res);
	} else if (u != NULL) {
		*url = strdup(u);
		e = *url != NULL ? PROV_OK : PROV_PROVIDER_ERROR;
		if (e != PROV_OK)
			prov_msg(res, NULL, "openai: out of memory");
	} else {
		prov_msg(res, NULL, "openai: no image in the reply");
		e = PROV_NO_IMAGE;
		goto out;
	}
	if (e != PROV_OK) {
		memcpy(why, res->message, sizeof(why));
		prov_msg(res, NULL, "%s%.480s", strncmp(why, "openai:", 7) == 0 ?
		    "" : "openai: ", why);
		goto out;
	}
	usage = jr_get(root, "usage", json_type_object);
	in = jr_count(usage, "input_tokens");
	out = jr_count(usage, "output_tokens");
	if (usage != NULL && out >= 0) {
		det = jr_get(usage, "input_tokens_details", json_type_object);
		in_text = jr_count(det, "text_tokens");
		in_image = jr_count(det, "image_tokens");
		if (in_text < 0 && in_image < 0) {
			in_text = in >= 0 ? in : 0;
			in_image = 0;
		}
		if (in_text < 0)
			in_text = 0;
		if (in_image < 0)
			in_image = 0;
		res->input_tokens = in >= 0 ? in : in_text + in_image;
		res->output_tokens = out;
		cost = prov_cost_from_usage("openai", model, in_text, in_image, 0, out);
	}
	res->cost_usd = cost >= 0 ? cost : prov_cost_estimate("openai", model,
	    width, height);
out:
	json_object_put(root);
	return e;
}

/* A 2xx reply (openai_parse_reply), its image downloaded when the reply
 * gave a URL. */
static enum prov_err
openai_reply(struct provider *p, const struct prov_request *req,
    const struct prov_http_reply *rep, struct prov_result *res)
{
	struct prov_http *h = p->state;
	enum prov_err e;
	char *url = NULL;
	char why[sizeof(res->message)];

	e = openai_parse_reply(rep->status, rep->body, rep->len, p->model,
	    req->width, req->height, h->max_bytes, &url, res);
	if (e != PROV_OK || url == NULL)
		goto out;
	e = prov_http_fetch(h, url, req->deadline_ms, res);
	if (e != PROV_OK) {
		memcpy(why, res->message, sizeof(why));
		prov_msg(res, NULL, "%s%.480s", strncmp(why, "openai:", 7) == 0 ?
		    "" : "openai: ", why);
	}
out:
	free(url);
	return e;
}

static const struct prov_wire openai_wire = {
	.request = openai_request_json,
	.on_reply = openai_reply,
	.on_error = openai_parse_error,
	/* Edits are multipart /v1/images/edits: not spoken here. */
	.no_inpaint = "inpaint is not supported by the openai provider "
	    "(use gemini)",
};

static int
openai_open(struct provider *p, const struct cfg *c, char *err, size_t errlen)
{
	const struct prov_remote_conf *rc = prov_remote_conf(c);
	const char *base = rc->api_url != NULL ? rc->api_url : OPENAI_DEFAULT_URL;
	const char *model = rc->model != NULL ? rc->model : "gpt-image-1";
	const char *url[4];
	size_t bl = strlen(base);
	struct prov_api api = { 0 };

	/* A base URL that already ends in /v1 is not given a second one. */
	url[0] = base;
	url[1] = bl >= 3 && strcmp(base + bl - 3, "/v1") == 0 ? "" : "/v1";
	url[2] = "/images/generations";
	url[3] = NULL;
	api.name = "openai";
	api.model = model;
	api.model_rule = model[0] == '\0' || strlen(model) >= sizeof(p->model) ?
	    "expected 1-63 characters" : NULL;
	api.url = url;
	api.key_prefix = "Authorization: Bearer ";
	api.wire = &openai_wire;
	api.key = rc->api_key;
	return prov_remote_open(p, c, &api, err, errlen);
}

static const struct setting openai_settings[] = {
	{ "NANO_BANANA_API_URL", SET_STR, OPENAI_DEFAULT_URL, 0, 0,
	  offsetof(struct prov_remote_conf, api_url), SET_HTTP | SET_STRIP, NULL, NULL,
	  "the API base URL (`/v1` is added unless it ends so)" },
	{ NULL, 0, NULL, 0, 0, 0, 0, NULL, NULL, NULL }
};

const struct prov_ops prov_openai = {
	.name = "openai",
	.about = "an OpenAI-compatible /v1/images/generations",
	.settings = openai_settings,
	.shared_settings = prov_remote_settings,
	.conf_size = sizeof(struct prov_remote_conf),
	.model = prov_remote_model,
	.model_var = "NANO_BANANA_MODEL",
	.open = openai_open,
	.close = prov_remote_close,
	.generate = prov_remote_generate,
};
