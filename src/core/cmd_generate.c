/*
 * cmd_generate.c - imagegen generate and imagegen jobs list|show|cancel|
 * retry: clients of the HTTP API (SPEC §8), never of the database. The
 * argument parsers, the wait (a poll every second, Retry-After honoured,
 * a live line on a terminal), and what each prints; apiclient.c makes
 * the requests.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "apiclient.h"
#include "arena.h"
#include "cfg.h"
#include "cli.h"
#include "clock.h"
#include "cmdline.h"
#include "jsonr.h"
#include "jsonw.h"
#include "text.h"
#include "uuid.h"

#define GEN_POLL_MS	1000LL		/* --wait polls this often */
#define GEN_BACKOFF_MAX	8000LL		/* a lost connection: at most this */
#define GEN_POST_TRIES	4		/* generate: the same key each time */

/* Ctrl-C while waiting: say which job runs on, then exit. */
static volatile sig_atomic_t gen_interrupted;

static void
on_interrupt(int signo)
{
	(void)signo;
	gen_interrupted = 1;
}

/* Sleeps ms, or less when interrupted. */
static void
nap(long long ms)
{
	long long end = clock_mono_ms() + ms, left;

	while (!gen_interrupted && (left = end - clock_mono_ms()) > 0)
		clock_sleep_ms(left < 100 ? left : 100);
}

static const char *const job_types[] = {
	"master_asset", "start_frame", "end_frame", "inpaint", NULL
};
static const char *const job_states[] = {
	"queued", "processing", "generating", "uploading", "completed", "failed",
	"canceled", NULL
};

void
gen_usage(FILE *f)
{
	fprintf(f,
"usage: imagegen generate PROMPT [--project UUID] [--branch UUID]\n"
"           [--type master_asset|start_frame|end_frame|inpaint] [--size WxH]\n"
"           [--style UUID] [--scene UUID --shot UUID] [--source URL [--mask URL]]\n"
"           [--wait] [--timeout S] [--json] [--output FILE]\n"
"           [--url URL] [--token TOKEN] [--insecure]\n");
}

void
jobs_usage(FILE *f)
{
	fprintf(f,
"usage: imagegen jobs list [--project UUID] [--status S] [--limit N] [--cursor C]\n"
"       imagegen jobs show ID\n"
"       imagegen jobs cancel ID\n"
"       imagegen jobs retry ID [--wait] [--timeout S]\n"
"   each also [--json] [--url URL] [--token TOKEN] [--insecure]\n");
}

static int
in_list(const char *s, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strcmp(s, *list) == 0)
			return 1;
	return 0;
}

/* getopt's refusal as one line in err (opterr is 0 while we parse). */
static void
opt_error(const char *cmd, int argc, char **argv, char *err, size_t errlen)
{
	const char *bad = optind > 0 && optind <= argc ? argv[optind - 1] : "?";

	if (optopt == 0 || strncmp(bad, "--", 2) != 0)
		snprintf(err, errlen, "%s: unknown option '%.40s'", cmd, bad);
	else if (strchr(bad, '=') != NULL)
		snprintf(err, errlen, "%s: '%.40s': the option takes no value", cmd, bad);
	else
		snprintf(err, errlen, "%s: '%.40s' needs a value", cmd, bad);
}

/* "WxH", each side 64 to 4096: 0, or -1. */
static int
parse_size(const char *s, long *w, long *h)
{
	char side[8];
	const char *x = strchr(s, 'x');
	size_t n;

	/* digits only: no sign, no blanks */
	if (x == NULL || x == s || strspn(s, "0123456789x") != strlen(s))
		return -1;
	n = (size_t)(x - s);
	if (n >= sizeof(side))
		return -1;
	memcpy(side, s, n);
	side[n] = '\0';
	if (cfg_parse_long(side, 64, 4096, w) != 0 ||
	    cfg_parse_long(x + 1, 64, 4096, h) != 0)
		return -1;
	return 0;
}

static int
http_url(const char *s)
{
	return (strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0) &&
	    strpbrk(s, " \t\r\n") == NULL;
}

