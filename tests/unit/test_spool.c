/* test_spool.c - the spool: ids, durable files, modes, malformed files, scan. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"
#include "cu_main.h"
#include "spool.h"

#define ID_A "0b6f3c1e-7a52-4f0e-9d3b-2c1a5e8f9d01"
#define ID_B "5d2e8a47-1c3b-4a6f-8e9d-0f1a2b3c4d5e"

static char base[256];
static struct cfg cfg;

/* A fresh spool directory (base/spool/N, not yet made) for each test. */
static void
fresh(void)
{
	static int n;
	static char dir[512];

	snprintf(dir, sizeof(dir), "%s/spool/%d", base, ++n);
	cfg.spool_dir = dir;
}

static int
suite_init(void)
{
	char tmpl[] = "/tmp/ig-test-spool-XXXXXX";

	if (mkdtemp(tmpl) == NULL)
		return -1;
	snprintf(base, sizeof(base), "%s", tmpl);
	return 0;
}

static int
suite_cleanup(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	return system(cmd) == 0 ? 0 : -1;
}

static void
test_spool_id_ok(void)
{
	CU_ASSERT_EQUAL(spool_id_ok(ID_A), 1);
	CU_ASSERT_EQUAL(spool_id_ok("0B6F3C1E-7A52-4F0E-9D3B-2C1A5E8F9D01"), 0);
	CU_ASSERT_EQUAL(spool_id_ok("../../../etc/passwd-0000-0000-000000"), 0);
	CU_ASSERT_EQUAL(spool_id_ok("0b6f3c1e-7a52-4f0e-9d3b-2c1a5e8f9d0"), 0);
	CU_ASSERT_EQUAL(spool_id_ok("0b6f3c1e-7a52-4f0e-9d3b-2c1a5e8f9d011"), 0);
	CU_ASSERT_EQUAL(spool_id_ok("0b6f3c1e_7a52-4f0e-9d3b-2c1a5e8f9d01"), 0);
	CU_ASSERT_EQUAL(spool_id_ok(""), 0);
	CU_ASSERT_EQUAL(spool_id_ok(NULL), 0);
}

static void
test_spool_write_read_remove(void)
{
	static const unsigned char img[] = "\x89PNG\r\n\x1a\n not really, but bytes \0 with a NUL";
	unsigned char *data = NULL;
	char path[700];
	struct stat st;
	size_t len = 0;
	double cost = 0;

	fresh();
	CU_ASSERT_EQUAL(spool_prepare(&cfg), 0);
	CU_ASSERT_EQUAL(stat(cfg.spool_dir, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0700);
	CU_ASSERT_EQUAL(spool_read(&cfg, ID_A, 1 << 20, &data, &len, &cost), 0);
	CU_ASSERT_EQUAL(spool_write(&cfg, ID_A, img, sizeof(img), 0.039), 0);
	snprintf(path, sizeof(path), "%s/%s.spool", cfg.spool_dir, ID_A);
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/%s.%ld.part", cfg.spool_dir, ID_A, (long)getpid());
	CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);	/* renamed away */
	CU_ASSERT_EQUAL(spool_read(&cfg, ID_A, 1 << 20, &data, &len, &cost), 1);
	CU_ASSERT_EQUAL(len, sizeof(img));
	CU_ASSERT(data != NULL && memcmp(data, img, sizeof(img)) == 0);
	CU_ASSERT_DOUBLE_EQUAL(cost, 0.039, 1e-9);
	free(data);
	/* larger than the caller takes: refused (and removed) */
	CU_ASSERT_EQUAL(spool_read(&cfg, ID_A, 8, &data, &len, &cost), -1);
	CU_ASSERT_PTR_NULL(data);
	CU_ASSERT_EQUAL(spool_read(&cfg, ID_A, 1 << 20, &data, &len, &cost), 0);
	/* unknown cost */
	CU_ASSERT_EQUAL(spool_write(&cfg, ID_B, img, 4, -1), 0);
	CU_ASSERT_EQUAL(spool_read(&cfg, ID_B, 1 << 20, &data, &len, &cost), 1);
	CU_ASSERT(cost < 0);
	CU_ASSERT_EQUAL(len, 4);
	free(data);
	spool_remove(&cfg, ID_B, SPOOL_ALL);
	CU_ASSERT_EQUAL(spool_read(&cfg, ID_B, 1 << 20, &data, &len, &cost), 0);
	spool_remove(&cfg, ID_B, SPOOL_ALL);	/* missing: fine */
	/* a bad id is never a file name */
	CU_ASSERT_EQUAL(spool_write(&cfg, "../x", img, 4, 0), -1);
}

