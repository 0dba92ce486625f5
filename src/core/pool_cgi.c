/* pool_cgi.c - one request as a plain CGI program: the request in the
 * environment and on stdin (at most CONTENT_LENGTH bytes), the answer on
 * stdout, then exit. libfcgi's FCGX_Stream is a public struct with its
 * own buffer callbacks: the two streams below read fd 0 and write fd 1
 * directly, so http.c and the handlers run unchanged. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <fcgiapp.h>

#include "arena.h"
#include "auth.h"
#include "db.h"
#include "exec.h"
#include "http.h"
#include "log.h"
#include "pool.h"

#define CGI_BUF 8192

struct cgi_io {
	int fd;
	long long left;			/* reader: bytes of the body not read */
	unsigned char buf[CGI_BUF];
};

extern char **environ;

/* Drops the request's variables from the environment before the executor
 * is forked: it would otherwise carry the caller's bearer token, cookies
 * and headers for the whole job. The values are wiped where they stand
 * first: /proc/PID/environ shows the memory the environment started in,
 * whatever unsetenv() does to environ[]. */
static void
strip_request_env(void)
{
	static const char *const prefixes[] = {
		"HTTP_", "CONTENT_", "QUERY_STRING=", "REQUEST_", "REMOTE_",
		"AUTH_TYPE=", NULL
	};
	char name[256];
	size_t i, k, n;

	for (i = 0; environ[i] != NULL; ) {
		for (k = 0; prefixes[k] != NULL &&
		    strncmp(environ[i], prefixes[k], strlen(prefixes[k])) != 0; k++)
			;
		n = strcspn(environ[i], "=");
		if (prefixes[k] == NULL || n >= sizeof(name)) {
			i++;
			continue;
		}
		memcpy(name, environ[i], n);
		name[n] = '\0';
		explicit_bzero(environ[i] + n + 1, strlen(environ[i] + n + 1));
		unsetenv(name);		/* environ[i] is now the next one */
	}
}

/* The executor keeps stderr as its log. When that is a pipe the web
 * server reads until EOF (mod_cgi logs a script's stderr so), the request
 * would last as long as the job: the executor then logs to /dev/null, and
 * its job's states and errors are in the database. A file (mod_cgid's
 * error log) or a terminal stays. */
static void
unpipe_stderr(void)
{
	struct stat st;
	int fd;

	if (fstat(2, &st) != 0 || !S_ISFIFO(st.st_mode))
		return;
	fd = open("/dev/null", O_WRONLY);
	if (fd < 0)
		return;
	if (fd != 2) {
		dup2(fd, 2);
		close(fd);
	}
}

static void
cgi_fill(FCGX_Stream *s)
{
	struct cgi_io *io = s->data;
	size_t want = sizeof(io->buf);
	ssize_t n;

	if (io->left <= 0) {
		s->isClosed = 1;
		return;
	}
	if ((long long)want > io->left)
		want = (size_t)io->left;
	do
		n = read(io->fd, io->buf, want);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		if (n < 0)
			s->FCGI_errno = errno;
		s->isClosed = 1;
		return;
	}
	io->left -= n;
	s->rdNext = s->stopUnget = io->buf;
	s->stop = io->buf + n;
}

static void
cgi_empty(FCGX_Stream *s, int doClose)
{
	struct cgi_io *io = s->data;
	unsigned char *p = io->buf;
	ssize_t n;

	(void)doClose;
	while (p < s->wrNext && !s->isClosed) {
		n = write(io->fd, p, (size_t)(s->wrNext - p));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			s->FCGI_errno = n < 0 ? errno : EIO;
			s->isClosed = 1;
			break;
		}
		p += n;
	}
	s->wrNext = io->buf;
	s->stop = io->buf + sizeof(io->buf);
}

int
pool_run_cgi(const struct cfg *c)
{
	static struct cgi_io in_io, out_io;
	FCGX_Stream in = { 0 }, out = { 0 };
	FCGX_Request req;
	struct arena *a = NULL;
	char spawn[37] = "";
	long long clen;
	int rc = 1, fd;

	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);	/* exec_spawn reaps its middle child */
	/* httpoxy: a client's "Proxy:" header is HTTP_PROXY here. */
	unsetenv("HTTP_PROXY");
	clen = http_parse_content_length(getenv("CONTENT_LENGTH"));
	in_io.fd = 0;
	/* A body over the limit is still read (and dropped) before the 413,
	 * as over FastCGI: Apache loses the answer of a CGI program that
	 * exits with its input unread. Apache's LimitRequestBody (8 MiB in
	 * contrib/apache) and mod_reqtimeout bound what that costs. */
	in_io.left = clen > 0 ? clen : 0;
	in.isReader = 1;
	in.rdNext = in.stop = in.stopUnget = in_io.buf;
	in.wrNext = in.stop;
	in.fillBuffProc = cgi_fill;
	in.emptyBuffProc = cgi_empty;
	in.data = &in_io;
	out_io.fd = 1;
	out.wrNext = out_io.buf;
	out.stop = out_io.buf + sizeof(out_io.buf);
	out.rdNext = out.stop;
	out.fillBuffProc = cgi_fill;
	out.emptyBuffProc = cgi_empty;
	out.data = &out_io;
	memset(&req, 0, sizeof(req));
	req.in = &in;
	req.out = &out;
	req.envp = environ;
	req.ipcFd = -1;

	a = arena_new(16384);
	if (a == NULL) {
		log_error("out of memory");
		goto out;
	}
	db_init_child(c, "imagegen-cgi");
	if (auth_init_child(c) != 0) {
		log_error("cannot initialise authentication (out of memory)");
		goto out;
	}
	pool_serve_one(&req, a, c, spawn);
	if (FCGX_FClose(&out) != 0) {
		log_warn("writing the answer: %s", strerror(out.FCGI_errno));
		goto out;
	}
	/* The answer is complete once stdout is closed: the web server need
	 * not wait for the executor (which has /dev/null as its stdout). fd 1
	 * stays taken (by /dev/null), so no later open lands on stdout. */
	fd = open("/dev/null", O_WRONLY);
	if (fd >= 0 && fd != 1) {
		dup2(fd, 1);
		close(fd);
	} else if (fd < 0) {
		close(1);
	}
	rc = 0;
out:
	if (spawn[0] != '\0') {
		strip_request_env();
		unpipe_stderr();
		exec_spawn(c, spawn);
	}
	db_close();
	auth_cleanup();
	arena_free(a);
	return rc;
}
