/* slots.c - host-local executor slots: flock'd files, freed when the holder dies. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "log.h"
#include "slots.h"

/* The slot directory: IMAGEGEN_SLOT_DIR, else one per database under /tmp
 * (the cap is per deployment, and a deployment is its database). Worked
 * out and made once per process: a responder asks on every POST. */
static int
slot_dir(const struct cfg *c, char *out, size_t n)
{
	static char dir[512];
	unsigned char h[32];
	unsigned int hl = 0;

	if (dir[0] == '\0') {
		if (c->slot_dir != NULL) {
			snprintf(dir, sizeof(dir), "%s", c->slot_dir);
		} else {
			EVP_Digest(c->database_url, strlen(c->database_url), h, &hl,
			    EVP_sha256(), NULL);
			snprintf(dir, sizeof(dir),
			    "/tmp/imagegen-slots-%u-%02x%02x%02x%02x%02x%02x",
			    (unsigned)getuid(), h[0], h[1], h[2], h[3], h[4], h[5]);
		}
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			log_error("slot directory %s: %s", dir, strerror(errno));
			dir[0] = '\0';
			return -1;
		}
	}
	snprintf(out, n, "%s", dir);
	return 0;
}

int
slot_acquire(const struct cfg *c)
{
	char dir[512], path[600];
	long i;
	int fd;

	if (slot_dir(c, dir, sizeof(dir)) != 0)
		return -1;
	for (i = 0; i < c->max_running_jobs; i++) {
		snprintf(path, sizeof(path), "%s/slot-%ld", dir, i);
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0) {
			log_error("slot %s: %s", path, strerror(errno));
			return -1;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		close(fd);
	}
	return -2;
}

int
slot_free_count(const struct cfg *c)
{
	char dir[512], path[600];
	long i;
	int fd, n = 0;

	if (slot_dir(c, dir, sizeof(dir)) != 0)
		return 0;
	for (i = 0; i < c->max_running_jobs; i++) {
		snprintf(path, sizeof(path), "%s/slot-%ld", dir, i);
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			n++;
		close(fd);	/* closing drops the probe's lock */
	}
	return n;
}
