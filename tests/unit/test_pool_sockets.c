/* test_pool_sockets.c - the pool's listening sockets and its signal
 * self-pipe. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cu_main.h"
#include "pool.h"
#include "pool_signals.h"
#include "pool_sockets.h"

static char dir[64];

static int
suite_init(void)
{
	snprintf(dir, sizeof(dir), "/tmp/ig-test-pool-XXXXXX");
	return mkdtemp(dir) != NULL ? 0 : -1;
}

static int
suite_cleanup(void)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/sock", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/file", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/notify", dir);
	unlink(path);
	return rmdir(dir);
}

static void
test_pool_listen_unix_mode_stale_and_in_use(void)
{
	char path[128], err[256];
	struct stat st;
	int fd, again;

	snprintf(path, sizeof(path), "%s/sock", dir);
	fd = pool_listen(path, 0640, (uid_t)-1, (gid_t)-1, err, sizeof(err));
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(pool_check_listener(fd), 0);
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	CU_ASSERT(S_ISSOCK(st.st_mode));
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0640);
	/* still answering: refused */
	again = pool_listen(path, 0640, (uid_t)-1, (gid_t)-1, err, sizeof(err));
	CU_ASSERT_EQUAL(again, -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "is in use by a running server"));
	/* its server gone: the stale socket is replaced */
	close(fd);
	fd = pool_listen(path, 0600, (uid_t)-1, (gid_t)-1, err, sizeof(err));
	CU_ASSERT(fd >= 0);
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
	if (fd >= 0)
		close(fd);
	unlink(path);
}

