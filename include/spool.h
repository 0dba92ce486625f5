/* spool.h - a generated image kept on the host's disk until it is stored. */
#ifndef IG_SPOOL_H
#define IG_SPOOL_H

#include <stddef.h>

#include "cfg.h"

/*
 * The spool directory is IMAGEGEN_SPOOL_DIR (default var/spool): one file
 * per job, named by its id, mode 0600 in a 0700 directory owned by the
 * executors' user. A requeued attempt finds the bytes its predecessor was
 * paid for there and uploads them instead of calling the provider again.
 */

/* 1 when id is a lower-case UUID (8-4-4-4-12 hex digits); 0 otherwise. */
int spool_id_ok(const char *id);
/*
 * Makes the directory (0700, parents too) when missing; refuses one that
 * is not a directory or not owned by us, and takes group and other access
 * away from ours. 0, or -1 (logged).
 */
int spool_prepare(const struct cfg *c);
/*
 * Writes the image of job_id durably: a temporary file, fsync, rename,
 * fsync of the directory. cost_usd < 0 means unknown. 0, or -1 (logged;
 * nothing is left under the final name).
 */
int spool_write(const struct cfg *c, const char *job_id,
    const unsigned char *data, size_t len, double cost_usd);
/*
 * Reads the spooled image of job_id (at most max bytes of image) into a
 * malloc'd *data (caller frees), *len and *cost_usd. 1 found, 0 none,
 * -1 unreadable or malformed (logged; the file is removed).
 */
int spool_read(const struct cfg *c, const char *job_id, size_t max,
    unsigned char **data, size_t *len, double *cost_usd);
enum { SPOOL_IMAGE = 1, SPOOL_PARTIAL = 2, SPOOL_ALL = 3 };
/* Removes job_id's spool files of the kinds in which (SPOOL_*); a missing
 * one is fine. Can't fail (a refusal is logged). */
void spool_remove(const struct cfg *c, const char *job_id, int which);

/* What spool_scan() found: a job id and whether it is a half-written
 * temporary file rather than a complete image (a job may have several of
 * those; spool_remove(SPOOL_PARTIAL) removes them all). */
struct spool_entry {
	char id[37];
	int partial;
};
/*
 * Up to max entries of the directory into out; how many, 0 when the
 * directory does not exist, -1 on error (logged). Names that are not
 * ours are skipped.
 */
int spool_scan(const struct cfg *c, struct spool_entry *out, int max);

#endif
