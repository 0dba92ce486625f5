/*
 * gemini.c - the real Nano Banana (SPEC §6): Google's generateContent.
 *
 *   POST {NANO_BANANA_API_URL}/models/{NANO_BANANA_MODEL}:generateContent
 *   x-goog-api-key: {NANO_BANANA_API_KEY}
 *   {"contents":[{"role":"user","parts":[{"text":…},{"inline_data":…}…]}],
 *    "generationConfig":{"responseModalities":["IMAGE"],
 *     "imageConfig":{"aspectRatio":"16:9","imageSize":"2K"}}}
 *
 * The reply's first candidate part that is not a thought and carries
 * inlineData is the image; thought parts (Gemini 3 draws interim images
 * while it thinks) and text parts are skipped. A blocked prompt
 * (promptFeedback.blockReason) or a safety finishReason is
 * CONTENT_POLICY, any other reply without an image NO_IMAGE. Errors come
 * as {"error":{code,message,status,details}}; a google.rpc.RetryInfo
 * detail's retryDelay is the wait before the next attempt.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "base64.h"
#include "jsonr.h"
#include "log.h"
#include "prov_remote.h"
#include "settings.h"

#define GEMINI_DEFAULT_URL "https://generativelanguage.googleapis.com/v1beta"
#define GEMINI_DEFAULT_MODEL "gemini-2.5-flash-image"

/* The aspect ratios the image models accept, squarest first so that a
 * tie goes to the squarer one. */
static const struct gemini_ratio {
	const char *name;
	int w, h;
} gemini_ratios[] = {
	{ "1:1", 1, 1 },
	{ "5:4", 5, 4 }, { "4:5", 4, 5 },
	{ "4:3", 4, 3 }, { "3:4", 3, 4 },
	{ "3:2", 3, 2 }, { "2:3", 2, 3 },
	{ "16:9", 16, 9 }, { "9:16", 9, 16 },
	{ "21:9", 21, 9 },
};

/* Models that take imageConfig.imageSize, by name prefix (Gemini 2.5
 * Flash Image renders about 1 megapixel and refuses the field). */
static const char *const gemini_sized_models[] = {
	"gemini-3-pro-image",
	"gemini-3.1-flash-image",
	NULL
};

/* finishReason values that mean the output was blocked for its content;
 * any other reason without an image is NO_IMAGE. */
static const char *const gemini_blocked_reasons[] = {
	"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
	"IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION",
	"MODEL_ARMOR",
	NULL
};

const char *
gemini_aspect_ratio(int width, int height)
{
	double want, d, best_d = 0;
	size_t i, best = 0;

	if (width <= 0 || height <= 0)
		return gemini_ratios[0].name;
	want = log((double)width / height);
	for (i = 0; i < sizeof(gemini_ratios) / sizeof(gemini_ratios[0]); i++) {
		d = fabs(want - log((double)gemini_ratios[i].w / gemini_ratios[i].h));
		/* 1e-12: equal distances computed two ways stay a tie. */
		if (i == 0 || d < best_d - 1e-12) {
			best = i;
			best_d = d;
		}
	}
	return gemini_ratios[best].name;
}

const char *
gemini_image_size(const char *model, int width, int height)
{
	int side = width > height ? width : height;
	size_t i;

	if (model == NULL)
		return NULL;
	for (i = 0; gemini_sized_models[i] != NULL; i++) {
		if (strncmp(model, gemini_sized_models[i],
		    strlen(gemini_sized_models[i])) == 0)
			break;
	}
	if (gemini_sized_models[i] == NULL)
		return NULL;
	if (side <= 1024)
		return "1K";
	if (side <= 2048)
		return "2K";
	return "4K";
}

/* ---- the request ------------------------------------------------------- */

/* Adds {"inline_data":{"mime_type":…,"data":base64}} to parts; -1 when
 * out of memory. */
static int
add_inline(json_object *parts, const unsigned char *data, size_t len,
    const char *mime)
{
	json_object *part, *inl;
	size_t blen = 0;
	char *b64;

	b64 = base64_encode(data, len, &blen);
	if (b64 == NULL)
		return -1;
	part = json_object_new_object();
	inl = json_object_new_object();
	json_object_object_add(inl, "mime_type", json_object_new_string(
	    mime != NULL && mime[0] != '\0' ? mime : "image/png"));
	json_object_object_add(inl, "data", json_object_new_string_len(b64,
	    (int)blen));
	json_object_object_add(part, "inline_data", inl);
	json_object_array_add(parts, part);
	free(b64);
	return 0;
}

