/* slots.c - host-local executor slots: flock'd files, freed when the holder dies. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "slots.h"

static char slot_path[512];	/* this process's slot directory, "": not yet */

/* The slot directory: IMAGEGEN_SLOT_DIR, else var/run/slots under the
 * working directory (the state directory, as var/storage is), made
 * absolute so a later chdir() does not move it. Made when missing; an
 * existing one is used only when it is a real directory (not a symlink)
 * owned by us and not writable by group or others: whoever else can
 * write there can hold or steal slots. Worked out and checked once per
 * process (a responder asks on every POST). 0, or -1 (logged). */
static int
slot_dir(const struct cfg *c, char *out, size_t n)
{
	char cwd[400];
	size_t len;
	struct stat st;
	int rc = -1;

	if (slot_path[0] == '\0') {
		if (c->slot_dir != NULL && c->slot_dir[0] == '/') {
			snprintf(slot_path, sizeof(slot_path), "%s", c->slot_dir);
		} else if (getcwd(cwd, sizeof(cwd)) != NULL) {
			snprintf(slot_path, sizeof(slot_path), "%s/%s", strcmp(cwd, "/") ? cwd : "",
			    c->slot_dir != NULL ? c->slot_dir : "var/run/slots");
		} else {
			log_error("slot directory: working directory: %s; set IMAGEGEN_SLOT_DIR",
			    strerror(errno));
			goto out;
		}
		len = strlen(slot_path);
		while (len > 1 && slot_path[len - 1] == '/')
			slot_path[--len] = '\0';	/* lstat("link/") would follow it */
		if (fs_mkdirs(slot_path, 0700) != 0) {
			log_error("slot directory %s: %s; set IMAGEGEN_SLOT_DIR", slot_path,
			    strerror(errno));
			goto out;
		}
		if (lstat(slot_path, &st) != 0) {
			log_error("slot directory %s: %s", slot_path, strerror(errno));
			goto out;
		}
		if (!S_ISDIR(st.st_mode)) {
			log_error("slot directory %s: not a directory (a symlink?), refusing",
			    slot_path);
			goto out;
		}
		if (st.st_uid != geteuid()) {
			log_error("slot directory %s: owned by uid %d, not by us (uid %d),"
			    " refusing (run imagegen worker/sweep as the pool's user)",
			    slot_path, (int)st.st_uid, (int)geteuid());
			goto out;
		}
		if (st.st_mode & (S_IWGRP | S_IWOTH)) {
			log_error("slot directory %s: writable by group or others (mode %03o), refusing; chmod 700 it",
			    slot_path, (unsigned)(st.st_mode & 0777));
			goto out;
		}
	}
	snprintf(out, n, "%s", slot_path);
	rc = 0;
out:
	if (rc != 0)
		slot_path[0] = '\0';
	return rc;
}

int
slot_check(const struct cfg *c)
{
	char path[512];
	int rc = slot_dir(c, path, sizeof(path));

	/* Not kept: children forked after a reload work out their own. */
	slot_path[0] = '\0';
	return rc;
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

int
slot_used_count(const struct cfg *c)
{
	struct held {
		unsigned maj, min;
		unsigned long ino;
	} *slot = NULL;
	char dir[512], path[600], line[256], type[16];
	struct stat st;
	unsigned maj, min;
	unsigned long ino;
	long i;
	int k, n = 0, used = -1, lines = 0;
	FILE *f = NULL;

	if (slot_dir(c, dir, sizeof(dir)) != 0)
		goto out;
	slot = calloc((size_t)c->max_running_jobs, sizeof(*slot));
	if (slot == NULL)
		goto out;
	for (i = 0; i < c->max_running_jobs; i++) {
		snprintf(path, sizeof(path), "%s/slot-%ld", dir, i);
		if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;	/* never taken yet */
		slot[n].maj = major(st.st_dev);
		slot[n].min = minor(st.st_dev);
		slot[n].ino = (unsigned long)st.st_ino;
		n++;
	}
	used = 0;
	if (n == 0)
		goto out;
	f = fopen("/proc/locks", "re");
	if (f == NULL) {
		used = -1;
		goto out;
	}
	/* "1: FLOCK  ADVISORY  WRITE 1234 fe:00:10952718 0 EOF"; waiters
	 * ("1: -> FLOCK ...") hold nothing. Bounded: a busy host has many. */
	while (fgets(line, sizeof(line), f) != NULL && lines++ < 100000) {
		if (sscanf(line, "%*d: %15s %*s %*s %*d %x:%x:%lu", type, &maj, &min,
		    &ino) != 4 || strcmp(type, "FLOCK") != 0)
			continue;
		for (k = 0; k < n; k++) {
			if (slot[k].ino == ino && slot[k].maj == maj && slot[k].min == min) {
				used++;
				slot[k].ino = 0;	/* counted */
				break;
			}
		}
	}
out:
	if (f != NULL)
		fclose(f);
	free(slot);
	return used;
}
