/* pool.c - listening sockets, the prefork master, and the worker loop. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "app.h"
#include "arena.h"
#include "auth.h"
#include "clock.h"
#include "db.h"
#include "exec.h"
#include "http.h"
#include "log.h"
#include "pool.h"
#include "slots.h"

#define POOL_MAX_CHILDREN 512
#define STORM_EXITS 5		/* abnormal exits … */
#define STORM_WINDOW_MS 10000	/* … within this window throttle respawns */
#define STORM_BACKOFF_MAX_MS 5000
#define KILL_AFTER_TERM_MS 1000

/* Pool-wide figures for /metrics, in memory the master maps shared before
 * it forks: counters every child adds to (so they survive the child and do
 * not depend on which child answers) and one busy/live flag per child. */
struct shared_stats {
	atomic_ulong restarts, crashes, reloads;
	atomic_ulong tokens_verified, tokens_cached, tokens_refused;
	atomic_int live[POOL_MAX_CHILDREN];	/* set by the master */
	atomic_int busy[POOL_MAX_CHILDREN];	/* set by the child, serving */
};
static struct shared_stats *shared;	/* NULL: no master (spawn-fcgi -F) */
/* Shared between processes, the atomics must not hide a lock. */
_Static_assert(ATOMIC_LONG_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2,
    "pool statistics need lock-free atomics");
static int my_stat_slot = -1;		/* a child's index in live/busy */

/* Set by the handlers, read by the loops. */
static volatile sig_atomic_t got_stop;
static volatile sig_atomic_t got_hup;
static volatile sig_atomic_t got_chld;
static int self_pipe[2] = { -1, -1 };

static void
on_signal(int signo)
{
	int saved = errno;

	if (signo == SIGCHLD)
		got_chld = 1;
	else if (signo == SIGHUP)
		got_hup = 1;
	else
		got_stop = signo;
	if (self_pipe[1] >= 0 && write(self_pipe[1], "", 1) < 0) {
		/* The pipe is full: a wake-up is already pending. */
	}
	errno = saved;
}

static int
set_flags(int fd, int fl)
{
	int cur = fcntl(fd, F_GETFL);

	return cur < 0 ? -1 : fcntl(fd, F_SETFL, cur | fl);
}

/* A fresh self-pipe for this process (a child must not share its
 * parent's). 0 on success. */
static int
self_pipe_open(void)
{
	if (self_pipe[0] >= 0)
		close(self_pipe[0]);
	if (self_pipe[1] >= 0)
		close(self_pipe[1]);
	self_pipe[0] = self_pipe[1] = -1;
	if (pipe(self_pipe) != 0)
		return -1;
	if (set_flags(self_pipe[0], O_NONBLOCK) != 0 ||
	    set_flags(self_pipe[1], O_NONBLOCK) != 0)
		return -1;
	fcntl(self_pipe[0], F_SETFD, FD_CLOEXEC);
	fcntl(self_pipe[1], F_SETFD, FD_CLOEXEC);
	return 0;
}

static void
self_pipe_drain(void)
{
	char buf[64];

	while (read(self_pipe[0], buf, sizeof(buf)) > 0)
		;
}

static void
handle(int signo, void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	/* Restart interrupted calls: a request in progress is never cut by
	 * a signal; the loops wake through the self-pipe instead. */
	sa.sa_flags = SA_RESTART;
	if (signo == SIGCHLD)
		sa.sa_flags |= SA_NOCLDSTOP;
	sigaction(signo, &sa, NULL);
}

/* ---- listening sockets ------------------------------------------------ */

static int
listen_unix(const char *path, int mode, uid_t uid, gid_t gid, char *err,
    size_t errlen)
{
	struct sockaddr_un sun;
	struct stat st;
	mode_t old;
	int fd = -1, probe = -1, rc = -1;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "--listen: socket path longer than %zu bytes",
		    sizeof(sun.sun_path) - 1);
		goto out;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "--listen: %s exists and is not a socket",
			    path);
			goto out;
		}
		probe = socket(AF_UNIX, SOCK_STREAM, 0);
		if (probe >= 0 &&
		    connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			snprintf(err, errlen, "--listen: %s is in use by a running server",
			    path);
			goto out;
		}
		unlink(path);	/* stale, from a process that died */
	}
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto out;
	}
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		umask(old);
		snprintf(err, errlen, "--listen: bind %s: %s", path, strerror(errno));
		goto out;
	}
	umask(old);
	if (uid != (uid_t)-1 && chown(path, uid, gid) != 0) {
		snprintf(err, errlen, "--listen: chown %s: %s", path, strerror(errno));
		goto out;
	}
	if (chmod(path, (mode_t)mode) != 0) {
		snprintf(err, errlen, "--listen: chmod %s: %s", path, strerror(errno));
		goto out;
	}
	if (listen(fd, 1024) != 0) {
		snprintf(err, errlen, "--listen: listen %s: %s", path, strerror(errno));
		goto out;
	}
	rc = fd;
	fd = -1;
