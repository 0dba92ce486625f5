/* h_provider_webhooks.c - POST /api/webhooks/nano-banana: a model provider
 * (replicate) saying a prediction ended. No bearer token: the body is
 * authenticated with Standard Webhooks (remote.h), and nothing changes
 * unless the signature holds. */
#include <string.h>

#include "app.h"
#include "log.h"
#include "remote.h"

enum ig_err
handle_provider_webhook(struct http_req *r)
{
	struct json_object *o;
	char job_id[37], msg[256];
	enum remote_wh w;

	msg[0] = '\0';
	w = remote_webhook(r->cfg, http_param(r, "HTTP_WEBHOOK_ID"),
	    http_param(r, "HTTP_WEBHOOK_TIMESTAMP"),
	    http_param(r, "HTTP_WEBHOOK_SIGNATURE"), r->body, r->body_len, job_id,
	    msg, sizeof(msg));
	switch (w) {
	case REMOTE_WH_OK:
	case REMOTE_WH_REPLAY:
		break;
	case REMOTE_WH_UNSIGNED:
		log_warn("%s", msg);
		return http_fail(r, IG_EUNAUTHORIZED, "%s", msg);
	case REMOTE_WH_BAD:
		return http_fail(r, IG_EVALIDATION, "%s", msg);
	case REMOTE_WH_OFF:
		return http_fail(r, IG_ENOTFOUND, "%s", msg);
	default:
		log_error("%s", msg);
		return http_fail(r, IG_EUNAVAILABLE, "%s", msg);
	}
	o = json_object_new_object();
	if (o == NULL)
		return http_fail(r, IG_EINTERNAL, "out of memory");
	json_object_object_add(o, "received", json_object_new_boolean(1));
	json_object_object_add(o, "replayed",
	    json_object_new_boolean(w == REMOTE_WH_REPLAY));
	http_send_json(r, 200, o);
	json_object_put(o);
	/* The job resumes in an executor after the answer is out. */
	if (job_id[0] != '\0')
		memcpy(r->spawn_job, job_id, sizeof(r->spawn_job));
	return IG_OK;
}
