/* router.h - the route table and its matcher. */
#ifndef IG_ROUTER_H
#define IG_ROUTER_H

#include "http.h"

typedef enum ig_err (*route_fn)(struct http_req *r);

struct route {
	const char *method;	/* "GET", "POST", … */
	const char *pattern;	/* "/api/images/jobs/{id}/cancel" */
	route_fn fn;
};

/*
 * Finds the route for r->method and r->path, storing {placeholder}
 * segments in r->params. Returns the handler, or NULL with *e set to
 * IG_ENOTFOUND (no pattern matches the path) or IG_EMETHOD (one does, with
 * another method; then an Allow header is added to r).
 */
route_fn router_match(const struct route *tab, size_t n, struct http_req *r,
    enum ig_err *e);

#endif