/* The number of code points of UTF-8 text (continuation bytes skipped). */
static size_t
utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/* An option shared by generate and jobs: 1 when ch was one (o filled). */
static int
api_opt(struct api_opts *o, int ch)
{
	switch (ch) {
	case 'U': o->url = optarg; return 1;
	case 'T': o->token = optarg; return 1;
	case 'k': o->insecure = 1; return 1;
	case 'j': o->json = 1; return 1;
	default: return 0;
	}
}

/* --timeout's value into *t: 0, or -1 with err. */
static int
parse_timeout(const char *cmd, const char *v, long *t, char *err, size_t errlen)
{
	if (cfg_parse_long(v, 1, 86400, t) != 0) {
		snprintf(err, errlen, "%s: --timeout: expected seconds from 1 to 86400, got '%.40s'",
		    cmd, v);
		return -1;
	}
	return 0;
}

int
gen_parse_args(struct gen_args *g, int argc, char **argv, char *err,
    size_t errlen)
{
	static const char opts[] = "project=p branch=b type=y size=z style=S"
	    " scene=c shot=o source=r mask=m wait/w timeout=t json/j output=O"
	    " url=U token=T insecure/k help/h";
	const char *size = NULL, **uuid_opt = NULL, *name = NULL;
	int saved_opterr = opterr, ch, rc = -1;

	memset(g, 0, sizeof(*g));
	g->type = "master_asset";
	g->timeout = GEN_TIMEOUT_S;
	optind = 0;
	opterr = 0;
	while ((ch = cmdline_getopt(argc, argv, opts)) != -1) {
		uuid_opt = NULL;
		if (api_opt(&g->api, ch))
			continue;
		switch (ch) {
		case 'p': uuid_opt = &g->project; name = "project"; break;
		case 'b': uuid_opt = &g->branch; name = "branch"; break;
		case 'S': uuid_opt = &g->style; name = "style"; break;
		case 'c': uuid_opt = &g->scene; name = "scene"; break;
		case 'o': uuid_opt = &g->shot; name = "shot"; break;
		case 'y': g->type = optarg; break;
		case 'z': size = optarg; break;
		case 'r': g->source = optarg; break;
		case 'm': g->mask = optarg; break;
		case 'w': g->wait = 1; break;
		case 'O': g->output = optarg; g->wait = 1; break;
		case 't':
			if (parse_timeout("generate", optarg, &g->timeout, err, errlen) != 0)
				goto out;
			g->wait = 1;
			break;
		case 'h':
			rc = 1;
			goto out;
		default:
			opt_error("generate", argc, argv, err, errlen);
			goto out;
		}
		if (uuid_opt != NULL) {
			if (!uuid_valid(optarg)) {
				snprintf(err, errlen, "generate: --%s: expected a UUID, got '%.40s'",
				    name, optarg);
				goto out;
			}
			*uuid_opt = optarg;
		}
	}
	if (optind >= argc) {
		snprintf(err, errlen, "generate: give the PROMPT (in quotes)");
		goto out;
	}
	if (argc - optind > 1) {
		snprintf(err, errlen, "generate: expected one PROMPT, got %d words: quote "
		    "it (\"%.20s %.20s …\")", argc - optind, argv[optind], argv[optind + 1]);
		goto out;
	}
	g->prompt = argv[optind];
	if (g->prompt[strspn(g->prompt, " \t\r\n")] == '\0') {
		snprintf(err, errlen, "generate: the PROMPT is empty");
		goto out;
	}
	if (utf8_chars(g->prompt) > 4000) {
		snprintf(err, errlen, "generate: the PROMPT is longer than 4000 characters");
		goto out;
	}
	if (!in_list(g->type, job_types)) {
		snprintf(err, errlen, "generate: --type: expected master_asset, start_frame, "
		    "end_frame or inpaint, got '%.40s'", g->type);
		goto out;
	}
	if (size != NULL && parse_size(size, &g->width, &g->height) != 0) {
		snprintf(err, errlen, "generate: --size: expected WIDTHxHEIGHT, each 64 to "
		    "4096 (such as 1024x768), got '%.40s'", size);
		goto out;
	}
	if ((g->scene == NULL) != (g->shot == NULL)) {
		snprintf(err, errlen, "generate: --scene and --shot go together");
		goto out;
	}
	if ((strcmp(g->type, "start_frame") == 0 || strcmp(g->type, "end_frame") == 0) &&
	    g->scene == NULL) {
		snprintf(err, errlen, "generate: --type %s needs --scene UUID and --shot UUID",
		    g->type);
		goto out;
	}
	if (strcmp(g->type, "inpaint") == 0 && g->source == NULL) {
		snprintf(err, errlen, "generate: --type inpaint needs --source URL");
		goto out;
	}
	if (g->mask != NULL && g->source == NULL) {
		snprintf(err, errlen, "generate: --mask needs --source URL");
		goto out;
	}
	if ((g->source != NULL && !http_url(g->source)) ||
	    (g->mask != NULL && !http_url(g->mask))) {
		snprintf(err, errlen, "generate: --%s: expected an http:// or https:// URL, got '%.60s'",
		    g->source != NULL && !http_url(g->source) ? "source" : "mask",
		    g->source != NULL && !http_url(g->source) ? g->source : g->mask);
		goto out;
	}
	if (g->output != NULL && g->output[0] == '\0') {
		snprintf(err, errlen, "generate: --output: give a file name");
		goto out;
	}
	rc = 0;
out:
	opterr = saved_opterr;
	return rc;
}

