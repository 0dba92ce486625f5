/* pool.h - listening sockets (pool_sockets.c), the prefork master
 * (pool_master.c), the worker loop (pool_worker.c) and the pool's figures
 * (pool_stats.c). */
#ifndef IG_POOL_H
#define IG_POOL_H

#include <sys/types.h>

#include <fcgiapp.h>

#include "cfg.h"

struct arena;

struct pool_opts {
	int listen_fd;
	int workers;			/* 0: no master, serve in this process */
	long max_requests;		/* 0: unlimited */
	int drain_timeout;		/* seconds before TERM, then KILL */
	const char *env_file;		/* re-read on SIGHUP; may be NULL */
	const char *pid_file;		/* may be NULL */
};

/*
 * Opens a listening socket on a unix path (contains '/') or HOST:PORT.
 * A unix socket gets mode and, when uid is not -1, owner uid:gid; an
 * existing socket that still answers is refused, a stale one replaced.
 * Returns the fd, or -1 with a reason in err.
 */
int pool_listen(const char *spec, int mode, uid_t uid, gid_t gid, char *err,
    size_t errlen);
/* 0 when fd is a listening stream socket. */
int pool_check_listener(int fd);
/*
 * The socket systemd passed (sd_listen_fds(3), without libsystemd): 1
 * with *fd set (3, close-on-exec) when LISTEN_PID is our pid and
 * LISTEN_FDS is 1 and names a listening stream socket; 0 when nothing
 * was passed to this process; -1 with a reason in err otherwise (more
 * than one socket, not a listener, malformed). Unsets LISTEN_FDS,
 * LISTEN_PID and LISTEN_FDNAMES in every case, so no child inherits them.
 */
int pool_systemd_listener(int *fd, char *err, size_t errlen);
/* Tells systemd (Type=notify) we are ready: READY=1 to $NOTIFY_SOCKET, a
 * path or, starting with '@', an abstract name; then unsets it. Does
 * nothing without it; a failure is a logged warning. Can't fail. */
void pool_notify_ready(void);
/*
 * Runs the master: forks o->workers children serving o->listen_fd, keeps
 * them alive and handles HUP/TERM/INT/QUIT (docs/RUNNING.md). *c may be
 * replaced on reload. Returns the exit status for main().
 */
int pool_run_master(const struct pool_opts *o, struct cfg *c);
/* Figures for /metrics. Under a master (shared = 1) they are the whole
 * pool's, kept in memory the master shares with its children: live and
 * busy children, children replaced after exiting on their own (restarts;
 * crashes among them), reloads, and every child's token checks. Without a
 * master (spawn-fcgi -F, shared = 0) only this process's token checks. */
struct pool_stats {
	int shared;
	unsigned long workers, busy;
	unsigned long waiting;		/* requests held by Prefer: wait */
	unsigned long restarts, crashes, reloads;
	unsigned long tokens_verified, tokens_cached, tokens_refused;
};
/* Can't fail. */
void pool_get_stats(struct pool_stats *out);
/* Serves requests on fd until told to stop, max_requests is reached, or
 * (parent != 0) the parent is gone.
 * Returns the exit status. */
int pool_run_worker(int fd, const struct cfg *c, long max_requests,
    pid_t parent);
/* Answers one request read from f (pool_worker.c); the id of a job to
 * hand to an executor, or "", is copied to spawn. */
void pool_serve_one(FCGX_Request *f, struct arena *a, const struct cfg *c,
    char spawn[37]);
/*
 * Serves the one request of a CGI invocation (pool_cgi.c): the request in
 * the environment, its body on stdin, the answer on stdout; an executor
 * is started after the answer is out. Returns the exit status.
 */
int pool_run_cgi(const struct cfg *c);

#endif
