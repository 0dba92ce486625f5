/* pool_stats.h - the pool's figures for /metrics, in memory the master
 * shares with its children (pool_get_stats() in pool.h reads them). */
#ifndef IG_POOL_STATS_H
#define IG_POOL_STATS_H

#include "auth.h"

#define POOL_MAX_CHILDREN 512

/* The pool-wide counters only the master adds to. */
enum pool_stats_counter {
	POOL_STATS_RESTARTS,
	POOL_STATS_CRASHES,
	POOL_STATS_RELOADS
};

/*
 * Master, before the first fork: maps the shared figures. Can't fail:
 * without the mapping (logged) every process counts for itself.
 */
void pool_stats_init_main(void);
/* Master: a free slot, marked live and idle, for a child about to be
 * forked; -1 when there is no shared memory or no free slot. */
int pool_stats_slot_take(void);
/* Master: the slot's child is gone (or was never forked): neither live
 * nor busy. -1 is ignored. */
void pool_stats_slot_free(int slot);
/* Master: adds one to a counter (nothing without shared memory). */
void pool_stats_count(enum pool_stats_counter which);
/* Master: the number of workers it keeps, for pool_stats_wait_take(). */
void pool_stats_set_workers(int n);
/*
 * The places for held requests (Prefer: wait) of a pool of workers, with
 * IMAGEGEN_MAX_WAITING_REQUESTS max (< 0: half the workers): never more
 * than workers - 1, so one responder is always left for the others
 * (health checks, polls).
 */
long pool_stats_wait_places(long max, int workers);
/*
 * Child: takes one of pool_stats_wait_places(max, workers) places for a
 * request held open. 1 when taken (give it back with
 * pool_stats_wait_put(); should the child die first, the master gives it
 * back when it frees the child's slot), 0 when all are taken or there is
 * no master (no shared memory, or a process the master did not fork):
 * then no request waits, so none can hold every responder.
 */
int pool_stats_wait_take(long max);
/* Child: gives back the place pool_stats_wait_take() gave (nothing when
 * it holds none). */
void pool_stats_wait_put(void);
/* Child, after fork: the slot its busy flag lives in (-1: none). */
void pool_stats_init_child(int slot);
/* Child: marks itself busy (serving) or idle. */
void pool_stats_busy(int busy);
/* Child: adds its token counts since the last call (kept in *last) to
 * the pool's (nothing without a master). */
void pool_stats_publish(struct auth_stats *last);

#endif
