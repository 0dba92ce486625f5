/* test_budget_args.c - `imagegen budget`'s argument parser
 * (budget_parse_args, cmd_budget.c) and the USD check it shares with the
 * budget settings (cfg_usd_valid, cfg.c). */
#include <string.h>

#include "cfg.h"
#include "cli.h"
#include "cu_main.h"

#define U1 "8f14e45f-ceea-467f-a0e6-8f1f9d3c1d2b"
#define U2 "0a1b2c3d-0000-4000-8000-00000000abcd"

/* Parses the NULL-terminated words (copied: getopt permutes argv). */
static int
parse(struct budget_args *a, char *err, size_t errlen, const char *const *words)
{
	static char buf[16][64];
	char *argv[17];
	int n = 0;

	for (; words[n] != NULL && n < 16; n++) {
		snprintf(buf[n], sizeof(buf[n]), "%s", words[n]);
		argv[n] = buf[n];
	}
	argv[n] = NULL;
	err[0] = '\0';
	return budget_parse_args(a, n, argv, err, errlen);
}

#define PARSE(...) parse(&a, err, sizeof(err), (const char *const[]){ __VA_ARGS__, NULL })

static void
test_budget_usd_valid_like_the_settings(void)
{
	static const char *good[] = { "0", "10", "0.39", "0.000001", "1000000000",
	    "999999999.999999", "007" };
	static const char *bad[] = { "", "none", "-1", "+1", "1e3", ".5", "5.",
	    "0.0000001", "1000000000.5", "10000000000", "1,5", "10 ", " 10",
	    "1.2.3", "Infinity", "NaN", "0x10" };
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CU_ASSERT_TRUE(cfg_usd_valid(good[i]));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_FALSE(cfg_usd_valid(bad[i]));
}

static void
test_budget_set_parses_limits(void)
{
	struct budget_args a;
	char err[256];

	CU_ASSERT_EQUAL(PARSE("budget", "set", "--user", U1, "--daily", "5.5"), 0);
	CU_ASSERT_EQUAL(a.action, BUDGET_SET);
	CU_ASSERT_STRING_EQUAL(a.scope, "user");
	CU_ASSERT_STRING_EQUAL(a.id, U1);
	CU_ASSERT_STRING_EQUAL(a.daily, "5.5");
	CU_ASSERT_PTR_NULL(a.monthly);

	CU_ASSERT_EQUAL(PARSE("budget", "set", "--monthly=none", "--project", U2,
	    "--daily", "0"), 0);
	CU_ASSERT_STRING_EQUAL(a.scope, "project");
	CU_ASSERT_STRING_EQUAL(a.id, U2);
	CU_ASSERT_STRING_EQUAL(a.daily, "0");
	/* none is stored as numeric Infinity: no limit */
	CU_ASSERT_STRING_EQUAL(a.monthly, "Infinity");
}

static void
test_budget_clear_and_show_parse(void)
{
	struct budget_args a;
	char err[256];

	CU_ASSERT_EQUAL(PARSE("budget", "clear", "--project", U2), 0);
	CU_ASSERT_EQUAL(a.action, BUDGET_CLEAR);
	CU_ASSERT_FALSE(a.clear_daily || a.clear_monthly);
	CU_ASSERT_EQUAL(PARSE("budget", "clear", "--user", U1, "--monthly"), 0);
	CU_ASSERT_FALSE(a.clear_daily);
	CU_ASSERT_TRUE(a.clear_monthly);

	CU_ASSERT_EQUAL(PARSE("budget", "show"), 0);
	CU_ASSERT_EQUAL(a.action, BUDGET_SHOW);
	CU_ASSERT_PTR_NULL(a.scope);
	CU_ASSERT_EQUAL(PARSE("budget", "show", "--user", U1), 0);
	CU_ASSERT_STRING_EQUAL(a.scope, "user");

	CU_ASSERT_EQUAL(PARSE("budget", "--help"), 1);
	CU_ASSERT_EQUAL(PARSE("budget", "show", "--help"), 1);
}

/* Each refusal is one line that names what was wrong. */
static void
test_budget_refusals_name_the_problem(void)
{
	static const struct {
		const char *words[10];
		const char *says;
	} cases[] = {
		{ { "budget", NULL }, "expected set, clear or show" },
		{ { "budget", "raise", NULL }, "unknown action 'raise'" },
		{ { "budget", "set", "--user", "not-a-uuid", "--daily", "1", NULL },
		  "--user: expected a UUID, got 'not-a-uuid'" },
		{ { "budget", "show", "--project", U1 "0", NULL },
		  "--project: expected a UUID" },
		{ { "budget", "set", "--user", U1, NULL }, "give --daily and/or --monthly" },
		{ { "budget", "set", "--daily", "1", NULL },
		  "--user UUID or --project UUID is required" },
		{ { "budget", "clear", NULL }, "--user UUID or --project UUID is required" },
		{ { "budget", "set", "--user", U1, "--project", U2, "--daily", "1", NULL },
		  "not two" },
		{ { "budget", "set", "--user", U1, "--daily", "1e3", NULL },
		  "--daily: expected USD" },
		{ { "budget", "set", "--user", U1, "--monthly", "-5", NULL },
		  "--monthly: expected USD" },
		{ { "budget", "set", "--user", U1, "--daily", "0.1234567", NULL },
		  "got '0.1234567'" },
		{ { "budget", "set", "--user", U1, "--weekly", "1", NULL },
		  "unknown option '--weekly'" },
		{ { "budget", "set", "--user", U1, "--daily", NULL }, "'--daily' needs a value" },
		{ { "budget", "clear", "--user", U1, "--daily=3", NULL }, "takes no value" },
		{ { "budget", "show", "--daily", NULL }, "unknown option '--daily'" },
		{ { "budget", "show", "extra", NULL }, "unexpected argument 'extra'" },
	};
	struct budget_args a;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CU_ASSERT_EQUAL(parse(&a, err, sizeof(err), cases[i].words), -1);
		if (strstr(err, cases[i].says) == NULL)
			fprintf(stderr, "case %zu: '%s' lacks '%s'\n", i, err, cases[i].says);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].says));
		CU_ASSERT_PTR_NULL(strchr(err, '\n'));
		CU_ASSERT_EQUAL(a.action, 0);
	}
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "budget_usd_valid_like_the_settings",
		    test_budget_usd_valid_like_the_settings },
		{ "budget_set_parses_limits", test_budget_set_parses_limits },
		{ "budget_clear_and_show_parse", test_budget_clear_and_show_parse },
		{ "budget_refusals_name_the_problem",
		    test_budget_refusals_name_the_problem },
		CU_TEST_INFO_NULL
	};

	return cu_run("budget_args", tests);
}
