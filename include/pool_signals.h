/* pool_signals.h - the pool's signal flags and self-pipe, for the master
 * and the worker loops. */
#ifndef IG_POOL_SIGNALS_H
#define IG_POOL_SIGNALS_H

#include <signal.h>

/* Set by the handler, read (and cleared) by the loops. */
extern volatile sig_atomic_t pool_sig_stop;	/* TERM, INT or QUIT; 0: none */
extern volatile sig_atomic_t pool_sig_hup;
extern volatile sig_atomic_t pool_sig_chld;

/*
 * Clears the flags and makes this process a fresh non-blocking self-pipe
 * (a child must not share its parent's). 0, or -1 with errno set.
 */
int pool_sig_open(void);
/* Closes this process's self-pipe (a forked child that will not use the
 * parent's). Can't fail. */
void pool_sig_close(void);
/* The self-pipe's read end, to poll for wake-ups; -1 when none. */
int pool_sig_fd(void);
/* Reads away the pending wake-ups. Can't fail. */
void pool_sig_drain(void);
/*
 * Has signo set its flag and wake the self-pipe. Interrupted calls are
 * restarted (SA_RESTART); SIGCHLD is not raised for stopped children.
 */
void pool_sig_catch(int signo);

#endif
