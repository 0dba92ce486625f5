/*
 * apiclient.c - the command line as a client of the HTTP API: settings
 * (flags, environment, a scripts/up tree's var/stack.env read without a
 * shell), one request at a time over httpc with the token and bounded
 * replies, the API's {"error":{…}} read back, downloads of a job's image.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <openssl/rand.h>

#include "config.h"
#include "apiclient.h"
#include "clock.h"
#include "fsutil.h"
#include "jsonr.h"
#include "secret.h"
#include "text.h"

#define API_ENV_FILE_MAX	65536	/* a stack.env larger than this is refused */
#define API_UA			"imagegen/" VERSION

static size_t origin_len(const char *url);

/* ---- var/stack.env --------------------------------------------------- */

/*
 * One shell word at p (up to end, the line's end) into out (cap bytes,
 * NUL-terminated): '…' literal, "…" with \ before $ ` " \ only, \x
 * outside quotes, anything else that a shell would expand, run or split
 * on refused. The position after the word, or NULL when the word is not
 * one this reads without a shell or does not fit.
 */
static const char *
env_word(const char *p, const char *end, char *out, size_t cap)
{
	size_t n = 0;
	char ch;

	while (p < end && *p != ' ' && *p != '\t') {
		ch = *p++;
		if (ch == '\'') {
			while (p < end && *p != '\'') {
				if (n + 1 >= cap)
					return NULL;
				out[n++] = *p++;
			}
			if (p == end)
				return NULL;
			p++;
			continue;
		}
		if (ch == '"') {
			while (p < end && *p != '"') {
				ch = *p++;
				if (ch == '$' || ch == '`')
					return NULL;
				if (ch == '\\' && p < end && strchr("$`\"\\", *p) != NULL)
					ch = *p++;
				if (n + 1 >= cap)
					return NULL;
				out[n++] = ch;
			}
			if (p == end)
				return NULL;
			p++;
			continue;
		}
		if (ch == '\\') {
			if (p == end)
				return NULL;
			ch = *p++;
		} else if (strchr("$`;&|<>(){}*?[]~#!\"\r", ch) != NULL) {
			return NULL;
		}
		if (n + 1 >= cap)
			return NULL;
		out[n++] = ch;
	}
	out[n] = '\0';
	return p;
}

/* Line [p, end): 0 when blank, a comment or a KEY=VALUE read into se;
 * -1 when it is none of these. */
