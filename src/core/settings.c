/* settings.c - settings as table rows: the source, the reader, the printer. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secret.h"
#include "settings.h"

#define ENVFILE_MAX (256 * 1024)

struct settings_kv {
	char *key;
	char *val;
};

int
settings_parse_line(char *line, char **key, char **val)
{
	char *p = line, *k, *v, *end;
	size_t len;

	while (isspace((unsigned char)*p))
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	if (strncmp(p, "export", 6) == 0 && isspace((unsigned char)p[6])) {
		p += 6;
		while (isspace((unsigned char)*p))
			p++;
	}
	k = p;
	if (!(isalpha((unsigned char)*p) || *p == '_'))
		return -1;
	while (isalnum((unsigned char)*p) || *p == '_')
		p++;
	end = p;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '=')
		return -1;
	*end = '\0';
	p++;
	while (*p == ' ' || *p == '\t')
		p++;
	v = p;
	len = strlen(v);
	while (len > 0 && isspace((unsigned char)v[len - 1]))
		v[--len] = '\0';
	if (len > 0 && (v[0] == '"' || v[0] == '\'')) {
		if (len < 2 || v[len - 1] != v[0])
			return -1;
		v[len - 1] = '\0';
		v++;
	} else if (strchr(v, '#') != NULL) {
		/* Unquoted: a " #" starts a comment. */
		char *h = strstr(v, " #");
		if (h != NULL) {
			*h = '\0';
			len = strlen(v);
			while (len > 0 && isspace((unsigned char)v[len - 1]))
				v[--len] = '\0';
		}
	}
	*key = k;
	*val = v;
	return 1;
}

int
settings_parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}


void
settings_src_free(struct settings_src *s)
{
	free(s->kv);
	free(s->text);
	s->kv = NULL;
	s->text = NULL;
	s->n = 0;
}

