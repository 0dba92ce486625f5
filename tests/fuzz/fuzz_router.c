/*
 * fuzz_router.c - the route table's matcher over any method and path
 * (the input's first line and the rest), as a request reaches it: which
 * handler, its {placeholders}, the Allow header of a known path; and the
 * Content-Length and Prefer parsers over the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "arena.h"
#include "harness.h"
#include "http.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_quiet();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_part p[2];
	struct http_req r;
	struct arena *a;
	enum ig_err e = IG_OK;
	route_fn fn;
	size_t n;
	long wait;
	int i;

	n = fz_split(data, size, '\n', p, 2);
	a = arena_new(4096);
	if (a == NULL)
		abort();
	memset(&r, 0, sizeof(r));
	r.arena = a;
	r.method = p[0].s;
	r.path = n > 1 ? p[1].s : "/";
	r.query = "";
	fn = app_route(&r, &e);
	if (fn != NULL) {
		if (e != IG_OK || r.nparams < 0 || r.nparams > HTTP_MAX_PARAMS)
			__builtin_trap();
		for (i = 0; i < r.nparams; i++)
			if (r.params[i] == NULL)
				__builtin_trap();
	} else if (e != IG_ENOTFOUND && e != IG_EMETHOD) {
		__builtin_trap();
	}
	(void)http_parse_content_length(p[0].s);
	(void)http_prefer_wait(p[n - 1].s, 30, &wait);
	arena_free(a);
	fz_parts_free(p, n);
	return 0;
}
