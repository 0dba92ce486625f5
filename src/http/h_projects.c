/* h_projects.c - GET /api/projects: the caller's projects and branches. */
#include "app.h"
#include "auth.h"
#include "db.h"
#include "jobsdb.h"

/* What projects_once() reads, and the JSON it got. */
struct projects_work {
	struct arena *a;
	const char *claims, *json;
};

/* db_run_retry() work: the listing's JSON into w->json. */
static enum ig_err
projects_once(PGconn *conn, void *arg)
{
	struct projects_work *w = arg;
	enum ig_err e;

	w->json = jobsdb_projects_json(conn, w->a, w->claims, &e);
	return e;
}

/* GET /api/projects: one round trip as the user (row-level security and
 * the query's owner predicate), reconnecting once. */
enum ig_err
handle_projects(struct http_req *r)
{
	struct projects_work w = { r->arena, NULL, NULL };
	struct auth_user u;
	enum ig_err e;

	e = auth_request(r, &u);
	if (e != IG_OK)
		return e;
	w.claims = u.claims;
	e = db_run_retry(projects_once, &w, NULL);
	if (e != IG_OK)
		return http_fail(r, e, "%s", e == IG_EUNAVAILABLE ?
		    "database unavailable" : "internal error");
	http_send_json_text(r, 200, w.json);
	return IG_OK;
}
