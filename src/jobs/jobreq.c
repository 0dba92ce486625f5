/* jobreq.c - validating and fingerprinting POST /api/images/generate. */
#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "json_strict.h"
#include "hex.h"
#include "jobreq.h"
#include "uuid.h"
#include "storage.h"
#include "urlpolicy.h"

static const char *const job_types[] = { "master_asset", "start_frame",
	"end_frame", "inpaint", NULL };

int
jobreq_utf8_ok(const char *s, size_t n, size_t max)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	size_t chars = 0;
	unsigned cp;
	int k, i;

	while (p < end) {
		if (*p < 0x80) {
			if (*p == 0)
				return 0;
			p++;
			chars++;
			continue;
		}
		if ((*p & 0xE0) == 0xC0) {
			k = 1;
			cp = *p & 0x1F;
		} else if ((*p & 0xF0) == 0xE0) {
			k = 2;
			cp = *p & 0x0F;
		} else if ((*p & 0xF8) == 0xF0) {
			k = 3;
			cp = *p & 0x07;
		} else {
			return 0;
		}
		if (end - p <= k)
			return 0;
		for (i = 1; i <= k; i++) {
			if ((p[i] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i] & 0x3F);
		}
		/* overlong forms, surrogates and beyond U+10FFFF */
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) ||
		    (k == 3 && cp < 0x10000) || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		p += k + 1;
		chars++;
	}
	return chars >= 1 && chars <= max;
}

/* A member that must be absent, null, or a string; *out NULL when absent. */
static int
opt_string(struct json_object *o, const char *name, const char **out,
    struct arena *a, const char **msg)
{
	struct json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(o, name, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_string)) {
		*msg = arena_printf(a, "%s: must be a string", name);
		return -1;
	}
	*out = json_object_get_string(v);
	if (strlen(*out) != (size_t)json_object_get_string_len(v)) {
		*msg = arena_printf(a, "%s: must not contain NUL", name);
		return -1;
	}
	return 0;
}

static int
opt_uuid(struct json_object *o, const char *name, const char **out,
    struct arena *a, const char **msg, int required)
{
	char *lower;
	size_t i;

	if (opt_string(o, name, out, a, msg) != 0)
		return -1;
	if (*out == NULL) {
		if (required) {
			*msg = arena_printf(a, "%s: required", name);
			return -1;
		}
		return 0;
	}
	if (strlen(*out) != 36 || !uuid_valid(*out)) {
		*msg = arena_printf(a, "%s: must be a UUID", name);
		return -1;
	}
	lower = arena_strdup(a, *out);
	if (lower == NULL) {
		*msg = "out of memory";
		return -1;
	}
	for (i = 0; lower[i] != '\0'; i++)
		lower[i] = (char)tolower((unsigned char)lower[i]);
	*out = lower;
	return 0;
}

static int
opt_dimension(struct json_object *o, const char *name, int *out,
    struct arena *a, const char **msg)
{
	struct json_object *v;
	int64_t n;

	*out = 1024;
	if (!json_object_object_get_ex(o, name, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_int)) {
		*msg = arena_printf(a, "%s: must be an integer from 64 to 4096", name);
		return -1;
	}
	n = json_object_get_int64(v);
	if (n < 64 || n > 4096) {
		*msg = arena_printf(a, "%s: must be an integer from 64 to 4096", name);
		return -1;
	}
	*out = (int)n;
	return 0;
}

/* A URL of our own bucket's objects, in one of the forms the storage
 * backend serves them at (storage_path_of_url): each form is matched
 * byte for byte, host and port included, so no other host passes. */
static int
in_bucket(const struct storage *sg, const char *url)
{
	char path[STORAGE_PATH_MAX + 1];

	return sg != NULL && storage_path_of_url(sg, url, path, sizeof(path)) == 0;
}

static void
fp_add(EVP_MD_CTX *md, const char *name, const char *v)
{
	char len[32];

	/* length-prefixed, so no value can run into the next */
	snprintf(len, sizeof(len), "%s:%zu:", name, v != NULL ? strlen(v) : (size_t)0);
	EVP_DigestUpdate(md, len, strlen(len));
	if (v != NULL)
		EVP_DigestUpdate(md, v, strlen(v));
	else
		EVP_DigestUpdate(md, "\x01", 1);	/* absent differs from "" */
}

/* The request as sent, not as resolved: an omitted branchId is hashed as
 * absent, so the same request replayed without it replays its job (on
 * the branch that was main then, whatever is main now), and the same key
 * with branchId named (even the main one) is another request. */
