/* retry.c - the executor's retry policy (see retry.h). */
#include <openssl/rand.h>

#include "retry.h"

long long
retry_doubled(long long ms, long long max)
{
	return ms * 2 > max ? max : ms * 2;
}

long long
retry_jittered(long long ms)
{
	unsigned char rnd;

	return RAND_bytes(&rnd, 1) == 1 ? ms + ms * rnd / 512 : ms;
}

int
retry_provider_again(enum prov_err e, int calls)
{
	return e != PROV_OK && prov_err_retryable(e) && calls < RETRY_GEN_MAX_TRIES;
}

long long
retry_provider_wait(long retry_after_ms, long long backoff)
{
	if (retry_after_ms > 0)
		return retry_after_ms;
	return retry_jittered(backoff);
}

int
retry_passes_deadline(long long now_ms, long long wait_ms, long long deadline_ms)
{
	return deadline_ms != 0 && now_ms + wait_ms >= deadline_ms;
}

long long
retry_fit_wait(long long now_ms, long long wait_ms, long long deadline_ms)
{
	long long left;

	if (!retry_passes_deadline(now_ms, wait_ms, deadline_ms))
		return wait_ms;
	left = deadline_ms - now_ms - RETRY_LAST_CALL_MS;
	return left >= RETRY_PUT_BACKOFF_MS ? left : -1;
}

int
retry_at_deadline(long long now_ms, long long deadline_ms)
{
	return now_ms >= deadline_ms - RETRY_DEADLINE_SLACK_MS;
}

int
retry_attempts_left(int attempts, int max_attempts)
{
	return attempts < max_attempts;
}