char *
gemini_request_json(const struct prov_request *req, const char *model)
{
	json_object *root, *contents, *content, *parts, *part, *gc, *mods, *ic;
	const char *size;
	char *out = NULL;

	root = json_object_new_object();
	contents = json_object_new_array();
	content = json_object_new_object();
	parts = json_object_new_array();
	json_object_object_add(content, "role", json_object_new_string("user"));
	part = json_object_new_object();
	json_object_object_add(part, "text", json_object_new_string(
	    req->prompt != NULL ? req->prompt : ""));
	json_object_array_add(parts, part);
	/* The source, then the mask the instruction describes. */
	if (req->source != NULL && req->source_len > 0 &&
	    add_inline(parts, req->source, req->source_len, req->source_mime) != 0)
		goto out;
	if (req->mask != NULL && req->mask_len > 0 &&
	    add_inline(parts, req->mask, req->mask_len, req->mask_mime) != 0)
		goto out;
	json_object_object_add(content, "parts", parts);
	parts = NULL;
	json_object_array_add(contents, content);
	content = NULL;
	json_object_object_add(root, "contents", contents);
	contents = NULL;

	gc = json_object_new_object();
	mods = json_object_new_array();
	json_object_array_add(mods, json_object_new_string("IMAGE"));
	json_object_object_add(gc, "responseModalities", mods);
	ic = json_object_new_object();
	json_object_object_add(ic, "aspectRatio", json_object_new_string(
	    gemini_aspect_ratio(req->width, req->height)));
	size = gemini_image_size(model, req->width, req->height);
	if (size != NULL)
		json_object_object_add(ic, "imageSize", json_object_new_string(size));
	json_object_object_add(gc, "imageConfig", ic);
	json_object_object_add(root, "generationConfig", gc);
	out = strdup(json_object_to_json_string_ext(root,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
out:
	json_object_put(parts);
	json_object_put(content);
	json_object_put(contents);
	json_object_put(root);
	return out;
}

/* ---- the reply --------------------------------------------------------- */

static int
is_blocked_reason(const char *r)
{
	size_t i;

	for (i = 0; r != NULL && gemini_blocked_reasons[i] != NULL; i++) {
		if (strcmp(r, gemini_blocked_reasons[i]) == 0)
			return 1;
	}
	return 0;
}

/* usageMetadata → tokens and cost; the estimate when none is reported. */
static void
gemini_usage(json_object *root, const char *model, int width, int height,
    struct prov_result *res)
{
	json_object *um = jr_get(root, "usageMetadata", json_type_object);
	json_object *det, *d;
	long prompt, cand, thoughts, image = 0, n;
	const char *mod;
	size_t i;
	int have_details = 0;
	double cost = -1;

	prompt = jr_count(um, "promptTokenCount");
	cand = jr_count(um, "candidatesTokenCount");
	thoughts = jr_count(um, "thoughtsTokenCount");
	if (um != NULL && cand >= 0) {
		det = jr_get(um, "candidatesTokensDetails", json_type_array);
		for (i = 0; det != NULL && i < json_object_array_length(det); i++) {
			d = json_object_array_get_idx(det, i);
			mod = jr_str(d, "modality");
			n = jr_count(d, "tokenCount");
			have_details = 1;
			if (mod != NULL && strcmp(mod, "IMAGE") == 0 && n > 0)
				image += n;
		}
		/* Without a breakdown an image model's output is its image. */
		if (!have_details)
			image = cand;
		if (image > cand)
			image = cand;
		res->input_tokens = prompt >= 0 ? prompt : 0;
		res->output_tokens = cand + (thoughts > 0 ? thoughts : 0);
		cost = prov_cost_from_usage("gemini", model, res->input_tokens, 0,
		    cand - image + (thoughts > 0 ? thoughts : 0), image);
	}
	res->cost_usd = cost >= 0 ? cost : prov_cost_estimate("gemini", model, width,
	    height);
}

enum prov_err
gemini_parse_reply(const char *body, size_t len, const char *model,
    int width, int height, size_t max, struct prov_result *res)
{
	json_object *root, *pf, *cands, *cand, *content, *parts, *part, *inl, *th;
	const char *block, *reason, *first_reason = NULL, *blocked = NULL;
	const char *text = NULL, *fmsg = NULL, *mime, *data;
	enum prov_err e;
	size_t i, k;

	root = jr_parse(body, len);
	if (root == NULL || !json_object_is_type(root, json_type_object)) {
		prov_msg(res, NULL, "gemini: the reply is not a JSON object "
		    "(%zu bytes)", len);
		e = PROV_PROVIDER_ERROR;
		goto out;
	}
	gemini_usage(root, model, width, height, res);
	pf = jr_get(root, "promptFeedback", json_type_object);
	block = jr_str(pf, "blockReason");
	if (block != NULL && block[0] != '\0') {
		fmsg = jr_str(pf, "blockReasonMessage");
		prov_msg(res, NULL, "gemini: the prompt was blocked: %s%s%s", block,
		    fmsg != NULL ? ": " : "", fmsg != NULL ? fmsg : "");
		e = PROV_CONTENT_POLICY;
		goto out;
	}
	cands = jr_get(root, "candidates", json_type_array);
	for (i = 0; cands != NULL && i < json_object_array_length(cands); i++) {
		cand = json_object_array_get_idx(cands, i);
		reason = jr_str(cand, "finishReason");
		if (first_reason == NULL && reason != NULL) {
			first_reason = reason;
			fmsg = jr_str(cand, "finishMessage");
		}
		if (is_blocked_reason(reason)) {
			if (blocked == NULL)
				blocked = reason;
			continue;
		}
		content = jr_get(cand, "content", json_type_object);
		parts = jr_get(content, "parts", json_type_array);
		for (k = 0; parts != NULL && k < json_object_array_length(parts); k++) {
			part = json_object_array_get_idx(parts, k);
			th = jr_get(part, "thought", json_type_boolean);
			if (th != NULL && json_object_get_boolean(th))
				continue;
			inl = jr_get(part, "inlineData", json_type_object);
			if (inl == NULL)
				inl = jr_get(part, "inline_data", json_type_object);
			if (inl == NULL) {
				if (text == NULL)
					text = jr_str(part, "text");
				continue;
			}
			mime = jr_str(inl, "mimeType");
			if (mime == NULL)
				mime = jr_str(inl, "mime_type");
			/* Inline data that says it is not an image is not ours. */
			if (mime != NULL && strncmp(mime, "image/", 6) != 0)
				continue;
			data = jr_str(inl, "data");
			e = prov_artifact_b64(data, jr_strlen(inl, "data"), max, res);
			if (e != PROV_OK) {
				char why[sizeof(res->message)];

				memcpy(why, res->message, sizeof(why));
				prov_msg(res, NULL, "gemini: %.480s", why);
			}
			goto out;
		}
	}
	if (blocked != NULL) {
		prov_msg(res, NULL, "gemini: the image was blocked: %s%s%s", blocked,
		    fmsg != NULL ? ": " : "", fmsg != NULL ? fmsg : "");
		e = PROV_CONTENT_POLICY;
		goto out;
	}
	if (cands == NULL || json_object_array_length(cands) == 0)
		prov_msg(res, NULL, "gemini: the reply has no candidates");
	else
		prov_msg(res, NULL, "gemini: no image in the reply (finishReason %s)"
		    "%s%.200s%s%.200s", first_reason != NULL ? first_reason : "none",
		    fmsg != NULL ? ": " : "", fmsg != NULL ? fmsg : "",
		    text != NULL ? "; the model said: " : "", text != NULL ? text : "");
	e = PROV_NO_IMAGE;
out:
	json_object_put(root);
	return e;
}

enum prov_err
gemini_parse_error(long status, const char *body, size_t len,
    long retry_after_ms, struct prov_result *res)
{
	json_object *root, *err, *details, *d;
	const char *msg = NULL, *st = NULL, *type, *reason;
	enum prov_err e = prov_http_class(status);
	long delay = -1, v;
	size_t i, n;

	if (e == PROV_OK)
		e = PROV_PROVIDER_ERROR;	/* not an error reply: a caller bug */
	root = jr_parse(body, len);
	err = jr_get(root, "error", json_type_object);
	if (err != NULL) {
		msg = jr_str(err, "message");
		st = jr_str(err, "status");
		details = jr_get(err, "details", json_type_array);
		for (i = 0; details != NULL && i < json_object_array_length(details);
		    i++) {
			d = json_object_array_get_idx(details, i);
			type = jr_str(d, "@type");
			if (type == NULL)
				continue;
			n = strlen(type);
			if (n >= 20 && strcmp(type + n - 20, "google.rpc.RetryInfo") == 0) {
				v = prov_duration_ms(jr_str(d, "retryDelay"));
				if (v >= 0)
					delay = v;
			} else if (n >= 20 &&
			    strcmp(type + n - 20, "google.rpc.ErrorInfo") == 0) {
				reason = jr_str(d, "reason");
				/* A bad key is a 400 INVALID_ARGUMENT on this API. */
				if (reason != NULL && strncmp(reason, "API_KEY_", 8) == 0)
					e = PROV_AUTH_ERROR;
			}
		}
		if (st != NULL && (strcmp(st, "UNAUTHENTICATED") == 0 ||
		    strcmp(st, "PERMISSION_DENIED") == 0))
			e = PROV_AUTH_ERROR;
	}
	if (msg != NULL || st != NULL) {
		prov_msg(res, NULL, "gemini: HTTP %ld %s: %s", status,
		    st != NULL ? st : "", msg != NULL ? msg : "(no message)");
	} else {
		prov_msg_http(res, "gemini", status, body, len);
	}
	if (prov_err_retryable(e))
		res->retry_after_ms = delay >= 0 ? delay : retry_after_ms;
	json_object_put(root);
	return e;
}

/* ---- the provider ------------------------------------------------------ */

/* 1 when a model name is safe in the URL path: [A-Za-z0-9._-], 1-63. */
static int
model_ok(const char *m)
{
	size_t i;

	for (i = 0; m[i] != '\0'; i++) {
		if (!((m[i] >= 'a' && m[i] <= 'z') || (m[i] >= 'A' && m[i] <= 'Z') ||
		    (m[i] >= '0' && m[i] <= '9') || m[i] == '.' || m[i] == '-' ||
		    m[i] == '_'))
			return 0;
	}
	return i > 0 && i < 64;
}

/* A 2xx answer: the image, or why there is none. */
static enum prov_err
gemini_reply(struct provider *p, const struct prov_request *req,
    const struct prov_http_reply *rep, struct prov_result *res)
{
	const struct prov_http *h = p->state;

	return gemini_parse_reply(rep->body, rep->len, p->model, req->width,
	    req->height, h->max_bytes, res);
}

static const struct prov_wire gemini_wire = {
	.request = gemini_request_json,
	.on_reply = gemini_reply,
	.on_error = gemini_parse_error,
};

/* conf's NANO_BANANA_MODEL, "models/x" (as Google names models in its
 * listings) taken as x: the name jobs record and the price table prices. */
static const char *
gemini_model(const void *conf)
{
	const char *m = prov_remote_model(conf);

	if (m != NULL && strncmp(m, "models/", 7) == 0)
		m += 7;
	return m;
}

static int
gemini_open(struct provider *p, const struct cfg *c, char *err, size_t errlen)
{
	const struct prov_remote_conf *rc = prov_remote_conf(c);
	const char *model = rc->model != NULL ? gemini_model(rc) :
	    GEMINI_DEFAULT_MODEL;
	const char *url[5];
	struct prov_api api = { 0 };

	url[0] = rc->api_url != NULL ? rc->api_url : GEMINI_DEFAULT_URL;
	url[1] = "/models/";
	url[2] = model;
	url[3] = ":generateContent";
	url[4] = NULL;
	api.name = "gemini";
	api.model = model;
	api.model_rule = model_ok(model) ? NULL : "expected 1-63 of [A-Za-z0-9._-]";
	api.url = url;
	api.key_prefix = "x-goog-api-key: ";
	api.wire = &gemini_wire;
	api.key = rc->api_key;
	return prov_remote_open(p, c, &api, err, errlen);
}

static const struct setting gemini_settings[] = {
	{ "NANO_BANANA_API_URL", SET_STR, GEMINI_DEFAULT_URL, 0, 0,
	  offsetof(struct prov_remote_conf, api_url), SET_HTTP | SET_STRIP, NULL, NULL,
	  "the API base URL" },
	{ NULL, 0, NULL, 0, 0, 0, 0, NULL, NULL, NULL }
};

/* The default provider whenever a key is given. */
static const char *const gemini_default_if[] = { "NANO_BANANA_API_KEY", NULL };

const struct prov_ops prov_gemini = {
	.name = "gemini",
	.about = "Google's generateContent (Nano Banana)",
	.settings = gemini_settings,
	.shared_settings = prov_remote_settings,
	.conf_size = sizeof(struct prov_remote_conf),
	.model = gemini_model,
	.model_var = "NANO_BANANA_MODEL",
	.default_if = gemini_default_if,
	.open = gemini_open,
	.close = prov_remote_close,
	.generate = prov_remote_generate,
};
