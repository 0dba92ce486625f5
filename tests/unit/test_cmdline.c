/* test_cmdline.c - long options from one spec string. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmdline.h"
#include "cu_main.h"

static const char spec[] = "dir=d status/s help/h";

/* Parses argv (NULL-terminated) from the start; the returned characters
 * go to got (with optarg values after a ':'), ";"-separated. */
static void
parse(char **argv, char *got, size_t len)
{
	int argc = 0, ch;

	while (argv[argc] != NULL)
		argc++;
	optind = 0;	/* glibc: a full reinitialisation */
	opterr = 0;
	got[0] = '\0';
	while ((ch = cmdline_getopt(argc, argv, spec)) != -1)
		snprintf(got + strlen(got), len - strlen(got), "%c%s%s;", ch,
		    ch != '?' && optarg != NULL ? ":" : "",
		    ch != '?' && optarg != NULL ? optarg : "");
}

static void
test_cmdline_values_and_flags(void)
{
	char *argv[] = { "migrate", "--dir", "/x", "--status", "--dir=/y", "--help",
	    NULL };
	char got[128];

	parse(argv, got, sizeof(got));
	CU_ASSERT_STRING_EQUAL(got, "d:/x;s;d:/y;h;");
	CU_ASSERT_EQUAL(optind, 6);
}

static void
test_cmdline_operands_and_abbreviations(void)
{
	char *argv[] = { "migrate", "--stat", "extra", NULL };
	char got[128];

	parse(argv, got, sizeof(got));
	CU_ASSERT_STRING_EQUAL(got, "s;");
	CU_ASSERT_STRING_EQUAL(argv[optind], "extra");
}

static void
test_cmdline_refusals(void)
{
	char *unknown[] = { "migrate", "--nope", NULL };
	char *missing[] = { "migrate", "--dir", NULL };
	char *shortopt[] = { "migrate", "-d", "/x", NULL };
	char *flagval[] = { "migrate", "--status=1", NULL };
	char got[128];

	parse(unknown, got, sizeof(got));
	CU_ASSERT_STRING_EQUAL(got, "?;");
	parse(missing, got, sizeof(got));
	CU_ASSERT_STRING_EQUAL(got, "?;");
	parse(shortopt, got, sizeof(got));
	CU_ASSERT_EQUAL(got[0], '?');
	parse(flagval, got, sizeof(got));
	CU_ASSERT_STRING_EQUAL(got, "?;");
}

static void
test_cmdline_malformed_spec(void)
{
	char *argv[] = { "x", "--a", NULL };
	char words[CMDLINE_MAX_OPTS * 8 + 16];
	size_t n = 0;
	int i;

	optind = 0;
	opterr = 0;
	CU_ASSERT_EQUAL(cmdline_getopt(2, argv, "a"), '?');
	CU_ASSERT_EQUAL(cmdline_getopt(2, argv, "a="), '?');
	/* CMDLINE_MAX_OPTS words are taken, one more is a malformed words */
	for (i = 0; i < CMDLINE_MAX_OPTS; i++)
		n += (size_t)snprintf(words + n, sizeof(words) - n, "%s%c%c/%c", i ? " " : "",
		    'a' + i % 26, 'a' + i / 26, 'A' + i);
	optind = 0;
	CU_ASSERT_EQUAL(cmdline_getopt(2, argv, words), 'A');
	snprintf(words + n, sizeof(words) - n, " zz/z");
	optind = 0;
	CU_ASSERT_EQUAL(cmdline_getopt(2, argv, words), '?');
	optind = 0;
	CU_ASSERT_EQUAL(cmdline_getopt(2, argv, "a/x"), 'x');
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "cmdline_values_and_flags", test_cmdline_values_and_flags },
		{ "cmdline_operands_and_abbreviations",
		    test_cmdline_operands_and_abbreviations },
		{ "cmdline_refusals", test_cmdline_refusals },
		{ "cmdline_malformed_spec", test_cmdline_malformed_spec },
		CU_TEST_INFO_NULL
	};

	return cu_run("cmdline", tests);
}
