/*
 * s3_endpoint.c - S3_ENDPOINT in parts (origin, Host, path prefix) and the
 * URLs the S3 backend's objects are read at (storage_ops.urls).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3_endpoint.h"

int
s3_endpoint_parse(struct s3_endpoint *st, const char *ep, char *err, size_t errlen)
{
	const char *auth, *slash;
	size_t i, alen, plen;

	auth = strstr(ep, "://");
	if (auth == NULL || (strncmp(ep, "http://", 7) != 0 &&
	    strncmp(ep, "https://", 8) != 0)) {
		snprintf(err, errlen, "S3_ENDPOINT: expected an http(s) URL");
		return -1;
	}
	auth += 3;
	slash = strchr(auth, '/');
	alen = slash != NULL ? (size_t)(slash - auth) : strlen(auth);
	if (alen == 0 || memchr(auth, '@', alen) != NULL ||
	    strpbrk(ep, "?# \t\r\n") != NULL) {
		snprintf(err, errlen,
		    "S3_ENDPOINT: expected scheme://host[:port][/path], no user, query or fragment");
		return -1;
	}
	plen = slash != NULL ? strlen(slash) : 0;
	while (plen > 0 && slash[plen - 1] == '/')
		plen--;
	st->origin = strndup(ep, (size_t)(auth - ep) + alen);
	st->host = strndup(auth, alen);
	st->prefix = strndup(slash != NULL ? slash : "", plen);
	if (st->origin == NULL || st->host == NULL || st->prefix == NULL) {
		snprintf(err, errlen, "IMAGEGEN_STORAGE=s3: out of memory");
		return -1;
	}
	for (i = 0; st->host[i] != '\0'; i++)
		st->host[i] = (char)tolower((unsigned char)st->host[i]);
	return 0;
}

void
s3_endpoint_free(struct s3_endpoint *ep)
{
	free(ep->origin);
	free(ep->host);
	free(ep->prefix);
	memset(ep, 0, sizeof(*ep));
}

/* 1 when the authority host[:port] is an IP address literal: no bucket
 * can be a label in front of it. */
static int
s3_host_is_ip(const char *host)
{
	size_t i;

	if (host[0] == '[')
		return 1;
	for (i = 0; host[i] != '\0' && host[i] != ':'; i++)
		if (!isdigit((unsigned char)host[i]) && host[i] != '.')
			return 0;
	return 1;
}

const struct s3_conf *
s3_conf(const struct cfg *c)
{
	static const struct s3_conf none;

	return c->storage_conf != NULL ? c->storage_conf : &none;
}

int
s3_endpoint_urls(struct storage *s, const struct cfg *c, char *err, size_t errlen)
{
	static const char supa_s3[] = "/storage/v1/s3";
	const struct s3_conf *sc = s3_conf(c);
	struct s3_endpoint ep;
	const char *scheme_end;
	size_t plen, supa = 0;
	int n, rc = -1;

	memset(&ep, 0, sizeof(ep));
	if (sc->endpoint == NULL) {
		snprintf(err, errlen, "S3_ENDPOINT is not set (needed by IMAGEGEN_STORAGE=s3)");
		goto out;
	}
	if (s3_endpoint_parse(&ep, sc->endpoint, err, errlen) != 0)
		goto out;
	plen = strlen(ep.prefix);
	if (plen >= sizeof(supa_s3) - 1 &&
	    strcmp(ep.prefix + plen - (sizeof(supa_s3) - 1), supa_s3) == 0)
		supa = plen - (sizeof(supa_s3) - 1) + 1;	/* 1 + its own prefix */
	if (!c->public_base_url_set) {
		if (supa > 0)
			n = snprintf(s->public_base, sizeof(s->public_base),
			    "%s%.*s/storage/v1/object/public", ep.origin,
			    (int)(supa - 1), ep.prefix);
		else
			n = snprintf(s->public_base, sizeof(s->public_base), "%s%s",
			    ep.origin, ep.prefix);
		if (n < 0 || (size_t)n >= sizeof(s->public_base)) {
			snprintf(err, errlen, "S3_ENDPOINT: too long for a public URL base");
			goto out;
		}
	}
	if (storage_add_url_form(s, err, errlen, "%s%s/%s/", ep.origin, ep.prefix,
	    s->bucket) != 0)
		goto out;
	if (supa > 0 && storage_add_url_form(s, err, errlen,
	    "%s%.*s/storage/v1/object/public/%s/", ep.origin, (int)(supa - 1),
	    ep.prefix, s->bucket) != 0)
		goto out;
	if (plen == 0 && !s3_host_is_ip(ep.host)) {
		scheme_end = strstr(ep.origin, "://");
		if (storage_add_url_form(s, err, errlen, "%.*s%s.%s/",
		    (int)(scheme_end + 3 - ep.origin), ep.origin, s->bucket,
		    ep.host) != 0)
			goto out;
	}
	rc = 0;
out:
	s3_endpoint_free(&ep);
	return rc;
}