int
jobs_parse_args(struct jobs_args *j, int argc, char **argv, char *err,
    size_t errlen)
{
	static const struct {
		const char *name;
		enum jobs_action action;
		const char *opts;
	} actions[] = {
		{ "list", JOBS_LIST, "project=p status=s limit=n cursor=c json/j url=U"
		    " token=T insecure/k help/h" },
		{ "show", JOBS_SHOW, "json/j url=U token=T insecure/k help/h" },
		{ "cancel", JOBS_CANCEL, "json/j url=U token=T insecure/k help/h" },
		{ "retry", JOBS_RETRY, "wait/w timeout=t json/j url=U token=T"
		    " insecure/k help/h" },
	};
	const char *act, *opts = NULL;
	char cmd[32], **sub_argv = argv + 1;
	int saved_opterr = opterr, ch, sub_argc = argc - 1, rc = -1;
	size_t i;

	memset(j, 0, sizeof(*j));
	j->timeout = GEN_TIMEOUT_S;
	if (argc < 2) {
		snprintf(err, errlen, "jobs: expected list, show, cancel or retry");
		return -1;
	}
	act = argv[1];
	if (strcmp(act, "--help") == 0 || strcmp(act, "help") == 0)
		return 1;
	for (i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		if (strcmp(act, actions[i].name) == 0) {
			j->action = actions[i].action;
			opts = actions[i].opts;
		}
	}
	if (opts == NULL) {
		snprintf(err, errlen, "jobs: unknown action '%.40s' (expected list, show, "
		    "cancel or retry)", act);
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "jobs %s", act);
	optind = 0;
	opterr = 0;
	while ((ch = cmdline_getopt(sub_argc, sub_argv, opts)) != -1) {
		if (api_opt(&j->api, ch))
			continue;
		switch (ch) {
		case 'p':
			if (!uuid_valid(optarg)) {
				snprintf(err, errlen, "%s: --project: expected a UUID, got '%.40s'",
				    cmd, optarg);
				goto out;
			}
			j->project = optarg;
			break;
		case 's':
			if (!in_list(optarg, job_states)) {
				snprintf(err, errlen, "%s: --status: expected queued, processing, "
				    "generating, uploading, completed, failed or canceled, got '%.40s'",
				    cmd, optarg);
				goto out;
			}
			j->status = optarg;
			break;
		case 'n':
			if (cfg_parse_long(optarg, 1, 100, &j->limit) != 0) {
				snprintf(err, errlen, "%s: --limit: expected 1 to 100, got '%.40s'",
				    cmd, optarg);
				goto out;
			}
			break;
		case 'c':
			if (optarg[0] == '\0' || strlen(optarg) > 512) {
				snprintf(err, errlen, "%s: --cursor: expected the cursor a page "
				    "named", cmd);
				goto out;
			}
			j->cursor = optarg;
			break;
		case 'w': j->wait = 1; break;
		case 't':
			if (parse_timeout(cmd, optarg, &j->timeout, err, errlen) != 0)
				goto out;
			j->wait = 1;
			break;
		case 'h':
			rc = 1;
			goto out;
		default:
			opt_error(cmd, sub_argc, sub_argv, err, errlen);
			goto out;
		}
	}
	if (j->action == JOBS_LIST) {
		if (optind < sub_argc) {
			snprintf(err, errlen, "%s: unexpected argument '%.40s'", cmd,
			    sub_argv[optind]);
			goto out;
		}
	} else {
		if (optind >= sub_argc) {
			snprintf(err, errlen, "%s: give the job's ID", cmd);
			goto out;
		}
		if (sub_argc - optind > 1) {
			snprintf(err, errlen, "%s: unexpected argument '%.40s'", cmd,
			    sub_argv[optind + 1]);
			goto out;
		}
		j->id = sub_argv[optind];
		if (!uuid_valid(j->id)) {
			snprintf(err, errlen, "%s: the job ID must be a UUID, got '%.40s'", cmd,
			    j->id);
			goto out;
		}
	}
	rc = 0;
out:
	opterr = saved_opterr;
	return rc;
}

