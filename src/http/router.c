/* router.c - matches a method and path against the route table. */
#include <stdio.h>
#include <string.h>

#include "router.h"

/* Matches pattern against path segment by segment; a {name} segment takes
 * one non-empty path segment. 1 on a match, with the captures in params. */
static int
route_path_match(const char *pat, const char *path, struct arena *a,
    const char **params, int *nparams)
{
	const char *ps, *pe, *ss, *se;
	int n = 0;

	ps = pat;
	ss = path;
	for (;;) {
		if (*ps != '/' || *ss != '/')
			return *ps == '\0' && *ss == '\0' ? (*nparams = n, 1) : 0;
		ps++;
		ss++;
		pe = strchr(ps, '/');
		if (pe == NULL)
			pe = ps + strlen(ps);
		se = strchr(ss, '/');
		if (se == NULL)
			se = ss + strlen(ss);
		if (*ps == '{') {
			if (se == ss || n == HTTP_MAX_PARAMS)
				return 0;
			params[n] = arena_strndup(a, ss, (size_t)(se - ss));
			if (params[n] == NULL)
				return 0;
			n++;
		} else if (pe - ps != se - ss || memcmp(ps, ss, (size_t)(pe - ps)) != 0) {
			return 0;
		}
		ps = pe;
		ss = se;
	}
}

route_fn
router_match(const struct route *tab, size_t n, struct http_req *r,
    enum ig_err *e)
{
	const char *params[HTTP_MAX_PARAMS];
	char allow[128];
	size_t i, len = 0;
	int np = 0, path_seen = 0;
	const char *method = r->method;

	if (strcmp(method, "HEAD") == 0)
		method = "GET";
	allow[0] = '\0';
	for (i = 0; i < n; i++) {
		if (!route_path_match(tab[i].pattern, r->path, r->arena, params, &np))
			continue;
		if (strcmp(tab[i].method, method) == 0) {
			memcpy(r->params, params, sizeof(params));
			r->nparams = np;
			*e = IG_OK;
			return tab[i].fn;
		}
		path_seen = 1;
		if (len + strlen(tab[i].method) + 3 < sizeof(allow) &&
		    strstr(allow, tab[i].method) == NULL) {
			len += (size_t)snprintf(allow + len, sizeof(allow) - len,
			    "%s%s", len ? ", " : "", tab[i].method);
		}
	}
	if (path_seen) {
		if (strstr(allow, "GET") != NULL && strstr(allow, "HEAD") == NULL &&
		    len + 6 < sizeof(allow))
			snprintf(allow + len, sizeof(allow) - len, ", HEAD");
		http_add_header(r, "Allow", allow);
		*e = IG_EMETHOD;
	} else {
		*e = IG_ENOTFOUND;
	}
	return NULL;
}
