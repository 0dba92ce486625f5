/* pool_worker.c - a responder: the accept loop, one FastCGI request at a
 * time in a per-request arena, until a stop signal, --max-requests or the
 * master's end. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
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
#include "pool_signals.h"
#include "pool_sockets.h"
#include "pool_stats.h"

/* Answers one request; a job to hand to an executor is copied to spawn. */
void
pool_serve_one(FCGX_Request *f, struct arena *a, const struct cfg *c, char spawn[37])
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

	if (pool_sig_open() != 0) {
		log_error("self-pipe: %s", strerror(errno));
		goto out;
	}
	pool_sig_catch(SIGTERM);
	pool_sig_catch(SIGQUIT);
	pool_sig_catch(SIGINT);
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
	if (pool_sock_nonblock(fd) != 0) {
		log_error("listening socket: %s", strerror(errno));
		goto out;
	}
	a = arena_new(16384);
	if (a == NULL || FCGX_Init() != 0 || FCGX_InitRequest(&req, fd, 0) != 0) {
		log_error("cannot initialise the FastCGI request");
		goto out;
	}
	req_ready = 1;
	/* Each module holding per-process handles makes them now, after
	 * fork, never inherited: the database connection (lazily), the
	 * JWKS with its curl handle, the token cache. Providers and storage
	 * backends are opened by the executor, after its own forks. */
	db_init_child(c, "imagegen-fcgi");
	if (auth_init_child(c) != 0) {
		log_error("cannot initialise authentication (out of memory)");
		goto out;
	}
	log_debug("worker ready");
	while (!pool_sig_stop) {
		if (max_requests > 0 && served >= max_requests) {
			log_info("served %ld requests, recycling", served);
			break;
		}
		pfd[0].fd = fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = pool_sig_fd();
		pfd[1].events = POLLIN;
		n = ppoll(pfd, 2, &tick, &waiting);
		if (n < 0 && errno != EINTR) {
			log_error("ppoll: %s", strerror(errno));
			goto out;
		}
		if (n > 0 && (pfd[1].revents & POLLIN))
			pool_sig_drain();
		if (pool_sig_stop)
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
		pool_stats_busy(1);
		pool_serve_one(&req, a, c, spawn);
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
		pool_stats_publish(&published);
		FCGX_Finish_r(&req);
		pool_stats_busy(0);
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