static void
test_spool_malformed_removed(void)
{
	unsigned char *data = NULL;
	char path[700];
	size_t len;
	double cost;
	FILE *f;

	fresh();
	CU_ASSERT_EQUAL(spool_prepare(&cfg), 0);
	snprintf(path, sizeof(path), "%s/%s.spool", cfg.spool_dir, ID_A);
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("NOTASPOOL 1\nbytes", f);
	fclose(f);
	CU_ASSERT_EQUAL(spool_read(&cfg, ID_A, 1 << 20, &data, &len, &cost), -1);
	CU_ASSERT_PTR_NULL(data);
	CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("IGSPOOL1 -\n", f);	/* a header and no image */
	fclose(f);
	CU_ASSERT_EQUAL(spool_read(&cfg, ID_A, 1 << 20, &data, &len, &cost), -1);
	/* a symlink under the spool's name is not followed */
	CU_ASSERT_EQUAL(symlink("/etc/hostname", path), 0);
	CU_ASSERT_EQUAL(spool_read(&cfg, ID_A, 1 << 20, &data, &len, &cost), -1);
	CU_ASSERT_PTR_NULL(data);
	unlink(path);
}

static void
test_spool_directory_checks(void)
{
	unsigned char *data = NULL;
	size_t len;
	double cost;
	char link[600];

	/* a loose existing directory of ours is tightened to 0700 */
	fresh();
	CU_ASSERT_EQUAL(mkdir(cfg.spool_dir, 0777), 0);
	CU_ASSERT_EQUAL(chmod(cfg.spool_dir, 0777), 0);
	CU_ASSERT_EQUAL(spool_prepare(&cfg), 0);
	{
		struct stat st;

		CU_ASSERT_EQUAL(stat(cfg.spool_dir, &st), 0);
		CU_ASSERT_EQUAL(st.st_mode & 0777, 0700);
	}
	/* writable by others (made so after the check): not used */
	CU_ASSERT_EQUAL(chmod(cfg.spool_dir, 0777), 0);
	CU_ASSERT_EQUAL(spool_write(&cfg, ID_A, (const unsigned char *)"x", 1, 0), -1);
	/* a symlink in place of the directory: refused */
	snprintf(link, sizeof(link), "%s-link", cfg.spool_dir);
	CU_ASSERT_EQUAL(symlink(cfg.spool_dir, link), 0);
	cfg.spool_dir = link;
	CU_ASSERT_EQUAL(spool_prepare(&cfg), -1);
	CU_ASSERT_EQUAL(spool_write(&cfg, ID_A, (const unsigned char *)"x", 1, 0), -1);
	/* a missing directory: nothing spooled, nothing to scan */
	fresh();
	CU_ASSERT_EQUAL(spool_read(&cfg, ID_A, 1 << 20, &data, &len, &cost), 0);
	CU_ASSERT_EQUAL(spool_scan(&cfg, NULL, 0), 0);
}

static void
test_spool_scan(void)
{
	struct spool_entry e[8];
	char path[700];
	int n, i, seen_a = 0, seen_b = 0;
	FILE *f;

	fresh();
	CU_ASSERT_EQUAL(spool_prepare(&cfg), 0);
	CU_ASSERT_EQUAL(spool_write(&cfg, ID_A, (const unsigned char *)"img", 3, 0), 0);
	snprintf(path, sizeof(path), "%s/%s.123.part", cfg.spool_dir, ID_B);
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/%s.x1.part", cfg.spool_dir, ID_B);	/* not ours */
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/notes.txt", cfg.spool_dir);
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fclose(f);
	n = spool_scan(&cfg, e, 8);
	CU_ASSERT_EQUAL(n, 2);
	for (i = 0; i < n; i++) {
		if (strcmp(e[i].id, ID_A) == 0 && !e[i].partial)
			seen_a = 1;
		if (strcmp(e[i].id, ID_B) == 0 && e[i].partial)
			seen_b = 1;
	}
	CU_ASSERT(seen_a && seen_b);
	spool_remove(&cfg, ID_B, SPOOL_IMAGE);	/* the partial stays */
	CU_ASSERT_EQUAL(spool_scan(&cfg, e, 8), 2);
	spool_remove(&cfg, ID_B, SPOOL_PARTIAL);
	CU_ASSERT_EQUAL(spool_scan(&cfg, e, 8), 1);
	CU_ASSERT_EQUAL(access(path, F_OK), 0);	/* a name not ours stays */
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "spool_id_ok", test_spool_id_ok },
		{ "spool_write_read_remove", test_spool_write_read_remove },
		{ "spool_malformed_removed", test_spool_malformed_removed },
		{ "spool_directory_checks", test_spool_directory_checks },
		{ "spool_scan", test_spool_scan },
		CU_TEST_INFO_NULL
	};

	return cu_run_fixture("spool", tests, suite_init, suite_cleanup);
}
