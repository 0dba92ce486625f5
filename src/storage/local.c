/*
 * local.c - the directory backend: objects are files under
 * {storage_dir}/{bucket}/{path}, and nginx serves {storage_dir} at
 * /storage/v1/object/public/, so an object's URL path is
 * /storage/v1/object/public/{bucket}/{path}.
 *
 * Every walk starts from the bucket directory and opens each component
 * with O_NOFOLLOW, so a symlink planted inside the tree never leads a
 * write or an unlink out of it. storage_dir itself may be a symlink: the
 * administrator chose it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "storage.h"
#include "storage_local.h"

#define LOCAL_DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define LOCAL_PATH_MAX 1024	/* storage_path_ok()'s limit */

struct local_st {
	char *root;		/* absolute IMAGEGEN_STORAGE_DIR */
};

/*
 * How an errno is classified. Only conditions that clear up within the
 * runner's retry window (seconds) are STOR_TEMPORARY: interrupted or busy
 * calls, descriptor and memory exhaustion. ENOSPC, EDQUOT and EIO are
 * STOR_ERROR: a full disk or a failing device needs an operator, and
 * retrying only delays the job's failure and its message.
 */
static enum stor_err
local_class(int e)
{
	switch (e) {
	case EAGAIN:
#if EWOULDBLOCK != EAGAIN
	case EWOULDBLOCK:
#endif
	case EINTR:
	case EBUSY:
	case ETIMEDOUT:
	case EMFILE:
	case ENFILE:
	case ENOMEM:
		return STOR_TEMPORARY;
	default:
		return STOR_ERROR;
	}
}

/* Writes "what: strerror" into msg and classifies errno e. */
static enum stor_err
local_fail(int e, const char *what, char *msg, size_t msglen)
{
	snprintf(msg, msglen, "%s: %s", what, strerror(e));
	return local_class(e);
}

/* mkdirat with mode 0755: 1 when it made the directory, 0 when the name
 * exists (the caller's O_DIRECTORY | O_NOFOLLOW open then checks what it
 * is), -1 with errno. */
static int
local_mkdirat(int dfd, const char *name)
{
	if (mkdirat(dfd, name, 0755) == 0)
		return 1;
	return errno == EEXIST ? 0 : -1;
}

/* Opens the directory name in dfd without following a symlink, creating
 * it first when create is set. A directory we made gets 0755 whatever
 * the umask, so nginx can traverse it. The descriptor, or -1 with errno. */
