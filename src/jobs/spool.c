/* spool.c - generated images on the host's disk until they are stored. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "spool.h"

/* JOB_ID.spool: "IGSPOOL1 <cost USD or ->\n" then the image bytes;
 * JOB_ID.PID.part while it is written. */
#define SPOOL_MAGIC "IGSPOOL1 "
#define SPOOL_HEADER_MAX 64
#define SPOOL_EXT ".spool"
#define SPOOL_PART_EXT ".part"

int
spool_id_ok(const char *id)
{
	size_t i;

	if (id == NULL || strlen(id) != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (id[i] != '-')
				return 0;
		} else if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'))) {
			return 0;
		}
	}
	return 1;
}

/* 1 when a file or directory of uid is ours to trust: our own; as root
 * (an operator's `imagegen sweep` cleaning up) also root's. Root never
 * trusts another user's spool: that user could plant an image there that
 * a job would store as its result. */
static int
spool_owner_ok(uid_t uid)
{
	return uid == geteuid() || uid == 0;
}

/* The directory, opened without following a symlink and checked: ours, and
 * nobody else's to write in. The fd, or -1 (logged unless it is missing and
 * quiet_missing). */
static int
spool_dirfd(const struct cfg *c, int quiet_missing)
{
	struct stat st;
	int fd;

	fd = open(c->spool_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (!(quiet_missing && errno == ENOENT))
			log_error("spool directory %s: %s", c->spool_dir, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !spool_owner_ok(st.st_uid) || (st.st_mode & 022) != 0) {
		log_error("spool directory %s: not owned by uid %u or writable by others; not used",
		    c->spool_dir, (unsigned)geteuid());
		close(fd);
		return -1;
	}
	return fd;
}

int
spool_prepare(const struct cfg *c)
{
	char path[1024];
	struct stat st;
	size_t n;

	n = (size_t)snprintf(path, sizeof(path), "%s", c->spool_dir);
	if (n == 0 || n >= sizeof(path)) {
		log_error("spool directory: the path is empty or too long");
		return -1;
	}
	/* Parents as mkdir -p would make them; the spool itself 0700. */
	if (fs_mkdirs(path, 0700) != 0) {
		log_error("spool directory %s: %s", c->spool_dir, strerror(errno));
		return -1;
	}
	if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode) || !spool_owner_ok(st.st_uid)) {
		log_error("spool directory %s: not a directory owned by uid %u; not used",
		    c->spool_dir, (unsigned)geteuid());
		return -1;
	}
	if ((st.st_mode & 077) != 0 && chmod(path, 0700) != 0) {
		log_error("spool directory %s: chmod 0700: %s", c->spool_dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* 1 when name is a temporary file of a job: ID.PID.part; *id gets the id. */
static int
spool_partial_name(const char *name, char id[37])
{
	size_t n = strlen(name), el = strlen(SPOOL_PART_EXT), i;

	if (n < 36 + 2 + el || name[36] != '.' || strcmp(name + n - el, SPOOL_PART_EXT) != 0)
		return 0;
	for (i = 37; i < n - el; i++)
		if (name[i] < '0' || name[i] > '9')
			return 0;
	memcpy(id, name, 36);
	id[36] = '\0';
	return spool_id_ok(id);
}

int
spool_write(const struct cfg *c, const char *job_id, const unsigned char *data,
    size_t len, double cost_usd)
{
	char part[64], name[64], head[SPOOL_HEADER_MAX];
	int dfd = -1, fd = -1, rc = -1, hl;

	if (!spool_id_ok(job_id)) {
		log_error("spool: job id %.40s is not a UUID", job_id);
		return -1;
	}
	/* The writer's pid in the temporary name: two attempts of one job (an
	 * old executor cut off from the database, and its successor) never
	 * write into one file. */
	snprintf(part, sizeof(part), "%s.%ld" SPOOL_PART_EXT, job_id, (long)getpid());
	snprintf(name, sizeof(name), "%s" SPOOL_EXT, job_id);
	if (cost_usd >= 0)
		hl = snprintf(head, sizeof(head), SPOOL_MAGIC "%.6f\n", cost_usd);
	else
		hl = snprintf(head, sizeof(head), SPOOL_MAGIC "-\n");
	if (hl <= 0 || (size_t)hl >= sizeof(head))
		return -1;
	dfd = spool_dirfd(c, 0);
	if (dfd < 0)
		goto out;
	fd = openat(dfd, part, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || fchmod(fd, 0600) != 0 ||
	    fs_write_all(fd, head, (size_t)hl) != 0 || fs_write_all(fd, data, len) != 0 ||
	    fsync(fd) != 0) {
		log_error("spool %s/%s: %s", c->spool_dir, part, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		log_error("spool %s/%s: close: %s", c->spool_dir, part, strerror(errno));
		goto out;
	}
	fd = -1;
	/* Complete under its final name, or not there at all; the directory's
	 * fsync makes the name as durable as the bytes. */
	if (renameat(dfd, part, dfd, name) != 0 || fsync(dfd) != 0) {
		log_error("spool %s/%s: %s", c->spool_dir, name, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc != 0 && dfd >= 0)
		unlinkat(dfd, part, 0);
	if (dfd >= 0)
		close(dfd);
	return rc;
}

int
spool_read(const struct cfg *c, const char *job_id, size_t max,
    unsigned char **data, size_t *len, double *cost_usd)
{
	char name[64], *nl, *end;
	unsigned char *buf = NULL;
	struct stat st;
	size_t got = 0, hl;
	ssize_t n;
	int dfd = -1, fd = -1, rc = -1;

	*data = NULL;
	*len = 0;
	*cost_usd = -1;
	if (!spool_id_ok(job_id))
		return -1;
	snprintf(name, sizeof(name), "%s" SPOOL_EXT, job_id);
	dfd = spool_dirfd(c, 1);
	if (dfd < 0)
		return 0;	/* no spool: nothing was kept for this job here */
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ENOENT ? 0 : -1;
		if (rc < 0)
			log_error("spool %s/%s: %s", c->spool_dir, name, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || !spool_owner_ok(st.st_uid) ||
	    st.st_size <= (off_t)sizeof(SPOOL_MAGIC) ||
	    (size_t)st.st_size > max + SPOOL_HEADER_MAX) {
		log_error("spool %s/%s: not a spool file of ours, or too large", c->spool_dir, name);
		goto bad;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		goto out;
	while (got < (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	if (got != (size_t)st.st_size || memcmp(buf, SPOOL_MAGIC, strlen(SPOOL_MAGIC)) != 0)
		goto bad;
	nl = memchr(buf, '\n', got < SPOOL_HEADER_MAX ? got : SPOOL_HEADER_MAX);
	if (nl == NULL)
		goto bad;
	*nl = '\0';
	hl = (size_t)(nl - (char *)buf) + 1;
	if (strcmp((char *)buf + strlen(SPOOL_MAGIC), "-") != 0) {
		errno = 0;
		*cost_usd = strtod((char *)buf + strlen(SPOOL_MAGIC), &end);
		if (errno != 0 || *end != '\0' || !isfinite(*cost_usd) || *cost_usd < 0)
			goto bad;
	}
	if (got - hl == 0 || got - hl > max)
		goto bad;
	memmove(buf, buf + hl, got - hl);
	*data = buf;
	*len = got - hl;
	buf = NULL;
	rc = 1;
	goto out;
bad:
	log_error("spool %s/%s: malformed; removed", c->spool_dir, name);
	unlinkat(dfd, name, 0);
	*cost_usd = -1;
	rc = -1;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	close(dfd);
	return rc;
}

void
spool_remove(const struct cfg *c, const char *job_id, int which)
{
	struct dirent *e;
	char name[64], id[37];
	DIR *d;
	int dfd;

	if (!spool_id_ok(job_id))
		return;
	dfd = spool_dirfd(c, 1);
	if (dfd < 0)
		return;
	if (which & SPOOL_IMAGE) {
		snprintf(name, sizeof(name), "%s" SPOOL_EXT, job_id);
		if (unlinkat(dfd, name, 0) != 0 && errno != ENOENT)
			log_warn("spool %s/%s: %s", c->spool_dir, name, strerror(errno));
	}
	if (which & SPOOL_PARTIAL) {
		/* fdopendir takes the descriptor: a copy for it */
		d = fdopendir(dup(dfd));
		while (d != NULL && (e = readdir(d)) != NULL) {
			if (!spool_partial_name(e->d_name, id) || strcmp(id, job_id) != 0)
				continue;
			if (unlinkat(dfd, e->d_name, 0) != 0 && errno != ENOENT)
				log_warn("spool %s/%s: %s", c->spool_dir, e->d_name, strerror(errno));
		}
		if (d != NULL)
			closedir(d);
	}
	close(dfd);
}

int
spool_scan(const struct cfg *c, struct spool_entry *out, int max)
{
	struct dirent *e;
	DIR *d;
	size_t nl;
	int dfd, n = 0, partial;

	dfd = spool_dirfd(c, 1);
	if (dfd < 0)
		return errno == ENOENT ? 0 : -1;
	d = fdopendir(dfd);
	if (d == NULL) {
		close(dfd);
		return -1;
	}
	while (n < max) {
		e = readdir(d);
		if (e == NULL)
			break;
		nl = strlen(e->d_name);
		if (nl == 36 + strlen(SPOOL_EXT) && strcmp(e->d_name + 36, SPOOL_EXT) == 0) {
			partial = 0;
			memcpy(out[n].id, e->d_name, 36);
			out[n].id[36] = '\0';
			if (!spool_id_ok(out[n].id))
				continue;
		} else if (spool_partial_name(e->d_name, out[n].id)) {
			partial = 1;
		} else {
			continue;
		}
		out[n].partial = partial;
		n++;
	}
	closedir(d);
	return n;
}