/* ---- running them ---------------------------------------------------- */

/* s (may be NULL: "-") as one line of text in buf. */
static const char *
clean(char *buf, size_t n, const char *s)
{
	if (s == NULL)
		return "-";
	text_clean(buf, n, s, strlen(s));
	return buf;
}

/* A failed call, on stderr; GEN_EXIT_HTTP. */
static int
call_error(const char *cmd, const struct api_conf *c, const char *method,
    const char *path, enum api_res res, const struct api_reply *rep)
{
	if (res == API_HTTP)
		fprintf(stderr, "imagegen: %s: %s %s%s: HTTP %ld%s%s%s%s\n", cmd, method,
		    c->url, path, rep->status, rep->code[0] != '\0' ? " " : "", rep->code,
		    rep->message[0] != '\0' ? ": " : "", rep->message);
	else
		fprintf(stderr, "imagegen: %s: %s %s%s: %s\n", cmd, method, c->url, path,
		    res == API_NOMEM ? "out of memory" : rep->message);
	if (res == API_HTTP && rep->status == 401)
		fprintf(stderr, "imagegen: %s: the token was refused (IMAGEGEN_TOKEN or "
		    "--token; an expired DEMO_TOKEN: run scripts/up again)\n", cmd);
	return GEN_EXIT_HTTP;
}

/* Loads the settings and opens a client: 0, or an exit status after a
 * line on stderr. */
static int
client_open(const char *cmd, const struct api_opts *o, struct api_conf *conf,
    struct api *a)
{
	char err[512];

	if (api_conf_load(conf, o->url, o->token, o->insecure, err, sizeof(err)) != 0) {
		fprintf(stderr, "imagegen: %s: %s\n", cmd, err);
		return GEN_EXIT_USAGE;
	}
	if (api_open(a, conf) != 0) {
		fprintf(stderr, "imagegen: %s: cannot start libcurl\n", cmd);
		return GEN_EXIT_HTTP;
	}
	return 0;
}

/* What --wait shows on stderr: a line redrawn on a terminal, else a line
 * per change of state. */
struct progress {
	const char *id;
	long long t0;
	int tty, drawn;
	char last[32];
};

static void
progress_show(struct progress *p, const char *status)
{
	char st[32];
	double el = (double)(clock_mono_ms() - p->t0) / 1000.0;

	clean(st, sizeof(st), status);
	if (p->tty) {
		fprintf(stderr, "\r\033[Kimagegen: job %s: %s (%.0f s)", p->id, st, el);
		p->drawn = 1;
	} else if (strcmp(st, p->last) != 0) {
		fprintf(stderr, "imagegen: job %s: %s (%.1f s)\n", p->id, st, el);
	}
	snprintf(p->last, sizeof(p->last), "%s", st);
	fflush(stderr);
}

/* Ends a redrawn line, so that what follows starts on its own. */
static void
progress_break(struct progress *p)
{
	if (p->drawn)
		fputc('\n', stderr);
	p->drawn = 0;
}

static int
terminal(const char *status)
{
	return strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0 ||
	    strcmp(status, "canceled") == 0;
}

/*
 * Polls job id every second until it ends or timeout_s from t0 passed;
 * waits Retry-After (else 1, 2, 4, 8 s) after 429, 502, 503, 504 or a
 * lost connection. GEN_EXIT_OK with the last answer in *job and *body
 * (caller puts and frees), GEN_EXIT_TIMEOUT, GEN_EXIT_INTERRUPTED (SIGINT;
 * a second one kills) or GEN_EXIT_HTTP, each after its line on stderr.
 */
