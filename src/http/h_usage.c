/* h_usage.c - GET /api/usage: the caller's budgets and rate limit. */
#include <string.h>

#include "app.h"
#include "auth.h"
#include "db.h"
#include "usagedb.h"
#include "uuid.h"

/* What usage_once() reads, and the JSON it got. */
struct usage_work {
	struct arena *a;
	const struct cfg *cfg;
	const char *claims, *project, *json, *msg;
};

/* db_run_retry() work: the usage JSON into w->json. */
static enum ig_err
usage_once(PGconn *conn, void *arg)
{
	struct usage_work *w = arg;
	enum ig_err e;

	w->json = usagedb_json(conn, w->a, w->claims, w->project,
	    w->cfg->rate_limit_per_minute, w->cfg->rate_limit_burst, &e, &w->msg);
	return e;
}

/* GET /api/usage[?projectId=UUID] */
enum ig_err
handle_usage(struct http_req *r)
{
	struct usage_work w = { r->arena, r->cfg, NULL, NULL, NULL, NULL };
	struct auth_user u;
	enum ig_err e;
	int bad = 0;

	e = auth_request(r, &u);
	if (e != IG_OK)
		return e;
	w.claims = u.claims;
	w.project = http_query_param(r, "projectId", &bad);
	if (bad || (w.project != NULL &&
	    (strlen(w.project) != 36 || !uuid_valid(w.project))))
		return http_fail(r, IG_EVALIDATION, "projectId: must be a UUID");
	e = db_run_retry(usage_once, &w, NULL);
	if (e != IG_OK)
		return http_fail(r, e, "%s", w.msg != NULL ? w.msg :
		    e == IG_EUNAVAILABLE ? "database unavailable" : "internal error");
	http_send_json_text(r, 200, w.json);
	return IG_OK;
}
