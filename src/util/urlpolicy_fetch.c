/*
 * urlpolicy_fetch.c - the fetch of the outbound URL policy (urlpolicy.h):
 * curl's hooks that check each connection's address, and the redirects
 * followed by hand so that each target is checked by the URL rule of
 * urlpolicy.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "clock.h"
#include "urlpolicy.h"

#define URLPOL_REFUSED "refused by the outbound URL policy"

/* What one hop's callbacks share. */
struct urlpol_hop {
	const struct urlpol *pol;
	int refused;			/* an address was refused */
	char why[160];			/* the first refusal */
	int http_ok;			/* this hop's host may use plain http */
};

/* Every socket curl opens for the transfer comes through here, with the
 * address it is about to connect to: DNS already answered, so a name
 * that resolves to a refused address is caught whatever it said before. */
static curl_socket_t
urlpol_opensocket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct urlpol_hop *k = arg;
	char why[sizeof(k->why)];

	if (purpose != CURLSOCKTYPE_IPCXN) {
		snprintf(why, sizeof(why), "a socket of another kind than a "
		    "connection");
	} else if (urlpol_check_addr(k->pol, &a->addr, a->addrlen, why,
	    sizeof(why)) == 0) {
		return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	}
	if (!k->refused)
		memcpy(k->why, why, sizeof(k->why));
	k->refused = 1;
	return CURL_SOCKET_BAD;
}

/* httpc's prepare hook: the policy's options on the handle of one hop. */
static void
urlpol_prepare(void *curl, void *arg)
{
	struct urlpol_hop *k = arg;

	curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, urlpol_opensocket);
	curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, k);
	/* The scheme again, as curl sees it; redirects are ours to follow. */
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, k->http_ok ? "http,https" :
	    "https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	/* A proxy would be the peer the check sees, and a connection kept
	 * from an earlier call (the provider's own endpoint) would skip the
	 * check: neither. */
	curl_easy_setopt(curl, CURLOPT_PROXY, "");
	curl_easy_setopt(curl, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(curl, CURLOPT_FORBID_REUSE, 1L);
}

/* Makes rep a refusal: why, after redirs redirects. */
static enum httpc_err
refuse(struct httpc_reply *rep, long redirs, const char *why)
{
	httpc_reply_free(rep);
	rep->error = URLPOL_REFUSED;
	if (redirs > 0)
		snprintf(rep->detail, sizeof(rep->detail), "after %ld redirect%s, %.200s",
		    redirs, redirs == 1 ? "" : "s", why);
	else
		snprintf(rep->detail, sizeof(rep->detail), "%s", why);
	return HTTPC_REFUSED;
}

enum httpc_err
urlpol_fetch(const struct urlpol *p, struct httpc *c,
    const struct httpc_req *req, struct httpc_reply *rep)
{
	struct httpc_req hop;
	struct urlpol_hop k;
	char why[sizeof(rep->detail) - 32], *url, *next;
	long long end = clock_mono_ms() + req->timeout_ms, left;
	long redirs = 0;
	enum httpc_err e;

	memset(rep, 0, sizeof(*rep));
	hop = *req;
	hop.max_redirs = 0;
	hop.prepare = urlpol_prepare;
	hop.prepare_arg = &k;
	url = strdup(req->url != NULL ? req->url : "");
	if (url == NULL) {
		rep->error = "out of memory";
		return HTTPC_NOMEM;
	}
	for (;;) {
		memset(&k, 0, sizeof(k));
		k.pol = p;
		if (urlpol_check_url(p, url, why, sizeof(why)) != 0) {
			e = refuse(rep, redirs, why);
			goto out;
		}
		k.http_ok = strncasecmp(url, "https:", 6) != 0;
		left = end - clock_mono_ms();
		if (left <= 0) {
			rep->error = "Timeout was reached";
			snprintf(rep->detail, sizeof(rep->detail), "after %ld "
			    "redirect%s", redirs, redirs == 1 ? "" : "s");
			e = HTTPC_TIMEOUT;
			goto out;
		}
		hop.url = url;
		hop.timeout_ms = (long)left;
		e = httpc_perform(c, &hop, rep);
		if (e == HTTPC_TIMEOUT && redirs > 0 && !k.refused) {
			size_t dl = strlen(rep->detail);

			snprintf(rep->detail + dl, sizeof(rep->detail) - dl,
			    "%safter %ld redirect%s", dl > 0 ? ", " : "", redirs,
			    redirs == 1 ? "" : "s");
		}
		/* No answer and an address was refused: say so, not "couldn't
		 * connect" nor a time-out (a name with a refused address and
		 * a silent one must not make a retried TIMEOUT of a refusal). */
		if (k.refused && e != HTTPC_OK && e != HTTPC_TOO_BIG) {
			e = refuse(rep, redirs, k.why);
			goto out;
		}
		if (e != HTTPC_OK || rep->location == NULL ||
		    (rep->status != 301 && rep->status != 302 &&
		    rep->status != 303 && rep->status != 307 && rep->status != 308))
			goto out;
		if (redirs >= req->max_redirs) {
			httpc_reply_free(rep);
			rep->error = "too many redirects";
			snprintf(rep->detail, sizeof(rep->detail), "more than %ld",
			    req->max_redirs);
			e = HTTPC_PERMANENT;
			goto out;
		}
		next = rep->location;
		rep->location = NULL;
		free(url);
		url = next;
		redirs++;
		/* As browsers do: a 303, or a 301/302 after a POST, asks for
		 * the target with GET. */
		if (strcmp(hop.method, "GET") != 0 && strcmp(hop.method, "HEAD") != 0 &&
		    rep->status != 307 && rep->status != 308) {
			hop.method = "GET";
			hop.body = NULL;
			hop.len = 0;
		}
		/* The caller's headers were for the URL it gave. */
		hop.headers = NULL;
		httpc_reply_free(rep);
	}
out:
	free(url);
	return e;
}
