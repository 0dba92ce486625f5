/*
 * cmd_budget.c - imagegen budget: operators' budget overrides (set, clear)
 * and what the current UTC windows hold (show), over sql/011_budgets.sql's
 * public.budgets and public.budget_usage. budget_db.c has the SQL.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "budgetdb.h"
#include "cli.h"
#include "cmdline.h"
#include "db.h"
#include "uuid.h"

void
budget_usage(FILE *f)
{
	fprintf(f,
"usage: imagegen budget set (--user UUID | --project UUID)\n"
"                           [--daily USD|none] [--monthly USD|none]\n"
"       imagegen budget clear (--user UUID | --project UUID) [--daily] [--monthly]\n"
"       imagegen budget show [--user UUID | --project UUID]\n");
}

static const struct {
	const char *name;
	enum budget_action action;
	const char *opts;
} budget_actions[] = {
	{ "set", BUDGET_SET, "user=u project=p daily=d monthly=m help/h" },
	{ "clear", BUDGET_CLEAR, "user=u project=p daily/d monthly/m help/h" },
	{ "show", BUDGET_SHOW, "user=u project=p help/h" },
};

/* A limit of `budget set`: numeric text for SQL in *out, "Infinity" for
 * none; -1 with err for anything cfg_usd_valid() refuses. */
static int
parse_limit(const char *act, const char *opt, const char *v, const char **out,
    char *err, size_t errlen)
{
	if (strcmp(v, "none") == 0) {
		*out = "Infinity";
		return 0;
	}
	if (!cfg_usd_valid(v)) {
		snprintf(err, errlen, "budget %s: --%s: expected USD as a decimal such as 10 or 0.39 (at most 6 places, up to 1000000000) or none, got '%.40s'",
		    act, opt, v);
		return -1;
	}
	*out = v;
	return 0;
}

int
budget_parse_args(struct budget_args *a, int argc, char **argv,
    char *err, size_t errlen)
{
	const char *act, *opts = NULL, *bad;
	int saved_opterr = opterr, ch, sub_argc = argc - 1, rc = -1;
	char **sub_argv = argv + 1;
	size_t i;

	memset(a, 0, sizeof(*a));
	if (argc < 2) {
		snprintf(err, errlen, "budget: expected set, clear or show");
		return -1;
	}
	act = argv[1];
	if (strcmp(act, "--help") == 0 || strcmp(act, "help") == 0)
		return 1;
	for (i = 0; i < sizeof(budget_actions) / sizeof(budget_actions[0]); i++) {
		if (strcmp(act, budget_actions[i].name) == 0) {
			a->action = budget_actions[i].action;
			opts = budget_actions[i].opts;
		}
	}
	if (opts == NULL) {
		snprintf(err, errlen, "budget: unknown action '%.40s' (expected set, clear or show)",
		    act);
		return -1;
	}
	/* Our own one-line messages, not getopt's. */
	optind = 0;
	opterr = 0;
	while ((ch = cmdline_getopt(sub_argc, sub_argv, opts)) != -1) {
		switch (ch) {
		case 'u':
		case 'p':
			if (a->scope != NULL) {
				snprintf(err, errlen, "budget %s: give one --user or --project, not two",
				    act);
				goto out;
			}
			a->scope = ch == 'u' ? "user" : "project";
			a->id = optarg;
			if (!uuid_valid(optarg)) {
				snprintf(err, errlen, "budget %s: --%s: expected a UUID, got '%.40s'",
				    act, a->scope, optarg);
				goto out;
			}
			break;
		case 'd':
			if (a->action == BUDGET_CLEAR)
				a->clear_daily = 1;
			else if (parse_limit(act, "daily", optarg, &a->daily, err,
			    errlen) != 0)
				goto out;
			break;
		case 'm':
			if (a->action == BUDGET_CLEAR)
				a->clear_monthly = 1;
			else if (parse_limit(act, "monthly", optarg, &a->monthly, err,
			    errlen) != 0)
				goto out;
			break;
		case 'h':
			rc = 1;
			goto out;
		default:
			bad = optind > 0 && optind <= sub_argc ? sub_argv[optind - 1] : "?";
			if (optopt == 0)
				snprintf(err, errlen, "budget %s: unknown option '%.40s'", act, bad);
			else if (strchr(bad, '=') != NULL)
				snprintf(err, errlen, "budget %s: '%.40s': the option takes no value",
				    act, bad);
			else
				snprintf(err, errlen, "budget %s: '%.40s' needs a value", act, bad);
			goto out;
		}
	}
	if (optind < sub_argc) {
		snprintf(err, errlen, "budget %s: unexpected argument '%.40s'", act,
		    sub_argv[optind]);
		goto out;
	}
	if (a->action != BUDGET_SHOW && a->scope == NULL) {
		snprintf(err, errlen, "budget %s: --user UUID or --project UUID is required",
		    act);
		goto out;
	}
	if (a->action == BUDGET_SET && a->daily == NULL && a->monthly == NULL) {
		snprintf(err, errlen, "budget set: give --daily and/or --monthly (USD or none)");
		goto out;
	}
	rc = 0;
out:
	opterr = saved_opterr;
	if (rc != 0 && rc != 1)
		memset(a, 0, sizeof(*a));
	return rc;
}

