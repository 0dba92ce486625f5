/* test_apiclient.c - the HTTP API's command-line client without a server:
 * var/stack.env read without a shell (api_stack_env_parse), the argument
 * parsers of imagegen generate and imagegen jobs (cmd_generate.c), URLs
 * made absolute, query escaping, Idempotency-Keys. */
#include <stdlib.h>
#include <string.h>

#include "apiclient.h"
#include "cli.h"
#include "cu_main.h"
#include "uuid.h"

#define U1 "8f14e45f-ceea-467f-a0e6-8f1f9d3c1d2b"
#define U2 "0a1b2c3d-0000-4000-8000-00000000abcd"

static int
env(struct api_stack_env *se, const char *text, int *bad_line)
{
	return api_stack_env_parse(text, strlen(text), se, bad_line);
}

static void
test_stack_env_as_scripts_up_writes_it(void)
{
	static struct api_stack_env se;
	int bad = -1;

	/* quote(): '…', a quote inside as '\'' */
	CU_ASSERT_EQUAL(env(&se,
	    "# written by scripts/up; load with: set -a; . var/stack.env; set +a\n"
	    "IMAGEGEN_URL='https://localhost:8443'\n"
	    "DATABASE_URL='postgresql://imagegen_app@/imagegen?host=/it'\\''s&port=1'\n"
	    "DEMO_TOKEN='a.b.c'\n"
	    "DEMO_PROJECT_ID='" U1 "'\n"
	    "DEMO_BRANCH_ID='" U2 "'\n", &bad), 0);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_STRING_EQUAL(se.url, "https://localhost:8443");
	CU_ASSERT_STRING_EQUAL(se.token, "a.b.c");
	CU_ASSERT_STRING_EQUAL(se.project, U1);
	CU_ASSERT_STRING_EQUAL(se.branch, U2);
	/* '\'' itself, double quotes, escapes, export, CRLF, the last wins */
	CU_ASSERT_EQUAL(env(&se,
	    "DEMO_TOKEN='it'\\''s'\n"
	    "export IMAGEGEN_URL=\"http://h:1/a\\\"b\"  # comment\r\n"
	    "  DEMO_PROJECT_ID=x\\ y\n"
	    "\n"
	    "DEMO_BRANCH_ID=one\nDEMO_BRANCH_ID=two", NULL), 0);
	CU_ASSERT_STRING_EQUAL(se.token, "it's");
	CU_ASSERT_STRING_EQUAL(se.url, "http://h:1/a\"b");
	CU_ASSERT_STRING_EQUAL(se.project, "x y");
	CU_ASSERT_STRING_EQUAL(se.branch, "two");
}

static void
test_stack_env_nothing_expanded_or_run(void)
{
	static const char *const bad[] = {
		"DEMO_TOKEN=$HOME",
		"DEMO_TOKEN=\"$(id)\"",
		"DEMO_TOKEN=`id`",
		"DEMO_TOKEN=\"a`id`\"",
		"DEMO_TOKEN=a;id",
		"DEMO_TOKEN=a|id",
		"DEMO_TOKEN='unterminated",
		"DEMO_TOKEN=\"unterminated",
		"DEMO_TOKEN=a b",
		"DEMO_TOKEN=a\\",
		"DEMO_TOKEN=~root",
		"DEMO_TOKEN",
		"1X=a",
		"DEMO TOKEN=a",
		"echo hi",
	};
	static struct api_stack_env se;
	char text[128];
	size_t i;
	int line;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "IMAGEGEN_URL=http://h\n%s\n", bad[i]);
		line = 0;
		CU_ASSERT_EQUAL(env(&se, text, &line), 1);
		CU_ASSERT_EQUAL(line, 2);
		CU_ASSERT_STRING_EQUAL(se.token, "");
		CU_ASSERT_STRING_EQUAL(se.url, "http://h");
	}
	/* a NUL inside a line: the line is not read */
	CU_ASSERT_EQUAL(api_stack_env_parse("DEMO_TOKEN=a\0b\nX=1\n", 18, &se, &line), 1);
	CU_ASSERT_EQUAL(line, 1);
	CU_ASSERT_STRING_EQUAL(se.token, "");
	/* a project id longer than its field is refused, not cut */
	CU_ASSERT_EQUAL(env(&se, "DEMO_PROJECT_ID=" U1 U1 "\n", NULL), 1);
	CU_ASSERT_STRING_EQUAL(se.project, "");
}

/* Parses the NULL-terminated words (copied: getopt permutes argv). */
static char words_buf[24][4100];

static int
argv_of(char **argv, const char *const *words)
{
	int n = 0;

	for (; words[n] != NULL && n < 23; n++) {
		snprintf(words_buf[n], sizeof(words_buf[n]), "%s", words[n]);
		argv[n] = words_buf[n];
	}
	argv[n] = NULL;
	return n;
}

