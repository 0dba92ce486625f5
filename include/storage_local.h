/* storage_local.h - the local storage backend's own settings
 * (src/storage/local.c), declared here so the unit suites can give them
 * without cfg_load(). */
#ifndef IG_STORAGE_LOCAL_H
#define IG_STORAGE_LOCAL_H

/* Its conf (c->storage_conf when IMAGEGEN_STORAGE=local). */
struct storage_local_conf {
	char *dir;		/* IMAGEGEN_STORAGE_DIR */
};

#endif
