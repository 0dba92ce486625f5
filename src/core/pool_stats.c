/* pool_stats.c - the pool's figures for /metrics, in memory the master
 * maps shared before it forks. */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"
#include "pool.h"
#include "pool_stats.h"

/* Counters every child adds to (so they survive the child and do not
 * depend on which child answers) and one busy/live flag per child. */
struct shared_stats {
	atomic_ulong restarts, crashes, reloads;
	atomic_ulong tokens_verified, tokens_cached, tokens_refused;
	atomic_int workers;			/* the pool's size, by the master */
	atomic_int waiting;			/* requests held (Prefer: wait) */
	atomic_int live[POOL_MAX_CHILDREN];	/* set by the master */
	atomic_int busy[POOL_MAX_CHILDREN];	/* set by the child, serving */
	/* 1 while the slot's child holds one of the waiting places: set by
	 * the child after it took the place, cleared by whoever gives it
	 * back (the child after the wait, or the master freeing the slot of
	 * a child that died holding it). */
	atomic_int waiter[POOL_MAX_CHILDREN];
};
static struct shared_stats *shared;	/* NULL: no master (spawn-fcgi -F) */
/* Shared between processes, the atomics must not hide a lock. */
_Static_assert(ATOMIC_LONG_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2,
    "pool statistics need lock-free atomics");
static int my_stat_slot = -1;		/* a child's index in live/busy */

void
pool_stats_init_main(void)
{
	if (shared != NULL)
		return;
	shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED) {
		log_warn("shared statistics: mmap: %s; /metrics counts per child",
		    strerror(errno));
		shared = NULL;
	}
}

int
pool_stats_slot_take(void)
{
	int i;

	for (i = 0; shared != NULL && i < POOL_MAX_CHILDREN; i++) {
		if (!atomic_load(&shared->live[i])) {
			atomic_store(&shared->busy[i], 0);
			atomic_store(&shared->waiter[i], 0);
			atomic_store(&shared->live[i], 1);
			return i;
		}
	}
	return -1;
}

void
pool_stats_slot_free(int slot)
{
	if (shared == NULL || slot < 0)
		return;
	atomic_store(&shared->busy[slot], 0);
	/* A child killed (or crashed) while it held a request gives its
	 * place back here, or the place would be lost for good. */
	if (atomic_exchange(&shared->waiter[slot], 0))
		atomic_fetch_sub(&shared->waiting, 1);
	atomic_store(&shared->live[slot], 0);
}

void
pool_stats_count(enum pool_stats_counter which)
{
	if (shared == NULL)
		return;
	switch (which) {
	case POOL_STATS_RESTARTS:
		atomic_fetch_add(&shared->restarts, 1);
		break;
	case POOL_STATS_CRASHES:
		atomic_fetch_add(&shared->crashes, 1);
		break;
	case POOL_STATS_RELOADS:
		atomic_fetch_add(&shared->reloads, 1);
		break;
	}
}

void
pool_stats_set_workers(int n)
{
	if (shared != NULL)
		atomic_store(&shared->workers, n);
}

long
pool_stats_wait_places(long max, int workers)
{
	long cap = workers > 1 ? workers - 1 : 0;

	if (max < 0)
		max = workers / 2;
	return max < cap ? max : cap;
}

int
pool_stats_wait_take(long max)
{
	int n;

	if (shared == NULL || my_stat_slot < 0 ||
	    atomic_load(&shared->waiter[my_stat_slot]))
		return 0;
	max = pool_stats_wait_places(max, atomic_load(&shared->workers));
	n = atomic_load(&shared->waiting);
	do {
		if (n >= max)
			return 0;
	} while (!atomic_compare_exchange_weak(&shared->waiting, &n, n + 1));
	/* Right after the compare-and-swap (nothing between them can fail),
	 * so the master knows to give the place back should this child die
	 * holding it (pool_stats_slot_free). */
	atomic_store(&shared->waiter[my_stat_slot], 1);
	return 1;
}

void
pool_stats_wait_put(void)
{
	if (shared != NULL && my_stat_slot >= 0 &&
	    atomic_exchange(&shared->waiter[my_stat_slot], 0))
		atomic_fetch_sub(&shared->waiting, 1);
}

void
pool_stats_init_child(int slot)
{
	my_stat_slot = slot;
}

void
pool_stats_busy(int busy)
{
	if (shared != NULL && my_stat_slot >= 0)
		atomic_store_explicit(&shared->busy[my_stat_slot], busy,
		    memory_order_relaxed);
}

void
pool_stats_publish(struct auth_stats *last)
{
	struct auth_stats now;

	if (shared == NULL)
		return;
	auth_get_stats(&now);
	atomic_fetch_add_explicit(&shared->tokens_verified,
	    now.verified - last->verified, memory_order_relaxed);
	atomic_fetch_add_explicit(&shared->tokens_cached,
	    now.cache_hits - last->cache_hits, memory_order_relaxed);
	atomic_fetch_add_explicit(&shared->tokens_refused,
	    now.refused - last->refused, memory_order_relaxed);
	*last = now;
}

void
pool_get_stats(struct pool_stats *out)
{
	struct auth_stats as;
	int i;

	memset(out, 0, sizeof(*out));
	if (shared == NULL) {
		auth_get_stats(&as);
		out->tokens_verified = as.verified;
		out->tokens_cached = as.cache_hits;
		out->tokens_refused = as.refused;
		return;
	}
	out->shared = 1;
	for (i = 0; i < POOL_MAX_CHILDREN; i++) {
		if (!atomic_load_explicit(&shared->live[i], memory_order_relaxed))
			continue;
		out->workers++;
		if (atomic_load_explicit(&shared->busy[i], memory_order_relaxed))
			out->busy++;
	}
	out->waiting = (unsigned long)atomic_load(&shared->waiting);
	out->restarts = atomic_load(&shared->restarts);
	out->crashes = atomic_load(&shared->crashes);
	out->reloads = atomic_load(&shared->reloads);
	out->tokens_verified = atomic_load(&shared->tokens_verified);
	out->tokens_cached = atomic_load(&shared->tokens_cached);
	out->tokens_refused = atomic_load(&shared->tokens_refused);
}