static int
fingerprint(struct job_request *jr)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char h[32];
	char w[16], hh[16];
	unsigned int n = 0;
	int rc = -1;

	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	snprintf(w, sizeof(w), "%d", jr->width);
	snprintf(hh, sizeof(hh), "%d", jr->height);
	fp_add(md, "v", "1");
	fp_add(md, "projectId", jr->project_id);
	fp_add(md, "branchId", jr->branch_id);
	fp_add(md, "jobType", jr->job_type);
	fp_add(md, "prompt", jr->prompt);
	fp_add(md, "width", w);
	fp_add(md, "height", hh);
	fp_add(md, "visualStyleCapsuleId", jr->capsule_id);
	fp_add(md, "assetId", jr->asset_id);
	fp_add(md, "sceneId", jr->scene_id);
	fp_add(md, "shotId", jr->shot_id);
	fp_add(md, "sourceImageUrl", jr->source_url);
	fp_add(md, "maskImageUrl", jr->mask_url);
	if (jr->webhook != NULL) {
		/* only with a webhook: older keys keep their fingerprints */
		fp_add(md, "webhook", jr->webhook);
		fp_add(md, "webhookEventsFilter", jr->webhook_events);
	}
	if (EVP_DigestFinal_ex(md, h, &n) != 1 || n != 32)
		goto out;
	hex_encode(h, sizeof(h), jr->fingerprint);
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	return rc;
}

/* webhook and webhookEventsFilter: the URL's form here (https, length),
 * the policy in jobreq_check_webhook(); the filter a non-empty subset of
 * start, completed, each once; default ["completed"]. */
static int
webhook_parse(struct json_object *o, struct arena *a, struct job_request *out,
    const char **msg)
{
	struct json_object *v, *it;
	int start = 0, completed = 0;
	size_t i, n, len;
	const char *s;

	if (opt_string(o, "webhook", &out->webhook, a, msg) != 0)
		return -1;
	if (json_object_object_get_ex(o, "webhookEventsFilter", &v) && v != NULL &&
	    out->webhook == NULL) {
		*msg = "webhookEventsFilter: needs a webhook";
		return -1;
	}
	if (out->webhook == NULL)
		return 0;
	len = strlen(out->webhook);
	if (len == 0 || len > JOB_WEBHOOK_MAX) {
		*msg = "webhook: must be a URL of 1 to 2048 characters";
		return -1;
	}
	for (i = 0; i < len; i++)
		if ((unsigned char)out->webhook[i] <= 0x20 ||
		    (unsigned char)out->webhook[i] >= 0x7f) {
			*msg = "webhook: must be a URL without blanks or control "
			    "or non-ASCII characters";
			return -1;
		}
	out->webhook = arena_strdup(a, out->webhook);
	if (!json_object_object_get_ex(o, "webhookEventsFilter", &v) || v == NULL) {
		out->webhook_events = "{completed}";
		return out->webhook == NULL ? -1 : 0;
	}
	if (!json_object_is_type(v, json_type_array) ||
	    (n = json_object_array_length(v)) == 0 || n > 2) {
		*msg = "webhookEventsFilter: must be a non-empty array of \"start\""
		    " and \"completed\"";
		return -1;
	}
	for (i = 0; i < n; i++) {
		it = json_object_array_get_idx(v, i);
		s = json_object_is_type(it, json_type_string) ?
		    json_object_get_string(it) : "";
		if (strcmp(s, "start") == 0 && !start)
			start = 1;
		else if (strcmp(s, "completed") == 0 && !completed)
			completed = 1;
		else {
			*msg = "webhookEventsFilter: each of \"start\" and "
			    "\"completed\" at most once, nothing else";
			return -1;
		}
	}
	out->webhook_events = start && completed ? "{start,completed}" :
	    start ? "{start}" : "{completed}";
	return out->webhook == NULL ? -1 : 0;
}

int
jobreq_check_webhook(const struct urlpol *p, const char *url, char *why,
    size_t whylen)
{
	struct addrinfo hints, *ai = NULL;
	char host[URLPOL_HOST_MAX + 3];
	const char *h, *e;
	size_t n;
	int rc;

	if (urlpol_check_url(p, url, why, whylen) != 0)
		return -1;
	/* The host of scheme://host[:port]/... (urlpol_check_url() refused a
	 * user name): an address literal is checked now, a name when it is
	 * resolved, at delivery. */
	h = strstr(url, "://");
	if (h == NULL)
		return 0;
	h += 3;
	if (*h == '[') {
		e = strchr(h, ']');
		if (e == NULL)
			return 0;
		h++;
	} else {
		e = h + strcspn(h, ":/?#");
	}
	n = (size_t)(e - h);
	if (n == 0 || n >= sizeof(host))
		return 0;
	memcpy(host, h, n);
	host[n] = '\0';
	/* Numeric forms only, as the resolver reads them ("127.1" and
	 * "2130706433" are 127.0.0.1 too): no lookup here. */
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_flags = AI_NUMERICHOST;
	if (getaddrinfo(host, NULL, &hints, &ai) != 0 || ai == NULL)
		return 0;
	rc = urlpol_check_addr(p, ai->ai_addr, ai->ai_addrlen, why, whylen);
	freeaddrinfo(ai);
	return rc;
}

static int
idem_key_ok(const char *k)
{
	size_t i;

	for (i = 0; k[i] != '\0'; i++)
		if ((unsigned char)k[i] < 0x20 || k[i] == 0x7f)
			return 0;
	return i >= 1 && i <= JOB_IDEM_KEY_MAX;
}

