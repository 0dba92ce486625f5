/* prompt.h - the final prompt of a job: a template per job type, then the
 * visual style capsule's text (SPEC §6). */
#ifndef IG_PROMPT_H
#define IG_PROMPT_H

#include <stddef.h>

/* What a prompt is made from. Only job_type and prompt are required. */
struct prompt_in {
	const char *job_type;	/* master_asset|start_frame|end_frame|inpaint */
	const char *prompt;	/* the caller's words */
	const char *style;	/* the capsule's style_text, or NULL */
	int has_mask;		/* inpaint: a mask image goes with the source */
};

/* The template of a job type ("{prompt}" marks where the caller's words
 * go), NULL for an unknown type. Can't fail. */
const char *prompt_template(const char *job_type);

/*
 * The final prompt: the job type's template with the caller's prompt in
 * it (inpaint adds the mask sentence when has_mask), then, when style is
 * non-empty, a blank line and "Visual style: " with the capsule's text.
 * A leading "[[…]]" tag of the prompt (the local provider's failure hook)
 * is kept first, before the template. An unknown job type uses the
 * caller's prompt as it is. A malloc'd
 * string (caller frees), NULL when out of memory or prompt is NULL.
 */
char *prompt_compose(const struct prompt_in *in);

#endif