static void
test_pool_listen_refusals(void)
{
	char path[128], err[256], longpath[200];
	int fd;

	snprintf(path, sizeof(path), "%s/file", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	CU_ASSERT_EQUAL(pool_listen(path, 0660, (uid_t)-1, (gid_t)-1, err,
	    sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "exists and is not a socket"));
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	CU_ASSERT_EQUAL(pool_listen(longpath, 0660, (uid_t)-1, (gid_t)-1, err,
	    sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "socket path longer than"));
	CU_ASSERT_EQUAL(pool_listen("localhost", 0660, (uid_t)-1, (gid_t)-1, err,
	    sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "expected a socket path or HOST:PORT"));
}

static void
test_pool_listen_tcp_and_check(void)
{
	char err[256];
	int fd, plain;

	fd = pool_listen("127.0.0.1:0", 0660, (uid_t)-1, (gid_t)-1, err,
	    sizeof(err));
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(pool_check_listener(fd), 0);
	CU_ASSERT_EQUAL(pool_sock_nonblock(fd), 0);
	CU_ASSERT(fcntl(fd, F_GETFL) & O_NONBLOCK);
	close(fd);
	plain = socket(AF_INET, SOCK_STREAM, 0);
	CU_ASSERT_EQUAL(pool_check_listener(plain), -1);	/* not listening */
	close(plain);
	fd = open("/dev/null", O_RDONLY);
	CU_ASSERT_EQUAL(pool_check_listener(fd), -1);		/* not a socket */
	close(fd);
}

static void
test_pool_signals_flag_and_wake(void)
{
	char c;

	CU_ASSERT_FATAL(pool_sig_open() == 0);
	CU_ASSERT(pool_sig_fd() >= 0);
	pool_sig_catch(SIGHUP);
	pool_sig_catch(SIGUSR1);	/* any other: a stop */
	raise(SIGHUP);
	CU_ASSERT_EQUAL(pool_sig_hup, 1);
	CU_ASSERT_EQUAL(pool_sig_stop, 0);
	raise(SIGUSR1);
	CU_ASSERT_EQUAL(pool_sig_stop, SIGUSR1);
	CU_ASSERT_EQUAL(read(pool_sig_fd(), &c, 1), 1);	/* woken */
	pool_sig_drain();
	CU_ASSERT_EQUAL(read(pool_sig_fd(), &c, 1), -1);	/* non-blocking */
	/* a fresh pipe clears the flags */
	CU_ASSERT_FATAL(pool_sig_open() == 0);
	CU_ASSERT_EQUAL(pool_sig_hup, 0);
	CU_ASSERT_EQUAL(pool_sig_stop, 0);
	pool_sig_close();
	CU_ASSERT_EQUAL(pool_sig_fd(), -1);
	signal(SIGHUP, SIG_DFL);
	signal(SIGUSR1, SIG_DFL);
}

static void
set_listen(const char *fds, long pid)
{
	char buf[32];

	setenv("LISTEN_FDS", fds, 1);
	snprintf(buf, sizeof(buf), "%ld", pid);
	setenv("LISTEN_PID", buf, 1);
	setenv("LISTEN_FDNAMES", "imagegen.sock", 1);
}

static int
listen_unset(void)
{
	return getenv("LISTEN_FDS") == NULL && getenv("LISTEN_PID") == NULL &&
	    getenv("LISTEN_FDNAMES") == NULL;
}

/* sd_listen_fds(3): our pid, one socket at fd 3, the variables unset. */
static void
test_pool_systemd_listener(void)
{
	char err[256];
	int saved, lfd, plain, fd;

	saved = fcntl(3, F_DUPFD_CLOEXEC, 20);	/* whatever fd 3 was */
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	CU_ASSERT_EQUAL(pool_systemd_listener(&fd, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(fd, -1);
	lfd = pool_listen("127.0.0.1:0", 0660, (uid_t)-1, (gid_t)-1, err,
	    sizeof(err));
	CU_ASSERT_FATAL(lfd >= 0);
	CU_ASSERT_FATAL(dup2(lfd, 3) == 3);
	/* for another process: ignored, but unset all the same */
	set_listen("1", (long)getpid() + 1);
	CU_ASSERT_EQUAL(pool_systemd_listener(&fd, err, sizeof(err)), 0);
	CU_ASSERT(listen_unset());
	set_listen("1", (long)getpid());
	CU_ASSERT_EQUAL(pool_systemd_listener(&fd, err, sizeof(err)), 1);
	CU_ASSERT_EQUAL(fd, 3);
	CU_ASSERT(fcntl(3, F_GETFD) & FD_CLOEXEC);
	CU_ASSERT(listen_unset());
	set_listen("2", (long)getpid());
	CU_ASSERT_EQUAL(pool_systemd_listener(&fd, err, sizeof(err)), -1);
	CU_ASSERT(strstr(err, "expected exactly one") != NULL);
	CU_ASSERT(listen_unset());
	set_listen("1x", (long)getpid());
	CU_ASSERT_EQUAL(pool_systemd_listener(&fd, err, sizeof(err)), -1);
	setenv("LISTEN_FDS", "1", 1);		/* LISTEN_PID missing */
	CU_ASSERT_EQUAL(pool_systemd_listener(&fd, err, sizeof(err)), -1);
	CU_ASSERT(listen_unset());
	plain = socket(AF_INET, SOCK_STREAM, 0);	/* not listening */
	CU_ASSERT_FATAL(dup2(plain, 3) == 3);
	set_listen("1", (long)getpid());
	CU_ASSERT_EQUAL(pool_systemd_listener(&fd, err, sizeof(err)), -1);
	CU_ASSERT(strstr(err, "not a listening") != NULL);
	close(plain);
	close(lfd);
	if (saved >= 0) {
		dup2(saved, 3);
		close(saved);
	} else {
		close(3);
	}
}

/* READY=1 to a NOTIFY_SOCKET path, which is then unset. */
static void
test_pool_notify_ready(void)
{
	struct sockaddr_un sun;
	char buf[64];
	int fd;
	ssize_t n;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/notify", dir);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	unsetenv("NOTIFY_SOCKET");
	pool_notify_ready();			/* nothing to tell */
	CU_ASSERT_EQUAL(recv(fd, buf, sizeof(buf), 0), -1);
	setenv("NOTIFY_SOCKET", sun.sun_path, 1);
	pool_notify_ready();
	n = recv(fd, buf, sizeof(buf), 0);
	CU_ASSERT_EQUAL(n, 7);
	CU_ASSERT(n == 7 && memcmp(buf, "READY=1", 7) == 0);
	CU_ASSERT(getenv("NOTIFY_SOCKET") == NULL);
	close(fd);
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "pool_listen_unix_mode_stale_and_in_use",
		    test_pool_listen_unix_mode_stale_and_in_use },
		{ "pool_listen_refusals", test_pool_listen_refusals },
		{ "pool_listen_tcp_and_check", test_pool_listen_tcp_and_check },
		{ "pool_signals_flag_and_wake", test_pool_signals_flag_and_wake },
		{ "pool_systemd_listener", test_pool_systemd_listener },
		{ "pool_notify_ready", test_pool_notify_ready },
		CU_TEST_INFO_NULL
	};

	return cu_run_fixture("pool_sockets", tests, suite_init, suite_cleanup);
}
