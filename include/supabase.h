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

#endif
