/* supabase.h - the Supabase Storage backend's own settings
 * (src/storage/supabase.c), declared here so the unit suites can give
 * them without cfg_load(). */
#ifndef IG_SUPABASE_H
#define IG_SUPABASE_H

/* Its conf (c->storage_conf when IMAGEGEN_STORAGE=supabase). The project
 * URL is also the token checks' (struct cfg's project_url, which the
 * backend uses); its row here makes it needed and lists it. */
struct supa_conf {
	char *url;		/* SUPABASE_URL, as read by its row */
	char *service_role_key;	/* SUPABASE_SERVICE_ROLE_KEY (secret) */
};

struct storage_answer;
/*
 * Reads a Storage error answer (a->http not 2xx, a->rep its reply,
 * NUL-terminated) into a: a->status the body's statusCode when it names
 * one (Storage answers most errors as HTTP 400 with the real status
 * inside), else the HTTP status; a->code ("error" or "code") and
 * a->message, one line each, "" when absent or when the body was cut at
 * its bound; a->fails_as by a->status (src/storage/supabase.c). Can't
 * fail.
 */
void supa_parse_error(struct storage_answer *a);

#endif
