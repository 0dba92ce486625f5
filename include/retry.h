/* retry.h - the executor's retry policy: how often, how long to wait, and
 * whether the deadline or the attempts allow another try. Pure functions. */
#ifndef IG_RETRY_H
#define IG_RETRY_H

#include "provider.h"

enum {
	RETRY_GEN_MAX_TRIES = 4,	/* provider calls per job attempt */
	RETRY_GEN_BACKOFF_MS = 500,	/* first wait, doubled each retry … */
	RETRY_GEN_BACKOFF_MAX_MS = 8000,	/* … up to this */
	RETRY_PUT_BACKOFF_MS = 250,	/* storage: first wait, doubled … */
	RETRY_PUT_BACKOFF_MAX_MS = 4000,	/* … up to this, until the deadline */
	RETRY_DB_BACKOFF_MS = 200,	/* a lost database: first wait, doubled … */
	RETRY_DB_BACKOFF_MAX_MS = 2000,	/* … up to this, until the deadline */
	RETRY_PERSIST_TRIES = 3,	/* a refused (not lost) completing write */
	RETRY_DEADLINE_SLACK_MS = 100,	/* a call that ended this near it hit it */
	RETRY_DEADLINE_GRACE_S = 10,	/* past the deadline, the executor is dead */
	RETRY_RELOCK_WAIT_MS = 50,	/* a job's lock asked for again after a reconnect */
	RETRY_LAST_CALL_MS = 500	/* left for the last storage call before the deadline */
};

/* ms doubled, up to max: the next wait of a capped exponential backoff.
 * Can't fail. */
long long retry_doubled(long long ms, long long max);
/* ms plus up to 50% of it, at random, so that waiters do not come back
 * all at once; ms itself when no random byte can be had. */
long long retry_jittered(long long ms);
/* 1 when a provider call that ended in e, the calls-th of this attempt,
 * is worth another: only RATE_LIMIT, TEMPORARY and TIMEOUT, at most
 * RETRY_GEN_MAX_TRIES calls. */
int retry_provider_again(enum prov_err e, int calls);
/* The wait before the next provider call: what the provider asked for
 * (retry_after_ms > 0), exactly; else backoff, jittered. */
long long retry_provider_wait(long retry_after_ms, long long backoff);
/* 1 when a wait of wait_ms from now_ms would reach deadline_ms
 * (CLOCK_MONOTONIC ms; 0 is no deadline): the wait is not taken. */
int retry_passes_deadline(long long now_ms, long long wait_ms, long long deadline_ms);
/* The wait before the next storage call: wait_ms, or when that would
 * pass deadline_ms (0: none) a shorter one that leaves RETRY_LAST_CALL_MS
 * for one last call; -1 when not even that fits (give up now). So a
 * backoff grown large still tries again near the deadline instead of
 * giving up halfway to it. */
long long retry_fit_wait(long long now_ms, long long wait_ms, long long deadline_ms);
/* 1 when now_ms is so near deadline_ms that a call ending now hit it. */
int retry_at_deadline(long long now_ms, long long deadline_ms);
/* 1 while a job that ran attempts of max_attempts may be requeued. */
int retry_attempts_left(int attempts, int max_attempts);

#endif
