/* clock.h - the monotonic clock in milliseconds, and sleeping on it. */
#ifndef IG_CLOCK_H
#define IG_CLOCK_H

/* CLOCK_MONOTONIC in milliseconds. Can't fail. */
long long clock_mono_ms(void);
/* Sleeps ms milliseconds, resuming after signals. */
void clock_sleep_ms(long long ms);

#endif