#define GEN(...) gen_parse_args(&g, argv_of(argv, (const char *const[]){ __VA_ARGS__, NULL }), \
    argv, err, sizeof(err))
#define JOBS(...) jobs_parse_args(&j, argv_of(argv, (const char *const[]){ __VA_ARGS__, NULL }), \
    argv, err, sizeof(err))

static void
test_generate_args(void)
{
	struct gen_args g;
	char err[256], *argv[24];

	CU_ASSERT_EQUAL(GEN("generate", "a castle"), 0);
	CU_ASSERT_STRING_EQUAL(g.prompt, "a castle");
	CU_ASSERT_STRING_EQUAL(g.type, "master_asset");
	CU_ASSERT_EQUAL(g.width, 0);
	CU_ASSERT_EQUAL(g.wait, 0);
	CU_ASSERT_EQUAL(g.timeout, GEN_TIMEOUT_S);
	CU_ASSERT_PTR_NULL(g.project);
	CU_ASSERT_PTR_NULL(g.branch);
	/* options after the prompt too */
	CU_ASSERT_EQUAL(GEN("generate", "--project", U1, "a castle", "--branch", U2,
	    "--size", "1024x768", "--type", "start_frame", "--scene", U1, "--shot", U2,
	    "--style", U2, "--json", "--insecure", "--url", "https://h", "--token", "t"), 0);
	CU_ASSERT_STRING_EQUAL(g.prompt, "a castle");
	CU_ASSERT_STRING_EQUAL(g.project, U1);
	CU_ASSERT_STRING_EQUAL(g.branch, U2);
	CU_ASSERT_EQUAL(g.width, 1024);
	CU_ASSERT_EQUAL(g.height, 768);
	CU_ASSERT_STRING_EQUAL(g.scene, U1);
	CU_ASSERT_STRING_EQUAL(g.shot, U2);
	CU_ASSERT_STRING_EQUAL(g.style, U2);
	CU_ASSERT_EQUAL(g.api.json, 1);
	CU_ASSERT_EQUAL(g.api.insecure, 1);
	CU_ASSERT_STRING_EQUAL(g.api.url, "https://h");
	CU_ASSERT_STRING_EQUAL(g.api.token, "t");
	/* --output and --timeout imply --wait */
	CU_ASSERT_EQUAL(GEN("generate", "x", "--output", "a.png"), 0);
	CU_ASSERT_EQUAL(g.wait, 1);
	CU_ASSERT_STRING_EQUAL(g.output, "a.png");
	CU_ASSERT_EQUAL(GEN("generate", "x", "--timeout", "5"), 0);
	CU_ASSERT_EQUAL(g.wait, 1);
	CU_ASSERT_EQUAL(g.timeout, 5);
	CU_ASSERT_EQUAL(GEN("generate", "x", "--type", "inpaint", "--source",
	    "https://h/s.png", "--mask", "https://h/m.png"), 0);
	CU_ASSERT_STRING_EQUAL(g.mask, "https://h/m.png");
	CU_ASSERT_EQUAL(GEN("generate", "--help"), 1);
	CU_ASSERT_EQUAL(GEN("generate", "-x", "--", "-a prompt"), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown option '-x'"));
	CU_ASSERT_EQUAL(GEN("generate", "--", "-a prompt"), 0);
	CU_ASSERT_STRING_EQUAL(g.prompt, "-a prompt");
}

static void
test_generate_refusals_name_the_problem(void)
{
	static const struct {
		const char *const words[8];
		const char *says;
	} cases[] = {
		{ { "generate", NULL }, "PROMPT" },
		{ { "generate", "a", "b", NULL }, "one PROMPT" },
		{ { "generate", " \t", NULL }, "empty" },
		{ { "generate", "x", "--project", "nope", NULL }, "--project: expected a UUID" },
		{ { "generate", "x", "--branch", U1 "0", NULL }, "--branch" },
		{ { "generate", "x", "--size", "64", NULL }, "--size" },
		{ { "generate", "x", "--size", "x64", NULL }, "--size" },
		{ { "generate", "x", "--size", "64x", NULL }, "--size" },
		{ { "generate", "x", "--size", "63x64", NULL }, "--size" },
		{ { "generate", "x", "--size", "64x4097", NULL }, "--size" },
		{ { "generate", "x", "--size", "+64x64", NULL }, "--size" },
		{ { "generate", "x", "--size", "64x64x64", NULL }, "--size" },
		{ { "generate", "x", "--type", "poster", NULL }, "--type" },
		{ { "generate", "x", "--type", "end_frame", NULL }, "--scene" },
		{ { "generate", "x", "--shot", U1, NULL }, "go together" },
		{ { "generate", "x", "--type", "inpaint", NULL }, "--source" },
		{ { "generate", "x", "--mask", "https://h/m", NULL }, "--source" },
		{ { "generate", "x", "--source", "ftp://h/s", NULL }, "--source" },
		{ { "generate", "x", "--source", "https://h/s", "--mask", "m", NULL }, "--mask" },
		{ { "generate", "x", "--timeout", "0", NULL }, "--timeout" },
		{ { "generate", "x", "--timeout", "86401", NULL }, "--timeout" },
		{ { "generate", "x", "--output", "", NULL }, "--output" },
		{ { "generate", "x", "--nope", NULL }, "unknown option '--nope'" },
		{ { "generate", "x", "--wait=1", NULL }, "takes no value" },
		{ { "generate", "x", "--size", NULL }, "needs a value" },
	};
	struct gen_args g;
	char err[256], *argv[24];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		CU_ASSERT_EQUAL(gen_parse_args(&g, argv_of(argv, cases[i].words), argv, err,
		    sizeof(err)), -1);
		if (strstr(err, cases[i].says) == NULL)
			fprintf(stderr, "case %zu: '%s' lacks '%s'\n", i, err, cases[i].says);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].says));
		CU_ASSERT_PTR_NULL(strchr(err, '\n'));
	}
	/* 4000 characters are a prompt, 4001 are not; é is one character */
	memset(words_buf[23], 'p', 4000);
	words_buf[23][4000] = '\0';
	argv[0] = (char *)"generate";
	argv[1] = words_buf[23];
	argv[2] = NULL;
	CU_ASSERT_EQUAL(gen_parse_args(&g, 2, argv, err, sizeof(err)), 0);
	memcpy(words_buf[23], "\xc3\xa9", 2);	/* 3999 characters */
	strcat(words_buf[23], "p");
	CU_ASSERT_EQUAL(gen_parse_args(&g, 2, argv, err, sizeof(err)), 0);
	strcat(words_buf[23], "p");
	CU_ASSERT_EQUAL(gen_parse_args(&g, 2, argv, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "4000"));
}