out:
	if (probe >= 0)
		close(probe);
	if (fd >= 0)
		close(fd);
	return rc;
}

static int
listen_tcp(const char *spec, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	char host[256];
	const char *colon, *port;
	size_t hlen;
	int fd = -1, one = 1, gai, rc = -1;

	colon = strrchr(spec, ':');
	if (colon == NULL || colon[1] == '\0') {
		snprintf(err, errlen, "--listen: expected a socket path or HOST:PORT, got '%.80s'",
		    spec);
		goto out;
	}
	port = colon + 1;
	hlen = (size_t)(colon - spec);
	if (hlen >= 2 && spec[0] == '[' && spec[hlen - 1] == ']') {
		spec++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host)) {
		snprintf(err, errlen, "--listen: host name too long");
		goto out;
	}
	memcpy(host, spec, hlen);
	host[hlen] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	gai = getaddrinfo(hlen ? host : NULL, port, &hints, &res);
	if (gai != 0) {
		snprintf(err, errlen, "--listen: %s: %s", spec, gai_strerror(gai));
		goto out;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, 1024) == 0)
			break;
		snprintf(err, errlen, "--listen: bind %s: %s", spec, strerror(errno));
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		goto out;
	rc = fd;
out:
	if (res != NULL)
		freeaddrinfo(res);
	return rc;
}

int
pool_listen(const char *spec, int mode, uid_t uid, gid_t gid, char *err,
    size_t errlen)
{
	if (strchr(spec, '/') != NULL)
		return listen_unix(spec, mode, uid, gid, err, errlen);
	return listen_tcp(spec, err, errlen);
}

int
pool_check_listener(int fd)
{
	struct stat st;
	int acc = 0;
	socklen_t len = sizeof(acc);

	if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
		return -1;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) != 0 || !acc)
		return -1;
	return 0;
}

/* ---- the worker ------------------------------------------------------- */

/* Adds this process's token counts since the last call to the shared
 * counters (nothing without a master). */
static void
publish_stats(struct auth_stats *last)
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

static void
set_busy(int busy)
{
	if (shared != NULL && my_stat_slot >= 0)
		atomic_store_explicit(&shared->busy[my_stat_slot], busy,
		    memory_order_relaxed);
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
	out->restarts = atomic_load(&shared->restarts);
	out->crashes = atomic_load(&shared->crashes);
	out->reloads = atomic_load(&shared->reloads);
	out->tokens_verified = atomic_load(&shared->tokens_verified);
	out->tokens_cached = atomic_load(&shared->tokens_cached);
	out->tokens_refused = atomic_load(&shared->tokens_refused);
}

/* Answers one request; a job to hand to an executor is copied to spawn. */
static void
serve_one(FCGX_Request *f, struct arena *a, const struct cfg *c, char spawn[37])
{
	struct http_req r;
	enum ig_err e;
	long long t0 = clock_mono_ms();

	e = http_req_read(&r, f, a, c);
	log_set_request_id(r.request_id);
	if (e != IG_OK)
		http_send_error(&r, e, r.err_msg);
	else
		app_handle(&r);
	log_debug("%s %.200s %d %lldms", r.method, r.path, r.status,
	    clock_mono_ms() - t0);
	memcpy(spawn, r.spawn_job, 37);
	log_set_request_id(NULL);
}