static int
local_opendir(int dfd, const char *name, int create)
{
	int made = 0, fd, e;

	if (create) {
		made = local_mkdirat(dfd, name);
		if (made < 0)
			return -1;
	}
	fd = openat(dfd, name, LOCAL_DIR_FLAGS);
	if (fd >= 0 && made && fchmod(fd, 0755) != 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Opens {root}/{bucket}. The descriptor, or -1 with errno kept, msg set
 * and *err the classification; a missing storage directory or bucket is
 * STOR_ERROR pointing at setup. */
static int
local_open_bucket(const struct storage *s, enum stor_err *err, char *msg,
    size_t msglen)
{
	const struct local_st *st = s->state;
	int rfd = -1, bfd = -1, e = 0;

	rfd = open(st->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	e = errno;
	if (rfd < 0 && e == ENOENT) {
		snprintf(msg, msglen,
		    "storage directory does not exist (run imagegen setup-bucket)");
		*err = STOR_ERROR;
		goto out;
	}
	if (rfd < 0) {
		*err = local_fail(e, "storage directory", msg, msglen);
		goto out;
	}
	bfd = openat(rfd, s->bucket, LOCAL_DIR_FLAGS);
	e = errno;
	if (bfd < 0 && e == ENOENT) {
		snprintf(msg, msglen,
		    "bucket '%s' does not exist (run imagegen setup-bucket)",
		    s->bucket);
		*err = STOR_ERROR;
	} else if (bfd < 0) {
		*err = local_fail(e, "bucket directory", msg, msglen);
	}
out:
	if (rfd >= 0)
		close(rfd);
	errno = e;
	return bfd;
}

/*
 * Walks the directories of path (in buf, modified) from the bucket
 * descriptor bfd, which it takes over, creating them when create is set.
 * Returns the parent directory's descriptor and sets *leaf to the last
 * segment, or -1 with errno (ENOENT: a directory is missing; ELOOP or
 * ENOTDIR: a component is a symlink or a file).
 */
static int
local_walk(int bfd, char *buf, int create, const char **leaf)
{
	char *seg = buf, *slash;
	int dfd = bfd, nfd, e;

	for (slash = strchr(seg, '/'); slash != NULL; slash = strchr(seg, '/')) {
		*slash = '\0';
		nfd = local_opendir(dfd, seg, create);
		e = errno;
		close(dfd);
		dfd = nfd;
		if (dfd < 0) {
			errno = e;
			goto out;
		}
		seg = slash + 1;
	}
	*leaf = seg;
out:
	return dfd;
}

/*
 * Makes tmp visible as name in dfd, refusing to replace an existing name:
 * link(2), or renameat2(RENAME_NOREPLACE) on file systems without hard
 * links. 0, or -1 with errno (EEXIST when name exists).
 */
static int
local_publish(int dfd, const char *tmp, const char *name)
{
	if (linkat(dfd, tmp, dfd, name, 0) == 0)
		return 0;
#ifdef RENAME_NOREPLACE
	if (errno == EPERM || errno == EOPNOTSUPP || errno == ENOSYS)
		return renameat2(dfd, tmp, dfd, name, RENAME_NOREPLACE);
#endif
	return -1;
}

/*
 * Opens the directory that holds path's object, walking from the bucket
 * (directories made on the way when create), with the object's name in
 * *leaf (pointing into buf, LOCAL_PATH_MAX + 1 bytes). Returns the fd, or
 * -1 with *rc and msg set and errno kept from the failing step.
 */
static int
local_parent(struct storage *s, const char *path, char *buf, int create,
    const char **leaf, enum stor_err *rc, char *msg, size_t msglen)
{
	int bfd, dfd, e;

	if (strlen(path) > LOCAL_PATH_MAX) {
		snprintf(msg, msglen, "path too long");
		*rc = STOR_ERROR;
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, strlen(path) + 1);
	bfd = local_open_bucket(s, rc, msg, msglen);
	if (bfd < 0)
		return -1;
	dfd = local_walk(bfd, buf, create, leaf);
	if (dfd < 0) {
		e = errno;
		*rc = local_fail(e, "directory", msg, msglen);
		errno = e;
	}
	return dfd;
}

static enum stor_err
local_put(struct storage *s, const char *path, const unsigned char *data,
    size_t len, const char *mime, char *msg, size_t msglen)
{
	static unsigned tmp_seq;
	char buf[LOCAL_PATH_MAX + 1], tmp[64];
	const char *leaf;
	struct timespec ts;
	struct stat sb;
	enum stor_err rc = STOR_ERROR;
	int dfd = -1, fd = -1, tmp_made = 0, tries;

	(void)mime;	/* a file has no type: nginx derives it from .ext */
	dfd = local_parent(s, path, buf, 1, &leaf, &rc, msg, msglen);
	if (dfd < 0)
		goto out;
	/* A cheap early answer; link() below is the one that decides. */
	if (fstatat(dfd, leaf, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		snprintf(msg, msglen, "object exists");
		rc = STOR_ERROR;
		goto out;
	}
	/* The temporary file is hidden (dot) and unique to this process and
	 * moment; O_EXCL guards against anything else of that name. */
	for (tries = 0; tries < 8 && fd < 0; tries++) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		snprintf(tmp, sizeof(tmp), ".tmp-%ld-%u-%ld%09ld", (long)getpid(),
		    tmp_seq++, (long)ts.tv_sec, ts.tv_nsec);
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0644);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		rc = local_fail(errno, "create", msg, msglen);
		goto out;
	}
	tmp_made = 1;
	/* 0644 whatever the umask: nginx, another user, must read it. */
	if (fchmod(fd, 0644) != 0 || fs_write_all(fd, data, len) != 0 ||
	    fsync(fd) != 0) {
		rc = local_fail(errno, "write", msg, msglen);
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		rc = local_fail(errno, "close", msg, msglen);
		goto out;
	}
	fd = -1;
	if (local_publish(dfd, tmp, leaf) != 0) {
		if (errno == EEXIST) {
			snprintf(msg, msglen, "object exists");
			rc = STOR_ERROR;
		} else {
			rc = local_fail(errno, "link", msg, msglen);
		}
		goto out;
	}
	/* The new name must survive a crash as well as the bytes. Some file
	 * systems refuse fsync on a directory; the object is there anyway. */
	if (fsync(dfd) != 0)
		log_debug("fsync of the directory of %s: %s", path,
		    strerror(errno));
	rc = STOR_OK;
out:
	if (fd >= 0)
		close(fd);
	/* After link() the temporary name goes; after a rename it is gone
	 * already, and ENOENT is fine. */
	if (tmp_made && unlinkat(dfd, tmp, 0) != 0 && errno != ENOENT)
		log_warn("unlink %s: %s", tmp, strerror(errno));
	if (dfd >= 0)
		close(dfd);
	return rc;
}

static enum stor_err
local_del(struct storage *s, const char *path, char *msg, size_t msglen)
{
	char buf[LOCAL_PATH_MAX + 1];
	const char *leaf;
	enum stor_err rc = STOR_ERROR;
	int dfd = -1;

	dfd = local_parent(s, path, buf, 0, &leaf, &rc, msg, msglen);
	if (dfd < 0) {
		/* No bucket or no directory: no object either. */
		if (errno == ENOENT)
			rc = STOR_OK;
		goto out;
	}
	/* unlinkat never follows: a symlink leaf removes the link only.
	 * Empty directories stay: a concurrent put may be about to use one. */
	if (unlinkat(dfd, leaf, 0) != 0 && errno != ENOENT) {
		rc = local_fail(errno, "unlink", msg, msglen);
		goto out;
	}
	rc = STOR_OK;
out:
	if (dfd >= 0)
		close(dfd);
	return rc;
}

/* mkdir -p of the absolute path root. 0, or -1 with errno. */
static int
local_mkdir_p(const char *root)
{
	char buf[PATH_MAX];
	size_t i, n = strlen(root);
	struct stat sb;

	if (n == 0 || n >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, root, n + 1);
	for (i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return -1;
		if (i < n)
			buf[i] = '/';
	}
	if (stat(root, &sb) != 0)
		return -1;
	if (!S_ISDIR(sb.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

static enum stor_err
local_setup(struct storage *s, char *msg, size_t msglen)
{
	const struct local_st *st = s->state;
	enum stor_err rc = STOR_ERROR;
	int rfd = -1, bfd = -1;

	if (local_mkdir_p(st->root) != 0) {
		rc = local_fail(errno, "storage directory", msg, msglen);
		goto out;
	}
	rfd = open(st->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0) {
		rc = local_fail(errno, "storage directory", msg, msglen);
		goto out;
	}
	/* Made or found, and a directory rather than a symlink or a file. */
	bfd = local_opendir(rfd, s->bucket, 1);
	if (bfd < 0) {
		rc = local_fail(errno, "bucket directory", msg, msglen);
		goto out;
	}
	log_info("bucket %s ready under %s", s->bucket, st->root);
	rc = STOR_OK;
out:
	if (bfd >= 0)
		close(bfd);
	if (rfd >= 0)
		close(rfd);
	return rc;
}

/* Keeps storage_dir absolute, so a later chdir() (daemons go to /) does
 * not move the store. */
static int
local_open(struct storage *s, const struct cfg *c, char *err, size_t errlen)
{
	struct local_st *st = NULL;
	char cwd[PATH_MAX];
	const struct storage_local_conf *lc = c->storage_conf;
	const char *dir = lc != NULL ? lc->dir : NULL;
	size_t n;
	int rc = -1;

	if (dir == NULL || dir[0] == '\0') {
		snprintf(err, errlen, "IMAGEGEN_STORAGE_DIR: not set");
		goto out;
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		snprintf(err, errlen, "IMAGEGEN_STORAGE_DIR: out of memory");
		goto out;
	}
	if (dir[0] == '/') {
		st->root = strdup(dir);
	} else {
		if (getcwd(cwd, sizeof(cwd)) == NULL) {
			snprintf(err, errlen,
			    "IMAGEGEN_STORAGE_DIR: relative and no working directory: %s",
			    strerror(errno));
			goto out;
		}
		n = strlen(cwd) + 1 + strlen(dir) + 1;
		st->root = malloc(n);
		if (st->root != NULL)
			snprintf(st->root, n, "%s/%s", cwd, dir);
	}
	if (st->root == NULL) {
		snprintf(err, errlen, "IMAGEGEN_STORAGE_DIR: out of memory");
		goto out;
	}
	s->state = st;
	st = NULL;
	rc = 0;
out:
	if (st != NULL)
		free(st->root);
	free(st);
	return rc;
}

static void
local_close(struct storage *s)
{
	struct local_st *st = s->state;

	if (st != NULL)
		free(st->root);
	free(st);
	s->state = NULL;
}

static enum stor_err
local_get(struct storage *s, const char *path, size_t max, unsigned char **data,
    size_t *len, char *msg, size_t msglen)
{
	char buf[LOCAL_PATH_MAX + 1];
	const char *leaf;
	unsigned char *out = NULL;
	enum stor_err rc = STOR_ERROR;
	struct stat st;
	int dfd = -1, fd = -1;
	ssize_t n;
	size_t got = 0;

	dfd = local_parent(s, path, buf, 0, &leaf, &rc, msg, msglen);
	if (dfd < 0)
		goto out;
	fd = openat(dfd, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = local_fail(fd < 0 ? errno : EINVAL, "open", msg, msglen);
		goto out;
	}
	if ((size_t)st.st_size > max) {
		snprintf(msg, msglen, "object larger than %zu bytes", max);
		rc = STOR_ERROR;
		goto out;
	}
	out = malloc((size_t)st.st_size + 1);
	if (out == NULL) {
		snprintf(msg, msglen, "out of memory");
		rc = STOR_TEMPORARY;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, out + got, (size_t)st.st_size - got);
		if (n <= 0) {
			rc = local_fail(n < 0 ? errno : EIO, "read", msg, msglen);
			goto out;
		}
		got += (size_t)n;
	}
	*data = out;
	*len = got;
	out = NULL;
	rc = STOR_OK;
out:
	free(out);
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	return rc;
}

/* The public URLs are IMAGEGEN_PUBLIC_BASE_URL's; nginx serves the same
 * objects at its own bare path whatever that base is (a CDN in front). */
static int
local_urls(struct storage *s, const struct cfg *c, char *err, size_t errlen)
{
	(void)c;
	return storage_add_url_form(s, err, errlen,
	    "/storage/v1/object/public/%s/", s->bucket);
}

static const struct setting local_settings[] = {
	{ "IMAGEGEN_STORAGE_DIR", SET_STR, "var/storage", 0, 0,
	  offsetof(struct storage_local_conf, dir), 0, NULL, NULL,
	  "the local backend's root: objects at `DIR/BUCKET/PATH`" },
	{ NULL, 0, NULL, 0, 0, 0, 0, NULL, NULL, NULL }
};

/* The fallback: chosen when no other backend's default_if holds. */
static const char *const local_default_if[] = { NULL };

const struct storage_ops storage_local = {
	.name = "local",
	.about = "files under `IMAGEGEN_STORAGE_DIR`, which nginx also serves "
	    "at `/storage/v1/object/public/BUCKET/…`",
	.settings = local_settings,
	.conf_size = sizeof(struct storage_local_conf),
	.default_if = local_default_if,
	.open = local_open,
	.close = local_close,
	.put = local_put,
	.get = local_get,
	.del = local_del,
	.setup = local_setup,
	.urls = local_urls,
};
