/*
 * prompt.c - the prompt templates, in one table, and their composition
 * with the visual style capsule. To change what the model is told, edit
 * the table: "{prompt}" is replaced by the caller's prompt, everything
 * else is sent as written.
 */
#include <stdlib.h>
#include <string.h>

#include "prompt.h"

#define PROMPT_MARK "{prompt}"
#define PROMPT_STYLE_LEAD "\n\nVisual style: "

static const struct prompt_tpl {
	const char *job_type;
	const char *text;
	const char *mask_note;	/* appended when a mask is given */
} prompt_tpls[] = {
	{ "master_asset",
	    "Master asset: {prompt}. Show the subject alone and whole, isolated "
	    "and centred on a plain, neutral background, evenly lit, with no "
	    "other objects, scenery, text or watermark.",
	    NULL },
	{ "start_frame",
	    "Cinematic start frame of the scene and shot: {prompt}. Compose it "
	    "as a film still: the opening frame of the shot, establishing the "
	    "characters, setting, lighting and colour palette that the rest of "
	    "the shot continues.",
	    NULL },
	{ "end_frame",
	    "Cinematic end frame of the scene and shot: {prompt}. Compose it as "
	    "a film still: the closing frame of the shot, keeping continuity "
	    "with its start frame: the same characters, wardrobe, setting, "
	    "lighting and colour palette.",
	    NULL },
	{ "inpaint",
	    "Edit the provided image: {prompt}. Change only what this "
	    "instruction asks for and keep everything else exactly as it is: "
	    "composition, subjects, lighting, colours and style.",
	    " The second image is a mask: edit only the area it marks in white "
	    "and leave the area in black unchanged." },
};

static const struct prompt_tpl *
prompt_find(const char *job_type)
{
	size_t i;

	for (i = 0; job_type != NULL &&
	    i < sizeof(prompt_tpls) / sizeof(prompt_tpls[0]); i++) {
		if (strcmp(prompt_tpls[i].job_type, job_type) == 0)
			return &prompt_tpls[i];
	}
	return NULL;
}

const char *
prompt_template(const char *job_type)
{
	const struct prompt_tpl *t = prompt_find(job_type);

	return t != NULL ? t->text : NULL;
}

/* The length of a leading "[[…]]" control tag of p (the local provider's
 * "[[fail:CODE]]" test hook), 0 when p does not start with one. Such a
 * tag addresses the provider, not the picture: it stays first. */
static size_t
prompt_tag(const char *p)
{
	const char *end;

	if (strncmp(p, "[[", 2) != 0)
		return 0;
	end = strstr(p + 2, "]]");
	if (end == NULL || memchr(p, '\n', (size_t)(end - p)) != NULL)
		return 0;
	return (size_t)(end + 2 - p);
}

/* Appends n bytes of s at *o in out. */
static void
put(char *out, size_t *o, const char *s, size_t n)
{
	memcpy(out + *o, s, n);
	*o += n;
}

char *
prompt_compose(const struct prompt_in *in)
{
	const struct prompt_tpl *t;
	const char *tpl, *mark, *note = NULL, *words;
	size_t pl, sl = 0, n, o = 0, tag;
	char *out;

	if (in == NULL || in->prompt == NULL)
		return NULL;
	t = prompt_find(in->job_type);
	tpl = t != NULL ? t->text : PROMPT_MARK;
	if (t != NULL && in->has_mask)
		note = t->mask_note;
	mark = strstr(tpl, PROMPT_MARK);
	words = in->prompt;
	tag = prompt_tag(words);
	words += tag;
	while (tag > 0 && *words == ' ')
		words++;
	pl = strlen(words);
	/* The template ends the caller's words with its own full stop: trailing
	 * blanks and stops are dropped so it does not read "fox.. Show". */
	if (t != NULL) {
		while (pl > 0 && (words[pl - 1] == '.' || words[pl - 1] == ' ' ||
		    words[pl - 1] == '\n' || words[pl - 1] == '\t' ||
		    words[pl - 1] == '\r'))
			pl--;
	}
	if (in->style != NULL)
		sl = strlen(in->style);
	n = tag + 1 + strlen(tpl) + pl + (note != NULL ? strlen(note) : 0) +
	    strlen(PROMPT_STYLE_LEAD) + sl + 2;
	out = malloc(n);
	if (out == NULL)
		return NULL;
	if (tag > 0) {
		put(out, &o, in->prompt, tag);
		put(out, &o, " ", 1);
	}
	if (mark != NULL) {
		put(out, &o, tpl, (size_t)(mark - tpl));
		put(out, &o, words, pl);
		put(out, &o, mark + strlen(PROMPT_MARK), strlen(mark + strlen(PROMPT_MARK)));
	} else {
		/* A template without the mark: the caller's words after it. */
		put(out, &o, tpl, strlen(tpl));
		put(out, &o, " ", 1);
		put(out, &o, words, pl);
	}
	if (note != NULL)
		put(out, &o, note, strlen(note));
	if (sl > 0) {
		put(out, &o, PROMPT_STYLE_LEAD, strlen(PROMPT_STYLE_LEAD));
		put(out, &o, in->style, sl);
	}
	out[o] = '\0';
	return out;
}