static int
wait_job(struct api *a, const char *cmd, const char *id, long long t0,
    long timeout_s, struct json_object **job, char **body)
{
	struct progress p = { id, t0, isatty(2), 0, "" };
	struct sigaction sa, old_sa;
	struct api_reply rep = { 0 };
	struct json_object *o;
	long long deadline = t0 + timeout_s * 1000LL, left, delay, backoff = 1000;
	char path[96];
	const char *st;
	enum api_res res;
	int rc = GEN_EXIT_TIMEOUT;

	*job = NULL;
	*body = NULL;
	snprintf(path, sizeof(path), "/api/images/jobs/%s", id);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_interrupt;
	sa.sa_flags = (int)SA_RESETHAND;
	gen_interrupted = 0;
	sigaction(SIGINT, &sa, &old_sa);
	for (;;) {
		left = deadline - clock_mono_ms();
		if (gen_interrupted) {
			progress_break(&p);
			fprintf(stderr, "imagegen: %s: interrupted: job %s is %s; it keeps "
			    "running (imagegen jobs show %s, imagegen jobs cancel %s)\n", cmd, id,
			    p.last[0] != '\0' ? p.last : "not seen yet", id, id);
			rc = GEN_EXIT_INTERRUPTED;
			goto out;
		}
		if (left <= 0)
			break;
		res = api_call(a, "GET", path, NULL, NULL, 1,
		    left < 1000 ? 1000 : left < API_CALL_MS ? (long)left : API_CALL_MS, &rep);
		if (res == API_OK) {
			o = jr_parse(rep.body, rep.len);
			st = jr_str(o, "status");
			if (st == NULL) {
				json_object_put(o);
				progress_break(&p);
				fprintf(stderr, "imagegen: %s: GET %s%s: the answer is not a job\n",
				    cmd, a->conf->url, path);
				rc = GEN_EXIT_HTTP;
				goto out;
			}
			json_object_put(*job);
			free(*body);
			*job = o;
			*body = rep.body;
			rep.body = NULL;
			progress_show(&p, st);
			if (terminal(st)) {
				rc = GEN_EXIT_OK;
				goto out;
			}
			delay = GEN_POLL_MS;
			backoff = 1000;
		} else if (res == API_NET || rep.status == 429 || rep.status == 502 ||
		    rep.status == 503 || rep.status == 504) {
			delay = rep.retry_after >= 0 ? rep.retry_after * 1000LL : backoff;
			if (backoff < GEN_BACKOFF_MAX)
				backoff *= 2;
			progress_break(&p);
			if (res == API_NET)
				fprintf(stderr, "imagegen: %s: GET %s%s: %s; trying again in %lld s\n",
				    cmd, a->conf->url, path, rep.message, (delay + 999) / 1000);
			else
				fprintf(stderr, "imagegen: %s: GET %s%s: HTTP %ld%s%s; trying again "
				    "in %lld s\n", cmd, a->conf->url, path, rep.status,
				    rep.code[0] != '\0' ? " " : "", rep.code, (delay + 999) / 1000);
		} else {
			progress_break(&p);
			rc = call_error(cmd, a->conf, "GET", path, res, &rep);
			goto out;
		}
		api_reply_free(&rep);
		left = deadline - clock_mono_ms();
		if (delay > left)
			delay = left;
		if (delay > 0)
			nap(delay);
	}
	progress_break(&p);
	fprintf(stderr, "imagegen: %s: timed out after %ld s: job %s is %s; it keeps "
	    "running (imagegen jobs show %s)\n", cmd, timeout_s, id,
	    p.last[0] != '\0' ? p.last : "not seen yet", id);
out:
	sigaction(SIGINT, &old_sa, NULL);
	progress_break(&p);
	api_reply_free(&rep);
	return rc;
}

/*
 * What an ended job prints: completed, its public URL (or with json the
 * job) on stdout, after downloading it to output when asked; failed or
 * canceled, its code and message on stderr (and with json the job on
 * stdout). The exit status.
 */
