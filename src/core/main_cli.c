/* main_cli.c - imagegen: the operator's command line. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "admindb.h"
#include "cfg.h"
#include "cli.h"
#include "cmdline.h"
#include "db.h"
#include "jwt_sign.h"
#include "exec.h"
#include "httpc.h"
#include "log.h"
#include "migrate.h"
#include "settings.h"
#include "storage.h"

#ifndef IMAGEGEN_SQL_DIR
#define IMAGEGEN_SQL_DIR "/usr/local/share/imagegen/sql"
#endif

static void
usage(FILE *f)
{
	fprintf(f,
"usage: imagegen COMMAND [options]\n"
"\n"
"commands:\n"
"  migrate [--dir DIR] [--status]\n"
"      apply the pending sql/NNN_*.sql migrations in order, each once, as the\n"
"      table owner in DATABASE_URL (DIR: IMAGEGEN_SQL_DIR, else %s);\n"
"      --status lists each file as applied or pending\n"
"  setup-bucket\n"
"      create the bucket (IMAGEGEN_BUCKET, public read) in the configured\n"
"      storage backend; harmless when it exists; then print the storage\n"
"      policies of storage_policies.sql (in IMAGEGEN_SQL_DIR, else the\n"
"      directory above, else, run from its build tree, the source tree's\n"
"      sql/) and how to apply them;\n"
"      only a warning when the file is found nowhere\n"
"  sweep\n"
"      one recovery pass: requeue, fail or cancel jobs whose executor is\n"
"      gone or late, delete objects of jobs that ended without completing,\n"
"      remove spool files no job needs, then start executors for queued\n"
"      jobs while slots are free (as the pool's user, with\n"
"      IMAGEGEN_WORKER_DATABASE_URL)\n"
"  worker\n"
"      keep doing that: on every queued job (LISTEN image_jobs) and every\n"
"      IMAGEGEN_SWEEP_INTERVAL seconds, until SIGTERM/SIGINT (for\n"
"      spawn-fcgi deployments and for more machines)\n"
"  stats\n"
"      cost per job type (completed jobs) and count and mean duration per\n"
"      status over the last 24 hours; today's (UTC) spend and reserved\n"
"      estimates of the top 20 users and projects, and the cost alerts of\n"
"      the day\n"
"  budget set (--user UUID | --project UUID) [--daily USD|none]\n"
"             [--monthly USD|none]\n"
"  budget clear (--user UUID | --project UUID) [--daily] [--monthly]\n"
"  budget show [--user UUID | --project UUID]\n"
"      set a user's or project's daily and monthly limits in USD (none: no\n"
"      limit), put them back to the default (the settings' for users, none\n"
"      for projects; without --daily/--monthly: both), or show limit,\n"
"      spent, reserved and remaining in the current UTC windows (without an\n"
"      option: the deployment's day and every override)\n"
"  generate PROMPT [--project UUID] [--branch UUID]\n"
"           [--type master_asset|start_frame|end_frame|inpaint] [--size WxH]\n"
"           [--style UUID] [--scene UUID --shot UUID] [--source URL [--mask URL]]\n"
"           [--wait] [--timeout S] [--json] [--output FILE]\n"
"      create a job through the HTTP API (POST /api/images/generate, a random\n"
"      Idempotency-Key, resent after a lost connection) and print its id;\n"
"      --wait polls it every second (progress on stderr) and prints its\n"
"      public URL, or the job with --json; --output FILE also downloads the\n"
"      image; --timeout S gives up after S seconds (default 300); --output\n"
"      and --timeout imply --wait. Exit 0 completed (or accepted), 1 failed\n"
"      or canceled (code and message on stderr), 2 usage, 3 timeout, 4 HTTP\n"
"      or connection error, 130 interrupted (Ctrl-C: the job keeps running)\n"
"  jobs list [--project UUID] [--status S] [--limit N] [--cursor C]\n"
"  jobs show ID\n"
"  jobs cancel ID\n"
"  jobs retry ID [--wait] [--timeout S]\n"
"      the caller's jobs, newest first; one job; cancel one; retry a failed or\n"
"      canceled one as a new job (--wait as for generate)\n"
"      generate and jobs also take --url URL, --token TOKEN (default:\n"
"      IMAGEGEN_URL, IMAGEGEN_TOKEN; without a URL, ./var/stack.env or the\n"
"      build tree's, as scripts/up writes it, gives URL, token, project,\n"
"      branch and certificate), --insecure (no certificate check) and --json\n"
"  token --sub UUID [--email EMAIL] [--ttl SECONDS] [--role ROLE]\n"
"        [--alg HS256|ES256|RS256] [--key FILE] [--kid KID]\n"
"      print a development access token: HS256 with SUPABASE_JWT_SECRET, or\n"
"      ES256/RS256 with the PEM private key in FILE (issuer\n"
"      SUPABASE_JWT_ISSUER, or derived from SUPABASE_URL when set)\n"
"  settings [--markdown | --man]\n"
"      list every setting (as --help does); --markdown: as the tables of\n"
"      docs/RUNNING.md; --man: as the settings section of imagegen.env(5)\n"
"\n"
"  --help, --version\n"
"\n"
"sweep, worker, stats and budget (and the executors they start) connect with\n"
"IMAGEGEN_WORKER_DATABASE_URL (a role that may SET ROLE service_role), else\n"
"DATABASE_URL. Settings come from the environment, or a file named by\n"
"IMAGEGEN_ENV_FILE.\n",
	    IMAGEGEN_SQL_DIR);
	/* The whole list only when asked for, not after a mistyped option. */
	if (f == stdout)
		cfg_settings_print(f, 0);
}

