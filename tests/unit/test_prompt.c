/* test_prompt.c - the templates per job type and their composition with a
 * visual style capsule. */
#include <stdlib.h>
#include <string.h>

#include "cu_main.h"
#include "prompt.h"

#define START_OPENS "Cinematic start frame of the scene and shot: the door opens. "

static char *
compose(const char *type, const char *prompt, const char *style, int mask)
{
	struct prompt_in in;

	memset(&in, 0, sizeof(in));
	in.job_type = type;
	in.prompt = prompt;
	in.style = style;
	in.has_mask = mask;
	return prompt_compose(&in);
}

static void
test_prompt_template_per_job_type(void)
{
	static const struct { const char *type; const char *words[3]; } v[] = {
		{ "master_asset", { "isolated", "neutral background", NULL } },
		{ "start_frame", { "Cinematic", "opening frame", "shot" } },
		{ "end_frame", { "Cinematic", "closing frame", "continuity" } },
		{ "inpaint", { "Edit the provided image", "keep everything else",
		    NULL } },
	};
	size_t i, k;
	const char *t;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		t = prompt_template(v[i].type);
		CU_ASSERT_PTR_NOT_NULL_FATAL(t);
		/* one place for the caller's words */
		CU_ASSERT_PTR_NOT_NULL(strstr(t, "{prompt}"));
		CU_ASSERT_PTR_NULL(strstr(strstr(t, "{prompt}") + 1, "{prompt}"));
		for (k = 0; k < 3 && v[i].words[k] != NULL; k++)
			CU_ASSERT_PTR_NOT_NULL(strstr(t, v[i].words[k]));
	}
	CU_ASSERT_PTR_NULL(prompt_template("poster"));
	CU_ASSERT_PTR_NULL(prompt_template(NULL));
}

static void
test_prompt_without_capsule(void)
{
	char *s;

	s = compose("master_asset", "a red fox", NULL, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(s, "Master asset: a red fox. Show the subject alone "
	    "and whole, isolated and centred on a plain, neutral background, evenly "
	    "lit, with no other objects, scenery, text or watermark.");
	CU_ASSERT_PTR_NULL(strstr(s, "Visual style"));
	free(s);
	/* an empty capsule text is no capsule */
	s = compose("start_frame", "the door opens", "", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT(strncmp(s, START_OPENS, strlen(START_OPENS)) == 0);
	CU_ASSERT_PTR_NULL(strstr(s, "Visual style"));
	free(s);
	/* the caller's own full stop and blanks are not doubled */
	s = compose("end_frame", "the door closes.  \n", NULL, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_PTR_NOT_NULL(strstr(s, "shot: the door closes. Compose"));
	free(s);
}

static void
test_prompt_with_capsule(void)
{
	const char *style = "Watercolour, muted earth tones, soft paper grain.";
	char *s;
	size_t n;

	s = compose("master_asset", "a red fox", style, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	n = strlen(s);
	/* template first, then a blank line and the capsule, last */
	CU_ASSERT(strncmp(s, "Master asset: a red fox.", 24) == 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(s, "\n\nVisual style: "));
	CU_ASSERT(n > strlen(style) && strcmp(s + n - strlen(style), style) == 0);
	CU_ASSERT(strstr(s, "watermark.") < strstr(s, "Visual style"));
	free(s);
	/* The caller's text goes in as it is: braces and percent signs too. */
	s = compose("inpaint", "replace {prompt} with 100% %s", "ink", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(s, "Edit the provided image: replace {prompt} with "
	    "100% %s. Change only what this instruction asks for and keep "
	    "everything else exactly as it is: composition, subjects, lighting, "
	    "colours and style.\n\nVisual style: ink");
	free(s);
}

static void
test_prompt_inpaint_mask_sentence(void)
{
	char *with, *without;

	with = compose("inpaint", "remove the hat", NULL, 1);
	without = compose("inpaint", "remove the hat", NULL, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(with);
	CU_ASSERT_PTR_NOT_NULL_FATAL(without);
	CU_ASSERT_PTR_NOT_NULL(strstr(with, "The second image is a mask"));
	CU_ASSERT_PTR_NULL(strstr(without, "mask"));
	CU_ASSERT(strncmp(with, without, strlen(without)) == 0);
	free(with);
	free(without);
	/* only inpaint has a mask sentence */
	with = compose("master_asset", "a hat", NULL, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(with);
	CU_ASSERT_PTR_NULL(strstr(with, "mask"));
	free(with);
}

static void
test_prompt_unknown_type_and_errors(void)
{
	char *s;

	s = compose("poster", "just this.", "ink", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(s, "just this.\n\nVisual style: ink");
	free(s);
	s = compose(NULL, "x", NULL, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(s, "x");
	free(s);
	CU_ASSERT_PTR_NULL(compose("master_asset", NULL, NULL, 0));
	/* The local provider's "[[fail:CODE]]" hook addresses the provider:
	 * it stays first, the template follows. */
	s = compose("master_asset", "[[fail:TEMPORARY]]  a flaky fox", "ink", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT(strncmp(s, "[[fail:TEMPORARY]] Master asset: a flaky fox. Show",
	    50) == 0);
	CU_ASSERT(strcmp(s + strlen(s) - 3, "ink") == 0);
	free(s);
	/* not a tag: not at the start, or never closed */
	s = compose("master_asset", "x [[fail:TIMEOUT]]", NULL, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT(strncmp(s, "Master asset: x [[fail:TIMEOUT]]. Show", 38) == 0);
	free(s);
	s = compose("master_asset", "[[fail:TIMEOUT a fox", NULL, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT(strncmp(s, "Master asset: [[fail:TIMEOUT a fox. Show", 40) == 0);
	free(s);
	CU_ASSERT_PTR_NULL(prompt_compose(NULL));
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "prompt_template_per_job_type", test_prompt_template_per_job_type },
		{ "prompt_without_capsule", test_prompt_without_capsule },
		{ "prompt_with_capsule", test_prompt_with_capsule },
		{ "prompt_inpaint_mask_sentence", test_prompt_inpaint_mask_sentence },
		{ "prompt_unknown_type_and_errors", test_prompt_unknown_type_and_errors },
		CU_TEST_INFO_NULL
	};

	return cu_run("prompt", tests);
}