static void
test_jobs_args(void)
{
	struct jobs_args j;
	char err[256], *argv[24];

	CU_ASSERT_EQUAL(JOBS("jobs", "list"), 0);
	CU_ASSERT_EQUAL(j.action, JOBS_LIST);
	CU_ASSERT_EQUAL(j.limit, 0);
	CU_ASSERT_EQUAL(JOBS("jobs", "list", "--project", U1, "--status", "failed",
	    "--limit", "100", "--cursor", "abc=", "--json"), 0);
	CU_ASSERT_STRING_EQUAL(j.project, U1);
	CU_ASSERT_STRING_EQUAL(j.status, "failed");
	CU_ASSERT_EQUAL(j.limit, 100);
	CU_ASSERT_STRING_EQUAL(j.cursor, "abc=");
	CU_ASSERT_EQUAL(j.api.json, 1);
	CU_ASSERT_EQUAL(JOBS("jobs", "show", U1), 0);
	CU_ASSERT_EQUAL(j.action, JOBS_SHOW);
	CU_ASSERT_STRING_EQUAL(j.id, U1);
	CU_ASSERT_EQUAL(JOBS("jobs", "cancel", "--url", "http://h", U2), 0);
	CU_ASSERT_EQUAL(j.action, JOBS_CANCEL);
	CU_ASSERT_STRING_EQUAL(j.id, U2);
	CU_ASSERT_EQUAL(JOBS("jobs", "retry", U2, "--timeout", "9"), 0);
	CU_ASSERT_EQUAL(j.action, JOBS_RETRY);
	CU_ASSERT_EQUAL(j.wait, 1);
	CU_ASSERT_EQUAL(j.timeout, 9);
	CU_ASSERT_EQUAL(JOBS("jobs", "--help"), 1);
	CU_ASSERT_EQUAL(JOBS("jobs", "list", "--help"), 1);
	/* refusals */
	CU_ASSERT_EQUAL(JOBS("jobs"), -1);
	CU_ASSERT_EQUAL(JOBS("jobs", "drop", U1), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown action"));
	CU_ASSERT_EQUAL(JOBS("jobs", "show"), -1);
	CU_ASSERT_EQUAL(JOBS("jobs", "show", "1"), -1);
	CU_ASSERT_EQUAL(JOBS("jobs", "show", U1, U2), -1);
	CU_ASSERT_EQUAL(JOBS("jobs", "list", U1), -1);
	CU_ASSERT_EQUAL(JOBS("jobs", "list", "--status", "done"), -1);
	CU_ASSERT_EQUAL(JOBS("jobs", "list", "--limit", "101"), -1);
	CU_ASSERT_EQUAL(JOBS("jobs", "list", "--cursor", ""), -1);
	CU_ASSERT_EQUAL(JOBS("jobs", "show", U1, "--wait"), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown option"));
	CU_ASSERT_EQUAL(JOBS("jobs", "cancel", U1, "--status", "queued"), -1);
}

static void
test_urls_keys_and_queries(void)
{
	struct api_conf c = { 0 };
	char key[37], key2[37], q[32], *u;

	c.url = (char *)"https://localhost:8443/base";
	u = api_abs_url(&c, "/storage/v1/object/public/b/x.png");
	CU_ASSERT_STRING_EQUAL(u, "https://localhost:8443/storage/v1/object/public/b/x.png");
	free(u);
	u = api_abs_url(&c, "http://cdn.example/x.png");
	CU_ASSERT_STRING_EQUAL(u, "http://cdn.example/x.png");
	free(u);
	CU_ASSERT_PTR_NULL(api_abs_url(&c, "//evil.example/x.png"));
	CU_ASSERT_PTR_NULL(api_abs_url(&c, "file:///etc/passwd"));
	CU_ASSERT_PTR_NULL(api_abs_url(&c, "x.png"));
	CU_ASSERT_PTR_NULL(api_abs_url(&c, NULL));
	CU_ASSERT_EQUAL(api_uuid4(key), 0);
	CU_ASSERT_EQUAL(api_uuid4(key2), 0);
	CU_ASSERT_TRUE(uuid_valid(key));
	CU_ASSERT_EQUAL(key[14], '4');
	CU_ASSERT_PTR_NOT_NULL(strchr("89ab", key[19]));
	CU_ASSERT_STRING_NOT_EQUAL(key, key2);
	CU_ASSERT_EQUAL(api_query_escape(q, sizeof(q), "a+b/=c ~"), 0);
	CU_ASSERT_STRING_EQUAL(q, "a%2Bb%2F%3Dc%20~");
	CU_ASSERT_EQUAL(api_query_escape(q, 4, "abcd"), -1);
	CU_ASSERT_EQUAL(api_query_escape(q, 4, "a/"), -1);
}

static void
test_retry_after_dates_and_large_values(void)
{
	/* Sun, 06 Nov 1994 08:49:37 GMT */
	const time_t t0 = 784111777;

	CU_ASSERT_EQUAL(api_retry_after_s(NULL, t0), -1);
	CU_ASSERT_EQUAL(api_retry_after_s("", t0), -1);
	CU_ASSERT_EQUAL(api_retry_after_s("0", t0), 0);
	CU_ASSERT_EQUAL(api_retry_after_s("7", t0), 7);
	CU_ASSERT_EQUAL(api_retry_after_s("30", t0), 30);
	/* large values are clamped, not read as 1 s */
	CU_ASSERT_EQUAL(api_retry_after_s("31", t0), API_RETRY_AFTER_MAX);
	CU_ASSERT_EQUAL(api_retry_after_s("999999", t0), API_RETRY_AFTER_MAX);
	CU_ASSERT_EQUAL(api_retry_after_s("1000000", t0), API_RETRY_AFTER_MAX);
	CU_ASSERT_EQUAL(api_retry_after_s("99999999999999999999999", t0), API_RETRY_AFTER_MAX);
	/* HTTP-dates: IMF-fixdate and the obsolete RFC 850 and asctime forms */
	CU_ASSERT_EQUAL(api_retry_after_s("Sun, 06 Nov 1994 08:49:49 GMT", t0), 12);
	CU_ASSERT_EQUAL(api_retry_after_s("Sunday, 06-Nov-94 08:49:42 GMT", t0), 5);
	CU_ASSERT_EQUAL(api_retry_after_s("Sun Nov  6 08:49:57 1994", t0), 20);
	CU_ASSERT_EQUAL(api_retry_after_s("Sun, 06 Nov 1994 09:49:37 GMT", t0), API_RETRY_AFTER_MAX);
	CU_ASSERT_EQUAL(api_retry_after_s("Sun, 06 Nov 1994 08:00:00 GMT", t0), 0);
	/* neither: one second, as before */
	CU_ASSERT_EQUAL(api_retry_after_s("soon", t0), 1);
	CU_ASSERT_EQUAL(api_retry_after_s("5s", t0), 1);
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "stack_env_as_scripts_up_writes_it", test_stack_env_as_scripts_up_writes_it },
		{ "stack_env_nothing_expanded_or_run", test_stack_env_nothing_expanded_or_run },
		{ "generate_args", test_generate_args },
		{ "generate_refusals_name_the_problem", test_generate_refusals_name_the_problem },
		{ "jobs_args", test_jobs_args },
		{ "urls_keys_and_queries", test_urls_keys_and_queries },
		{ "retry_after_dates_and_large_values", test_retry_after_dates_and_large_values },
		CU_TEST_INFO_NULL
	};

	return cu_run("apiclient", tests);
}
