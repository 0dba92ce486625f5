/*
 * fuzz_openai.c - the OpenAI images reply readers over any body:
 * openai_parse_reply() (a 2xx: data[0].b64_json decoded and checked, or
 * data[0].url handed back, usage and cost) and openai_parse_error();
 * and the same bytes as a Retry-After header (prov_retry_after_ms).
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

static void
check(enum prov_err e, struct prov_result *res)
{
	if (memchr(res->message, '\0', sizeof(res->message)) == NULL ||
	    strchr(res->message, '\n') != NULL)
		__builtin_trap();
	if (e != PROV_OK && res->data != NULL)
		__builtin_trap();
	prov_result_free(res);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long status[] = { 400, 401, 429, 500 };
	const char *body = (const char *)data;
	struct prov_result res;
	enum prov_err e;
	char *url = NULL;
	long ms;
	size_t i;

	memset(&res, 0, sizeof(res));
	e = openai_parse_reply(200, body, size, "gpt-image-1", 1024, 1536,
	    1 << 20, &url, &res);
	if (url != NULL && (e != PROV_OK || res.data != NULL))
		__builtin_trap();
	free(url);
	check(e, &res);
	memset(&res, 0, sizeof(res));
	e = openai_parse_reply(200, body, size, "dall-e-3", 1792, 1024, 16,
	    &url, &res);
	free(url);
	check(e, &res);
	url = fz_strndup(data, size);
	ms = prov_retry_after_ms(url, FZ_NOW);
	if (ms < 0 || ms > 86400000L)
		__builtin_trap();
	free(url);
	for (i = 0; i < sizeof(status) / sizeof(status[0]); i++) {
		memset(&res, 0, sizeof(res));
		e = openai_parse_error(status[i], body, size, 2000, &res);
		if (e == PROV_OK)
			__builtin_trap();
		check(e, &res);
	}
	return 0;
}
