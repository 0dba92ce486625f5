/*
 * fuzz_fcgi.c - a FastCGI request as the web server hands it over:
 * NAME=value parameter lines, an empty line, then the body, read by
 * http_req_read() from an in-memory stream that gives the body a few
 * bytes at a time; then the route table, the query parameters and the
 * headers the handlers read (app_route, http_query_param,
 * http_prefer_wait, http_is_json).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>

#include "app.h"
#include "arena.h"
#include "cfg.h"
#include "harness.h"
#include "http.h"

#define FZ_MAX_PARAMS 64
#define FZ_CHUNK 7		/* body bytes per read */

struct fz_body {
	const unsigned char *p;
	size_t n, off;
};

/* The stream's refill: the next FZ_CHUNK bytes, then closed. */
static void
fill(FCGX_Stream *s)
{
	struct fz_body *b = s->data;
	size_t k = b->n - b->off < FZ_CHUNK ? b->n - b->off : FZ_CHUNK;

	if (k == 0) {
		s->isClosed = 1;
		return;
	}
	s->rdNext = s->stopUnget = (unsigned char *)b->p + b->off;
	s->stop = s->rdNext + k;
	b->off += k;
}

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
	static const char *const q[] = { "cursor", "limit", "projectId",
		"status" };
	char *copy, *line, *next, *sep, *envp[FZ_MAX_PARAMS + 1];
	struct fz_body body = { NULL, 0, 0 };
	FCGX_Stream in;
	FCGX_Request f;
	struct http_req r;
	struct arena *a;
	struct cfg c;
	enum ig_err e;
	size_t n = 0, i;
	long wait;
	int bad;

	copy = fz_strndup(data, size);
	/* the parameters, up to the first empty line; the body after it */
	sep = memmem(copy, size, "\n\n", 2);
	if (sep != NULL) {
		*sep = '\0';
		body.p = (const unsigned char *)sep + 2;
		body.n = size - (size_t)(sep + 2 - copy);
	}
	for (line = copy; line != NULL && n < FZ_MAX_PARAMS; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (strchr(line, '=') != NULL)
			envp[n++] = line;
	}
	envp[n] = NULL;
	memset(&in, 0, sizeof(in));
	in.isReader = 1;
	in.fillBuffProc = fill;
	in.data = &body;
	in.rdNext = in.stop = in.stopUnget = (unsigned char *)copy;
	memset(&f, 0, sizeof(f));
	f.in = &in;
	f.envp = envp;
	f.ipcFd = -1;
	memset(&c, 0, sizeof(c));
	c.max_body_bytes = 4096;
	a = arena_new(4096);
	if (a == NULL)
		abort();
	e = http_req_read(&r, &f, a, &c);
	if (r.path == NULL || r.method == NULL || r.query == NULL)
		__builtin_trap();
	if (e == IG_OK) {
		if (r.body == NULL || strlen(r.body) > r.body_len)
			__builtin_trap();
		(void)app_route(&r, &e);
		(void)http_is_json(&r);
		for (i = 0; i < sizeof(q) / sizeof(q[0]); i++)
			(void)http_query_param(&r, q[i], &bad);
		(void)http_prefer_wait(http_param(&r, "HTTP_PREFER"), 30, &wait);
	}
	arena_free(a);
	free(copy);
	return 0;
}