int
pool_run_worker(int fd, const struct cfg *c, long max_requests, pid_t parent)
{
	FCGX_Request req;
	struct pollfd pfd[2];
	struct auth_stats published = { 0 };
	struct timespec tick = { 1, 0 };
	sigset_t stops, waiting;
	struct arena *a = NULL;
	char spawn[37];
	long served = 0;
	int rc = 1, n, req_ready = 0;

	got_stop = got_hup = got_chld = 0;
	if (self_pipe_open() != 0) {
		log_error("self-pipe: %s", strerror(errno));
		goto out;
	}
	handle(SIGTERM, on_signal);
	handle(SIGQUIT, on_signal);
	handle(SIGINT, on_signal);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	/* Stop signals are delivered only while the worker waits in ppoll():
	 * libfcgi's accept path select()s on a new unix connection and drops
	 * it when that select() is interrupted, so a signal arriving mid-accept
	 * would cost nginx a 502. Blocked, they wait for the next ppoll(). */
	sigemptyset(&stops);
	sigaddset(&stops, SIGTERM);
	sigaddset(&stops, SIGQUIT);
	sigaddset(&stops, SIGINT);
	sigprocmask(SIG_BLOCK, &stops, &waiting);
	sigdelset(&waiting, SIGTERM);
	sigdelset(&waiting, SIGQUIT);
	sigdelset(&waiting, SIGINT);
	/* The listening socket is non-blocking (shared by every worker):
	 * a worker that loses the race for a connection gets EAGAIN and goes
	 * back to ppoll(), so a stop request is never stuck behind accept(). */
	if (set_flags(fd, O_NONBLOCK) != 0) {
		log_error("listening socket: %s", strerror(errno));
		goto out;
	}
	a = arena_new(16384);
	if (a == NULL || FCGX_Init() != 0 || FCGX_InitRequest(&req, fd, 0) != 0) {
		log_error("cannot initialise the FastCGI request");
		goto out;
	}
	req_ready = 1;
	db_init_child(c, "imagegen-fcgi");
	if (auth_init_child(c) != 0) {
		log_error("cannot initialise authentication (out of memory)");
		goto out;
	}
	log_debug("worker ready");
	while (!got_stop) {
		if (max_requests > 0 && served >= max_requests) {
			log_info("served %ld requests, recycling", served);
			break;
		}
		pfd[0].fd = fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = self_pipe[0];
		pfd[1].events = POLLIN;
		n = ppoll(pfd, 2, &tick, &waiting);
		if (n < 0 && errno != EINTR) {
			log_error("ppoll: %s", strerror(errno));
			goto out;
		}
		if (n > 0 && (pfd[1].revents & POLLIN))
			self_pipe_drain();
		if (got_stop)
			break;
		if (parent != 0 && getppid() != parent) {
			log_warn("master is gone, exiting");
			break;
		}
		if (n <= 0 || !(pfd[0].revents & POLLIN))
			continue;
		n = FCGX_Accept_r(&req);
		if (n < 0) {
			if (n != -EAGAIN && n != -EWOULDBLOCK && n != -EINTR &&
			    n != -ECONNABORTED)
				log_warn("accept: %s", n > -4096 ? strerror(-n) : "failed");
			continue;
		}
		set_busy(1);
		serve_one(&req, a, c, spawn);
		/* libfcgi ends a connection with shutdown(), then waits up to
		 * 2 s for nginx to close its end, reading what it still sends,
		 * so that unread input cannot reset the connection under an
		 * answer nginx has not read yet. With the request read to its
		 * end there is nothing left to arrive (nginx sends no more
		 * after FCGI_STDIN's end without fastcgi_keep_conn): a detached
		 * request is closed at once, and the worker takes the next
		 * connection instead of waiting for nginx's side of it. Not
		 * with FCGI_KEEP_CONN: libfcgi keeps the flag for as long as
		 * the connection, so a later close of it, with input perhaps
		 * unread, would skip the linger too. */
		if (!req.keepConnection && FCGX_HasSeenEOF(req.in) == EOF)
			FCGX_Detach(&req);
		/* Counted before the answer is out: a scrape made right after
		 * it sees this request's tokens. */
		publish_stats(&published);
		FCGX_Finish_r(&req);
		set_busy(0);
		arena_reset(a);
		served++;
		/* After the answer is out: the client never waits on the fork. */
		if (spawn[0] != '\0')
			exec_spawn(c, spawn);
	}
	rc = 0;
out:
	if (req_ready)
		FCGX_Free(&req, 1);
	db_close();
	auth_cleanup();
	arena_free(a);
	return rc;
}

