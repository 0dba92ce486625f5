/* test_arena.c - the per-request arena. */
#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "cu_main.h"

static void
test_arena_alignment_and_growth(void)
{
	struct arena *a = arena_new(1024);
	char *p, *q;
	int i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	for (i = 0; i < 200; i++) {
		p = arena_alloc(a, (size_t)i + 1);
		CU_ASSERT_PTR_NOT_NULL_FATAL(p);
		CU_ASSERT_EQUAL((uintptr_t)p % 16, 0);
		memset(p, 0xAB, (size_t)i + 1);
	}
	/* Larger than a chunk: gets its own. */
	q = arena_alloc(a, 100000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	memset(q, 1, 100000);
	CU_ASSERT(arena_used(a) >= 100000);
	arena_free(a);
}

static void
test_arena_reset_reuses(void)
{
	struct arena *a = arena_new(4096);
	void *first, *again;

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	first = arena_alloc(a, 32);
	arena_alloc(a, 50000);
	arena_reset(a);
	CU_ASSERT_EQUAL(arena_used(a), 0);
	again = arena_alloc(a, 32);
	CU_ASSERT_PTR_EQUAL(first, again);
	arena_free(a);
}

static void
test_arena_strings(void)
{
	struct arena *a = arena_new(64);
	char *s;

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_STRING_EQUAL(arena_strdup(a, "hello"), "hello");
	CU_ASSERT_STRING_EQUAL(arena_strndup(a, "hello", 3), "hel");
	CU_ASSERT_PTR_NULL(arena_strdup(a, NULL));
	s = arena_printf(a, "%s-%d-%05.1f", "x", 42, 3.14159);
	CU_ASSERT_STRING_EQUAL(s, "x-42-003.1");
	arena_free(a);
}

static void
test_arena_overflow_refused(void)
{
	struct arena *a = arena_new(64);

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NULL(arena_alloc(a, SIZE_MAX));
	CU_ASSERT_PTR_NULL(arena_calloc(a, SIZE_MAX / 2, 4));
	CU_ASSERT_PTR_NOT_NULL(arena_calloc(a, 10, 10));
	arena_free(a);
	arena_free(NULL);
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "alignment_and_growth", test_arena_alignment_and_growth },
		{ "reset_reuses", test_arena_reset_reuses },
		{ "strings", test_arena_strings },
		{ "overflow_refused", test_arena_overflow_refused },
		CU_TEST_INFO_NULL
	};

	return cu_run("arena", tests);
}
