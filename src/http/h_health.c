/* h_health.c - GET /api/health/live and GET /api/health. */
#include "app.h"
#include "db.h"

#include "config.h"

static enum ig_err
send_status(struct http_req *r, int status, const char *state,
    const char *database)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL)
		return http_fail(r, IG_EINTERNAL, "out of memory");
	json_object_object_add(o, "status", json_object_new_string(state));
	if (database != NULL)
		json_object_object_add(o, "database",
		    json_object_new_string(database));
	json_object_object_add(o, "version", json_object_new_string(VERSION));
	http_send_json(r, status, o);
	json_object_put(o);
	return IG_OK;
}

/* Answers while the process serves; touches nothing else. */
enum ig_err
handle_health_live(struct http_req *r)
{
	return send_status(r, 200, "ok", NULL);
}

/* 200 when the database answers a round trip, else 503 + Retry-After. */
enum ig_err
handle_health(struct http_req *r)
{
	if (db_ping() != IG_OK)
		return http_fail(r, IG_EUNAVAILABLE, "database unavailable");
	return send_status(r, 200, "ok", "ok");
}
