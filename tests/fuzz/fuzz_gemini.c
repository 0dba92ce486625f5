/*
 * fuzz_gemini.c - the Gemini generateContent reply readers over any
 * body: gemini_parse_reply() (a 200: parts, inlineData images decoded
 * and checked, safety reasons, usage and cost) for two models, and
 * gemini_parse_error() (any other status: the error object, RetryInfo);
 * and the same bytes as a protobuf Duration (prov_duration_ms).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "prov_remote.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_quiet();
	return 0;
}

/* What every reader leaves: a one-line message, an image only on OK. */
static void
check(enum prov_err e, struct prov_result *res)
{
	if (memchr(res->message, '\0', sizeof(res->message)) == NULL ||
	    strchr(res->message, '\n') != NULL)
		__builtin_trap();
	if (e != PROV_OK && res->data != NULL)
		__builtin_trap();
	if (res->retry_after_ms < 0)
		__builtin_trap();
	prov_result_free(res);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long status[] = { 400, 429, 500, 503 };
	const char *body = (const char *)data;
	struct prov_result res;
	enum prov_err e;
	size_t i;
	char *dur;
	long ms;

	memset(&res, 0, sizeof(res));
	e = gemini_parse_reply(body, size, "gemini-2.5-flash-image", 1024, 1024,
	    1 << 20, &res);
	check(e, &res);
	memset(&res, 0, sizeof(res));
	e = gemini_parse_reply(body, size, "gemini-3-pro-image-preview", 4096,
	    2304, 64, &res);
	check(e, &res);
	dur = fz_strndup(data, size);
	ms = prov_duration_ms(dur);
	if (ms < -1 || ms > 86400000L)
		__builtin_trap();
	free(dur);
	for (i = 0; i < sizeof(status) / sizeof(status[0]); i++) {
		memset(&res, 0, sizeof(res));
		e = gemini_parse_error(status[i], body, size, 1500, &res);
		if (e == PROV_OK)
			__builtin_trap();
		check(e, &res);
	}
	return 0;
}