static int
report_job(struct api *a, const char *cmd, struct json_object *job,
    const char *body, int json, const char *output)
{
	struct json_object *e;
	const char *st = jr_str(job, "status"), *id = jr_str(job, "jobId");
	char b1[64], b2[512], b3[64], b4[64], err[768];
	char *url = NULL;
	int rc = GEN_EXIT_HTTP;

	clean(b4, sizeof(b4), id);
	if (strcmp(st, "completed") == 0) {
		url = api_abs_url(a->conf, jr_str(job, "publicUrl"));
		if (url == NULL) {
			fprintf(stderr, "imagegen: %s: job %s completed without a public URL "
			    "this can fetch\n", cmd, b4);
			goto out;
		}
		if (output != NULL && api_download(a, url, output, err, sizeof(err)) != 0) {
			fprintf(stderr, "imagegen: %s: job %s: --output %s: %s\n", cmd, b4,
			    output, err);
			goto out;
		}
		printf("%s\n", json ? body : url);
		rc = GEN_EXIT_OK;
		goto out;
	}
	if (json)
		printf("%s\n", body);
	rc = GEN_EXIT_FAILED;
	if (strcmp(st, "canceled") == 0) {
		fprintf(stderr, "imagegen: %s: job %s was canceled\n", cmd, b4);
		goto out;
	}
	e = jr_get(job, "error", json_type_object);
	fprintf(stderr, "imagegen: %s: job %s failed: %s: %s (stage %s)\n", cmd, b4,
	    clean(b1, sizeof(b1), jr_str(e, "code")),
	    clean(b2, sizeof(b2), jr_str(e, "message")),
	    clean(b3, sizeof(b3), jr_str(e, "failureStage")));
out:
	fflush(stdout);
	free(url);
	return rc;
}

/* The request body of g in a (NULL out of memory). */
static char *
gen_body(struct arena *a, const struct gen_args *g, const char *project,
    const char *branch)
{
	struct jsonw w;
	char num[16];

	jw_init(&w, a, 1024 + strlen(g->prompt) * 2);
	jw_lit(&w, "{");
#define STR(key, v) if ((v) != NULL) { jw_key(&w, key); jw_str(&w, v, strlen(v)); }
	STR("projectId", project)
	/* Sent only when known: the server then takes the project's main one. */
	STR("branchId", branch)
	STR("jobType", g->type)
	STR("prompt", g->prompt)
	if (g->width > 0) {
		jw_key(&w, "width");
		snprintf(num, sizeof(num), "%ld", g->width);
		jw_lit(&w, num);
		jw_key(&w, "height");
		snprintf(num, sizeof(num), "%ld", g->height);
		jw_lit(&w, num);
	}
	STR("visualStyleCapsuleId", g->style)
	STR("sceneId", g->scene)
	STR("shotId", g->shot)
	STR("sourceImageUrl", g->source)
	STR("maskImageUrl", g->mask)
#undef STR
	jw_lit(&w, "}");
	return jw_finish(&w, NULL);
}

/* The jobId of a 202's body, checked; NULL when it has none. */
static const char *
reply_job_id(struct json_object *o)
{
	const char *id = jr_str(o, "jobId");

	return id != NULL && uuid_valid(id) ? id : NULL;
}

