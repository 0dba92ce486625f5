/* app.c - the route table and the one place requests are answered. */
#include <string.h>

#include "app.h"
#include "log.h"
#include "router.h"

static const struct route app_routes[] = {
	{ "GET", "/api/health/live", handle_health_live },
	{ "GET", "/api/health", handle_health },
	{ "GET", "/api/me", handle_me },
	{ "GET", "/api/usage", handle_usage },
	{ "GET", "/api/projects", handle_projects },
	{ "GET", "/api/openapi.json", handle_openapi },
	{ "GET", "/metrics", handle_metrics },
	{ "POST", "/api/images/generate", handle_generate },
	{ "GET", "/api/images/jobs", handle_job_list },
	{ "GET", "/api/images/jobs/{jobId}", handle_job_get },
	{ "GET", "/api/images/jobs/{jobId}/events", handle_job_events },
	{ "POST", "/api/images/jobs/{jobId}/cancel", handle_job_cancel },
	{ "POST", "/api/images/jobs/{jobId}/retry", handle_job_retry },
	{ "GET", "/api/images/jobs/{jobId}/webhooks", handle_job_webhooks },
	{ "POST", "/api/images/jobs/{jobId}/webhooks/redeliver",
	  handle_job_webhooks_redeliver },
	{ "GET", "/api/webhooks/secret", handle_webhook_secret },
	{ "POST", "/api/webhooks/secret/rotate", handle_webhook_secret_rotate },
	{ "POST", "/api/webhooks/nano-banana", handle_provider_webhook },
};

route_fn
app_route(struct http_req *r, enum ig_err *e)
{
	return router_match(app_routes, sizeof(app_routes) / sizeof(app_routes[0]),
	    r, e);
}

void
app_handle(struct http_req *r)
{
	enum ig_err e;
	route_fn fn;

	fn = app_route(r, &e);
	if (fn != NULL)
		e = fn(r);
	if (e == IG_ENOTFOUND && r->err_msg == NULL)
		r->err_msg = arena_printf(r->arena, "no route for %s %.200s",
		    r->method, r->path);
	if (!r->responded) {
		if (e == IG_OK) {
			log_error("handler for %s %s sent no response", r->method,
			    r->path);
			e = IG_EINTERNAL;
		}
		http_send_error(r, e, r->err_msg);
	}
}
