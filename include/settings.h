/* settings.h - settings as table rows, read from the environment over an
 * optional env file (php-fpm's ini options, nginx's ngx_command_t). */
#ifndef IG_SETTINGS_H
#define IG_SETTINGS_H

#include <stddef.h>
#include <stdio.h>

enum set_type {
	SET_STR,		/* char *, malloc'd; NULL when unset */
	SET_LONG,		/* long in [min, max] */
	SET_INT,		/* int in [min, max] */
	SET_SIZE,		/* size_t in [min, max] */
	SET_FN,			/* any field: row->check parses into it */
};

/* Row flags. */
#define SET_SECRET	0x01	/* wiped when freed, never printed */
#define SET_HTTP	0x02	/* an http(s) URL */
#define SET_STRIP	0x04	/* trailing '/' removed */
#define SET_NEEDED	0x08	/* a backend's: required when it is chosen */
#define SET_TEST	0x10	/* tests only, never in production */

struct setting {
	const char *name;	/* the variable; NULL ends a table */
	enum set_type type;
	const char *def;	/* default, as text read like a value; NULL: none */
	long min, max;		/* SET_LONG, SET_INT, SET_SIZE */
	size_t off;		/* offsetof the field in the owning struct */
	unsigned flags;
	/* SET_STR: a further check of the value (field unused); SET_FN: the
	 * parser, storing into field. 0, or -1 with err naming the row. */
	int (*check)(const struct setting *row, const char *v, void *field,
	    char *err, size_t errlen);
	const char *doc_def;	/* the docs' default column when not def */
	const char *help;	/* one line: what it is */
};

/* Where values come from: the process environment over KEY=VALUE lines. */
struct settings_src {
	struct settings_kv *kv;
	size_t n;
	char *text;		/* the file's text; kv points into it */
};

/* Reads the env file at path (NULL or "": none) into src. 0, or -1 with
 * a line naming IMAGEGEN_ENV_FILE in err (src left empty). Free with
 * settings_src_free(). */
int settings_src_read(struct settings_src *src, const char *path, char *err,
    size_t errlen);
void settings_src_free(struct settings_src *src);
/* The value of key: the process environment first, then the file (its
 * last assignment); NULL when unset or empty. Points into either. */
const char *settings_get(const struct settings_src *src, const char *key);

/*
 * Parses one env-file line. Returns 1 and sets *key and *val (pointers into
 * line, which is modified) for an assignment, 0 for a blank or comment
 * line, -1 for a malformed one.
 */
int settings_parse_line(char *line, char **key, char **val);
/* Strict integer in [min, max]; 0 on success, -1 otherwise. */
int settings_parse_long(const char *s, long min, long max, long *out);

/* settings_read() modes. */
#define SETTINGS_DEFAULTS 0x01	/* unset rows get their default */

/*
 * Reads each row of rows into base (the owning struct): a set value is
 * parsed and checked, an unset one gets its default with
 * SETTINGS_DEFAULTS, else its field is left as it is. A string field that
 * already holds a value is freed first. 0, or -1 with one line naming the
 * variable in err (fields read so far stay set: free with settings_free).
 */
int settings_read(const struct setting *rows, void *base,
    const struct settings_src *src, int mode, char *err, size_t errlen);
/* The first SET_NEEDED row that is unset, or NULL. Can't fail. */
const struct setting *settings_missing(const struct setting *rows,
    const struct settings_src *src);
/* Frees each string field of rows in base (secrets wiped) and sets it to
 * NULL. Accepts base NULL. */
void settings_free(const struct setting *rows, void *base);

struct cfg;

/*
 * A provider or storage backend as the configuration loader sees it,
 * made from its ops row by prov_backends() / storage_backends().
 */
struct settings_backend {
	const char *name;		/* the value of IMAGEGEN_PROVIDER/_STORAGE */
	const char *about;		/* one line for --help and the docs */
	/* Its settings, read into its own conf_size bytes (cfg's
	 * provider_conf or storage_conf; every built-in backend has them),
	 * or into struct cfg when conf_size is 0;
	 * shared: a second table it shares with others (may be NULL). */
	const struct setting *rows, *shared;
	size_t conf_size;
	/* Chosen when none is named and every variable here is set: the
	 * first such backend; one with an empty list is the fallback; NULL:
	 * only when named. */
	const char *const *default_if;
	/* Cross-field rules once it is chosen and read; may be NULL. 0, or
	 * -1 with err naming the variable. */
	int (*check)(const struct cfg *c, const void *conf, char *err,
	    size_t errlen);
};

#define SETTINGS_LAYER_MAX 16	/* backends per layer */

/* A layer of backends: the providers, or the storage backends. */
struct settings_layer {
	const char *var;		/* IMAGEGEN_PROVIDER: names the chosen one */
	const char *what;		/* "Provider", for --help and the docs */
	struct settings_backend be[SETTINGS_LAYER_MAX];
	size_t n;
};

/* The backend of l named name, or NULL. */
const struct settings_backend *settings_layer_find(
    const struct settings_layer *l, const char *name);
/* The default: the first backend whose default_if variables are all set
 * in src, else the first with an empty list; NULL when there is neither. */
const struct settings_backend *settings_layer_default(
    const struct settings_layer *l, const struct settings_src *src);
/*
 * Reads the layer's settings: every backend's set values are checked (a
 * backend not chosen included), then the chosen one is read again with
 * its defaults (so its own defaults win), into cfg, or into its own
 * conf_size bytes made at *conf; then what it needs (SET_NEEDED) must be
 * set ("X is not set (needed by VAR=name)") and its check hold. 0, or -1
 * with err; either way free with settings_layer_free().
 */
int settings_layer_read(const struct settings_layer *l, const char *chosen,
    struct cfg *cfg, void **conf, const struct settings_src *src, char *err,
    size_t errlen);
/* Frees what settings_layer_read() read into cfg and *conf (then NULL). */
void settings_layer_free(const struct settings_layer *l, const char *chosen,
    struct cfg *cfg, void **conf);

/* The formats settings_print() and settings_print_text() print in. */
#define SETTINGS_PLAIN		0	/* --help's indented list */
#define SETTINGS_MARKDOWN	1	/* docs/RUNNING.md's tables */
#define SETTINGS_MAN		2	/* man(7), for imagegen.env(5) */

/* Prints rows in fmt: markdown table lines "| `NAME` | default | help |",
 * man(7) .TP paragraphs, or an indented list for --help. Can't fail. */
void settings_print(FILE *f, const struct setting *rows, int fmt);
/* Prints one paragraph in fmt: as it is for markdown, as escaped man(7)
 * text (backticks bold), else wrapped for --help without markdown's
 * backticks. Can't fail. */
void settings_print_text(FILE *f, const char *text, int fmt);
/* Writes text as man(7) text: backslashes escaped, `code` and **strong**
 * bold, *emphasis* italic, a leading '.' or '\'' made harmless. */
void settings_print_man(FILE *f, const char *text);

#endif
