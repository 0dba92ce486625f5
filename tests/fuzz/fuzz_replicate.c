/*
 * fuzz_replicate.c - what Replicate sends, over any body: a prediction
 * (as a poll, the recorded outcome or a webhook gives it) read as the
 * provider reads it (replicate_webhook_read, its status and error through
 * replicate_outcome, replicate_output_url), and an error answer
 * (replicate_parse_error, problem details).
 */
#include <stdint.h>
#include <string.h>

#include <json-c/json.h>

#include "harness.h"
#include "jsonr.h"
#include "prov_remote.h"

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
	static const long status[] = { 401, 404, 422, 429, 500 };
	const char *body = (const char *)data;
	struct json_object *pred;
	struct prov_result res;
	const char *id, *st;
	char pid[80];
	enum prov_err e;
	size_t i;
	int rc;

	rc = replicate_webhook_read(body, size, pid, sizeof(pid));
	if (rc > 1 || rc < -1 || (rc >= 0 && !replicate_id_ok(pid)))
		__builtin_trap();
	pred = jr_parse(body, size);
	id = jr_str(pred, "id");
	st = jr_str(pred, "status");
	if (pred != NULL && replicate_id_ok(id) && st != NULL) {
		memset(&res, 0, sizeof(res));
		e = replicate_outcome(st, jr_str(pred, "error"), id, &res);
		if (e == PROV_OK)
			(void)replicate_output_url(pred);
		if (strchr(res.message, '\n') != NULL)
			__builtin_trap();
	}
	json_object_put(pred);
	for (i = 0; i < sizeof(status) / sizeof(status[0]); i++) {
		memset(&res, 0, sizeof(res));
		e = replicate_parse_error(status[i], body, size, 1000, &res);
		if (e == PROV_OK || strchr(res.message, '\n') != NULL)
			__builtin_trap();
		prov_result_free(&res);
	}
	return 0;
}
