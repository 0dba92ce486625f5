/* fsutil.c - small file-system steps shared by the slot and spool directories. */
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"

int
fs_mkdirs(char *dir, mode_t mode)
{
	char *p;
	int saved;

	for (p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
			saved = errno;
			*p = '/';
			errno = saved;
			return -1;
		}
		*p = '/';
	}
	return mkdir(dir, mode) != 0 && errno != EEXIST ? -1 : 0;
}

int
fs_write_all(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len > (size_t)SSIZE_MAX ? (size_t)SSIZE_MAX : len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