static int
env_line(const char *p, const char *end, struct api_stack_env *se)
{
	static char val[API_VALUE_MAX];
	const char *k;
	size_t kl;
	int rc = -1;

	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p == end || *p == '#')
		return 0;
	if (end - p > 7 && strncmp(p, "export", 6) == 0 &&
	    (p[6] == ' ' || p[6] == '\t')) {
		p += 7;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
	}
	k = p;
	if (p == end || !(*p == '_' || (*p >= 'A' && *p <= 'Z') ||
	    (*p >= 'a' && *p <= 'z')))
		return -1;
	while (p < end && (*p == '_' || (*p >= 'A' && *p <= 'Z') ||
	    (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
		p++;
	kl = (size_t)(p - k);
	if (p == end || *p != '=')
		return -1;
	p = env_word(p + 1, end, val, sizeof(val));
	if (p == NULL)
		goto out;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p != end && *p != '#')
		goto out;
#define ENV_KEY(name, field)						\
	if (kl == sizeof(name) - 1 && strncmp(k, name, kl) == 0) {	\
		if (strlen(val) >= sizeof(se->field))			\
			goto out;					\
		memcpy(se->field, val, strlen(val) + 1);		\
	}
	ENV_KEY("IMAGEGEN_URL", url)
	ENV_KEY("DEMO_TOKEN", token)
	ENV_KEY("DEMO_PROJECT_ID", project)
	ENV_KEY("DEMO_BRANCH_ID", branch)
#undef ENV_KEY
	rc = 0;
out:
	OPENSSL_cleanse(val, sizeof(val));
	return rc;
}

int
api_stack_env_parse(const char *text, size_t len, struct api_stack_env *se,
    int *bad_line)
{
	const char *p = text, *end = text + len, *eol, *next;
	int line = 0, bad = 0;
	size_t n;

	memset(se, 0, sizeof(*se));
	if (bad_line != NULL)
		*bad_line = 0;
	while (p < end) {
		eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		line++;
		next = eol < end ? eol + 1 : end;
		n = (size_t)(eol - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;		/* a file saved with CRLF line ends */
		if (memchr(p, '\0', n) != NULL || env_line(p, p + n, se) != 0) {
			if (bad++ == 0 && bad_line != NULL)
				*bad_line = line;
		}
		p = next;
	}
	return bad;
}

/*
 * Reads path into *se when it is a regular file of ours (or root's) that
 * no one else may write. 1 read, 0 when there is no such file, -1 after a
 * warning on stderr when it is there but refused.
 */
static int
env_read(const char *path, struct api_stack_env *se)
{
	struct stat st;
	char *buf = NULL;
	ssize_t n;
	size_t len = 0;
	int fd, bad_line, rc = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		fprintf(stderr, "imagegen: warning: cannot read %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "imagegen: warning: ignoring %s: not a regular file\n", path);
		goto out;
	}
	if ((st.st_uid != geteuid() && st.st_uid != 0) || (st.st_mode & 022) != 0) {
		fprintf(stderr, "imagegen: warning: ignoring %s: it must be yours and "
		    "writable by you only\n", path);
		goto out;
	}
	buf = malloc(API_ENV_FILE_MAX + 1);
	if (buf == NULL)
		goto out;
	while (len <= API_ENV_FILE_MAX) {
		n = read(fd, buf + len, API_ENV_FILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "imagegen: warning: cannot read %s: %s\n", path,
			    strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > API_ENV_FILE_MAX) {
		fprintf(stderr, "imagegen: warning: ignoring %s: larger than %d bytes\n",
		    path, API_ENV_FILE_MAX);
		goto out;
	}
	n = api_stack_env_parse(buf, len, se, &bad_line);
	if (n > 0)
		fprintf(stderr, "imagegen: warning: %s: %zd line(s) not read, the first "
		    "line %d (only KEY=VALUE lines without expansions are)\n", path, n,
		    bad_line);
	rc = 1;
out:
	secret_free_n(buf, API_ENV_FILE_MAX + 1);
	close(fd);
	return rc;
}

/* The first var/stack.env there is: ./var/stack.env, then BIN/../var/'s.
 * 1 with *se and its path, 0 none, -1 one there but refused. */
static int
env_find(struct api_stack_env *se, char *path, size_t pathlen)
{
	char exe[4096], *slash;
	int rc;

	snprintf(path, pathlen, "var/stack.env");
	rc = env_read(path, se);
	if (rc != 0)
		return rc;
	if (realpath("/proc/self/exe", exe) == NULL)
		return 0;
	slash = strrchr(exe, '/');
	if (slash == NULL)
		return 0;
	*slash = '\0';
	slash = strrchr(exe, '/');
	if (slash == NULL)
		return 0;
	*slash = '\0';
	if (snprintf(path, pathlen, "%s/var/stack.env", exe) >= (int)pathlen)
		return 0;
	return env_read(path, se);
}

static int
http_url(const char *u)
{
	return strncasecmp(u, "http://", 7) == 0 || strncasecmp(u, "https://", 8) == 0;
}

/* 1 when s is non-empty and all printable ASCII without spaces. */
static int
one_word(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

int
api_conf_load(struct api_conf *c, const char *url_opt, const char *token_opt,
    int insecure, char *err, size_t errlen)
{
	static struct api_stack_env se;
	const char *url = url_opt, *token = token_opt, *from = "--url";
	char ca[4096], *slash;
	size_t n;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	memset(&se, 0, sizeof(se));
	c->insecure = insecure;
	/* An empty variable is one not set; an empty option is a mistake. */
	if (url == NULL) {
		url = getenv("IMAGEGEN_URL");
		from = "IMAGEGEN_URL";
		if (url != NULL && *url == '\0')
			url = NULL;
	}
	if (token == NULL) {
		token = getenv("IMAGEGEN_TOKEN");
		if (token != NULL && *token == '\0')
			token = NULL;
	}
	if (url == NULL && env_find(&se, c->env_path, sizeof(c->env_path)) == 1 &&
	    se.url[0] != '\0') {
		/*
		 * A stack.env's URL goes with its own DEMO_TOKEN only: a token
		 * of the user's (flag or environment) is never sent to a URL
		 * that a file in the working directory names.
		 */
		if (token != NULL) {
			snprintf(err, errlen, "%s given without a URL: give --url URL or "
			    "IMAGEGEN_URL too (the URL of %s is used only with its own "
			    "DEMO_TOKEN)", token == token_opt ? "--token" : "IMAGEGEN_TOKEN",
			    c->env_path);
			goto out;
		}
		url = se.url;
		from = c->env_path;
		if (se.token[0] != '\0')
			token = se.token;
		memcpy(c->project, se.project, sizeof(c->project));
		memcpy(c->branch, se.branch, sizeof(c->branch));
		snprintf(ca, sizeof(ca), "%s", c->env_path);
		slash = strrchr(ca, '/');
		if (slash != NULL && (size_t)(slash - ca) + sizeof("/tls/cert.pem") <= sizeof(ca)) {
			memcpy(slash, "/tls/cert.pem", sizeof("/tls/cert.pem"));
			if (access(ca, R_OK) == 0 && (c->ca_file = strdup(ca)) == NULL)
				goto nomem;
		}
	} else {
		c->env_path[0] = '\0';
	}
	if (url == NULL) {
		snprintf(err, errlen, "no service URL: give --url URL or IMAGEGEN_URL "
		    "(or run it in a scripts/up tree: var/stack.env has it)");
		goto out;
	}
	if (!http_url(url) || !one_word(url) || strlen(url) > 2048) {
		snprintf(err, errlen, "%s: expected an http:// or https:// URL, got '%.80s'",
		    from, url);
		goto out;
	}
	/* user:password@ would be printed with every error message */
	if (memchr(url, '@', origin_len(url)) != NULL) {
		snprintf(err, errlen, "%s: a URL without user:password@, please (the token "
		    "is what authenticates)", from);
		goto out;
	}
	if (token == NULL) {
		snprintf(err, errlen, "no access token: give IMAGEGEN_TOKEN or --token TOKEN"
		    "%s", c->env_path[0] != '\0' ? " (the stack.env has no DEMO_TOKEN)" : "");
		goto out;
	}
	if (!one_word(token) || strlen(token) > 16384) {
		snprintf(err, errlen, "%s: the token must be one word of printable ASCII",
		    token == token_opt ? "--token" : token == se.token ? c->env_path :
		    "IMAGEGEN_TOKEN");
		goto out;
	}
	c->url = strdup(url);
	c->token = strdup(token);
	if (c->url == NULL || c->token == NULL)
		goto nomem;
	n = strlen(c->url);
	while (n > 0 && c->url[n - 1] == '/')
		c->url[--n] = '\0';
	rc = 0;
	goto out;
nomem:
	snprintf(err, errlen, "out of memory");
out:
	OPENSSL_cleanse(se.token, sizeof(se.token));
	if (rc != 0)
		api_conf_free(c);
	return rc;
}

void
api_conf_free(struct api_conf *c)
{
	if (c == NULL)
		return;
	free(c->url);
	secret_free(c->token);
	free(c->ca_file);
	c->url = c->token = c->ca_file = NULL;
}

/* ---- requests -------------------------------------------------------- */

int
api_open(struct api *a, const struct api_conf *c)
{
	memset(a, 0, sizeof(*a));
	a->conf = c;
	a->auth = text_printf("Authorization: Bearer %s", c->token);
	if (a->auth == NULL || httpc_open(&a->h) != 0) {
		api_close(a);
		return -1;
	}
	return 0;
}

void
api_close(struct api *a)
{
	if (a == NULL)
		return;
	httpc_close(&a->h);
	secret_free(a->auth);
	a->auth = NULL;
}

void
api_reply_free(struct api_reply *rep)
{
	if (rep == NULL)
		return;
	free(rep->body);
	memset(rep, 0, sizeof(*rep));
	rep->retry_after = -1;
}

/* The length of the scheme://host[:port] that starts url. */
static size_t
origin_len(const char *url)
{
	const char *p = strstr(url, "://");

	if (p == NULL)
		return 0;
	p += 3;
	return (size_t)(p - url) + strcspn(p, "/?#");
}

/* 1 when url is on the API's own origin (scheme, host and port of c->url). */
static int
own_origin(const struct api_conf *c, const char *url)
{
	size_t ol = origin_len(c->url);

	return ol > 0 && strncasecmp(url, c->url, ol) == 0 &&
	    strchr("/?#", url[ol]) != NULL;
}

/* How a request's connection checks the server's certificate. */
struct tls_how {
	const struct api_conf *c;
	int own;	/* the API's own origin: c->ca_file and --insecure apply */
};

/*
 * --insecure and the stack.env's certificate are for the API's own origin
 * only: any other (an --output image on a CDN, a redirect's target) is
 * checked against the system's CAs as usual.
 */
static void
api_prepare(void *curl, void *arg)
{
	const struct tls_how *t = arg;

	if (!t->own)
		return;
	if (t->c->insecure) {
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (t->c->ca_file != NULL) {
		curl_easy_setopt(curl, CURLOPT_CAINFO, t->c->ca_file);
	}
}

long
api_retry_after_s(const char *v, time_t now)
{
	const char *p;
	time_t t;
	long s = 0;

	if (v == NULL)
		return -1;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v == '\0')
		return -1;
	for (p = v; *p >= '0' && *p <= '9'; p++)
		if (s <= API_RETRY_AFTER_MAX)	/* no overflow on many digits */
			s = s * 10 + (*p - '0');
	if (p != v) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			return s > API_RETRY_AFTER_MAX ? API_RETRY_AFTER_MAX : s;
		return 1;
	}
	/* an HTTP-date (IMF-fixdate and the two obsolete forms) */
	t = curl_getdate(v, NULL);
	if (t == (time_t)-1)
		return 1;
	if (t <= now)
		return 0;
	if (t - now > API_RETRY_AFTER_MAX)
		return API_RETRY_AFTER_MAX;
	return (long)(t - now);
}

/* rep's code and message from its body: the API's error, else "". */
static void
read_error(struct api_reply *rep)
{
	struct json_object *o = NULL, *e;
	const char *code = NULL, *msg = NULL;

	if (rep->body != NULL)
		o = jr_parse(rep->body, rep->len);
	e = jr_get(o, "error", json_type_object);
	if (e != NULL) {
		code = jr_str(e, "code");
		msg = jr_str(e, "message");
	}
	if (code != NULL)
		text_clean(rep->code, sizeof(rep->code), code, strlen(code));
	if (msg != NULL)
		text_clean(rep->message, sizeof(rep->message), msg, strlen(msg));
	json_object_put(o);
}

static int
retry_status(const struct api_reply *rep)
{
	switch (rep->status) {
	case 409:
		return strcmp(rep->code, "IDEMPOTENCY_IN_FLIGHT") == 0;
	case 429: case 502: case 503: case 504:
		return 1;
	default:
		return 0;
	}
}

enum api_res
api_call(struct api *a, const char *method, const char *path, const char *body,
    const char *idem_key, int tries, long timeout_ms, struct api_reply *rep)
{
	const char *hdrs[6];
	struct tls_how tls = { a->conf, 1 };
	struct httpc_req req;
	struct httpc_reply hr;
	enum httpc_err he;
	enum api_res res = API_NOMEM;
	char *url = NULL, *key_hdr = NULL;
	long long wait_ms;
	int n = 0, attempt;

	memset(rep, 0, sizeof(*rep));
	rep->retry_after = -1;
	memset(&hr, 0, sizeof(hr));
	url = text_printf("%s%s", a->conf->url, path);
	if (idem_key != NULL)
		key_hdr = text_printf("Idempotency-Key: %s", idem_key);
	if (url == NULL || (idem_key != NULL && key_hdr == NULL)) {
		snprintf(rep->message, sizeof(rep->message), "out of memory");
		goto out;
	}
	hdrs[n++] = a->auth;
	hdrs[n++] = "Accept: application/json";
	/* No form Content-Type of curl's on a body-less POST. */
	hdrs[n++] = body != NULL ? "Content-Type: application/json" : "Content-Type:";
	if (key_hdr != NULL)
		hdrs[n++] = key_hdr;
	hdrs[n] = NULL;
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.url = url;
	req.headers = hdrs;
	req.body = body;
	req.len = body != NULL ? strlen(body) : 0;
	req.timeout_ms = timeout_ms;
	req.max_bytes = API_REPLY_MAX;
	req.flags = HTTPC_DECODE | HTTPC_LENGTH_CAP;
	req.user_agent = API_UA;
	req.prepare = api_prepare;
	req.prepare_arg = &tls;
	/* A body-less POST (cancel, retry) is still a POST. */
	if (body == NULL && strcmp(method, "POST") == 0) {
		req.body = "";
		req.len = 0;
	}
	for (attempt = 1; ; attempt++) {
		api_reply_free(rep);
		httpc_reply_free(&hr);
		he = httpc_perform(&a->h, &req, &hr);
		if (he == HTTPC_OK) {
			rep->status = hr.status;
			rep->body = hr.body;
			rep->len = hr.len;
			hr.body = NULL;
			rep->retry_after = api_retry_after_s(hr.retry_after, time(NULL));
			res = rep->status >= 200 && rep->status < 300 ? API_OK : API_HTTP;
			if (res == API_HTTP)
				read_error(rep);
			if (res == API_OK || attempt >= tries || !retry_status(rep))
				break;
			wait_ms = rep->retry_after >= 0 ? rep->retry_after * 1000LL :
			    500LL << (attempt - 1);
		} else {
			res = he == HTTPC_NOMEM ? API_NOMEM : API_NET;
			if (he == HTTPC_TOO_BIG)
				snprintf(rep->message, sizeof(rep->message),
				    "the answer is larger than %ld bytes", API_REPLY_MAX);
			else
				snprintf(rep->message, sizeof(rep->message), "%s%s%s",
				    hr.error != NULL ? hr.error : "failed",
				    hr.detail[0] != '\0' ? ": " : "", hr.detail);
			if (attempt >= tries || (he != HTTPC_TIMEOUT && he != HTTPC_TEMPORARY))
				break;
			wait_ms = 500LL << (attempt - 1);
		}
		if (wait_ms > API_RETRY_AFTER_MAX * 1000LL)
			wait_ms = API_RETRY_AFTER_MAX * 1000LL;
		/* the URL is ours and holds no secret */
		if (res == API_HTTP)
			fprintf(stderr, "imagegen: %s %s: HTTP %ld%s%s; trying again in %.1f s\n",
			    method, url, rep->status, rep->code[0] != '\0' ? " " : "", rep->code,
			    (double)wait_ms / 1000.0);
		else
			fprintf(stderr, "imagegen: %s %s: %s; trying again in %.1f s\n", method,
			    url, rep->message, (double)wait_ms / 1000.0);
		clock_sleep_ms(wait_ms);
	}
out:
	httpc_reply_free(&hr);
	free(url);
	free(key_hdr);
	return res;
}

/* ---- URLs and downloads ---------------------------------------------- */

char *
api_abs_url(const struct api_conf *c, const char *url)
{
	if (url == NULL)
		return NULL;
	if (http_url(url))
		return strdup(url);
	if (url[0] == '/' && url[1] != '/')
		return text_printf("%.*s%s", (int)origin_len(c->url), c->url, url);
	return NULL;
}

int
api_download(struct api *a, const char *url, const char *path, char *err,
    size_t errlen)
{
	struct tls_how tls = { a->conf, 0 };
	struct httpc_req req;
	struct httpc_reply hr;
	enum httpc_err he;
	char *tmp = NULL, *hop = NULL;
	mode_t mask;
	int fd = -1, rc = -1, redirs;

	memset(&hr, 0, sizeof(hr));
	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.url = url;
	req.timeout_ms = 120000;
	req.max_bytes = API_IMAGE_MAX;
	req.max_redirs = 0;	/* followed here, each hop's origin checked */
	req.flags = HTTPC_LENGTH_CAP;
	req.user_agent = API_UA;
	req.prepare = api_prepare;
	req.prepare_arg = &tls;
	for (redirs = 0; ; redirs++) {
		tls.own = own_origin(a->conf, req.url);
		httpc_reply_free(&hr);
		he = httpc_perform(&a->h, &req, &hr);
		if (he != HTTPC_OK || hr.status < 300 || hr.status >= 400 ||
		    hr.location == NULL)
			break;
		if (redirs >= 3) {
			snprintf(err, errlen, "cannot fetch the image: more than 3 redirects");
			goto out;
		}
		if (!http_url(hr.location)) {
			snprintf(err, errlen, "cannot fetch the image: a redirect to a URL "
			    "that is not http(s)");
			goto out;
		}
		free(hop);
		hop = strdup(hr.location);
		if (hop == NULL) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		req.url = hop;
	}
	if (he == HTTPC_TOO_BIG) {
		snprintf(err, errlen, "the image is larger than %ld bytes", API_IMAGE_MAX);
		goto out;
	}
	if (he != HTTPC_OK) {
		snprintf(err, errlen, "cannot fetch the image: %s%s%s", hr.error,
		    hr.detail[0] != '\0' ? ": " : "", hr.detail);
		goto out;
	}
	if (hr.status != 200 || hr.len == 0) {
		snprintf(err, errlen, "cannot fetch the image: HTTP %ld%s", hr.status,
		    hr.len == 0 ? ", empty" : "");
		goto out;
	}
	tmp = text_printf("%s.XXXXXX", path);
	if (tmp == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	fd = mkstemp(tmp);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		free(tmp);
		tmp = NULL;
		goto out;
	}
	mask = umask(0);
	umask(mask);
	if (fchmod(fd, 0666 & ~mask) != 0 || fs_write_all(fd, hr.body, hr.len) != 0 ||
	    fsync(fd) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path,
		    strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (tmp != NULL) {
		unlink(tmp);
		free(tmp);
	}
	free(hop);
	httpc_reply_free(&hr);
	return rc;
}

/* ---- small things ---------------------------------------------------- */

int
api_uuid4(char out[37])
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -1;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5], b[6],
	    b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

int
api_query_escape(char *out, size_t outlen, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;
	unsigned char ch;

	for (; *s != '\0'; s++) {
		ch = (unsigned char)*s;
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || strchr("-._~", ch) != NULL) {
			if (n + 1 >= outlen)
				return -1;
			out[n++] = (char)ch;
		} else {
			if (n + 3 >= outlen)
				return -1;
			out[n++] = '%';
			out[n++] = hex[ch >> 4];
			out[n++] = hex[ch & 15];
		}
	}
	if (outlen == 0)
		return -1;
	out[n] = '\0';
	return 0;
}