int
cmd_generate(int argc, char **argv)
{
	static const char path[] = "/api/images/generate";
	struct gen_args g;
	struct api_conf conf = { 0 };
	struct api a = { 0 };
	struct api_reply rep = { 0 };
	struct json_object *o = NULL, *job = NULL;
	struct arena *ar = NULL;
	const char *project, *branch = NULL, *id;
	char err[512], key[37], *body, *job_body = NULL;
	long long t0 = clock_mono_ms();
	enum api_res res;
	int rc;

	rc = gen_parse_args(&g, argc, argv, err, sizeof(err));
	if (rc == 1) {
		gen_usage(stdout);
		return 0;
	}
	if (rc != 0) {
		fprintf(stderr, "imagegen: %s (imagegen generate --help)\n", err);
		return GEN_EXIT_USAGE;
	}
	rc = client_open("generate", &g.api, &conf, &a);
	if (rc != 0)
		goto out;
	rc = GEN_EXIT_USAGE;
	project = g.project != NULL ? g.project : conf.project[0] != '\0' ? conf.project : NULL;
	if (project == NULL) {
		fprintf(stderr, "imagegen: generate: --project UUID is required (no "
		    "var/stack.env with DEMO_PROJECT_ID was used)\n");
		goto out;
	}
	if (!uuid_valid(project)) {
		fprintf(stderr, "imagegen: generate: %s: DEMO_PROJECT_ID is not a UUID\n",
		    conf.env_path);
		goto out;
	}
	/* The stack's branch only with the stack's project. */
	if (g.branch != NULL)
		branch = g.branch;
	else if (strcmp(project, conf.project) == 0 && uuid_valid(conf.branch))
		branch = conf.branch;
	rc = GEN_EXIT_HTTP;
	ar = arena_new(8192);
	body = ar != NULL ? gen_body(ar, &g, project, branch) : NULL;
	if (body == NULL || api_uuid4(key) != 0) {
		fprintf(stderr, "imagegen: generate: %s\n", body == NULL ? "out of memory" :
		    "no random bytes for an Idempotency-Key");
		goto out;
	}
	res = api_call(&a, "POST", path, body, key, GEN_POST_TRIES, API_CALL_MS, &rep);
	if (res != API_OK) {
		rc = call_error("generate", &conf, "POST", path, res, &rep);
		goto out;
	}
	o = jr_parse(rep.body, rep.len);
	id = reply_job_id(o);
	if (id == NULL) {
		fprintf(stderr, "imagegen: generate: POST %s%s: HTTP %ld without a jobId\n",
		    conf.url, path, rep.status);
		goto out;
	}
	if (!g.wait) {
		printf("%s\n", g.api.json ? rep.body : id);
		rc = GEN_EXIT_OK;
		goto out;
	}
	rc = wait_job(&a, "generate", id, t0, g.timeout, &job, &job_body);
	if (rc == GEN_EXIT_OK)
		rc = report_job(&a, "generate", job, job_body, g.api.json, g.output);
out:
	fflush(stdout);
	json_object_put(o);
	json_object_put(job);
	free(job_body);
	api_reply_free(&rep);
	arena_free(ar);
	api_close(&a);
	api_conf_free(&conf);
	return rc;
}

/* jobs list: a line per job (id, status, type, created, prompt), the
 * next page's cursor on stderr. */
static int
print_list(const char *body, size_t len)
{
	struct json_object *o = jr_parse(body, len), *jobs, *j;
	const char *next;
	char id[40], st[16], ty[16], ts[32], pr[64], cur[600];
	size_t i, n;

	jobs = jr_get(o, "jobs", json_type_array);
	if (jobs == NULL) {
		json_object_put(o);
		fprintf(stderr, "imagegen: jobs list: the answer is not a list of jobs\n");
		return GEN_EXIT_HTTP;
	}
	n = json_object_array_length(jobs);
	printf("%-36s  %-10s  %-12s  %-24s  %s\n", "ID", "STATUS", "TYPE", "CREATED",
	    "PROMPT");
	for (i = 0; i < n; i++) {
		j = json_object_array_get_idx(jobs, i);
		printf("%-36s  %-10s  %-12s  %-24s  %s\n",
		    clean(id, sizeof(id), jr_str(j, "jobId")),
		    clean(st, sizeof(st), jr_str(j, "status")),
		    clean(ty, sizeof(ty), jr_str(j, "jobType")),
		    clean(ts, sizeof(ts), jr_str(j, "createdAt")),
		    clean(pr, sizeof(pr), jr_str(j, "prompt")));
	}
	if (n == 0)
		printf("(no jobs)\n");
	next = jr_str(o, "nextCursor");
	if (next != NULL)
		fprintf(stderr, "imagegen: more jobs: add --cursor %s (with the same "
		    "filters)\n", clean(cur, sizeof(cur), next));
	json_object_put(o);
	return GEN_EXIT_OK;
}

/* jobs show: "name value" per member, nested objects as parent.name. */
static void
print_members(struct json_object *o, const char *prefix)
{
	char name[64], buf[16384];
	const char *v;

	json_object_object_foreach(o, k, val) {
		snprintf(name, sizeof(name), "%s%s", prefix, k);
		if (json_object_is_type(val, json_type_object)) {
			snprintf(name, sizeof(name), "%s%s.", prefix, k);
			print_members(val, name);
			continue;
		}
		if (val == NULL)
			v = "-";
		else if (json_object_is_type(val, json_type_string))
			v = json_object_get_string(val);
		else
			v = json_object_to_json_string_ext(val, JSON_C_TO_STRING_PLAIN);
		printf("%-20s  %s\n", name, clean(buf, sizeof(buf), v));
	}
}

