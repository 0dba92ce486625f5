/* prov_local.h - the local provider's own settings (src/providers/local.c),
 * declared here so the unit suites can give them without cfg_load(). */
#ifndef IG_PROV_LOCAL_H
#define IG_PROV_LOCAL_H

/* Its conf (c->provider_conf when IMAGEGEN_PROVIDER=local). */
struct prov_local_conf {
	char *model;		/* NANO_BANANA_MODEL, recorded on jobs */
	long delay_ms;		/* IMAGEGEN_LOCAL_DELAY_MS */
	long test_faults;	/* IMAGEGEN_TEST_FAULTS: 1 arms [[fail:]] */
};

#endif