/* ---- the master ------------------------------------------------------- */

/* How far a child of an old generation has been told to stop. */
enum child_stop { STOP_NONE, STOP_QUIT, STOP_TERM, STOP_KILL };

struct child {
	pid_t pid;
	unsigned gen;
	enum child_stop stop;		/* after a reload: QUIT, TERM, KILL sent */
	long long next_at;		/* when the next escalation is due */
	int stat_slot;			/* its index in shared->live/busy, or -1 */
};

struct master {
	const struct pool_opts *o;
	struct cfg *cfg;
	struct child kids[POOL_MAX_CHILDREN];
	int nkids;
	unsigned gen;
	pid_t self;
	long long exits[STORM_EXITS];	/* times of recent abnormal exits */
	int nexits;
	long long backoff_ms;
	long long respawn_at;		/* 0: respawn now when short */
	int stopping;
	long long term_at, kill_at;
	int sent_term, sent_kill;
	pid_t sweeper;			/* the running sweep child, 0: none */
	long long next_sweep;
};

static void
signal_kids(struct master *m, int signo, int only_old)
{
	int i;

	for (i = 0; i < m->nkids; i++)
		if (!only_old || m->kids[i].gen != m->gen)
			kill(m->kids[i].pid, signo);
}

static int
spawn_one(struct master *m)
{
	sigset_t all, old;
	pid_t pid;
	int i, slot;

	if (m->nkids == POOL_MAX_CHILDREN) {
		log_error("child table full (%d)", POOL_MAX_CHILDREN);
		return -1;
	}
	slot = -1;
	for (i = 0; shared != NULL && i < POOL_MAX_CHILDREN; i++) {
		if (!atomic_load(&shared->live[i])) {
			slot = i;
			atomic_store(&shared->busy[i], 0);
			atomic_store(&shared->live[i], 1);
			break;
		}
	}
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid = fork();
	if (pid == 0) {
		/* Child: its own handlers and pipe before signals flow again. */
		my_stat_slot = slot;
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		signal(SIGCHLD, SIG_DFL);
		close(self_pipe[0]);
		close(self_pipe[1]);
		self_pipe[0] = self_pipe[1] = -1;
		sigprocmask(SIG_SETMASK, &old, NULL);
		if (getppid() != m->self)
			_exit(0);
		_exit(pool_run_worker(m->o->listen_fd, m->cfg, m->o->max_requests,
		    m->self));
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		if (slot >= 0)
			atomic_store(&shared->live[slot], 0);
		return -1;
	}
	m->kids[m->nkids].stat_slot = slot;
	m->kids[m->nkids].pid = pid;
	m->kids[m->nkids].gen = m->gen;
	m->kids[m->nkids].stop = STOP_NONE;
	m->kids[m->nkids].next_at = 0;
	m->nkids++;
	log_debug("started child %d (generation %u)", (int)pid, m->gen);
	return 0;
}

static int
current_kids(const struct master *m)
{
	int i, n = 0;

	for (i = 0; i < m->nkids; i++)
		if (m->kids[i].gen == m->gen)
			n++;
	return n;
}

/* Crash-storm throttle: STORM_EXITS abnormal exits within the window
 * delay the next respawn, doubling up to STORM_BACKOFF_MAX_MS. */
static void
note_abnormal_exit(struct master *m, long long now)
{
	int i;

	if (m->nexits == STORM_EXITS) {
		for (i = 1; i < STORM_EXITS; i++)
			m->exits[i - 1] = m->exits[i];
		m->nexits--;
	}
	m->exits[m->nexits++] = now;
	if (shared != NULL)
		atomic_fetch_add(&shared->crashes, 1);
	if (m->nexits == STORM_EXITS && now - m->exits[0] < STORM_WINDOW_MS) {
		m->backoff_ms = m->backoff_ms ? m->backoff_ms * 2 : 250;
		if (m->backoff_ms > STORM_BACKOFF_MAX_MS)
			m->backoff_ms = STORM_BACKOFF_MAX_MS;
		m->respawn_at = now + m->backoff_ms;
		log_error("crash storm: %d abnormal exits in %lld ms, next respawn in %lld ms",
		    STORM_EXITS, now - m->exits[0], m->backoff_ms);
	} else if (m->nexits < STORM_EXITS || now - m->exits[0] >= STORM_WINDOW_MS) {
		m->backoff_ms = 0;
	}
}