enum ig_err
jobreq_parse(struct arena *a, const char *body, size_t len,
    const char *header_key, struct storage *sg, struct job_request *out,
    const char **msg)
{
	struct json_object *o = NULL, *v;
	struct json_tokener *tk = NULL;
	enum ig_err e = IG_EVALIDATION;
	size_t i;

	memset(out, 0, sizeof(*out));
	*msg = NULL;
	if (len == 0) {
		*msg = "body: a JSON object is required";
		goto out;
	}
	if (json_no_duplicate_members(body, len) != 0) {
		*msg = "body: malformed JSON, or a member given twice";
		goto out;
	}
	tk = json_tokener_new_ex(16);
	if (tk == NULL) {
		e = IG_EINTERNAL;
		goto out;
	}
	o = json_tokener_parse_ex(tk, body, (int)len);
	if (o == NULL || json_tokener_get_error(tk) != json_tokener_success ||
	    !json_object_is_type(o, json_type_object)) {
		*msg = "body: must be a JSON object";
		goto out;
	}
	if (opt_uuid(o, "projectId", &out->project_id, a, msg, 1) != 0 ||
	    opt_uuid(o, "branchId", &out->branch_id, a, msg, 0) != 0)
		goto out;
	if (opt_string(o, "jobType", &out->job_type, a, msg) != 0)
		goto out;
	if (out->job_type == NULL) {
		*msg = "jobType: required (master_asset, start_frame, end_frame or inpaint)";
		goto out;
	}
	for (i = 0; job_types[i] != NULL; i++)
		if (strcmp(out->job_type, job_types[i]) == 0)
			break;
	if (job_types[i] == NULL) {
		*msg = "jobType: must be master_asset, start_frame, end_frame or inpaint";
		goto out;
	}
	out->job_type = job_types[i];
	if (!json_object_object_get_ex(o, "prompt", &v) || v == NULL) {
		*msg = "prompt: required";
		goto out;
	}
	if (!json_object_is_type(v, json_type_string)) {
		*msg = "prompt: must be a string";
		goto out;
	}
	if (!jobreq_utf8_ok(json_object_get_string(v),
	    (size_t)json_object_get_string_len(v), JOB_PROMPT_MAX)) {
		*msg = "prompt: must be 1 to 4000 characters of valid UTF-8";
		goto out;
	}
	out->prompt = arena_strdup(a, json_object_get_string(v));
	if (opt_dimension(o, "width", &out->width, a, msg) != 0 ||
	    opt_dimension(o, "height", &out->height, a, msg) != 0)
		goto out;
	if (opt_uuid(o, "visualStyleCapsuleId", &out->capsule_id, a, msg, 0) != 0 ||
	    opt_uuid(o, "assetId", &out->asset_id, a, msg, 0) != 0 ||
	    opt_uuid(o, "sceneId", &out->scene_id, a, msg, 0) != 0 ||
	    opt_uuid(o, "shotId", &out->shot_id, a, msg, 0) != 0)
		goto out;
	if (strcmp(out->job_type, "start_frame") == 0 ||
	    strcmp(out->job_type, "end_frame") == 0) {
		if (out->scene_id == NULL || out->shot_id == NULL) {
			*msg = arena_printf(a, "%s: %s needs sceneId and shotId",
			    out->scene_id == NULL ? "sceneId" : "shotId", out->job_type);
			goto out;
		}
	}
	if (opt_string(o, "sourceImageUrl", &out->source_url, a, msg) != 0 ||
	    opt_string(o, "maskImageUrl", &out->mask_url, a, msg) != 0)
		goto out;
	if (strcmp(out->job_type, "inpaint") == 0 && out->source_url == NULL) {
		*msg = "sourceImageUrl: inpaint needs a source image";
		goto out;
	}
	if (out->source_url != NULL && !in_bucket(sg, out->source_url)) {
		*msg = "sourceImageUrl: must point into this service's bucket";
		goto out;
	}
	if (out->mask_url != NULL && !in_bucket(sg, out->mask_url)) {
		*msg = "maskImageUrl: must point into this service's bucket";
		goto out;
	}
	if (out->source_url != NULL)
		out->source_url = arena_strdup(a, out->source_url);
	if (out->mask_url != NULL)
		out->mask_url = arena_strdup(a, out->mask_url);
	if (webhook_parse(o, a, out, msg) != 0)
		goto out;
	if (opt_string(o, "idempotencyKey", &out->idem_key, a, msg) != 0)
		goto out;
	if (out->idem_key != NULL && header_key != NULL &&
	    strcmp(out->idem_key, header_key) != 0) {
		*msg = "idempotencyKey: differs from the Idempotency-Key header";
		goto out;
	}
	if (out->idem_key == NULL)
		out->idem_key = header_key;
	if (out->idem_key != NULL) {
		if (!idem_key_ok(out->idem_key)) {
			*msg = "idempotencyKey: must be 1 to 255 printable characters";
			goto out;
		}
		out->idem_key = arena_strdup(a, out->idem_key);
	}
	if (out->prompt == NULL || fingerprint(out) != 0) {
		e = IG_EINTERNAL;
		*msg = "out of memory";
		goto out;
	}
	e = IG_OK;
out:
	json_object_put(o);
	if (tk != NULL)
		json_tokener_free(tk);
	return e;
}
