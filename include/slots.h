/* slots.h - host-local executor slots (flock on slot files). */
#ifndef IG_SLOTS_H
#define IG_SLOTS_H

#include "cfg.h"

/* Makes or checks the slot directory (IMAGEGEN_SLOT_DIR, else var/run/slots
 * under the working directory): 0, or -1 (logged) when it cannot be made or
 * is not a directory of ours closed to group and others. */
int slot_check(const struct cfg *c);
/* Locks a free slot of c->max_running_jobs: returns its fd (the lock lives
 * as long as any copy of the fd, so it dies with its last holder), -2 when
 * every slot is taken, -1 on error (logged). */
int slot_acquire(const struct cfg *c);
/* How many slots are free now (a snapshot). */
int slot_free_count(const struct cfg *c);
/* How many slots are held now, read from /proc/locks rather than probed
 * (a probe would hold a slot for a moment and could turn an executor
 * away): a snapshot for /metrics; -1 when it cannot be read. A slot
 * file is matched by the device and inode stat() reports for it. */
int slot_used_count(const struct cfg *c);

#endif
