/* h_me.c - GET /api/me: the caller as its token says. */
#include "app.h"
#include "auth.h"

enum ig_err
handle_me(struct http_req *r)
{
	struct auth_user u;
	struct json_object *o;
	enum ig_err e;

	e = auth_request(r, &u);
	if (e != IG_OK)
		return e;
	o = json_object_new_object();
	if (o == NULL)
		return http_fail(r, IG_EINTERNAL, "out of memory");
	json_object_object_add(o, "userId", json_object_new_string(u.sub));
	json_object_object_add(o, "role", json_object_new_string(u.role));
	json_object_object_add(o, "email", u.email != NULL ?
	    json_object_new_string(u.email) : NULL);
	http_send_json(r, 200, o);
	json_object_put(o);
	return IG_OK;
}
