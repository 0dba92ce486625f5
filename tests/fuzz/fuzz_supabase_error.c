/*
 * fuzz_supabase_error.c - supa_parse_error(), the Supabase Storage
 * backend's reader of an error answer ({"statusCode":"409","error":…,
 * "message":…}: the status that decides may be the body's), over any
 * body under a few HTTP statuses, whole and cut at its bound.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "storage.h"
#include "supabase.h"

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
	static const long status[] = { 400, 401, 404, 413, 500, 544 };
	struct storage_answer a;
	char *body = fz_strndup(data, size);
	size_t i;

	for (i = 0; i < 2 * sizeof(status) / sizeof(status[0]); i++) {
		memset(&a, 0, sizeof(a));
		a.rep.body = body;
		a.rep.len = size;
		a.rep.over = i % 2;
		a.http = a.status = a.rep.status = status[i / 2];
		supa_parse_error(&a);
		if (memchr(a.code, '\0', sizeof(a.code)) == NULL ||
		    memchr(a.message, '\0', sizeof(a.message)) == NULL ||
		    strchr(a.code, '\n') != NULL || strchr(a.message, '\n') != NULL)
			__builtin_trap();
		if (a.status < 100 || a.status > 599 ||
		    (a.fails_as != STOR_ERROR && a.fails_as != STOR_TEMPORARY))
			__builtin_trap();
		if (a.rep.over && a.status != a.http)
			__builtin_trap();
	}
	free(body);
	return 0;
}