/* After set or clear: the row now (or as it was deleted). */
static void
print_row(const struct budget_args *a, PGresult *r)
{
	printf("%s %s", a->scope, a->id);
	if (PQntuples(r) == 0)
		printf(": no override (the defaults apply)\n");
	else if (a->action == BUDGET_CLEAR && !a->clear_daily && !a->clear_monthly)
		printf(": override removed (was daily %s, monthly %s); the defaults apply\n",
		    PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
	else
		printf(": daily %s, monthly %s\n", PQgetvalue(r, 0, 0),
		    PQgetvalue(r, 0, 1));
}

/* show: the windows of a->scope (the deployment's when none) and, for the
 * deployment, every override. */
static int
show(PGconn *conn, const struct cfg *c, const struct budget_args *a)
{
	PGresult *r;
	char title[128];

	r = budgetdb_set_defaults(conn, c->budget_defaults);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "imagegen: budget show: %s", PQerrorMessage(conn));
		PQclear(r);
		return -1;
	}
	PQclear(r);
	if (a->scope == NULL)
		snprintf(title, sizeof(title), "deployment: budgets of the current UTC windows");
	else
		snprintf(title, sizeof(title), "%s %s: budgets of the current UTC windows",
		    a->scope, a->id);
	if (cli_print_query(conn, "budget show", title,
	    budgetdb_windows(conn, a->scope != NULL ? a->scope : "deployment",
	    a->scope != NULL ? a->id : BUDGETDB_NIL_UUID)) != 0)
		return -1;
	if (a->scope != NULL)
		return 0;
	printf("\n");
	return cli_print_query(conn, "budget show",
	    "overrides (imagegen budget set; default: the settings' limit for a user,"
	    " none for a project):",
	    budgetdb_overrides(conn));
}

int
cmd_budget(int argc, char **argv)
{
	struct budget_args a;
	struct cfg c = { 0 };
	PGconn *conn = NULL;
	PGresult *r = NULL;
	char err[256];
	int rc;

	rc = budget_parse_args(&a, argc, argv, err, sizeof(err));
	if (rc == 1) {
		budget_usage(stdout);
		return 0;
	}
	if (rc != 0) {
		fprintf(stderr, "imagegen: %s\n", err);
		return 2;
	}
	conn = cli_connect(&c, 1, "budget", &rc);
	if (conn == NULL)
		goto out;
	rc = 1;
	if (db_begin_service(conn) != IG_OK) {
		fprintf(stderr, "imagegen: budget: cannot begin a transaction: %s",
		    PQerrorMessage(conn));
		goto out;
	}
	if (a.action == BUDGET_SHOW) {
		if (show(conn, &c, &a) == 0)
			rc = 0;
		db_rollback(conn);
		goto out;
	}
	r = a.action == BUDGET_SET ?
	    budgetdb_set(conn, a.scope, a.id, a.daily, a.monthly) :
	    budgetdb_clear(conn, a.scope, a.id, a.clear_daily, a.clear_monthly);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "imagegen: budget %s: %s", argv[1], PQerrorMessage(conn));
		db_rollback(conn);
		goto out;
	}
	if (db_commit(conn) != IG_OK) {
		fprintf(stderr, "imagegen: budget %s: commit failed: %s", argv[1],
		    PQerrorMessage(conn));
		goto out;
	}
	print_row(&a, r);
	rc = 0;
out:
	PQclear(r);
	return cli_end(&c, conn, rc);
}
