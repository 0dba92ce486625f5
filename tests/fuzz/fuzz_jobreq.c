/*
 * fuzz_jobreq.c - jobreq_parse(), the POST /api/images/generate body
 * validator, over any body, under the URL forms of each storage backend
 * (local, supabase, s3 with a public base URL); with an Idempotency-Key
 * header and without. An accepted webhook URL then goes through
 * jobreq_check_webhook() (numeric hosts only: no resolver is asked).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "harness.h"
#include "jobreq.h"
#include "s3_endpoint.h"
#include "storage.h"
#include "storage_local.h"
#include "supabase.h"
#include "urlpolicy.h"

static struct storage stores[3];
static struct urlpol allow;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static struct storage_local_conf lc = { "/nonexistent" };
	static struct supa_conf sc = { "https://ref.supabase.co", "key" };
	static struct s3_conf s3 = { "https://s3.us-east-1.amazonaws.com",
		"us-east-1", "AKID", "secret", NULL };
	struct cfg c[3];
	char err[256];
	int i;

	(void)argc;
	(void)argv;
	fz_quiet();
	memset(c, 0, sizeof(c));
	c[0].storage = "local";
	c[0].storage_conf = &lc;
	c[0].public_base_url = "/storage/v1/object/public";
	c[1].storage = "supabase";
	c[1].storage_conf = &sc;
	c[1].project_url = "https://ref.supabase.co";
	c[1].public_base_url = "https://ref.supabase.co/storage/v1/object/public";
	c[2].storage = "s3";
	c[2].storage_conf = &s3;
	c[2].public_base_url = "https://cdn.example.com/img";
	c[2].public_base_url_set = 1;
	for (i = 0; i < 3; i++) {
		c[i].bucket = "asset-images";
		c[i].provider_timeout_ms = 5000;
		if (storage_urls(&stores[i], &c[i], err, sizeof(err)) != 0)
			abort();
	}
	if (urlpol_parse(&allow, "127.0.0.1", err, sizeof(err)) != 0)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct job_request jr;
	struct arena *a;
	const char *msg;
	char why[256];
	enum ig_err e;
	size_t i;

	a = arena_new(4096);
	if (a == NULL)
		abort();
	for (i = 0; i < 4; i++) {
		msg = NULL;
		e = jobreq_parse(a, (const char *)data, size,
		    i == 3 ? "idem-key-1" : NULL, i < 3 ? &stores[i] : NULL, &jr,
		    &msg);
		if (e == IG_EVALIDATION && msg == NULL)
			__builtin_trap();
		if (e != IG_OK)
			continue;
		if (jr.project_id == NULL || jr.job_type == NULL ||
		    jr.prompt == NULL || strlen(jr.fingerprint) != 64)
			__builtin_trap();
		if (jr.webhook != NULL)
			(void)jobreq_check_webhook(&allow, jr.webhook, why,
			    sizeof(why));
	}
	(void)jobreq_utf8_ok((const char *)data, size, JOB_PROMPT_MAX);
	arena_free(a);
	return 0;
}
