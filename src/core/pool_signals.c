/* pool_signals.c - signal handlers that only set a flag and write one
 * byte to a self-pipe; the master's and the worker's loops do the work. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "pool_signals.h"

volatile sig_atomic_t pool_sig_stop;
volatile sig_atomic_t pool_sig_hup;
volatile sig_atomic_t pool_sig_chld;
static int pool_sig_pipe[2] = { -1, -1 };

static void
on_signal(int signo)
{
	int saved = errno;

	if (signo == SIGCHLD)
		pool_sig_chld = 1;
	else if (signo == SIGHUP)
		pool_sig_hup = 1;
	else
		pool_sig_stop = signo;
	if (pool_sig_pipe[1] >= 0 && write(pool_sig_pipe[1], "", 1) < 0) {
		/* The pipe is full: a wake-up is already pending. */
	}
	errno = saved;
}

void
pool_sig_close(void)
{
	if (pool_sig_pipe[0] >= 0)
		close(pool_sig_pipe[0]);
	if (pool_sig_pipe[1] >= 0)
		close(pool_sig_pipe[1]);
	pool_sig_pipe[0] = pool_sig_pipe[1] = -1;
}

int
pool_sig_open(void)
{
	pool_sig_stop = pool_sig_hup = pool_sig_chld = 0;
	pool_sig_close();
	return pipe2(pool_sig_pipe, O_NONBLOCK | O_CLOEXEC);
}

int
pool_sig_fd(void)
{
	return pool_sig_pipe[0];
}

void
pool_sig_drain(void)
{
	char buf[64];

	while (read(pool_sig_pipe[0], buf, sizeof(buf)) > 0)
		;
}

void
pool_sig_catch(int signo)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* Restart interrupted calls: a request in progress is never cut by
	 * a signal; the loops wake through the self-pipe instead. */
	sa.sa_flags = SA_RESTART;
	if (signo == SIGCHLD)
		sa.sa_flags |= SA_NOCLDSTOP;
	sigaction(signo, &sa, NULL);
}
