/*
 * httpc.c - the libcurl client the remote providers and storage backends
 * share: one easy handle per process, the reply body read up to a cap,
 * the headers a caller needs kept, and transport failures classified.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "httpc.h"

#define HTTPC_BODY_START 4096		/* the first allocation of a body */

/* Where the callbacks of one call write. */
struct httpc_sink {
	struct httpc_reply *rep;
	size_t cap, max;
};

int
httpc_init_main(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void
httpc_cleanup_main(void)
{
	curl_global_cleanup();
}

int
httpc_open(struct httpc *c)
{
	c->curl = curl_easy_init();
	return c->curl != NULL ? 0 : -1;
}

void
httpc_close(struct httpc *c)
{
	if (c == NULL)
		return;
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	c->curl = NULL;
}

void
httpc_reply_free(struct httpc_reply *rep)
{
	if (rep == NULL)
		return;
	free(rep->body);
	free(rep->location);
	memset(rep, 0, sizeof(*rep));
}

static size_t
httpc_on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct httpc_sink *k = ud;
	struct httpc_reply *r = k->rep;
	size_t n = size * nmemb, ncap;
	char *np;

	if (n > k->max - r->len) {
		r->over = 1;
		return 0;	/* curl stops with CURLE_WRITE_ERROR */
	}
	if (r->len + n + 1 > k->cap) {
		ncap = k->cap != 0 ? k->cap : HTTPC_BODY_START;
		while (ncap < r->len + n + 1)
			ncap *= 2;
		if (ncap > k->max + 1)
			ncap = k->max + 1;
		np = realloc(r->body, ncap);
		if (np == NULL)
			return 0;
		r->body = np;
		k->cap = ncap;
	}
	memcpy(r->body + r->len, ptr, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

/* The vl bytes at v into out (size bytes), cut to fit, NUL-terminated. */
static void
httpc_copy(char *out, size_t size, const char *v, size_t vl)
{
	if (vl >= size)
		vl = size - 1;
	memcpy(out, v, vl);
	out[vl] = '\0';
}

/* Keeps Retry-After and Content-Type of the last response: a status line
 * (after a redirect or an interim 1xx) starts over. */
static size_t
httpc_on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct httpc_reply *r = ((struct httpc_sink *)ud)->rep;
	size_t n = size * nmemb, k, vl;
	const char *v;

	if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
		r->retry_after[0] = r->content_type[0] = '\0';
		return n;
	}
	for (k = 0; k < n && ptr[k] != ':'; k++)
		;
	if (k == n)
		return n;
	v = ptr + k + 1;
	vl = n - k - 1;
	while (vl > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' ||
	    v[vl - 1] == ' '))
		vl--;
	if (k == 11 && strncasecmp(ptr, "Retry-After", 11) == 0)
		httpc_copy(r->retry_after, sizeof(r->retry_after), v, vl);
	else if (k == 12 && strncasecmp(ptr, "Content-Type", 12) == 0)
		httpc_copy(r->content_type, sizeof(r->content_type), v, vl);
	return n;
}

/* The class of a finished transfer; over: the body passed its cap. */
static enum httpc_err
httpc_class(CURLcode cc, int over)
{
	if (cc == CURLE_OK)
		return HTTPC_OK;
	if (over || cc == CURLE_FILESIZE_EXCEEDED)
		return HTTPC_TOO_BIG;
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		return HTTPC_TIMEOUT;
	/* No connection, or one that broke before the answer was whole:
	 * another try may get through. */
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_OUT_OF_MEMORY:
		return HTTPC_TEMPORARY;
	/* A refused scheme, URL, redirect, encoding or certificate is the
	 * request's or the reply's fault and will not change on a retry. */
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_TOO_MANY_REDIRECTS:
	case CURLE_BAD_CONTENT_ENCODING:
	case CURLE_PEER_FAILED_VERIFICATION:
		return HTTPC_PERMANENT;
	default:
		return HTTPC_UNKNOWN;
	}
}

/* req's header lines as a curl list into *out (NULL when there are none);
 * -1 out of memory. */
static int
httpc_headers(const struct httpc_req *req, struct curl_slist **out)
{
	struct curl_slist *l = NULL, *n;
	size_t i;

	*out = NULL;
	for (i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
		n = curl_slist_append(l, req->headers[i]);
		if (n == NULL)
			goto fail;
		l = n;
	}
	/* No "Expect: 100-continue" round trip before a body. */
	if (req->body != NULL) {
		n = curl_slist_append(l, "Expect:");
		if (n == NULL)
			goto fail;
		l = n;
	}
	*out = l;
	return 0;
fail:
	curl_slist_free_all(l);
	return -1;
}

enum httpc_err
httpc_perform(struct httpc *c, const struct httpc_req *req,
    struct httpc_reply *rep)
{
	CURL *curl = c->curl;
	struct httpc_sink sink;
	struct curl_slist *hdrs = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	const char *m = req->method;
	char *loc = NULL;
	enum httpc_err e = HTTPC_NOMEM;
	long connect_ms;
	CURLcode cc;

	memset(rep, 0, sizeof(*rep));
	sink.rep = rep;
	sink.cap = 0;
	sink.max = req->max_bytes;
	if (httpc_headers(req, &hdrs) != 0) {
		rep->error = "out of memory";
		goto out;
	}
	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_URL, req->url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR,
	    (req->flags & HTTPC_FILE) ? "http,https,file" : "http,https");
	if (req->max_redirs > 0) {
		curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(curl, CURLOPT_MAXREDIRS, req->max_redirs);
	} else {
		curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	}
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	connect_ms = req->timeout_ms < HTTPC_CONNECT_MS ? req->timeout_ms :
	    HTTPC_CONNECT_MS;
	if (req->connect_ms > 0)
		connect_ms = req->connect_ms;
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, req->timeout_ms);
	if (req->flags & HTTPC_LENGTH_CAP)
		curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE,
		    (curl_off_t)req->max_bytes);
	if (req->flags & HTTPC_DECODE)
		curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(curl, CURLOPT_USERAGENT, req->user_agent);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, httpc_on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, httpc_on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, &sink);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	if (strcmp(m, "HEAD") == 0)
		curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	if (req->body != NULL) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)req->len);
	}
	/* GET, HEAD and a POST of a body are what curl does by itself. */
	if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0 &&
	    !(strcmp(m, "POST") == 0 && req->body != NULL))
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, m);
	if (req->prepare != NULL)
		req->prepare(curl, req->prepare_arg);
	cc = curl_easy_perform(curl);
	/* The handle must not keep pointers into this call's memory. */
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, NULL);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, NULL);
	curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, NULL);
	curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, NULL);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &rep->status);
	if (cc == CURLE_OK && rep->status >= 300 && rep->status < 400 &&
	    curl_easy_getinfo(curl, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK &&
	    loc != NULL) {
		rep->location = strdup(loc);
		if (rep->location == NULL) {
			rep->error = "out of memory";
			e = HTTPC_NOMEM;
			goto out;
		}
	}
	e = httpc_class(cc, rep->over);
	if (e != HTTPC_OK) {
		rep->error = curl_easy_strerror(cc);
		snprintf(rep->detail, sizeof(rep->detail), "%s", errbuf);
	}
out:
	curl_slist_free_all(hdrs);
	return e;
}