/* Prints the settings from their tables; 2 on a bad option. */
static int
cmd_settings(int argc, char **argv)
{
	int fmt = SETTINGS_PLAIN;

	if (argc == 2 && strcmp(argv[1], "--markdown") == 0)
		fmt = SETTINGS_MARKDOWN;
	else if (argc == 2 && strcmp(argv[1], "--man") == 0)
		fmt = SETTINGS_MAN;
	else if (argc != 1) {
		fprintf(stderr, "usage: imagegen settings [--markdown | --man]\n");
		return 2;
	}
	cfg_settings_print(stdout, fmt);
	return 0;
}

static int
cmd_migrate(int argc, char **argv)
{
	static const char opts[] = "dir=d status/s help/h";
	struct cfg c = { 0 };
	PGconn *conn = NULL;
	const char *dir = getenv("IMAGEGEN_SQL_DIR");
	char err[1024];
	int ch, status = 0, rc = 2;

	if (dir == NULL || *dir == '\0')
		dir = IMAGEGEN_SQL_DIR;
	while ((ch = cmdline_getopt(argc, argv, opts)) != -1) {
		switch (ch) {
		case 'd': dir = optarg; break;
		case 's': status = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	conn = cli_connect(&c, 0, "migrate", &rc);
	if (conn == NULL)
		goto out;
	if (migrate_run(conn, dir, status, stdout, err, sizeof(err)) != 0) {
		fprintf(stderr, "imagegen: migrate: %s\n", err);
		goto out;
	}
	rc = 0;
out:
	return cli_end(&c, conn, rc);
}

/* The whole of a small file, NUL-terminated; caller frees. NULL on error. */
static char *
read_small_file(const char *path, size_t *len)
{
	char *buf = NULL;
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL)
		return NULL;
	buf = malloc(65537);
	if (buf != NULL) {
		n = fread(buf, 1, 65536, f);
		if (ferror(f) || !feof(f)) {
			free(buf);
			buf = NULL;
		} else {
			buf[n] = '\0';
			*len = n;
		}
	}
	fclose(f);
	return buf;
}

static int
cmd_token(int argc, char **argv)
{
	static const char opts[] = "sub=s email=e ttl=t role=r alg=a key=k kid=i"
	    " help/h";
	struct jwt_mint m = { .ttl = 3600 };
	struct jwt_key key = { 0 };
	struct cfg c = { 0 };
	const char *alg_s = NULL, *key_file = NULL, *kid = NULL, *why = "";
	enum jwt_alg alg = JWT_HS256;
	char *tok = NULL, *pem = NULL;
	size_t pem_len = 0;
	int ch, rc = 2;

	while ((ch = cmdline_getopt(argc, argv, opts)) != -1) {
		switch (ch) {
		case 's': m.sub = optarg; break;
		case 'e': m.email = optarg; break;
		case 'r': m.role = optarg; break;
		case 'a': alg_s = optarg; break;
		case 'k': key_file = optarg; break;
		case 'i': kid = optarg; break;
		case 't':
			if (cfg_parse_long(optarg, 1, 31L * 86400, &m.ttl) != 0) {
				fprintf(stderr, "imagegen: token: --ttl: expected seconds from 1 to 2678400, got '%s'\n",
				    optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (m.sub == NULL) {
		fprintf(stderr, "imagegen: token: --sub UUID is required\n");
		return 2;
	}
	if (alg_s != NULL) {
		alg = jwt_alg_parse(alg_s);
		if (alg == JWT_ALG_UNKNOWN) {
			fprintf(stderr, "imagegen: token: --alg: expected HS256, ES256 or RS256, got '%s'\n",
			    alg_s);
			return 2;
		}
	}
	if (alg != JWT_HS256 && key_file == NULL) {
		fprintf(stderr, "imagegen: token: --alg %s needs --key FILE (a PEM private key)\n",
		    alg_s);
		return 2;
	}
	if (cli_load_cfg(&c, 0) != 0)
		goto out;
	m.issuer = c.jwt_issuer;
	if (key_file != NULL) {
		pem = read_small_file(key_file, &pem_len);
		if (pem == NULL) {
			fprintf(stderr, "imagegen: token: --key: cannot read %s\n", key_file);
			goto out;
		}
		if (jwt_key_from_pem(&key, kid, pem, pem_len, &why) != 0 ||
		    key.pkey == NULL) {
			fprintf(stderr, "imagegen: token: --key %s: %s\n", key_file, why);
			goto out;
		}
		if (alg_s != NULL && key.alg != alg) {
			fprintf(stderr, "imagegen: token: --key %s is an %s key, not %s\n",
			    key_file, jwt_alg_name(key.alg), alg_s);
			goto out;
		}
	} else {
		if (c.jwt_secret == NULL) {
			fprintf(stderr, "imagegen: token: SUPABASE_JWT_SECRET is not set\n");
			goto out;
		}
		if (jwt_key_hs256(&key, kid, (const unsigned char *)c.jwt_secret,
		    strlen(c.jwt_secret)) != 0) {
			fprintf(stderr, "imagegen: token: out of memory\n");
			goto out;
		}
	}
	tok = jwt_sign(&m, &key);
	if (tok == NULL) {
		fprintf(stderr, "imagegen: token: cannot sign\n");
		rc = 1;
		goto out;
	}
	printf("%s\n", tok);
	rc = 0;
out:
	free(tok);
	free(pem);
	jwt_key_clear(&key);
	cfg_free(&c);
	return rc;
}

static volatile sig_atomic_t cli_stop;

static void
on_stop(int signo)
{
	cli_stop = signo;
}

#ifdef IMAGEGEN_SRC_SQL_DIR
/* Whether this binary runs from the tree it was built in: an installed
 * one must not read files from wherever it was once built (a /tmp
 * directory of someone else's, perhaps). */
static int
in_build_tree(void)
{
	char exe[4096], top[4096];
	size_t n;

	if (realpath("/proc/self/exe", exe) == NULL ||
	    realpath(IMAGEGEN_BUILD_DIR, top) == NULL)
		return 0;
	n = strlen(top);
	return strncmp(exe, top, n) == 0 && exe[n] == '/';
}
#endif

/*
 * Prints sql/storage_policies.sql and how to apply it: from
 * IMAGEGEN_SQL_DIR when it is set (only there), else the installed
 * directory, else, for a binary run from its build tree (before `make
 * install`), the source tree's sql/. The bucket exists already: a file
 * found nowhere is only a warning, naming where it was looked for.
 */
static void
print_storage_policies(const struct cfg *c)
{
	const char *dirs[3], *env = getenv("IMAGEGEN_SQL_DIR");
	char path[4096], looked[3 * 4096 + 8];
	char *text = NULL;
	size_t i, n = 0, len = 0;

	if (env != NULL && *env != '\0') {
		dirs[n++] = env;
	} else {
		dirs[n++] = IMAGEGEN_SQL_DIR;
#ifdef IMAGEGEN_SRC_SQL_DIR
		if (strcmp(IMAGEGEN_SRC_SQL_DIR, IMAGEGEN_SQL_DIR) != 0 &&
		    in_build_tree())
			dirs[n++] = IMAGEGEN_SRC_SQL_DIR;
#endif
	}
	looked[0] = '\0';
	for (i = 0; i < n && text == NULL; i++) {
		snprintf(path, sizeof(path), "%s/storage_policies.sql", dirs[i]);
		text = read_small_file(path, &len);
		if (text == NULL)
			snprintf(looked + strlen(looked), sizeof(looked) - strlen(looked),
			    "%s%s", i > 0 ? ", " : "", path);
	}
	if (text == NULL) {
		fprintf(stderr, "imagegen: setup-bucket: warning: cannot read %s, so the "
		    "storage policies are not printed (set IMAGEGEN_SQL_DIR to the "
		    "directory holding storage_policies.sql)\n", looked);
		return;
	}
	printf("\nThe storage policies (%s)%s:\n\n", path,
	    strcmp(c->storage, "supabase") == 0 ? "" :
	    ", for when the bucket lives on Supabase Storage");
	fwrite(text, 1, len, stdout);
	if (len > 0 && text[len - 1] != '\n')
		putchar('\n');
	printf("\nApply them once per Supabase project, as the postgres role: paste the\n"
	    "file into the Dashboard's SQL Editor and run it, or\n"
	    "  psql \"postgresql://postgres:PASSWORD@db.PROJECT.supabase.co:5432/postgres\" \\\n"
	    "      -v ON_ERROR_STOP=1 -f %s\n"
	    "Running it again is harmless (each policy is dropped and recreated).\n", path);
	if (strcmp(c->bucket, "asset-images") != 0)
		printf("IMAGEGEN_BUCKET is %s: replace every 'asset-images' in the file with it.\n",
		    c->bucket);
	if (strcmp(c->storage, "local") == 0)
		printf("The local backend itself needs none of this (nginx serves the directory).\n");
	free(text);
}

static int
cmd_setup_bucket(void)
{
	struct storage sg;
	struct cfg c = { 0 };
	char err[512];
	int rc = 1;

	if (cli_load_cfg(&c, 0) != 0)
		return 2;
	log_set_level(c.log_level);
	if (storage_open(&sg, &c, err, sizeof(err)) != 0) {
		fprintf(stderr, "imagegen: setup-bucket: %s\n", err);
		goto out;
	}
	if (storage_setup(&sg, err, sizeof(err)) != STOR_OK) {
		fprintf(stderr, "imagegen: setup-bucket: %s\n", err);
	} else {
		printf("bucket %s ready (%s storage)\n", c.bucket, c.storage);
		fflush(stdout);
		print_storage_policies(&c);
		rc = 0;
	}
	storage_close(&sg);
out:
	cfg_free(&c);
	return rc;
}

static int
cmd_sweep(void)
{
	struct sweep_stats st;
	struct cfg c = { 0 };
	int rc;

	if (cli_load_cfg(&c, CFG_NEED_DB) != 0)
		return 2;
	log_set_level(c.log_level);
	rc = exec_sweep_and_kick(&c, &st);
	if (rc == 0)
		printf("requeued %d, failed %d, canceled %d, queued %d; removed %d"
		    " objects, %d spool files; sealed %d signing secrets\n",
		    st.requeued, st.failed, st.canceled, st.queued_left,
		    st.objects_removed, st.spool_removed, st.secrets_sealed);
	cfg_free(&c);
	return rc == 0 ? 0 : 1;
}

/* Sweeps on every notification and every interval; executors it starts
 * are reaped here (subreaper), so none is left a zombie. */
static int
cmd_worker(void)
{
	struct sigaction sa;
	struct sweep_stats st;
	struct pollfd pfd;
	struct cfg c = { 0 };
	PGconn *listen = NULL;
	PGnotify *n;
	char err[512];
	int rc = 1;

	if (cli_load_cfg(&c, CFG_NEED_DB) != 0)
		return 2;
	log_set_level(c.log_level);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	log_info("worker: cap %ld, sweep every %ld s", c.max_running_jobs,
	    c.sweep_interval);
	while (!cli_stop) {
		if (listen == NULL) {
			listen = db_connect_worker(&c, "imagegen-worker", err,
			    sizeof(err));
			if (listen != NULL)
				admindb_listen_jobs(listen);
			else
				log_warn("worker cannot connect: %s", err);
		}
		exec_sweep_and_kick(&c, &st);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		pfd.fd = listen != NULL ? PQsocket(listen) : -1;
		pfd.events = POLLIN;
		if (poll(&pfd, pfd.fd >= 0 ? 1 : 0, (int)c.sweep_interval * 1000) > 0) {
			if (PQconsumeInput(listen) == 0) {
				PQfinish(listen);
				listen = NULL;
			} else {
				/* any notification means: sweep and kick again now */
				for (n = PQnotifies(listen); n != NULL; n = PQnotifies(listen))
					PQfreemem(n);
			}
		}
	}
	log_info("worker: signal %d, exiting", (int)cli_stop);
	rc = 0;
	PQfinish(listen);
	cfg_free(&c);
	return rc;
}

int
main(int argc, char **argv)
{
	int rc;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("imagegen %s\n", VERSION);
		return 0;
	}
	/* Once, before any fork (sweep and worker start executors). */
	if (httpc_init_main() != 0) {
		fprintf(stderr, "imagegen: cannot initialise libcurl\n");
		return 1;
	}
	if (strcmp(argv[1], "migrate") == 0) {
		rc = cmd_migrate(argc - 1, argv + 1);
	} else if (strcmp(argv[1], "token") == 0) {
		rc = cmd_token(argc - 1, argv + 1);
	} else if (strcmp(argv[1], "setup-bucket") == 0) {
		rc = cmd_setup_bucket();
	} else if (strcmp(argv[1], "sweep") == 0) {
		rc = cmd_sweep();
	} else if (strcmp(argv[1], "worker") == 0) {
		rc = cmd_worker();
	} else if (strcmp(argv[1], "stats") == 0) {
		rc = cmd_stats();
	} else if (strcmp(argv[1], "budget") == 0) {
		rc = cmd_budget(argc - 1, argv + 1);
	} else if (strcmp(argv[1], "generate") == 0) {
		rc = cmd_generate(argc - 1, argv + 1);
	} else if (strcmp(argv[1], "jobs") == 0) {
		rc = cmd_jobs(argc - 1, argv + 1);
	} else if (strcmp(argv[1], "settings") == 0) {
		rc = cmd_settings(argc - 1, argv + 1);
	} else {
		fprintf(stderr, "imagegen: unknown command '%s' (try imagegen --help)\n",
		    argv[1]);
		rc = 2;
	}
	httpc_cleanup_main();
	return rc;
}