int
cmd_jobs(int argc, char **argv)
{
	struct jobs_args j;
	struct api_conf conf = { 0 };
	struct api a = { 0 };
	struct api_reply rep = { 0 };
	struct json_object *o = NULL, *job = NULL;
	const char *id, *st, *method = "GET";
	char err[512], path[4096], esc[2048], cmd[32], *job_body = NULL;
	long long t0 = clock_mono_ms();
	enum api_res res;
	int rc, tries = 3;
	size_t n;

	rc = jobs_parse_args(&j, argc, argv, err, sizeof(err));
	if (rc == 1) {
		jobs_usage(stdout);
		return 0;
	}
	if (rc != 0) {
		fprintf(stderr, "imagegen: %s (imagegen jobs --help)\n", err);
		return GEN_EXIT_USAGE;
	}
	snprintf(cmd, sizeof(cmd), "jobs %s", argv[1]);
	rc = client_open(cmd, &j.api, &conf, &a);
	if (rc != 0)
		goto out;
	rc = GEN_EXIT_HTTP;
	switch (j.action) {
	case JOBS_LIST:
		n = (size_t)snprintf(path, sizeof(path), "/api/images/jobs");
#define QUERY(name, v)							\
		if ((v) != NULL && api_query_escape(esc, sizeof(esc), v) == 0)	\
			n += (size_t)snprintf(path + n, sizeof(path) - n, "%c%s=%s",	\
			    strchr(path, '?') != NULL ? '&' : '?', name, esc);
		QUERY("projectId", j.project)
		QUERY("status", j.status)
		QUERY("cursor", j.cursor)
#undef QUERY
		if (j.limit > 0)
			snprintf(path + n, sizeof(path) - n, "%climit=%ld",
			    strchr(path, '?') != NULL ? '&' : '?', j.limit);
		break;
	case JOBS_SHOW:
		snprintf(path, sizeof(path), "/api/images/jobs/%s", j.id);
		break;
	case JOBS_CANCEL:
		snprintf(path, sizeof(path), "/api/images/jobs/%s/cancel", j.id);
		method = "POST";
		break;
	case JOBS_RETRY:
		snprintf(path, sizeof(path), "/api/images/jobs/%s/retry", j.id);
		method = "POST";
		tries = 1;	/* a second POST could make a second job */
		break;
	}
	res = api_call(&a, method, path, NULL, NULL, tries, API_CALL_MS, &rep);
	if (res != API_OK) {
		rc = call_error(cmd, &conf, method, path, res, &rep);
		goto out;
	}
	if (j.api.json && !(j.action == JOBS_RETRY && j.wait)) {
		printf("%s\n", rep.body != NULL ? rep.body : "");
		rc = GEN_EXIT_OK;
		goto out;
	}
	if (j.action == JOBS_LIST) {
		rc = print_list(rep.body, rep.len);
		goto out;
	}
	o = jr_parse(rep.body, rep.len);
	id = reply_job_id(o);
	st = jr_str(o, "status");
	if (id == NULL || st == NULL) {
		fprintf(stderr, "imagegen: %s: %s %s%s: the answer is not a job\n", cmd,
		    method, conf.url, path);
		goto out;
	}
	rc = GEN_EXIT_OK;
	if (j.action == JOBS_SHOW) {
		print_members(o, "");
	} else if (j.action == JOBS_CANCEL) {
		printf("%s %s%s\n", id, clean(err, sizeof(err), st),
		    !terminal(st) && json_object_get_boolean(jr_get(o, "cancelRequested",
		    json_type_boolean)) ? " (cancel requested: it stops at its next stage)" : "");
	} else if (!j.wait) {
		printf("%s\n", id);
	} else {
		rc = wait_job(&a, cmd, id, t0, j.timeout, &job, &job_body);
		if (rc == GEN_EXIT_OK)
			rc = report_job(&a, cmd, job, job_body, j.api.json, NULL);
	}
out:
	fflush(stdout);
	json_object_put(o);
	json_object_put(job);
	free(job_body);
	api_reply_free(&rep);
	api_close(&a);
	api_conf_free(&conf);
	return rc;
}
