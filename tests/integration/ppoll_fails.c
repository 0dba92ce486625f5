/* ppoll_fails.c - an LD_PRELOAD shim for test_prefer_wait.py: the ppoll()
 * of a held request (three descriptors, the last the web server's
 * connection watched for POLLRDHUP) fails with ENOMEM, as no outside
 * cause can make it fail; every other ppoll() is the real one. Built by
 * the test with cc -shared. */
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <time.h>

typedef int (*ppoll_fn)(struct pollfd *, nfds_t, const struct timespec *,
    const sigset_t *);

int
ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts,
    const sigset_t *mask)
{
	static ppoll_fn real;

	if (n == 3 && (fds[2].events & POLLRDHUP)) {
		errno = ENOMEM;
		return -1;
	}
	if (real == NULL)
		real = (ppoll_fn)dlsym(RTLD_NEXT, "ppoll");
	return real(fds, n, ts, mask);
}