static void
reap(struct master *m)
{
	long long now = clock_mono_ms();
	pid_t pid;
	int st, i;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (i = 0; i < m->nkids; i++)
			if (m->kids[i].pid == pid)
				break;
		if (i == m->nkids) {
			/* the sweeper, or an executor orphaned to us */
			if (pid == m->sweeper)
				m->sweeper = 0;
			continue;
		}
		if (shared != NULL && m->kids[i].stat_slot >= 0) {
			atomic_store(&shared->busy[m->kids[i].stat_slot], 0);
			atomic_store(&shared->live[m->kids[i].stat_slot], 0);
		}
		if (m->kids[i].stop != STOP_NONE) {
			/* an old generation's child, told to stop */
			log_debug("old child %d ended", (int)pid);
			m->kids[i] = m->kids[--m->nkids];
			continue;
		}
		m->kids[i] = m->kids[--m->nkids];
		if (shared != NULL && !m->stopping)
			atomic_fetch_add(&shared->restarts, 1);	/* it is replaced */
		if (WIFSIGNALED(st) && !m->stopping) {
			log_warn("child %d killed by signal %d", (int)pid, WTERMSIG(st));
			note_abnormal_exit(m, now);
		} else if (WIFEXITED(st) && WEXITSTATUS(st) != 0 && !m->stopping) {
			log_warn("child %d exited with status %d", (int)pid,
			    WEXITSTATUS(st));
			note_abnormal_exit(m, now);
		} else {
			log_debug("child %d exited", (int)pid);
		}
	}
}

/* Every IMAGEGEN_SWEEP_INTERVAL seconds a short-lived child recovers
 * stuck jobs and starts executors for queued ones; the master itself never
 * blocks on the database. */
