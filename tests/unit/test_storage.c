/* test_storage.c - object paths, URLs and the directory backend. */
#include <ctype.h>
#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arena.h"
#include "cu_main.h"
#include "jobreq.h"
#include "s3_endpoint.h"
#include "storage.h"
#include "storage_local.h"
#include "supabase.h"

#define P_ID "0b0e8f5e-3c1a-4c55-9d5e-0a6f5d8e1b21"
#define B_ID "1c1f9a6f-4d2b-4d66-8e6f-1b7a6e9f2c32"
#define J_ID "2d2a0b7a-5e3c-4e77-9f7a-2c8b7fa03d43"
#define A_ID "3e3b1c8b-6f4d-4f88-8a8b-3d9c8ab14e54"
#define S_ID "4f4c2d9c-7a5e-4a99-9b9c-4eadb9c25f65"
#define H_ID "5a5d3ead-8b6f-4baa-acad-5fbecad36a76"
#define TS 1700000000123LL

/* The row itself (storage.h no longer declares the rows). */
extern const struct storage_ops storage_local;

static char tmpdir[64];		/* /tmp/test_storage.XXXXXX */

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(path);
}

static int
suite_init(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_storage.XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
suite_cleanup(void)
{
	return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Checks that path is prefix, 8 lower-case hex digits, then suffix. */
static void
check_path(const char *path, const char *prefix, const char *suffix)
{
	size_t pl = strlen(prefix), i;

	CU_ASSERT_EQUAL_FATAL(strlen(path), pl + 8 + strlen(suffix));
	CU_ASSERT_NSTRING_EQUAL(path, prefix, pl);
	for (i = 0; i < 8; i++)
		CU_ASSERT(isxdigit((unsigned char)path[pl + i]) &&
		    !isupper((unsigned char)path[pl + i]));
	CU_ASSERT_STRING_EQUAL(path + pl + 8, suffix);
	CU_ASSERT(storage_path_ok(path));
}

/* ---- storage_path_for ------------------------------------------------- */

static void
test_path_for_each_job_type(void)
{
	char out[512], again[512];

	CU_ASSERT_EQUAL(storage_path_for(out, sizeof(out), "master_asset", P_ID,
	    B_ID, J_ID, A_ID, NULL, NULL, TS, "image/png"), 0);
	check_path(out, "project_" P_ID "/branch_" B_ID "/master-assets/" A_ID
	    "_1700000000123_", ".png");

	/* no asset: the job id names the file */
	CU_ASSERT_EQUAL(storage_path_for(out, sizeof(out), "master_asset", P_ID,
	    B_ID, J_ID, NULL, NULL, NULL, TS, "image/png"), 0);
	check_path(out, "project_" P_ID "/branch_" B_ID "/master-assets/" J_ID
	    "_1700000000123_", ".png");
	CU_ASSERT_EQUAL(storage_path_for(out, sizeof(out), "master_asset", P_ID,
	    B_ID, J_ID, "", NULL, NULL, TS, "image/png"), 0);
	check_path(out, "project_" P_ID "/branch_" B_ID "/master-assets/" J_ID
	    "_1700000000123_", ".png");

	CU_ASSERT_EQUAL(storage_path_for(out, sizeof(out), "start_frame", P_ID,
	    B_ID, J_ID, NULL, S_ID, H_ID, TS, "image/jpeg"), 0);
	check_path(out, "project_" P_ID "/branch_" B_ID "/scene_" S_ID "/shot_"
	    H_ID "/start_frame_1700000000123_", ".jpg");

	CU_ASSERT_EQUAL(storage_path_for(out, sizeof(out), "end_frame", P_ID,
	    B_ID, J_ID, NULL, S_ID, H_ID, TS, "image/webp"), 0);
	check_path(out, "project_" P_ID "/branch_" B_ID "/scene_" S_ID "/shot_"
	    H_ID "/end_frame_1700000000123_", ".webp");

	CU_ASSERT_EQUAL(storage_path_for(out, sizeof(out), "inpaint", P_ID,
	    B_ID, J_ID, A_ID, NULL, NULL, TS, "image/png"), 0);
	check_path(out, "project_" P_ID "/branch_" B_ID "/inpaint/" A_ID
	    "_1700000000123_", ".png");
	CU_ASSERT_EQUAL(storage_path_for(out, sizeof(out), "inpaint", P_ID,
	    B_ID, J_ID, NULL, NULL, NULL, 0, "image/png"), 0);
	check_path(out, "project_" P_ID "/branch_" B_ID "/inpaint/" J_ID
	    "_0_", ".png");

	/* ids in upper case come out as Postgres prints them */
	CU_ASSERT_EQUAL(storage_path_for(out, sizeof(out), "master_asset",
	    "0B0E8F5E-3C1A-4C55-9D5E-0A6F5D8E1B21", B_ID, J_ID, A_ID, NULL,
	    NULL, TS, "image/png"), 0);
	check_path(out, "project_" P_ID "/branch_" B_ID "/master-assets/" A_ID
	    "_1700000000123_", ".png");

	/* the random part differs from call to call */
	CU_ASSERT_EQUAL(storage_path_for(again, sizeof(again), "master_asset",
	    P_ID, B_ID, J_ID, A_ID, NULL, NULL, TS, "image/png"), 0);
	CU_ASSERT_STRING_NOT_EQUAL(out, again);
}

static void
test_path_for_refuses_bad_ids(void)
{
	static const char *const bad[] = {
		"../x", "1' OR '1", "", "x",
		P_ID "/..", P_ID "x", "0b0e8f5e-3c1a-4c55-9d5e-0a6f5d8e1b2",
		"0b0e8f5e_3c1a_4c55_9d5e_0a6f5d8e1b21",
		"0b0e8f5e-3c1a-4c55-9d5e-0a6f5d8e1b2g",
		"{0b0e8f5e-3c1a-4c55-9d5e-0a6f5d8e1b2}",
	};
	char out[512];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* project and branch are required: "" is as bad as junk */
		CU_ASSERT_EQUAL(storage_path_for(out, sizeof(out),
		    "master_asset", bad[i], B_ID, J_ID, A_ID, NULL, NULL, TS,
		    "image/png"), -1);
		CU_ASSERT_STRING_EQUAL(out, "");
		CU_ASSERT_EQUAL(storage_path_for(out, sizeof(out),
		    "master_asset", P_ID, bad[i], J_ID, A_ID, NULL, NULL, TS,
		    "image/png"), -1);
		CU_ASSERT_EQUAL(storage_path_for(out, sizeof(out),
		    "start_frame", P_ID, B_ID, J_ID, NULL, S_ID, bad[i], TS,
		    "image/png"), -1);
		CU_ASSERT_EQUAL(storage_path_for(out, sizeof(out),
		    "start_frame", P_ID, B_ID, J_ID, NULL, bad[i], H_ID, TS,
		    "image/png"), -1);
		if (bad[i][0] == '\0')
			continue;	/* "" is "no asset" */
		CU_ASSERT_EQUAL(storage_path_for(out, sizeof(out),
		    "master_asset", P_ID, B_ID, J_ID, bad[i], NULL, NULL, TS,
		    "image/png"), -1);
		/* an id given but unused is still checked */
		CU_ASSERT_EQUAL(storage_path_for(out, sizeof(out),
		    "master_asset", P_ID, B_ID, bad[i], A_ID, NULL, NULL, TS,
		    "image/png"), -1);
	}
	CU_ASSERT_EQUAL(storage_path_for(out, sizeof(out), "master_asset", NULL,
	    B_ID, J_ID, A_ID, NULL, NULL, TS, "image/png"), -1);
	/* neither asset nor job */
	CU_ASSERT_EQUAL(storage_path_for(out, sizeof(out), "master_asset", P_ID,
	    B_ID, NULL, NULL, NULL, NULL, TS, "image/png"), -1);
	/* a frame needs its scene and shot */
	CU_ASSERT_EQUAL(storage_path_for(out, sizeof(out), "end_frame", P_ID,
	    B_ID, J_ID, NULL, S_ID, NULL, TS, "image/png"), -1);
	CU_ASSERT_EQUAL(storage_path_for(out, sizeof(out), "end_frame", P_ID,
	    B_ID, J_ID, NULL, NULL, H_ID, TS, "image/png"), -1);
	/* unknown type or mime, negative time, no room */
	CU_ASSERT_EQUAL(storage_path_for(out, sizeof(out), "video", P_ID, B_ID,
	    J_ID, A_ID, NULL, NULL, TS, "image/png"), -1);
	CU_ASSERT_EQUAL(storage_path_for(out, sizeof(out), NULL, P_ID, B_ID,
	    J_ID, A_ID, NULL, NULL, TS, "image/png"), -1);
	CU_ASSERT_EQUAL(storage_path_for(out, sizeof(out), "master_asset", P_ID,
	    B_ID, J_ID, A_ID, NULL, NULL, TS, "image/gif"), -1);
	CU_ASSERT_EQUAL(storage_path_for(out, sizeof(out), "master_asset", P_ID,
	    B_ID, J_ID, A_ID, NULL, NULL, TS, NULL), -1);
	CU_ASSERT_EQUAL(storage_path_for(out, sizeof(out), "master_asset", P_ID,
	    B_ID, J_ID, A_ID, NULL, NULL, -1, "image/png"), -1);
	CU_ASSERT_EQUAL(storage_path_for(out, 100, "master_asset", P_ID, B_ID,
	    J_ID, A_ID, NULL, NULL, TS, "image/png"), -1);
	CU_ASSERT_STRING_EQUAL(out, "");
}

static void
test_path_ok_table(void)
{
	static const struct { const char *path; int ok; } v[] = {
		{ "a", 1 },
		{ "a/b.png", 1 },
		{ "project_x/branch_y/master-assets/f_1_ab.png", 1 },
		{ "a..b/c", 1 },
		{ ".hidden/x", 1 },
		{ "...", 1 },
		{ "A-Z_0.9", 1 },
		{ "", 0 },
		{ "/a", 0 },
		{ "a/", 0 },
		{ "a//b", 0 },
		{ ".", 0 },
		{ "..", 0 },
		{ "../x", 0 },
		{ "a/../b", 0 },
		{ "./a", 0 },
		{ "a/.", 0 },
		{ "a/..", 0 },
		{ "a b", 0 },
		{ "a\\b", 0 },
		{ "a%2e", 0 },
		{ "a?b", 0 },
		{ "a\nb", 0 },
		{ "caf\xc3\xa9", 0 },
	};
	char longp[1100];
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		CU_ASSERT_EQUAL(storage_path_ok(v[i].path), v[i].ok);
	CU_ASSERT_EQUAL(storage_path_ok(NULL), 0);
	memset(longp, 'a', sizeof(longp));
	longp[1024] = '\0';
	CU_ASSERT_EQUAL(storage_path_ok(longp), 1);
	longp[1024] = 'a';
	longp[1025] = '\0';
	CU_ASSERT_EQUAL(storage_path_ok(longp), 0);
}

/* ---- storage_open and URLs -------------------------------------------- */

/* Each backend's own settings; cfg_for() points c at backend's. */
static struct storage_local_conf local_conf;
static struct supa_conf supa_conf;
static struct s3_conf s3c;

static void
cfg_for(struct cfg *c, const char *backend, const char *dir)
{
	memset(c, 0, sizeof(*c));
	memset(&local_conf, 0, sizeof(local_conf));
	memset(&supa_conf, 0, sizeof(supa_conf));
	memset(&s3c, 0, sizeof(s3c));
	c->storage = (char *)backend;
	c->storage_conf = strcmp(backend, "supabase") == 0 ? (void *)&supa_conf :
	    strcmp(backend, "s3") == 0 ? (void *)&s3c : (void *)&local_conf;
	local_conf.dir = (char *)dir;
	c->bucket = "asset-images";
	c->public_base_url = "/storage/v1/object/public";
}

static void
test_storage_open_table(void)
{
	static const char *const absent[] = { "nonesuch" };
	/* The remote backends are built in; without their settings, open
	 * names the first one missing. */
	static const char *const remote[][2] = {
		{ "supabase", "SUPABASE_URL is not set (needed by IMAGEGEN_STORAGE=supabase)" },
		{ "s3", "S3_ENDPOINT is not set (needed by IMAGEGEN_STORAGE=s3)" },
	};
	struct storage s;
	struct cfg c;
	char err[256], want[256];
	size_t i;

	for (i = 0; i < sizeof(absent) / sizeof(absent[0]); i++) {
		cfg_for(&c, absent[i], tmpdir);
		err[0] = '\0';
		CU_ASSERT_EQUAL(storage_open(&s, &c, err, sizeof(err)), -1);
		snprintf(want, sizeof(want),
		    "IMAGEGEN_STORAGE: backend '%s' is not available in this build",
		    absent[i]);
		CU_ASSERT_STRING_EQUAL(err, want);
		CU_ASSERT_PTR_NULL(s.ops);
		storage_close(&s);
	}
	for (i = 0; i < sizeof(remote) / sizeof(remote[0]); i++) {
		cfg_for(&c, remote[i][0], tmpdir);
		err[0] = '\0';
		CU_ASSERT_EQUAL(storage_open(&s, &c, err, sizeof(err)), -1);
		CU_ASSERT_STRING_EQUAL(err, remote[i][1]);
		CU_ASSERT_PTR_NULL(s.ops);
		storage_close(&s);
	}
	cfg_for(&c, "local", tmpdir);
	c.bucket = "../x";
	CU_ASSERT_EQUAL(storage_open(&s, &c, err, sizeof(err)), -1);
	c.bucket = "a/b";
	CU_ASSERT_EQUAL(storage_open(&s, &c, err, sizeof(err)), -1);
	cfg_for(&c, "local", "");
	CU_ASSERT_EQUAL(storage_open(&s, &c, err, sizeof(err)), -1);
	CU_ASSERT_NSTRING_EQUAL(err, "IMAGEGEN_STORAGE_DIR", 20);

	cfg_for(&c, "local", tmpdir);
	c.bucket = "other-bucket";
	c.public_base_url = "https://cdn.example.com/storage/v1/object/public";
	CU_ASSERT_EQUAL_FATAL(storage_open(&s, &c, err, sizeof(err)), 0);
	CU_ASSERT_PTR_EQUAL(s.ops, &storage_local);
	CU_ASSERT_STRING_EQUAL(s.bucket, "other-bucket");
	CU_ASSERT_STRING_EQUAL(s.public_base,
	    "https://cdn.example.com/storage/v1/object/public");
	storage_close(&s);
	CU_ASSERT_PTR_NULL(s.ops);
	storage_close(&s);
	storage_close(NULL);
}

static void
test_storage_public_url(void)
{
	struct storage s;
	struct cfg c;
	char err[256], url[256];

	cfg_for(&c, "local", tmpdir);
	CU_ASSERT_EQUAL_FATAL(storage_open(&s, &c, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(storage_public_url(&s, "project_a/x.png", url,
	    sizeof(url)), 0);
	CU_ASSERT_STRING_EQUAL(url,
	    "/storage/v1/object/public/asset-images/project_a/x.png");
	/* exactly fitting, one byte short */
	CU_ASSERT_EQUAL(storage_public_url(&s, "project_a/x.png", url,
	    strlen("/storage/v1/object/public/asset-images/project_a/x.png") +
	    1), 0);
	CU_ASSERT_EQUAL(storage_public_url(&s, "project_a/x.png", url,
	    strlen("/storage/v1/object/public/asset-images/project_a/x.png")),
	    -1);
	CU_ASSERT_STRING_EQUAL(url, "");
	CU_ASSERT_EQUAL(storage_public_url(&s, "../x.png", url, sizeof(url)),
	    -1);
	storage_close(&s);

	c.public_base_url = "https://example.supabase.co/storage/v1/object/public";
	CU_ASSERT_EQUAL_FATAL(storage_open(&s, &c, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(storage_public_url(&s, "a/b.webp", url, sizeof(url)), 0);
	CU_ASSERT_STRING_EQUAL(url, "https://example.supabase.co/storage/v1/"
	    "object/public/asset-images/a/b.webp");
	storage_close(&s);
}

/* ---- the local backend ------------------------------------------------ */

/* Reads the whole file at path into buf; its length, or -1. */
static long
slurp(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL)
		return -1;
	n = fread(buf, 1, cap, f);
	fclose(f);
	return (long)n;
}

/* Entries in dir whose name starts with ".tmp". */
static int
count_tmp(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	for (e = readdir(d); e != NULL; e = readdir(d))
		if (strncmp(e->d_name, ".tmp", 4) == 0)
			n++;
	closedir(d);
	return n;
}

static void
test_local_backend(void)
{
	static const unsigned char one[] = "first picture";
	static const unsigned char two[] = "second picture";
	const char *obj = "project_a/branch_b/master-assets/f_1_deadbeef.png";
	char root[PATH_MAX], p[PATH_MAX + 128], msg[256], buf[64];
	struct storage s;
	struct stat sb;
	struct cfg c;
	mode_t old;

	snprintf(root, sizeof(root), "%s/store", tmpdir);
	cfg_for(&c, "local", root);
	CU_ASSERT_EQUAL_FATAL(storage_open(&s, &c, msg, sizeof(msg)), 0);

	/* before setup: a clear refusal, nothing created */
	CU_ASSERT_EQUAL(storage_put(&s, obj, one, sizeof(one), "image/png", msg,
	    sizeof(msg)), STOR_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "setup-bucket"));
	CU_ASSERT_EQUAL(storage_delete(&s, obj, msg, sizeof(msg)), STOR_OK);

	/* setup, twice: harmless */
	CU_ASSERT_EQUAL(s.ops->setup(&s, msg, sizeof(msg)), STOR_OK);
	CU_ASSERT_EQUAL(s.ops->setup(&s, msg, sizeof(msg)), STOR_OK);
	snprintf(p, sizeof(p), "%s/asset-images", root);
	CU_ASSERT(stat(p, &sb) == 0 && S_ISDIR(sb.st_mode));

	/* put under a strict umask: still 0644 files and 0755 directories,
	 * which nginx needs */
	old = umask(077);
	CU_ASSERT_EQUAL(storage_put(&s, obj, one, sizeof(one), "image/png", msg,
	    sizeof(msg)), STOR_OK);
	umask(old);
	snprintf(p, sizeof(p), "%s/asset-images/%s", root, obj);
	CU_ASSERT_EQUAL(slurp(p, buf, sizeof(buf)), (long)sizeof(one));
	CU_ASSERT(memcmp(buf, one, sizeof(one)) == 0);
	CU_ASSERT(stat(p, &sb) == 0 && (sb.st_mode & 07777) == 0644);
	snprintf(p, sizeof(p), "%s/asset-images/project_a/branch_b", root);
	CU_ASSERT(stat(p, &sb) == 0 && (sb.st_mode & 07777) == 0755);
	snprintf(p, sizeof(p), "%s/asset-images/project_a/branch_b/master-assets",
	    root);
	CU_ASSERT_EQUAL(count_tmp(p), 0);

	/* never overwritten */
	CU_ASSERT_EQUAL(storage_put(&s, obj, two, sizeof(two), "image/png", msg,
	    sizeof(msg)), STOR_ERROR);
	CU_ASSERT_STRING_EQUAL(msg, "object exists");
	snprintf(p, sizeof(p), "%s/asset-images/%s", root, obj);
	CU_ASSERT_EQUAL(slurp(p, buf, sizeof(buf)), (long)sizeof(one));
	CU_ASSERT(memcmp(buf, one, sizeof(one)) == 0);
	snprintf(p, sizeof(p), "%s/asset-images/project_a/branch_b/master-assets",
	    root);
	CU_ASSERT_EQUAL(count_tmp(p), 0);

	/* a second object beside it, then delete, delete again, delete in
	 * a directory that does not exist */
	CU_ASSERT_EQUAL(storage_put(&s, "project_a/branch_b/master-assets/g.png",
	    two, sizeof(two), "image/png", msg, sizeof(msg)), STOR_OK);
	CU_ASSERT_EQUAL(storage_delete(&s, obj, msg, sizeof(msg)), STOR_OK);
	snprintf(p, sizeof(p), "%s/asset-images/%s", root, obj);
	CU_ASSERT_EQUAL(access(p, F_OK), -1);
	CU_ASSERT_EQUAL(storage_delete(&s, obj, msg, sizeof(msg)), STOR_OK);
	CU_ASSERT_EQUAL(storage_delete(&s, "project_z/none/x.png", msg,
	    sizeof(msg)), STOR_OK);
	/* put after delete: the name is free again */
	CU_ASSERT_EQUAL(storage_put(&s, obj, two, sizeof(two), "image/png", msg,
	    sizeof(msg)), STOR_OK);
	/* an empty object is still an object */
	CU_ASSERT_EQUAL(storage_put(&s, "empty.png", one, 0, "image/png", msg,
	    sizeof(msg)), STOR_OK);

	/* invalid paths never reach the backend */
	CU_ASSERT_EQUAL(storage_put(&s, "../escape.png", one, sizeof(one),
	    "image/png", msg, sizeof(msg)), STOR_ERROR);
	CU_ASSERT_STRING_EQUAL(msg, "invalid object path");
	snprintf(p, sizeof(p), "%s/escape.png", root);
	CU_ASSERT_EQUAL(access(p, F_OK), -1);
	CU_ASSERT_EQUAL(storage_delete(&s, "/etc/passwd", msg, sizeof(msg)),
	    STOR_ERROR);
	CU_ASSERT_EQUAL(storage_put(&s, "a//b", one, sizeof(one), "image/png",
	    msg, sizeof(msg)), STOR_ERROR);
	CU_ASSERT_EQUAL(storage_put(&s, "x.gif", one, sizeof(one), "image/gif",
	    msg, sizeof(msg)), STOR_ERROR);
	CU_ASSERT_STRING_EQUAL(msg, "unsupported type");
	storage_close(&s);
}

/* Guards O_NOFOLLOW: a symlink inside the bucket never leads out of it. */
static void
test_local_backend_symlink_escape(void)
{
	static const unsigned char data[] = "payload";
	char root[PATH_MAX], outside[PATH_MAX], p[PATH_MAX + 128], msg[256];
	char buf[64];
	struct storage s;
	struct cfg c;

	snprintf(root, sizeof(root), "%s/store2", tmpdir);
	snprintf(outside, sizeof(outside), "%s/outside", tmpdir);
	CU_ASSERT_EQUAL_FATAL(mkdir(outside, 0755), 0);
	cfg_for(&c, "local", root);
	CU_ASSERT_EQUAL_FATAL(storage_open(&s, &c, msg, sizeof(msg)), 0);
	CU_ASSERT_EQUAL_FATAL(s.ops->setup(&s, msg, sizeof(msg)), STOR_OK);

	/* a directory symlink in the path */
	snprintf(p, sizeof(p), "%s/asset-images/project_s", root);
	CU_ASSERT_EQUAL_FATAL(symlink(outside, p), 0);
	CU_ASSERT_EQUAL(storage_put(&s, "project_s/x.png", data, sizeof(data),
	    "image/png", msg, sizeof(msg)), STOR_ERROR);
	snprintf(p, sizeof(p), "%s/x.png", outside);
	CU_ASSERT_EQUAL(access(p, F_OK), -1);
	CU_ASSERT_EQUAL(storage_put(&s, "project_s/deeper/x.png", data,
	    sizeof(data), "image/png", msg, sizeof(msg)), STOR_ERROR);
	snprintf(p, sizeof(p), "%s/deeper", outside);
	CU_ASSERT_EQUAL(access(p, F_OK), -1);

	/* a file outside, reachable through the link: delete must not
	 * touch it */
	snprintf(p, sizeof(p), "%s/victim.png", outside);
	{
		FILE *f = fopen(p, "wb");

		CU_ASSERT_PTR_NOT_NULL_FATAL(f);
		fputs("keep", f);
		fclose(f);
	}
	CU_ASSERT_NOT_EQUAL(storage_delete(&s, "project_s/victim.png", msg,
	    sizeof(msg)), STOR_OK);
	CU_ASSERT_EQUAL(access(p, F_OK), 0);

	/* a symlink as the object: put refuses, delete drops the link only */
	snprintf(p, sizeof(p), "%s/asset-images/link.png", root);
	snprintf(buf, sizeof(buf), "../../outside/victim.png");
	CU_ASSERT_EQUAL_FATAL(symlink(buf, p), 0);
	CU_ASSERT_EQUAL(storage_put(&s, "link.png", data, sizeof(data),
	    "image/png", msg, sizeof(msg)), STOR_ERROR);
	CU_ASSERT_STRING_EQUAL(msg, "object exists");
	CU_ASSERT_EQUAL(storage_delete(&s, "link.png", msg, sizeof(msg)),
	    STOR_OK);
	snprintf(p, sizeof(p), "%s/victim.png", outside);
	CU_ASSERT_EQUAL(slurp(p, buf, sizeof(buf)), 4);
	storage_close(&s);
}

/* A relative IMAGEGEN_STORAGE_DIR is pinned at open: a later chdir()
 * does not move the store. */
static void
test_local_backend_relative_dir(void)
{
	static const unsigned char data[] = "rel";
	char cwd[PATH_MAX], p[PATH_MAX + 128], msg[256];
	struct storage s;
	struct cfg c;

	CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof(cwd)));
	CU_ASSERT_EQUAL_FATAL(chdir(tmpdir), 0);
	cfg_for(&c, "local", "rel/store");
	CU_ASSERT_EQUAL(storage_open(&s, &c, msg, sizeof(msg)), 0);
	CU_ASSERT_EQUAL(chdir("/"), 0);
	if (s.ops != NULL) {
		CU_ASSERT_EQUAL(s.ops->setup(&s, msg, sizeof(msg)), STOR_OK);
		CU_ASSERT_EQUAL(storage_put(&s, "x.png", data, sizeof(data),
		    "image/png", msg, sizeof(msg)), STOR_OK);
		snprintf(p, sizeof(p), "%s/rel/store/asset-images/x.png",
		    tmpdir);
		CU_ASSERT_EQUAL(access(p, F_OK), 0);
	}
	storage_close(&s);
	CU_ASSERT_EQUAL(chdir(cwd), 0);
}

/* storage_path_of_url's path, or NULL when it refuses; a new buffer each
 * call (the last few kept), so two answers can be compared. */
static const char *
path_of(const struct storage *s, const char *url)
{
	static char bufs[4][STORAGE_PATH_MAX + 1];
	static int k;
	char *out = bufs[k++ % 4];

	return storage_path_of_url(s, url, out, STORAGE_PATH_MAX + 1) == 0 ? out : NULL;
}

/* storage_get reads back what put wrote, bounded; storage_path_of_url
 * accepts only our own bucket's URLs. */
static void
test_local_get_and_path_of_url(void)
{
	static const unsigned char pic[] = "a picture";
	const char *obj = "project_a/branch_b/inpaint/src_1_deadbeef.png";
	char root[PATH_MAX], msg[256];
	unsigned char *data = NULL;
	struct storage s;
	struct cfg c;
	size_t len = 0;

	snprintf(root, sizeof(root), "%s/getstore", tmpdir);
	cfg_for(&c, "local", root);
	CU_ASSERT_EQUAL_FATAL(storage_open(&s, &c, msg, sizeof(msg)), 0);
	CU_ASSERT_EQUAL_FATAL(storage_setup(&s, msg, sizeof(msg)), STOR_OK);
	CU_ASSERT_EQUAL_FATAL(storage_put(&s, obj, pic, sizeof(pic), "image/png", msg,
	    sizeof(msg)), STOR_OK);
	CU_ASSERT_EQUAL(storage_get(&s, obj, 1024, &data, &len, msg, sizeof(msg)), STOR_OK);
	CU_ASSERT_EQUAL(len, sizeof(pic));
	CU_ASSERT(data != NULL && memcmp(data, pic, sizeof(pic)) == 0);
	free(data);
	data = NULL;
	CU_ASSERT_EQUAL(storage_get(&s, obj, 4, &data, &len, msg, sizeof(msg)), STOR_ERROR);
	CU_ASSERT_PTR_NULL(data);
	CU_ASSERT_EQUAL(storage_get(&s, "project_a/none.png", 1024, &data, &len, msg,
	    sizeof(msg)), STOR_ERROR);
	CU_ASSERT_EQUAL(storage_get(&s, "../etc/passwd", 1024, &data, &len, msg,
	    sizeof(msg)), STOR_ERROR);

	CU_ASSERT_STRING_EQUAL(path_of(&s,
	    "/storage/v1/object/public/asset-images/project_a/x.png"), "project_a/x.png");
	/* a bare-path base names no host: an absolute URL can't be ours */
	CU_ASSERT_PTR_NULL(path_of(&s,
	    "https://localhost:8443/storage/v1/object/public/asset-images/project_a/x.png"));
	CU_ASSERT_PTR_NULL(path_of(&s,
	    "https://evil.example/storage/v1/object/public/other-bucket/x.png"));
	CU_ASSERT_PTR_NULL(path_of(&s,
	    "/storage/v1/object/public/asset-images/../secret.png"));
	CU_ASSERT_PTR_NULL(path_of(&s,
	    "/storage/v1/object/public/asset-imagesX/a.png"));
	CU_ASSERT_PTR_NULL(path_of(&s, "ftp://h/storage/v1/object/public/asset-images/a.png"));
	storage_close(&s);
}

/* ---- which URLs are of our bucket, per backend ------------------------- */

#define OBJ "project_a/branch_b/inpaint/src_1_deadbeef.png"

/* A configuration for backend with no IMAGEGEN_PUBLIC_BASE_URL (base
 * NULL) or that one; endpoint is SUPABASE_URL or S3_ENDPOINT. */
static void
cfg_remote(struct cfg *c, const char *backend, const char *endpoint,
    const char *base)
{
	cfg_for(c, backend, tmpdir);
	if (base != NULL)
		c->public_base_url = (char *)base;
	c->public_base_url_set = base != NULL;
	c->project_url = (char *)endpoint;
	supa_conf.service_role_key = "service-role-key";
	s3c.endpoint = (char *)endpoint;
	s3c.region = "us-east-1";
	s3c.access_key = "AKID";
	s3c.secret_key = "secret";
	c->provider_timeout_ms = 5000;
}

/* url names OBJ in s. */
static void
check_ours(struct storage *s, const char *url)
{
	const char *p = path_of(s, url);

	CU_ASSERT_PTR_NOT_NULL(p);
	if (p == NULL)
		fprintf(stderr, "\n  refused: %s\n", url);
	else
		CU_ASSERT_STRING_EQUAL(p, OBJ);
}

static void
check_not_ours(struct storage *s, const char *url)
{
	const char *p = path_of(s, url);

	CU_ASSERT_PTR_NULL(p);
	if (p != NULL)
		fprintf(stderr, "\n  accepted: %s as %s\n", url, p);
}

/* The public URL storage_public_url() makes for OBJ is one of ours, for
 * a handle from storage_urls() and one from storage_open() alike. */
static void
check_round_trip(const struct cfg *c, const char *want_url)
{
	struct storage s;
	char url[STORAGE_URL_MAX + 128], err[256];

	CU_ASSERT_EQUAL_FATAL(storage_urls(&s, c, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(storage_public_url(&s, OBJ, url, sizeof(url)), 0);
	CU_ASSERT_STRING_EQUAL(url, want_url);
	check_ours(&s, url);
	CU_ASSERT_EQUAL_FATAL(storage_open(&s, c, err, sizeof(err)), 0);
	check_ours(&s, url);
	storage_close(&s);
}

/* What every backend refuses after a prefix of its own. */
static void
check_bad_paths(struct storage *s, const char *prefix)
{
	static const char *const bad[] = {
		"", "/", "../secret.png", "project_a/../../x.png",
		"%2e%2e/secret.png", "%2E%2E%2Fsecret.png", "project_a/%2e%2e/x.png",
		"%252e%252e/x.png", "x.png%00.jpg", "x.png%", "x.png%2", "x%zz.png",
		"x.png?download=1", "x.png#frag", "a//b.png", "a/./b.png",
		"x%20y.png", "x\\y.png",
	};
	char url[STORAGE_URL_MAX + 128];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(url, sizeof(url), "%s%s", prefix, bad[i]);
		check_not_ours(s, url);
	}
	/* escapes of what a path may hold are decoded, once */
	snprintf(url, sizeof(url), "%s%s", prefix,
	    "project%5Fa%2Fbranch_b/inpaint/src%5f1_deadbeef.png");
	check_ours(s, url);
}

static void
test_path_of_url_local(void)
{
	struct storage s;
	struct cfg c;
	char err[256];

	cfg_for(&c, "local", tmpdir);
	CU_ASSERT_EQUAL_FATAL(storage_urls(&s, &c, err, sizeof(err)), 0);
	check_ours(&s, "/storage/v1/object/public/asset-images/" OBJ);
	check_bad_paths(&s, "/storage/v1/object/public/asset-images/");
	check_not_ours(&s, "/storage/v1/object/public/asset-imagesX/" OBJ);
	check_not_ours(&s, "/storage/v1/object/public/other/" OBJ);
	check_not_ours(&s, "//storage/v1/object/public/asset-images/" OBJ);
	check_not_ours(&s, "https://evil.example/storage/v1/object/public/asset-images/" OBJ);
	check_round_trip(&c, "/storage/v1/object/public/asset-images/" OBJ);

	/* IMAGEGEN_PUBLIC_BASE_URL: its URLs, and nginx's own path still */
	c.public_base_url = "https://cdn.example.com/img";
	c.public_base_url_set = 1;
	CU_ASSERT_EQUAL_FATAL(storage_urls(&s, &c, err, sizeof(err)), 0);
	check_ours(&s, "https://cdn.example.com/img/asset-images/" OBJ);
	check_ours(&s, "/storage/v1/object/public/asset-images/" OBJ);
	check_bad_paths(&s, "https://cdn.example.com/img/asset-images/");
	check_not_ours(&s, "https://cdn.example.com.evil/img/asset-images/" OBJ);
	check_not_ours(&s, "http://cdn.example.com/img/asset-images/" OBJ);
	check_not_ours(&s, "https://cdn.example.com/img/asset-images" OBJ);
	check_round_trip(&c, "https://cdn.example.com/img/asset-images/" OBJ);
}

/* Without IMAGEGEN_PUBLIC_BASE_URL the public URLs are Storage's own. */
static void
test_path_of_url_supabase(void)
{
	struct storage s;
	struct cfg c;
	char err[256];

	cfg_remote(&c, "supabase", "https://ref.supabase.co/", NULL);
	CU_ASSERT_EQUAL_FATAL(storage_urls(&s, &c, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(s.public_base,
	    "https://ref.supabase.co/storage/v1/object/public");
	check_ours(&s, "https://ref.supabase.co/storage/v1/object/public/asset-images/" OBJ);
	check_bad_paths(&s, "https://ref.supabase.co/storage/v1/object/public/asset-images/");
	/* not the local default, not another project, bucket or API */
	check_not_ours(&s, "/storage/v1/object/public/asset-images/" OBJ);
	check_not_ours(&s, "https://other.supabase.co/storage/v1/object/public/asset-images/" OBJ);
	check_not_ours(&s, "https://ref.supabase.co.evil.example/storage/v1/object/public/asset-images/" OBJ);
	check_not_ours(&s, "https://ref.supabase.co@evil.example/storage/v1/object/public/asset-images/" OBJ);
	check_not_ours(&s, "https://ref.supabase.co/storage/v1/object/public/other/" OBJ);
	check_not_ours(&s, "https://ref.supabase.co/storage/v1/object/sign/asset-images/" OBJ);
	check_not_ours(&s, "https://ref.supabase.co/storage/v1/object/asset-images/" OBJ);
	check_round_trip(&c, "https://ref.supabase.co/storage/v1/object/public/asset-images/" OBJ);

	/* a CDN in front: its URLs, and Storage's own still */
	cfg_remote(&c, "supabase", "https://ref.supabase.co", "https://cdn.example.test/img");
	CU_ASSERT_EQUAL_FATAL(storage_urls(&s, &c, err, sizeof(err)), 0);
	check_ours(&s, "https://cdn.example.test/img/asset-images/" OBJ);
	check_ours(&s, "https://ref.supabase.co/storage/v1/object/public/asset-images/" OBJ);
	check_bad_paths(&s, "https://cdn.example.test/img/asset-images/");
	check_round_trip(&c, "https://cdn.example.test/img/asset-images/" OBJ);

	/* the URLs need SUPABASE_URL, not the key */
	cfg_remote(&c, "supabase", NULL, NULL);
	CU_ASSERT_EQUAL(storage_urls(&s, &c, err, sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err,
	    "SUPABASE_URL is not set (needed by IMAGEGEN_STORAGE=supabase)");
	cfg_remote(&c, "supabase", "https://ref.supabase.co", NULL);
	supa_conf.service_role_key = NULL;
	CU_ASSERT_EQUAL(storage_urls(&s, &c, err, sizeof(err)), 0);
}

static void
test_path_of_url_s3(void)
{
	struct storage s;
	struct cfg c;
	char err[256];

	/* AWS: path style and virtual-host style */
	cfg_remote(&c, "s3", "https://s3.eu-central-1.amazonaws.com", NULL);
	CU_ASSERT_EQUAL_FATAL(storage_urls(&s, &c, err, sizeof(err)), 0);
	check_ours(&s, "https://s3.eu-central-1.amazonaws.com/asset-images/" OBJ);
	check_ours(&s, "https://asset-images.s3.eu-central-1.amazonaws.com/" OBJ);
	check_bad_paths(&s, "https://s3.eu-central-1.amazonaws.com/asset-images/");
	check_bad_paths(&s, "https://asset-images.s3.eu-central-1.amazonaws.com/");
	check_not_ours(&s, "https://other.s3.eu-central-1.amazonaws.com/" OBJ);
	check_not_ours(&s, "https://s3.eu-central-1.amazonaws.com/other/" OBJ);
	check_not_ours(&s, "https://asset-images.s3.eu-central-1.amazonaws.com.evil/" OBJ);
	check_not_ours(&s, "/storage/v1/object/public/asset-images/" OBJ);
	check_round_trip(&c, "https://s3.eu-central-1.amazonaws.com/asset-images/" OBJ);

	/* an address: path style only */
	cfg_remote(&c, "s3", "http://127.0.0.1:9000/", NULL);
	CU_ASSERT_EQUAL_FATAL(storage_urls(&s, &c, err, sizeof(err)), 0);
	check_ours(&s, "http://127.0.0.1:9000/asset-images/" OBJ);
	check_bad_paths(&s, "http://127.0.0.1:9000/asset-images/");
	check_not_ours(&s, "http://asset-images.127.0.0.1:9000/" OBJ);
	check_not_ours(&s, "http://127.0.0.1:9001/asset-images/" OBJ);
	check_round_trip(&c, "http://127.0.0.1:9000/asset-images/" OBJ);

	/* Supabase's S3 endpoint: its public URLs and the S3 ones */
	cfg_remote(&c, "s3", "https://ref.supabase.co/storage/v1/s3", NULL);
	CU_ASSERT_EQUAL_FATAL(storage_urls(&s, &c, err, sizeof(err)), 0);
	check_ours(&s, "https://ref.supabase.co/storage/v1/object/public/asset-images/" OBJ);
	check_ours(&s, "https://ref.supabase.co/storage/v1/s3/asset-images/" OBJ);
	check_not_ours(&s, "https://asset-images.ref.supabase.co/" OBJ);
	check_round_trip(&c, "https://ref.supabase.co/storage/v1/object/public/asset-images/" OBJ);

	/* IMAGEGEN_PUBLIC_BASE_URL: its URLs, and the endpoint's still */
	cfg_remote(&c, "s3", "https://s3.eu-central-1.amazonaws.com",
	    "https://cdn.example.test/img");
	CU_ASSERT_EQUAL_FATAL(storage_urls(&s, &c, err, sizeof(err)), 0);
	check_ours(&s, "https://cdn.example.test/img/asset-images/" OBJ);
	check_ours(&s, "https://s3.eu-central-1.amazonaws.com/asset-images/" OBJ);
	check_ours(&s, "https://asset-images.s3.eu-central-1.amazonaws.com/" OBJ);
	check_bad_paths(&s, "https://cdn.example.test/img/asset-images/");
	check_round_trip(&c, "https://cdn.example.test/img/asset-images/" OBJ);

	cfg_remote(&c, "s3", NULL, NULL);
	CU_ASSERT_EQUAL(storage_urls(&s, &c, err, sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "S3_ENDPOINT is not set (needed by IMAGEGEN_STORAGE=s3)");
}

/* The request check asks the backend: an inpaint job with a source in a
 * Supabase or S3 bucket is accepted with no IMAGEGEN_PUBLIC_BASE_URL,
 * one pointing elsewhere refused. */
static void
test_inpaint_source_url_asks_the_backend(void)
{
	static const struct { const char *backend, *endpoint, *ours; } cases[] = {
		{ "local", NULL, "/storage/v1/object/public/asset-images/" OBJ },
		{ "supabase", "http://127.0.0.1:54321",
		    "http://127.0.0.1:54321/storage/v1/object/public/asset-images/" OBJ },
		{ "s3", "http://127.0.0.1:9000", "http://127.0.0.1:9000/asset-images/" OBJ },
		{ "s3", "https://s3.us-east-1.amazonaws.com",
		    "https://asset-images.s3.us-east-1.amazonaws.com/" OBJ },
	};
	struct job_request jr;
	struct storage s;
	struct arena *a;
	struct cfg c;
	const char *msg;
	char body[1024], err[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		a = arena_new(4096);
		CU_ASSERT_PTR_NOT_NULL_FATAL(a);
		cfg_remote(&c, cases[i].backend, cases[i].endpoint, NULL);
		CU_ASSERT_EQUAL_FATAL(storage_urls(&s, &c, err, sizeof(err)), 0);
		snprintf(body, sizeof(body), "{\"projectId\":\"" P_ID "\","
		    "\"branchId\":\"" B_ID "\",\"jobType\":\"inpaint\","
		    "\"prompt\":\"p\",\"sourceImageUrl\":\"%s\","
		    "\"maskImageUrl\":\"%s\"}", cases[i].ours, cases[i].ours);
		msg = NULL;
		CU_ASSERT_EQUAL(jobreq_parse(a, body, strlen(body), NULL, &s, &jr,
		    &msg), IG_OK);
		if (msg != NULL)
			fprintf(stderr, "\n  %s: %s\n", cases[i].backend, msg);
		snprintf(body, sizeof(body), "{\"projectId\":\"" P_ID "\","
		    "\"branchId\":\"" B_ID "\",\"jobType\":\"inpaint\","
		    "\"prompt\":\"p\",\"sourceImageUrl\":\"%s\"}",
		    "http://169.254.169.254/asset-images/" OBJ);
		CU_ASSERT_EQUAL(jobreq_parse(a, body, strlen(body), NULL, &s, &jr,
		    &msg), IG_EVALIDATION);
		arena_free(a);
	}
}

/* The error answer of http status and body read by parse into *a. */
static void
answer(struct storage_answer *a, long status, const char *body, int over,
    void (*parse)(struct storage_answer *))
{
	memset(a, 0, sizeof(*a));
	a->http = a->status = a->rep.status = status;
	a->rep.body = (char *)body;
	a->rep.len = strlen(body);
	a->rep.over = over;
	parse(a);
}

/* S3's XML error: <Code> and <Message> one line each, the class by code
 * and status; a body cut at its bound is not read. */
static void
test_s3_error_answers(void)
{
	struct storage_answer a;

	answer(&a, 503, "<Error><Code>SlowDown</Code><Message>Please reduce\n"
	    "your request rate.</Message></Error>", 0, s3_parse_error);
	CU_ASSERT_STRING_EQUAL(a.code, "SlowDown");
	CU_ASSERT_PTR_NULL(strchr(a.message, '\n'));
	CU_ASSERT_EQUAL(a.fails_as, STOR_TEMPORARY);
	answer(&a, 400, "<Error><Code>RequestTimeout</Code></Error>", 0,
	    s3_parse_error);
	CU_ASSERT_EQUAL(a.fails_as, STOR_TEMPORARY);
	CU_ASSERT_STRING_EQUAL(a.message, "");
	answer(&a, 404, "<Error><Code>NoSuchBucket</Code><Message>gone", 0,
	    s3_parse_error);
	CU_ASSERT_STRING_EQUAL(a.code, "NoSuchBucket");
	CU_ASSERT_STRING_EQUAL(a.message, "");
	CU_ASSERT_EQUAL(a.fails_as, STOR_ERROR);
	answer(&a, 501, "<Error><Code>NotImplemented</Code></Error>", 1,
	    s3_parse_error);
	CU_ASSERT_STRING_EQUAL(a.code, "");
	CU_ASSERT_EQUAL(a.fails_as, STOR_ERROR);
}

/* Supabase Storage's JSON error: the body's statusCode decides (a string,
 * or a number from older versions), else the HTTP status. */
static void
test_supabase_error_answers(void)
{
	struct storage_answer a;

	answer(&a, 400, "{\"statusCode\":\"409\",\"code\":\"KeyAlreadyExists\","
	    "\"error\":\"Duplicate\",\"message\":\"The resource already "
	    "exists\"}", 0, supa_parse_error);
	CU_ASSERT_EQUAL(a.status, 409);
	CU_ASSERT_STRING_EQUAL(a.code, "Duplicate");
	CU_ASSERT_EQUAL(a.fails_as, STOR_ERROR);
	answer(&a, 400, "{\"statusCode\":544,\"error\":\"DatabaseTimeout\"}",
	    0, supa_parse_error);
	CU_ASSERT_EQUAL(a.status, 544);
	CU_ASSERT_EQUAL(a.fails_as, STOR_TEMPORARY);
	answer(&a, 400, "{\"statusCode\":\"5031\",\"message\":\"x\"}", 0,
	    supa_parse_error);
	CU_ASSERT_EQUAL(a.status, 400);
	CU_ASSERT_STRING_EQUAL(a.message, "x");
	answer(&a, 503, "{\"statusCode\":\"409\"}", 1, supa_parse_error);
	CU_ASSERT_EQUAL(a.status, 503);
	CU_ASSERT_EQUAL(a.fails_as, STOR_TEMPORARY);
	answer(&a, 413, "not json", 0, supa_parse_error);
	CU_ASSERT_EQUAL(a.status, 413);
	CU_ASSERT_EQUAL(a.fails_as, STOR_ERROR);
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "local_get_and_path_of_url", test_local_get_and_path_of_url },
		{ "s3_error_answers", test_s3_error_answers },
		{ "supabase_error_answers", test_supabase_error_answers },
		{ "path_of_url_local", test_path_of_url_local },
		{ "path_of_url_supabase", test_path_of_url_supabase },
		{ "path_of_url_s3", test_path_of_url_s3 },
		{ "inpaint_source_url_asks_the_backend",
		    test_inpaint_source_url_asks_the_backend },
		{ "path_for_each_job_type", test_path_for_each_job_type },
		{ "path_for_refuses_bad_ids", test_path_for_refuses_bad_ids },
		{ "path_ok_table", test_path_ok_table },
		{ "storage_open_table", test_storage_open_table },
		{ "storage_public_url", test_storage_public_url },
		{ "local_backend", test_local_backend },
		{ "local_backend_symlink_escape",
		    test_local_backend_symlink_escape },
		{ "local_backend_relative_dir", test_local_backend_relative_dir },
		CU_TEST_INFO_NULL
	};

	return cu_run_fixture("storage", tests, suite_init, suite_cleanup);
}
