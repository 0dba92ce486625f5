/* cli.h - what the imagegen commands share (cli.c), and the commands that
 * live in their own files: budget (cmd_budget.c), stats (cmd_stats.c). */
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

#endif
