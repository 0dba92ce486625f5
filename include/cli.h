/* cli.h - what the imagegen commands share (cli.c), and the commands that
 * live in their own files: budget (cmd_budget.c), stats (cmd_stats.c),
 * generate and jobs (cmd_generate.c, clients of the HTTP API). */
#ifndef IG_CLI_H
#define IG_CLI_H

#include <stddef.h>
#include <stdio.h>
#include <libpq-fe.h>

#include "cfg.h"

/* Loads the configuration (need: cfg_load's); -1 after a line on stderr. */
int cli_load_cfg(struct cfg *c, int need);
/*
 * Loads the configuration (DATABASE_URL needed) and connects for cmd as
 * DATABASE_URL's role or, with worker, the worker role. The connection,
 * or NULL after a line on stderr; *rc is then the exit status: 2 for a
 * bad configuration, 1 when the database can't be reached. Close with
 * cli_end().
 */
PGconn *cli_connect(struct cfg *c, int worker, const char *cmd, int *rc);
/* Closes what cli_connect() opened (either may be NULL); returns rc. */
int cli_end(struct cfg *c, PGconn *conn, int rc);
/*
 * Prints r under title, one line a row, each column as wide as its
 * widest value, "  (none)" for no rows; clears r. -1 (after "imagegen:
 * cmd: " and the server's message on stderr) when r is not rows.
 */
int cli_print_query(PGconn *conn, const char *cmd, const char *title,
    PGresult *r);

/* imagegen stats: the monitoring queries and today's spend and alerts. */
int cmd_stats(void);

/* ---- imagegen budget ---------------------------------------------------- */

enum budget_action { BUDGET_SET = 1, BUDGET_CLEAR, BUDGET_SHOW };

/* A parsed `imagegen budget ACTION [options]`; the strings point into
 * argv or are constants. */
struct budget_args {
	enum budget_action action;
	const char *scope;	/* "user", "project"; NULL: the deployment (show) */
	const char *id;		/* the user's or project's UUID; NULL with scope */
	/* set: the new limits as numeric text, "Infinity" for none; NULL:
	 * left as they are (a new row: the default) */
	const char *daily, *monthly;
	/* clear: which limits go back to the default (neither: the row) */
	int clear_daily, clear_monthly;
};

/*
 * Parses argv ("budget", ACTION, options...): 0 with *a filled; 1 when
 * --help was asked for; -1 with one line naming the problem in err (bad
 * action, unknown option, missing or extra value, a bad UUID or amount,
 * no or two scopes, set without a limit). Uses getopt (optind reset,
 * opterr 0 while it runs); argv may be permuted. Can't fail otherwise.
 */
int budget_parse_args(struct budget_args *a, int argc, char **argv,
    char *err, size_t errlen);
/* The usage lines of `imagegen budget` (--help's and the error's). */
void budget_usage(FILE *f);
/* imagegen budget ...: 0, 1 when the database work failed, 2 for usage. */
int cmd_budget(int argc, char **argv);

/* ---- imagegen generate, imagegen jobs (the HTTP API's clients) ---------- */

/* Their exit statuses. */
enum gen_exit {
	GEN_EXIT_OK = 0,	/* completed (or accepted, without --wait) */
	GEN_EXIT_FAILED = 1,	/* the job failed or was canceled */
	GEN_EXIT_USAGE = 2,	/* bad arguments or settings: nothing sent */
	GEN_EXIT_TIMEOUT = 3,	/* --wait gave up; the job runs on */
	GEN_EXIT_HTTP = 4,	/* no answer, or an error status (401 …) */
	GEN_EXIT_INTERRUPTED = 130,	/* SIGINT while waiting; the job runs on */
};

/* What both commands take to reach the API. */
struct api_opts {
	const char *url, *token;	/* --url, --token; NULL: not given */
	int insecure, json;		/* --insecure, --json */
};

/* A parsed `imagegen generate PROMPT [options]`; strings point into argv
 * or are constants. */
struct gen_args {
	struct api_opts api;
	const char *prompt;
	const char *project, *branch, *type, *style, *scene, *shot;
	const char *source, *mask, *output;
	long width, height;	/* --size; 0: not given (the server's default) */
	long timeout;		/* --timeout seconds (default GEN_TIMEOUT_S) */
	int wait;		/* --wait, or implied by --timeout/--output */
};

#define GEN_TIMEOUT_S	300L

/*
 * Parses argv ("generate", options and the prompt in any order): 0 with
 * *g filled; 1 for --help; -1 with one line naming the problem in err (an
 * unknown option, a missing or extra value, not one prompt, an empty one,
 * a bad UUID, --type, --size or --timeout, --scene without --shot, a frame
 * without them, inpaint without --source, --mask without --source). Uses
 * getopt (optind reset, opterr 0 while it runs); argv may be permuted.
 */
int gen_parse_args(struct gen_args *g, int argc, char **argv, char *err,
    size_t errlen);

enum jobs_action { JOBS_LIST = 1, JOBS_SHOW, JOBS_CANCEL, JOBS_RETRY };

/* A parsed `imagegen jobs ACTION …`. */
struct jobs_args {
	struct api_opts api;
	enum jobs_action action;
	const char *id;				/* show, cancel, retry */
	const char *project, *status, *cursor;	/* list */
	long limit;				/* list; 0: the server's */
	long timeout;				/* retry --wait */
	int wait;
};

/* As gen_parse_args, for argv ("jobs", ACTION, …): a missing or bad job
 * id, --status not a job state, --limit not 1 to 100 are refused too. */
int jobs_parse_args(struct jobs_args *j, int argc, char **argv, char *err,
    size_t errlen);

/* The usage lines of both commands (--help's and an error's). */
void gen_usage(FILE *f);
void jobs_usage(FILE *f);
/* imagegen generate / imagegen jobs: an enum gen_exit. */
int cmd_generate(int argc, char **argv);
int cmd_jobs(int argc, char **argv);

#endif
