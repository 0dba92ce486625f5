/* main_fcgi.c - imagegen-fcgi: the FastCGI responder and its pool. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "config.h"
#include "cfg.h"
#include "cmdline.h"
#include "httpc.h"
#include "log.h"
#include "pool.h"
#include "slots.h"

static void
usage(FILE *f)
{
	fprintf(f,
"usage: imagegen-fcgi [--listen SOCK|HOST:PORT] [--workers N] [--max-requests N]\n"
"                     [--user USER] [--socket-mode MODE] [--pid-file FILE]\n"
"                     [--env-file FILE] [--drain-timeout SEC]\n"
"\n"
"The imagegen FastCGI responder. Without --listen it serves the listening\n"
"socket systemd passed (LISTEN_FDS, one socket), else the one on fd 0\n"
"(spawn-fcgi): one responder, or with --workers a supervised pool. With\n"
"--listen it opens the socket and runs a pool (2 workers unless --workers\n"
"says otherwise). READY=1 goes to $NOTIFY_SOCKET when set (Type=notify).\n"
"Started as a CGI program (GATEWAY_INTERFACE set, fd 0 not a socket) it\n"
"answers the one request in its environment and exits.\n"
"\n"
"  --listen SPEC        a unix socket path (contains '/') or HOST:PORT\n"
"  --workers N          run a master supervising N children (1-256)\n"
"  --max-requests N     a child exits after N requests and is replaced (0: never)\n"
"  --user USER          started as root: own the socket as USER and drop to it\n"
"  --socket-mode MODE   octal mode of a unix socket (default 0660)\n"
"  --pid-file FILE      write the master's pid there (never through a symlink)\n"
"  --env-file FILE      KEY=VALUE settings (also IMAGEGEN_ENV_FILE); the\n"
"                       environment wins; re-read on SIGHUP\n"
"  --drain-timeout SEC  on SIGTERM, and for the old children on SIGHUP, wait\n"
"                       this long for requests to finish before TERM, then\n"
"                       KILL (default 10)\n"
"  --help, --version\n"
"\n"
"Signals to the master: HUP reload (old children finish their requests\n"
"within --drain-timeout); TERM/INT drain\n"
"and exit. Settings: DATABASE_URL (required; a role that reaches\n"
"authenticated only), IMAGEGEN_WORKER_DATABASE_URL (executors, sweeper and\n"
"/metrics: a role that may SET ROLE service_role; default DATABASE_URL),\n"
"IMAGEGEN_DB_CONNECT_TIMEOUT, IMAGEGEN_STATEMENT_TIMEOUT_MS,\n"
"IMAGEGEN_MAX_BODY_BYTES, IMAGEGEN_LOG_LEVEL;\n"
"see docs/RUNNING.md; --help lists all of them.\n");
	/* The whole list only when asked for, not after a mistyped option. */
	if (f == stdout)
		cfg_settings_print(f, 0);
}

static int
opt_long(const char *name, const char *s, long min, long max, long *out)
{
	if (cfg_parse_long(s, min, max, out) != 0) {
		fprintf(stderr, "imagegen-fcgi: %s: expected a whole number from %ld to %ld, got '%s'\n",
		    name, min, max, s);
		return -1;
	}
	return 0;
}

/* Drops root for good. 0 on success, -1 (logged) otherwise. */
static int
drop_privileges(const struct passwd *pw)
{
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 ||
	    setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
		fprintf(stderr, "imagegen-fcgi: cannot switch to user %s: %s\n",
		    pw->pw_name, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		fprintf(stderr, "imagegen-fcgi: still able to regain root, refusing to run\n");
		return -1;
	}
	return 0;
}

/*
 * Writes our pid to path. Run after the privilege drop, as the pool's
 * user: root never opens a path in a directory that user may own (where
 * a symlink in any component could point root's write anywhere). As a
 * guard for the user's own mistakes the last component is still opened
 * without following a symlink, and only a plain file with one link, ours
 * or new, is written. 0 on success, -1 (reason on stderr) otherwise.
 */
static int
write_pid_file(const char *path)
{
	struct stat st;
	char buf[32];
	int fd = -1, n, rc = -1;

	fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
	    0644);
	if (fd < 0) {
		fprintf(stderr, "imagegen-fcgi: --pid-file %s: %s\n", path,
		    errno == ELOOP ? "is a symbolic link, refusing to write through it" :
		    strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
	    st.st_uid != geteuid()) {
		fprintf(stderr, "imagegen-fcgi: --pid-file %s: not a plain file of ours with one link, refusing\n",
		    path);
		goto out;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) != 0 || write(fd, buf, (size_t)n) != n) {
		fprintf(stderr, "imagegen-fcgi: --pid-file %s: %s\n", path,
		    strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0 && close(fd) != 0 && rc == 0) {
		fprintf(stderr, "imagegen-fcgi: --pid-file %s: %s\n", path,
		    strerror(errno));
		rc = -1;
	}
	return rc;
}

