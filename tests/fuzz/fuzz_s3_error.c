/*
 * fuzz_s3_error.c - s3_parse_error(), the S3 backend's reader of an
 * error answer (<Error><Code>…</Code><Message>…</Message></Error>), over
 * any body under a few statuses, whole and cut at its bound.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "s3_endpoint.h"
#include "storage.h"

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
	static const long status[] = { 400, 403, 404, 409, 412, 500, 501, 503 };
	struct storage_answer a;
	char *body = fz_strndup(data, size);
	size_t i;

	for (i = 0; i < 2 * sizeof(status) / sizeof(status[0]); i++) {
		memset(&a, 0, sizeof(a));
		a.rep.body = body;
		a.rep.len = size;
		a.rep.over = i % 2;
		a.http = a.status = a.rep.status = status[i / 2];
		s3_parse_error(&a);
		if (memchr(a.code, '\0', sizeof(a.code)) == NULL ||
		    memchr(a.message, '\0', sizeof(a.message)) == NULL ||
		    strchr(a.code, '\n') != NULL || strchr(a.message, '\n') != NULL)
			__builtin_trap();
		if (a.fails_as != STOR_ERROR && a.fails_as != STOR_TEMPORARY)
			__builtin_trap();
		if (a.rep.over && (a.code[0] != '\0' || a.message[0] != '\0'))
			__builtin_trap();
	}
	a.rep.body = NULL;
	free(body);
	return 0;
}
