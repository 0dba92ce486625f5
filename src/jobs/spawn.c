/* spawn.c - the executor process: the double fork, detaching from the
 * responder, the slot's descriptor, its signals and its log context. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "db.h"
#include "exec.h"
#include "exec_int.h"
#include "log.h"
#include "slots.h"

#define EXEC_SLEEP_STEP_MS 100	/* a wait looks at the stop flag this often */

/* Set by SIGTERM, SIGINT or SIGQUIT in an executor: stop at the next stage
 * boundary, give the job back to the queue, exit. */
static volatile sig_atomic_t exec_stop;

static void
on_stop(int sig)
{
	(void)sig;
	exec_stop = 1;
}

int
exec_stopping(void)
{
	return exec_stop != 0;
}

/* The grandchild's own signals: handlers of its own, nothing of the
 * responder's (which blocks its stop signals outside ppoll() and would
 * leave them pending here forever), and an empty mask. */
static void
executor_signals(void)
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGALRM, SIG_DFL);	/* the hard stop past the deadline */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

void
exec_sleep_ms(long long ms)
{
	long long end = clock_mono_ms() + ms, left;

	for (;;) {
		left = end - clock_mono_ms();
		if (exec_stop || left <= 0)
			break;
		clock_sleep_ms(left < EXEC_SLEEP_STEP_MS ? left : EXEC_SLEEP_STEP_MS);
	}
}

void
exec_log_job(const char *job_id, const char *request_id)
{
	log_set_job_id(job_id);
	if (job_id == NULL)
		log_set_request_id(NULL);
	else
		log_set_request_id(request_id != NULL && request_id[0] != '\0' ?
		    request_id : "-");
}

/* In the grandchild: nothing of the responder survives but stderr (the
 * log) and the slot. fd 0 may be the listening socket, others the request
 * socket and the parent's database socket: all closed, never used. The
 * slot's descriptor (3), or -1. */
static int
detach(int slot_fd)
{
	int devnull;

	if (setsid() < 0)
		return -1;
	if (slot_fd != 3) {
		if (dup2(slot_fd, 3) < 0)
			return -1;
	}
	if (close_range(4, ~0U, 0) != 0)
		return -1;
	devnull = open("/dev/null", O_RDWR);
	if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0)
		return -1;
	if (devnull > 3)
		close(devnull);
	return 3;
}

int
exec_spawn(const struct cfg *c, const char *job_id)
{
	char id[37] = "";
	sigset_t all, old;
	pid_t pid, grandchild, w;
	int slot, st, fd;

	slot = slot_acquire(c);
	if (slot == -2) {
		log_debug("no free executor slot; job %s stays queued",
		    job_id != NULL ? job_id : "(next)");
		return 0;
	}
	if (slot < 0)
		return -1;
	if (job_id != NULL)
		snprintf(id, sizeof(id), "%s", job_id);
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid = fork();
	if (pid == 0) {
		/* Test-only: the second fork failing, as under RLIMIT_NPROC. */
		if (c->test_fail_second_fork) {
			grandchild = -1;
			errno = EAGAIN;
		} else {
			grandchild = fork();
		}
		if (grandchild < 0) {
			log_error("executor for job %s not started: fork: %s",
			    id[0] != '\0' ? id : "(next)", strerror(errno));
			_exit(1);	/* the slot dies with us; the job stays queued */
		}
		if (grandchild > 0)
			_exit(0);	/* the middle child: reaped below */
		executor_signals();
		db_forget();
		prctl(PR_SET_NAME, "ig-executor");	/* /proc/PID/comm, for operators */
		fd = detach(slot);
		if (fd < 0) {
			log_error("cannot detach the executor: %s", strerror(errno));
			_exit(1);
		}
		_exit(exec_run(c, id[0] != '\0' ? id : NULL, fd));
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(slot);	/* the grandchild holds the lock now */
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		return -1;
	}
	do {
		w = waitpid(pid, &st, 0);
	} while (w < 0 && errno == EINTR);
	if (w == pid && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
		return -1;	/* logged by the middle child; the sweeper starts it */
	return 1;
}
