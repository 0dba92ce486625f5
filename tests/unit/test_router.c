/* test_router.c - route matching, captures, 404 and 405. */
#include <string.h>

#include "cu_main.h"
#include "router.h"

static enum ig_err h_a(struct http_req *r) { (void)r; return IG_OK; }
static enum ig_err h_b(struct http_req *r) { (void)r; return IG_OK; }
static enum ig_err h_c(struct http_req *r) { (void)r; return IG_OK; }

static const struct route tab[] = {
	{ "GET", "/api/health", h_a },
	{ "GET", "/api/images/jobs/{id}", h_b },
	{ "POST", "/api/images/jobs/{id}/cancel", h_c },
	{ "GET", "/api/images/jobs", h_a },
	{ "POST", "/api/images/generate", h_c },
};

static route_fn
match(struct arena *a, struct http_req *r, const char *method,
    const char *path, enum ig_err *e)
{
	memset(r, 0, sizeof(*r));
	r->arena = a;
	r->method = method;
	r->path = path;
	return router_match(tab, sizeof(tab) / sizeof(tab[0]), r, e);
}

static void
test_router_exact_and_captures(void)
{
	struct arena *a = arena_new(1024);
	struct http_req r;
	enum ig_err e;

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT(match(a, &r, "GET", "/api/health", &e) == h_a);
	CU_ASSERT_EQUAL(e, IG_OK);
	CU_ASSERT(match(a, &r, "GET", "/api/images/jobs/abc-123", &e) == h_b);
	CU_ASSERT_EQUAL(r.nparams, 1);
	CU_ASSERT_STRING_EQUAL(r.params[0], "abc-123");
	CU_ASSERT(match(a, &r, "POST", "/api/images/jobs/xyz/cancel", &e) == h_c);
	CU_ASSERT_STRING_EQUAL(r.params[0], "xyz");
	CU_ASSERT(match(a, &r, "HEAD", "/api/health", &e) == h_a);
	arena_free(a);
}

static void
test_router_not_found(void)
{
	struct arena *a = arena_new(1024);
	struct http_req r;
	enum ig_err e;

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NULL(match(a, &r, "GET", "/api/nope", &e));
	CU_ASSERT_EQUAL(e, IG_ENOTFOUND);
	CU_ASSERT_PTR_NULL(match(a, &r, "GET", "/api/health/", &e));
	CU_ASSERT_EQUAL(e, IG_ENOTFOUND);
	CU_ASSERT_PTR_NULL(match(a, &r, "GET", "/api/images/jobs//cancel", &e));
	CU_ASSERT_PTR_NULL(match(a, &r, "GET", "/api/images/jobs/", &e));
	CU_ASSERT_EQUAL(e, IG_ENOTFOUND);
	CU_ASSERT_PTR_NULL(match(a, &r, "GET", "/api/healthz", &e));
	CU_ASSERT_EQUAL(e, IG_ENOTFOUND);
	arena_free(a);
}

static void
test_router_method_not_allowed_sets_allow(void)
{
	struct arena *a = arena_new(1024);
	struct http_req r;
	enum ig_err e;

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NULL(match(a, &r, "DELETE", "/api/health", &e));
	CU_ASSERT_EQUAL(e, IG_EMETHOD);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r.headers);
	CU_ASSERT_STRING_EQUAL(r.headers->name, "Allow");
	CU_ASSERT_STRING_EQUAL(r.headers->value, "GET, HEAD");
	CU_ASSERT_PTR_NULL(match(a, &r, "GET", "/api/images/generate", &e));
	CU_ASSERT_EQUAL(e, IG_EMETHOD);
	CU_ASSERT_STRING_EQUAL(r.headers->value, "POST");
	arena_free(a);
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "exact_and_captures", test_router_exact_and_captures },
		{ "not_found", test_router_not_found },
		{ "method_not_allowed_sets_allow", test_router_method_not_allowed_sets_allow },
		CU_TEST_INFO_NULL
	};

	return cu_run("router", tests);
}