int
settings_src_read(struct settings_src *s, const char *path, char *err,
    size_t errlen)
{
	FILE *f = NULL;
	char *line, *next, *k, *v;
	size_t len, cap = 0, lineno = 0;
	int rc = -1, r;

	memset(s, 0, sizeof(*s));
	if (path == NULL || *path == '\0')
		return 0;
	f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errlen, "IMAGEGEN_ENV_FILE: cannot open %s: %s",
		    path, strerror(errno));
		goto out;
	}
	s->text = malloc(ENVFILE_MAX + 1);
	if (s->text == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	len = fread(s->text, 1, ENVFILE_MAX + 1, f);
	if (len > ENVFILE_MAX) {
		snprintf(err, errlen, "IMAGEGEN_ENV_FILE: %s is larger than %d bytes",
		    path, ENVFILE_MAX);
		goto out;
	}
	s->text[len] = '\0';
	for (line = s->text; line != NULL; line = next) {
		lineno++;
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		r = settings_parse_line(line, &k, &v);
		if (r < 0) {
			snprintf(err, errlen, "IMAGEGEN_ENV_FILE: %s line %zu is not KEY=VALUE",
			    path, lineno);
			goto out;
		}
		if (r == 0)
			continue;
		if (s->n == cap) {
			struct settings_kv *nkv;

			cap = cap ? cap * 2 : 16;
			nkv = realloc(s->kv, cap * sizeof(*nkv));
			if (nkv == NULL) {
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			s->kv = nkv;
		}
		s->kv[s->n].key = k;
		s->kv[s->n].val = v;
		s->n++;
	}
	rc = 0;
out:
	if (f != NULL)
		fclose(f);
	if (rc != 0)
		settings_src_free(s);
	return rc;
}

const char *
settings_get(const struct settings_src *s, const char *key)
{
	const char *v = getenv(key);
	size_t i;

	if (v != NULL && *v != '\0')
		return v;
	v = NULL;
	for (i = 0; s != NULL && i < s->n; i++)
		if (strcmp(s->kv[i].key, key) == 0)
			v = s->kv[i].val;
	return v != NULL && *v != '\0' ? v : NULL;
}

/* One string row: checked, copied, stripped. */
static int
read_str(const struct setting *row, const char *v, char **field, char *err,
    size_t errlen)
{
	char *copy;
	size_t n;

	if ((row->flags & SET_HTTP) && strncmp(v, "https://", 8) != 0 &&
	    strncmp(v, "http://", 7) != 0) {
		snprintf(err, errlen, "%s: expected an http(s) URL, got '%.60s'",
		    row->name, v);
		return -1;
	}
	if (row->check != NULL && row->check(row, v, field, err, errlen) != 0)
		return -1;
	copy = strdup(v);
	if (copy == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	n = strlen(copy);
	while ((row->flags & SET_STRIP) && n > 0 && copy[n - 1] == '/')
		copy[--n] = '\0';
	if (row->flags & SET_SECRET)
		secret_free(*field);
	else
		free(*field);
	*field = copy;
	return 0;
}

/* One row from value v (set or default). */
static int
read_row(const struct setting *row, const char *v, void *base, char *err,
    size_t errlen)
{
	void *field = (char *)base + row->off;
	long n;

	switch (row->type) {
	case SET_STR:
		return read_str(row, v, field, err, errlen);
	case SET_FN:
		return row->check(row, v, field, err, errlen);
	case SET_LONG:
	case SET_INT:
	case SET_SIZE:
		if (settings_parse_long(v, row->min, row->max, &n) != 0) {
			snprintf(err, errlen, "%s: expected a whole number from %ld to %ld, got '%.40s'",
			    row->name, row->min, row->max, v);
			return -1;
		}
		if (row->type == SET_LONG)
			*(long *)field = n;
		else if (row->type == SET_INT)
			*(int *)field = (int)n;
		else
			*(size_t *)field = (size_t)n;
		return 0;
	}
	snprintf(err, errlen, "%s: unknown setting type", row->name);
	return -1;
}

int
settings_read(const struct setting *rows, void *base,
    const struct settings_src *src, int mode, char *err, size_t errlen)
{
	const struct setting *row;
	const char *v;

	for (row = rows; row != NULL && row->name != NULL; row++) {
		v = settings_get(src, row->name);
		if (v == NULL && (mode & SETTINGS_DEFAULTS))
			v = row->def;
		if (v != NULL && read_row(row, v, base, err, errlen) != 0)
			return -1;
	}
	return 0;
}

const struct setting *
settings_missing(const struct setting *rows, const struct settings_src *src)
{
	const struct setting *row;

	for (row = rows; row != NULL && row->name != NULL; row++)
		if ((row->flags & SET_NEEDED) && settings_get(src, row->name) == NULL)
			return row;
	return NULL;
}

void
settings_free(const struct setting *rows, void *base)
{
	const struct setting *row;
	char **field;

	for (row = rows; base != NULL && row != NULL && row->name != NULL; row++) {
		if (row->type != SET_STR)
			continue;
		field = (char **)((char *)base + row->off);
		if (row->flags & SET_SECRET)
			secret_free(*field);
		else
			free(*field);
		*field = NULL;
	}
}

const struct settings_backend *
settings_layer_find(const struct settings_layer *l, const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < l->n; i++)
		if (strcmp(l->be[i].name, name) == 0)
			return &l->be[i];
	return NULL;
}

const struct settings_backend *
settings_layer_default(const struct settings_layer *l,
    const struct settings_src *src)
{
	const struct settings_backend *fallback = NULL;
	size_t i, k;

	for (i = 0; i < l->n; i++) {
		const char *const *d = l->be[i].default_if;

		if (d == NULL)
			continue;
		if (d[0] == NULL) {
			if (fallback == NULL)
				fallback = &l->be[i];
			continue;
		}
		for (k = 0; d[k] != NULL && settings_get(src, d[k]) != NULL; k++)
			;
		if (d[k] == NULL)
			return &l->be[i];
	}
	return fallback;
}

/* Reads be's two tables into base; 0 or -1 with err. */
static int
backend_read(const struct settings_backend *be, void *base,
    const struct settings_src *src, int mode, char *err, size_t errlen)
{
	if (settings_read(be->shared, base, src, mode, err, errlen) != 0 ||
	    settings_read(be->rows, base, src, mode, err, errlen) != 0)
		return -1;
	return 0;
}

static void
backend_free(const struct settings_backend *be, void *base)
{
	settings_free(be->shared, base);
	settings_free(be->rows, base);
}

int
settings_layer_read(const struct settings_layer *l, const char *chosen,
    struct cfg *cfg, void **conf, const struct settings_src *src, char *err,
    size_t errlen)
{
	const struct settings_backend *be;
	const struct setting *miss;
	void *base;
	size_t k;
	int rc;

	for (k = 0; k < l->n; k++) {
		be = &l->be[k];
		if (chosen != NULL && strcmp(be->name, chosen) == 0)
			continue;
		base = be->conf_size > 0 ? calloc(1, be->conf_size) : (void *)cfg;
		if (base == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		rc = backend_read(be, base, src, 0, err, errlen);
		if (base != (void *)cfg) {
			backend_free(be, base);
			free(base);
		}
		if (rc != 0)
			return -1;
	}
	be = settings_layer_find(l, chosen);
	if (be == NULL) {
		snprintf(err, errlen, "%s: unknown value '%.40s'", l->var,
		    chosen != NULL ? chosen : "");
		return -1;
	}
	base = cfg;
	if (be->conf_size > 0) {
		base = *conf = calloc(1, be->conf_size);
		if (base == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	if (backend_read(be, base, src, SETTINGS_DEFAULTS, err, errlen) != 0)
		return -1;
	miss = settings_missing(be->shared, src);
	if (miss == NULL)
		miss = settings_missing(be->rows, src);
	if (miss != NULL) {
		snprintf(err, errlen, "%s is not set (needed by %s=%s)", miss->name,
		    l->var, be->name);
		return -1;
	}
	if (be->check != NULL && be->check(cfg, *conf, err, errlen) != 0)
		return -1;
	return 0;
}

void
settings_layer_free(const struct settings_layer *l, const char *chosen,
    struct cfg *cfg, void **conf)
{
	const struct settings_backend *be = settings_layer_find(l, chosen);
	size_t k;

	if (be != NULL && *conf != NULL)
		backend_free(be, *conf);
	free(*conf);
	*conf = NULL;
	for (k = 0; k < l->n; k++)
		if (l->be[k].conf_size == 0)
			backend_free(&l->be[k], cfg);
}

/* Prints text for --help: without markdown's backticks and stars,
 * wrapped at 78 columns after an indent of ind spaces. */
static void
print_plain(FILE *f, const char *text, int ind)
{
	const char *p = text, *w;
	int col = 0, len, i;

	while (*p != '\0') {
		while (*p == ' ')
			p++;
		for (w = p, len = 0; *w != '\0' && *w != ' '; w++)
			len += *w != '`' && *w != '*';
		if (len == 0)
			break;
		if (col > 0 && col + 1 + len > 78) {
			fputc('\n', f);
			col = 0;
		}
		if (col == 0) {
			fprintf(f, "%*s", ind, "");
			col = ind;
		} else {
			fputc(' ', f);
			col++;
		}
		for (i = 0; p < w; p++) {
			if (*p != '`' && *p != '*') {
				fputc(*p, f);
				i++;
			}
		}
		col += i;
	}
	fputc('\n', f);
}

/* Writes the UTF-8 sequence at p as a groff \[uXXXX] escape (troff reads
 * no UTF-8); returns the bytes used (1 for a stray byte, written as '?'). */
static int
print_man_utf8(FILE *f, const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	unsigned cp;
	int n, i;

	if (u[0] >= 0xc2 && u[0] <= 0xdf)
		n = 2, cp = u[0] & 0x1f;
	else if (u[0] >= 0xe0 && u[0] <= 0xef)
		n = 3, cp = u[0] & 0x0f;
	else if (u[0] >= 0xf0 && u[0] <= 0xf4)
		n = 4, cp = u[0] & 0x07;
	else
		n = 0, cp = 0;
	for (i = 1; i < n; i++) {
		if ((u[i] & 0xc0) != 0x80)
			break;
		cp = cp << 6 | (u[i] & 0x3f);
	}
	if (n == 0 || i < n) {
		fputc('?', f);
		return 1;
	}
	fprintf(f, "\\[u%04X]", cp);
	return n;
}

void
settings_print_man(FILE *f, const char *text)
{
	const char *p;
	int code = 0, strong = 0, em = 0;

	if (*text == '.' || *text == '\'')
		fputs("\\&", f);
	for (p = text; *p != '\0'; p++) {
		if (*p == '`') {
			code = !code;
			fputs(code ? "\\fB" : strong ? "\\fB" : em ? "\\fI" : "\\fR", f);
		} else if (!code && p[0] == '*' && p[1] == '*') {
			strong = !strong;
			fputs(strong ? "\\fB" : "\\fR", f);
			p++;
		} else if (!code && *p == '*') {
			em = !em;
			fputs(em ? "\\fI" : "\\fR", f);
		} else if (*p == '\\') {
			fputs("\\e", f);
		} else if ((unsigned char)*p >= 0x80) {
			p += print_man_utf8(f, p) - 1;
		} else {
			fputc(*p, f);
		}
	}
	if (code || strong || em)
		fputs("\\fR", f);
}

void
settings_print_text(FILE *f, const char *text, int fmt)
{
	if (fmt == SETTINGS_MARKDOWN) {
		fprintf(f, "%s\n", text);
	} else if (fmt == SETTINGS_MAN) {
		fputs(".PP\n", f);
		settings_print_man(f, text);
		fputc('\n', f);
	} else {
		print_plain(f, text, 0);
	}
}

/* One row as a man(7) tagged paragraph: the name, then its default and
 * its meaning, as the markdown table's columns say them. */
static void
print_man_row(FILE *f, const struct setting *row, const char *def)
{
	char buf[1024];

	fprintf(f, ".TP\n.B %s\n", row->name);
	if (row->flags & SET_NEEDED) {
		fputs("(required)\n", f);
	} else if (def != NULL) {
		/* "(required)", "(none)": the docs' own words, as they are */
		snprintf(buf, sizeof(buf), row->doc_def == NULL ? "default `%s`" :
		    def[0] == '(' ? "%s" : "default %s", def);
		settings_print_man(f, buf);
		fputs("\n", f);
	}
	if (row->flags & SET_TEST)
		fputs(".br\n\\fBtests only, never in production\\fR:\n", f);
	else if ((row->flags & SET_NEEDED) || def != NULL)
		fputs(".br\n", f);
	settings_print_man(f, row->help);
	fputc('\n', f);
}

void
settings_print(FILE *f, const struct setting *rows, int fmt)
{
	const struct setting *row;
	const char *def;

	for (row = rows; row != NULL && row->name != NULL; row++) {
		def = row->doc_def != NULL ? row->doc_def : row->def;
		if (fmt == SETTINGS_MARKDOWN) {
			fprintf(f, "| `%s` | %s%s%s%s | %s%s |\n", row->name,
			    (row->flags & SET_NEEDED) ? "(required)" : "",
			    def != NULL && row->doc_def == NULL ? "`" : "",
			    def != NULL ? def : "",
			    def != NULL && row->doc_def == NULL ? "`" : "",
			    (row->flags & SET_TEST) ?
			    "**tests only, never in production**: " : "",
			    row->help);
		} else if (fmt == SETTINGS_MAN) {
			print_man_row(f, row, def);
		} else {
			char line[1024];

			int paren = (row->flags & SET_NEEDED) ||
			    (def != NULL && def[0] != '(');

			snprintf(line, sizeof(line), "%s %s%s%s", row->name,
			    paren ? "(" : "", (row->flags & SET_NEEDED) ? "required" :
			    def != NULL ? def : "", paren ? ")" : "");
			print_plain(f, line, 2);
			snprintf(line, sizeof(line), "%s%s",
			    (row->flags & SET_TEST) ? "tests only: " : "", row->help);
			print_plain(f, line, 6);
		}
	}
}