int
main(int argc, char **argv)
{
	static const char opts[] = "listen=l workers=w max-requests=m user=u"
	    " socket-mode=s pid-file=p env-file=e drain-timeout=d help/h version/V";
	struct pool_opts po = { .listen_fd = 0, .drain_timeout = 10 };
	struct cfg cfg = { 0 };
	struct passwd *pw = NULL;
	const char *listen_spec = NULL, *user = NULL;
	char err[512], *end;
	long workers = -1, v;
	int ch, mode = 0660, rc = 2, fd = -1, sd_fd = -1, curl_ready = 0, cgi = 0;

	while ((ch = cmdline_getopt(argc, argv, opts)) != -1) {
		switch (ch) {
		case 'l': listen_spec = optarg; break;
		case 'w':
			if (opt_long("--workers", optarg, 1, 256, &workers) != 0)
				goto out;
			break;
		case 'm':
			if (opt_long("--max-requests", optarg, 0, 1000000000L,
			    &po.max_requests) != 0)
				goto out;
			break;
		case 'u': user = optarg; break;
		case 's':
			errno = 0;
			v = strtol(optarg, &end, 8);
			if (errno != 0 || *end != '\0' || v < 0 || v > 0777) {
				fprintf(stderr, "imagegen-fcgi: --socket-mode: expected an octal mode such as 0660, got '%s'\n",
				    optarg);
				goto out;
			}
			mode = (int)v;
			break;
		case 'p': po.pid_file = optarg; break;
		case 'e': po.env_file = optarg; break;
		case 'd':
			if (opt_long("--drain-timeout", optarg, 1, 3600, &v) != 0)
				goto out;
			po.drain_timeout = (int)v;
			break;
		case 'h': usage(stdout); rc = 0; goto out;
		case 'V': printf("imagegen-fcgi %s\n", VERSION); rc = 0; goto out;
		default: usage(stderr); goto out;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "imagegen-fcgi: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		goto out;
	}
	if (cfg_load(&cfg, po.env_file, CFG_NEED_DB, err, sizeof(err)) != 0) {
		fprintf(stderr, "imagegen-fcgi: %s\n", err);
		goto out;
	}
	log_set_level(cfg.log_level);
	if (cfg.webhook_secret_key == NULL)
		log_warn("IMAGEGEN_WEBHOOK_SECRET_KEY is not set: webhook signing "
		    "secrets and jobs with a webhook answer 503 (docs/WEBHOOKS.md)");
	if (user != NULL) {
		pw = getpwnam(user);
		if (pw == NULL) {
			fprintf(stderr, "imagegen-fcgi: --user: no such user '%s'\n", user);
			goto out;
		}
		if (geteuid() != 0 && pw->pw_uid != geteuid()) {
			fprintf(stderr, "imagegen-fcgi: --user %s needs root (running as uid %d)\n",
			    user, (int)geteuid());
			goto out;
		}
	} else if (geteuid() == 0) {
		fprintf(stderr, "imagegen-fcgi: refusing to serve as root: give --user USER\n");
		goto out;
	}
	switch (pool_systemd_listener(&sd_fd, err, sizeof(err))) {
	case -1:
		fprintf(stderr, "imagegen-fcgi: %s\n", err);
		goto out;
	case 1:
		if (listen_spec != NULL) {
			fprintf(stderr, "imagegen-fcgi: --listen given, but systemd passed a socket too: drop one\n");
			goto out;
		}
		break;
	}
	if (sd_fd >= 0) {
		po.listen_fd = sd_fd;
	} else if (listen_spec != NULL) {
		fd = pool_listen(listen_spec, mode,
		    pw != NULL && geteuid() == 0 ? pw->pw_uid : (uid_t)-1,
		    pw != NULL ? pw->pw_gid : (gid_t)-1, err, sizeof(err));
		if (fd < 0) {
			fprintf(stderr, "imagegen-fcgi: %s\n", err);
			goto out;
		}
		po.listen_fd = fd;
		if (workers < 0)
			workers = 2;
	} else if (workers < 0 && getenv("GATEWAY_INTERFACE") != NULL &&
	    FCGX_IsCGI()) {
		cgi = 1;	/* a CGI program: the request is in the environment */
	} else if (pool_check_listener(0) != 0) {
		fprintf(stderr, "imagegen-fcgi: fd 0 is not a listening socket: run under spawn-fcgi or a systemd .socket unit, or give --listen\n");
		goto out;
	}
	po.workers = workers < 0 ? 0 : (int)workers;
	if (pw != NULL && geteuid() == 0 && drop_privileges(pw) != 0)
		goto out;
	/* As the user the executors run as: a slot directory that is not
	 * ours alone is refused now, not on the first job. */
	if (slot_check(&cfg) != 0) {
		fprintf(stderr, "imagegen-fcgi: the slot directory is unusable (above); set IMAGEGEN_SLOT_DIR\n");
		goto out;
	}
	/* Once, before any fork: the children inherit it. */
	if (httpc_init_main() != 0) {
		fprintf(stderr, "imagegen-fcgi: cannot initialise libcurl\n");
		rc = 1;
		goto out;
	}
	curl_ready = 1;
	if (po.pid_file != NULL && write_pid_file(po.pid_file) != 0)
		goto out;
	if (!cgi)
		pool_notify_ready();
	if (cgi)
		rc = pool_run_cgi(&cfg);
	else if (po.workers > 0)
		rc = pool_run_master(&po, &cfg);
	else
		rc = pool_run_worker(po.listen_fd, &cfg, po.max_requests, 0);
	if (po.pid_file != NULL)
		unlink(po.pid_file);
	if (listen_spec != NULL && strchr(listen_spec, '/') != NULL)
		unlink(listen_spec);
out:
	if (curl_ready)
		httpc_cleanup_main();
	if (fd >= 0)
		close(fd);
	cfg_free(&cfg);
	return rc;
}
