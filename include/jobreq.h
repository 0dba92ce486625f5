/* jobreq.h - validating a POST /api/images/generate body (jobreq.c). */
#ifndef IG_JOBREQ_H
#define IG_JOBREQ_H

#include <stddef.h>

#include "arena.h"
#include "err.h"

#define JOB_PROMPT_MAX 4000		/* characters */
#define JOB_IDEM_KEY_MAX 255
#define JOB_WEBHOOK_MAX 2048		/* bytes of a webhook URL */

struct storage;
struct urlpol;

/* A validated POST /api/images/generate body. Strings live in an arena;
 * optional ones are NULL when absent (branch_id too: the project's main
 * branch, which jobsdb_create() resolves). UUIDs are lower-cased. */
struct job_request {
	const char *project_id, *branch_id, *job_type, *prompt;
	int width, height;
	const char *capsule_id, *asset_id, *scene_id, *shot_id;
	const char *source_url, *mask_url;
	const char *idem_key;
	/* webhook: an https URL (checked by jobreq_check_webhook()), or NULL;
	 * webhook_events: its filter as a Postgres array literal ("{completed}",
	 * "{start,completed}"), NULL without a webhook */
	const char *webhook, *webhook_events;
	char fingerprint[65];		/* SHA-256 hex of the normalised request */
};

/*
 * Validates a request body (SPEC §3) into *out. header_key is the
 * Idempotency-Key header or NULL. sg (storage_urls() is enough) tells
 * the URLs of this service's bucket: source and mask URLs must be one.
 * IG_OK, or IG_EVALIDATION with *msg (arena) naming the offending field.
 */
enum ig_err jobreq_parse(struct arena *a, const char *body, size_t len,
    const char *header_key, struct storage *sg, struct job_request *out,
    const char **msg);
/*
 * The outbound URL policy (urlpolicy.h) applied to a webhook URL at
 * creation: https only (plain http only to an allowed host), no user
 * name or password, and a host given as an address must be public (or
 * allowed). A name is checked again, resolved, at every delivery. 0, or
 * -1 with why. Can't fail otherwise.
 */
int jobreq_check_webhook(const struct urlpol *p, const char *url, char *why,
    size_t whylen);
/* 1 when s (n bytes) is valid UTF-8 of 1..max characters (code points). */
int jobreq_utf8_ok(const char *s, size_t n, size_t max);

#endif
