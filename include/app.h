/* app.h - the responder's request entry point and its handlers. */
#ifndef IG_APP_H
#define IG_APP_H

#include "http.h"
#include "router.h"

/* Routes and answers one request; always sends exactly one response. */
void app_handle(struct http_req *r);
/* The handler of the service's route table for r (router_match() over
 * it): NULL with *e IG_ENOTFOUND or IG_EMETHOD (an Allow header added).
 * Sends nothing. */
route_fn app_route(struct http_req *r, enum ig_err *e);

enum ig_err handle_health_live(struct http_req *r);
enum ig_err handle_health(struct http_req *r);
enum ig_err handle_me(struct http_req *r);
enum ig_err handle_metrics(struct http_req *r);
enum ig_err handle_generate(struct http_req *r);
enum ig_err handle_job_get(struct http_req *r);
enum ig_err handle_job_list(struct http_req *r);
enum ig_err handle_job_events(struct http_req *r);
enum ig_err handle_projects(struct http_req *r);
enum ig_err handle_job_cancel(struct http_req *r);
enum ig_err handle_job_retry(struct http_req *r);
enum ig_err handle_usage(struct http_req *r);
enum ig_err handle_openapi(struct http_req *r);
enum ig_err handle_webhook_secret(struct http_req *r);
enum ig_err handle_webhook_secret_rotate(struct http_req *r);
enum ig_err handle_job_webhooks(struct http_req *r);
enum ig_err handle_job_webhooks_redeliver(struct http_req *r);
/* POST /api/webhooks/nano-banana (h_provider_webhooks.c): no bearer. */
enum ig_err handle_provider_webhook(struct http_req *r);

#endif