static void
sweep_tick(struct master *m, long long now)
{
	struct sweep_stats st;
	pid_t pid;

	if (now < m->next_sweep || m->sweeper != 0)
		return;
	m->next_sweep = now + m->cfg->sweep_interval * 1000;
	pid = fork();
	if (pid == 0) {
		signal(SIGCHLD, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		signal(SIGHUP, SIG_IGN);
		close(self_pipe[0]);
		close(self_pipe[1]);
		close(m->o->listen_fd);
		prctl(PR_SET_NAME, "ig-sweeper");
		_exit(exec_sweep_and_kick(m->cfg, &st) == 0 ? 0 : 1);
	}
	if (pid < 0)
		log_error("fork sweeper: %s", strerror(errno));
	else
		m->sweeper = pid;
}

static void
reload(struct master *m)
{
	struct cfg nc;
	char err[512];
	long long now = clock_mono_ms();
	int i;

	if (cfg_load(&nc, m->o->env_file, CFG_NEED_DB, err, sizeof(err)) != 0) {
		log_error("reload refused, keeping the running configuration: %s",
		    err);
		return;
	}
	/* A slot directory the executors could not use is refused as a bad
	 * setting is, not found out on every job of the new generation. */
	if (slot_check(&nc) != 0) {
		log_error("reload refused, keeping the running configuration:"
		    " the slot directory is unusable (above)");
		cfg_free(&nc);
		return;
	}
	cfg_free(m->cfg);
	*m->cfg = nc;
	log_set_level(m->cfg->log_level);
	m->gen++;
	m->respawn_at = 0;
	if (shared != NULL)
		atomic_fetch_add(&shared->reloads, 1);
	log_info("starting generation %u", m->gen);
	while (current_kids(m) < m->o->workers && spawn_one(m) == 0)
		;
	/* The new generation is accepting; the old one finishes its requests,
	 * and what is left of it after the drain timeout is escalated
	 * (drain_old), as on stop. */
	for (i = 0; i < m->nkids; i++) {
		if (m->kids[i].gen == m->gen || m->kids[i].stop != STOP_NONE)
			continue;
		kill(m->kids[i].pid, SIGQUIT);
		m->kids[i].stop = STOP_QUIT;
		m->kids[i].next_at = now + (long long)m->o->drain_timeout * 1000;
	}
}

/* QUIT -> TERM -> KILL for the children of old generations: TERM when
 * the drain timeout after their reload has passed, KILL a second later,
 * so a wedged old child cannot live forever. */
static void
drain_old(struct master *m, long long now)
{
	struct child *k;
	int i;

	for (i = 0; i < m->nkids; i++) {
		k = &m->kids[i];
		if (k->stop == STOP_NONE || k->stop == STOP_KILL || now < k->next_at)
			continue;
		if (k->stop == STOP_QUIT) {
			log_warn("drain timeout: TERM to old child %d (generation %u)",
			    (int)k->pid, k->gen);
			kill(k->pid, SIGTERM);
			k->stop = STOP_TERM;
			k->next_at = now + KILL_AFTER_TERM_MS;
		} else {
			log_warn("KILL to old child %d (generation %u)", (int)k->pid,
			    k->gen);
			kill(k->pid, SIGKILL);
			k->stop = STOP_KILL;
		}
	}
}

static int
next_timeout(const struct master *m, long long now)
{
	long long t = 1000;
	int i;

	if (m->stopping) {
		if (!m->sent_term)
			t = m->term_at - now;
		else if (!m->sent_kill)
			t = m->kill_at - now;
	} else if (m->respawn_at > now) {
		t = m->respawn_at - now;
	}
	for (i = 0; !m->stopping && i < m->nkids; i++)
		if ((m->kids[i].stop == STOP_QUIT || m->kids[i].stop == STOP_TERM) &&
		    m->kids[i].next_at - now < t)
			t = m->kids[i].next_at - now;
	if (t < 0)
		t = 0;
	return t > 1000 ? 1000 : (int)t;
}

int
pool_run_master(const struct pool_opts *o, struct cfg *c)
{
	static struct master m;
	struct pollfd pfd;
	long long now;
	int n;

	memset(&m, 0, sizeof(m));
	m.o = o;
	m.cfg = c;
	m.gen = 1;
	m.self = getpid();
	got_stop = got_hup = got_chld = 0;
	if (self_pipe_open() != 0) {
		log_error("self-pipe: %s", strerror(errno));
		return 1;
	}
	if (shared == NULL) {
		shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (shared == MAP_FAILED) {
			log_warn("shared statistics: mmap: %s; /metrics counts per child",
			    strerror(errno));
			shared = NULL;
		}
	}
	handle(SIGCHLD, on_signal);
	handle(SIGHUP, on_signal);
	handle(SIGTERM, on_signal);
	handle(SIGINT, on_signal);
	handle(SIGQUIT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	/* Executors are double-forked away from the responders; as subreaper
	 * the master inherits and reaps them, so none is left a zombie. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	m.next_sweep = clock_mono_ms() + 1000;
	log_info("master %d: %d workers, max-requests %ld", (int)m.self,
	    o->workers, o->max_requests);
	for (;;) {
		now = clock_mono_ms();
		if (got_chld) {
			got_chld = 0;
			reap(&m);
		}
		if (got_stop && !m.stopping) {
			m.stopping = 1;
			m.term_at = now + (long long)o->drain_timeout * 1000;
			log_info("signal %d: draining %d children", (int)got_stop,
			    m.nkids);
			signal_kids(&m, SIGQUIT, 0);
		}
		if (got_hup) {
			got_hup = 0;
			if (!m.stopping)
				reload(&m);
		}
		if (m.stopping) {
			if (m.nkids == 0)
				break;
			if (!m.sent_term && now >= m.term_at) {
				log_warn("drain timeout: TERM to %d children", m.nkids);
				signal_kids(&m, SIGTERM, 0);
				m.sent_term = 1;
				m.kill_at = now + KILL_AFTER_TERM_MS;
			} else if (m.sent_term && !m.sent_kill && now >= m.kill_at) {
				log_warn("KILL to %d children", m.nkids);
				signal_kids(&m, SIGKILL, 0);
				m.sent_kill = 1;
			}
		} else {
			if (now >= m.respawn_at) {
				m.respawn_at = 0;
				while (current_kids(&m) < o->workers && spawn_one(&m) == 0)
					;
			}
			drain_old(&m, now);
			sweep_tick(&m, now);
		}
		pfd.fd = self_pipe[0];
		pfd.events = POLLIN;
		n = poll(&pfd, 1, next_timeout(&m, clock_mono_ms()));
		if (n > 0)
			self_pipe_drain();
	}
	log_info("master %d: all children gone, exiting", (int)m.self);
	return 0;
}
