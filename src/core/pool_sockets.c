/* pool_sockets.c - the pool's listening socket: a unix socket with its
 * mode and owner, a TCP one, one inherited on fd 0 (spawn-fcgi) or one
 * passed by systemd (LISTEN_FDS), and the readiness note to systemd. */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "pool.h"
#include "pool_sockets.h"

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

int
pool_sock_nonblock(int fd)
{
	int cur = fcntl(fd, F_GETFL);

	return cur < 0 ? -1 : fcntl(fd, F_SETFL, cur | O_NONBLOCK);
}

/* sd_listen_fds(3): the first passed descriptor. */
#define SD_LISTEN_FDS_START 3

/* A decimal number from 0 to INT_MAX, the whole string; -1 otherwise. */
static long
env_number(const char *s)
{
	char *end;
	long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > INT_MAX)
		return -1;
	return v;
}

int
pool_systemd_listener(int *fd, char *err, size_t errlen)
{
	const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");
	long n, p;
	int rc = -1;

	*fd = -1;
	if (fds == NULL && pid == NULL)
		return 0;
	n = env_number(fds);
	p = env_number(pid);
	if (p < 0 || n < 0) {
		snprintf(err, errlen, "socket activation: LISTEN_FDS and LISTEN_PID must both be set to numbers");
		goto out;
	}
	if ((pid_t)p != getpid()) {
		/* Meant for another process (sd_listen_fds(3) ignores them). */
		rc = 0;
		goto out;
	}
	if (n != 1) {
		snprintf(err, errlen, "socket activation: %ld sockets passed (LISTEN_FDS), expected exactly one: one ListenStream= in the .socket unit",
		    n);
		goto out;
	}
	if (pool_check_listener(SD_LISTEN_FDS_START) != 0) {
		snprintf(err, errlen, "socket activation: fd %d is not a listening stream socket",
		    SD_LISTEN_FDS_START);
		goto out;
	}
	/* Ours alone: no executor or later exec inherits it. */
	if (fcntl(SD_LISTEN_FDS_START, F_SETFD, FD_CLOEXEC) != 0) {
		snprintf(err, errlen, "socket activation: fd %d: %s",
		    SD_LISTEN_FDS_START, strerror(errno));
		goto out;
	}
	*fd = SD_LISTEN_FDS_START;
	rc = 1;
out:
	/* Whatever they said, they were for this process only. */
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	return rc;
}

void
pool_notify_ready(void)
{
	struct sockaddr_un sun;
	const char *path = getenv("NOTIFY_SOCKET");
	static const char msg[] = "READY=1";
	socklen_t len;
	size_t plen;
	int fd = -1;

	if (path == NULL)
		return;
	plen = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || plen < 2 ||
	    plen >= sizeof(sun.sun_path)) {
		log_warn("NOTIFY_SOCKET is not a unix socket path, not notifying");
		goto out;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, plen);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';	/* abstract namespace */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen +
	    (path[0] == '@' ? 0 : 1));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL,
	    (struct sockaddr *)&sun, len) < 0)
		log_warn("NOTIFY_SOCKET %s: %s", path, strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	/* The children and executors are not the service's main process. */
	unsetenv("NOTIFY_SOCKET");
}
