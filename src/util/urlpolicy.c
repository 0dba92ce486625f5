/*
 * urlpolicy.c - the outbound URL policy (urlpolicy.h): the allow-list, the
 * URL rule for every hop and the address rule curl's opensocket callback
 * applies to each connection. The fetch that follows redirects by hand,
 * so that each one is checked, is urlpolicy_fetch.c.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "urlpolicy.h"

#define URLPOL_ALLOW_VAR "IMAGEGEN_FETCH_ALLOW"

/* ---- the allow-list ---------------------------------------------------- */

void
urlpol_free(struct urlpol *p)
{
	if (p == NULL)
		return;
	free(p->e);
	p->e = NULL;
	p->n = 0;
}

/* 1 when the prefix bits of a and net (len bytes each) are equal. */
static int
prefix_match(const unsigned char *a, const unsigned char *net, int prefix)
{
	int full = prefix / 8, rest = prefix % 8;
	unsigned char mask;

	if (memcmp(a, net, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (net[full] & mask);
}

/* 1 when a label is all digits, or 0x and hex digits: a host name ending
 * in one is a number curl would read as an IPv4 address. */
static int
numeric_label(const char *s, size_t n)
{
	size_t i = 0;

	if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		for (i = 2; i < n && isxdigit((unsigned char)s[i]); i++)
			;
		return i == n;
	}
	for (; i < n && isdigit((unsigned char)s[i]); i++)
		;
	return n > 0 && i == n;
}

/* Checks s as a DNS host name and copies it, lower case and without a
 * trailing dot, into out (URLPOL_HOST_MAX + 1 bytes). 0 or -1. */
static int
host_name(const char *s, char *out)
{
	size_t n = strlen(s), i, label = 0, last = 0;

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > URLPOL_HOST_MAX)
		return -1;
	for (i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			/* 1-63 characters, no hyphen at either end */
			if (label == 0 || label > 63 || s[i - 1] == '-' ||
			    s[i - label] == '-')
				return -1;
			last = i - label;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return -1;
		label++;
	}
	if (numeric_label(s + last, n - last))
		return -1;
	for (i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[n] = '\0';
	return 0;
}

/* Parses one entry (NUL-terminated, trimmed) into *e. NULL, or why not. */
static const char *
parse_entry(const char *s, struct urlpol_entry *e)
{
	char buf[URLPOL_HOST_MAX + 8], *slash, *addr = buf, *end;
	size_t n = strlen(s);
	long prefix = -1;
	int bit;

	memset(e, 0, sizeof(*e));
	if (n == 0)
		return "an empty entry";
	if (n >= sizeof(buf))
		return "too long";
	if (strstr(s, "://") != NULL)
		return "a URL; expected a host name, an address or a CIDR range";
	memcpy(buf, s, n + 1);
	slash = strchr(buf, '/');
	if (slash != NULL) {
		*slash++ = '\0';
		errno = 0;
		prefix = strtol(slash, &end, 10);
		if (!isdigit((unsigned char)*slash) || *end != '\0' ||
		    errno != 0 || prefix > 128)
			return "not a CIDR range (address/prefix length)";
	}
	n = strlen(addr);
	if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
		addr[n - 1] = '\0';
		addr++;
		if (strchr(addr, ':') == NULL)
			return "brackets around something other than an IPv6 address";
	}
	if (inet_pton(AF_INET, addr, e->addr) == 1) {
		e->family = AF_INET;
		e->prefix = prefix < 0 ? 32 : (int)prefix;
		if (e->prefix > 32)
			return "an IPv4 prefix length past 32";
	} else if (inet_pton(AF_INET6, addr, e->addr) == 1) {
		e->family = AF_INET6;
		e->prefix = prefix < 0 ? 128 : (int)prefix;
	} else if (slash != NULL) {
		return "not a CIDR range (address/prefix length)";
	} else if (strchr(addr, ':') != NULL) {
		return "not an IPv6 address (a host takes no port)";
	} else if (host_name(addr, e->host) != 0) {
		return "not a host name or an address";
	} else {
		return NULL;
	}
	e->is_net = 1;
	/* A range names its network: 10.0.0.1/8 is more likely a typo
	 * than 10.0.0.0/8. */
	for (bit = e->prefix; bit < (e->family == AF_INET ? 32 : 128); bit++) {
		if (e->addr[bit / 8] & (0x80 >> (bit % 8)))
			return "a range with host bits set (give the network address)";
	}
	return NULL;
}

int
urlpol_parse(struct urlpol *p, const char *spec, char *err, size_t errlen)
{
	struct urlpol q = { NULL, 0 };
	const char *s = spec, *end, *why;
	char entry[URLPOL_HOST_MAX + 8];
	size_t n, cap = 0;
	int rc = -1;

	memset(p, 0, sizeof(*p));
	if (spec == NULL || spec[strspn(spec, " \t")] == '\0')
		return 0;
	for (;;) {
		end = strchr(s, ',');
		if (end == NULL)
			end = s + strlen(s);
		while (s < end && (*s == ' ' || *s == '\t'))
			s++;
		n = (size_t)(end - s);
		while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n >= sizeof(entry)) {
			snprintf(err, errlen, "entry '%.40s…' is too long", s);
			goto out;
		}
		memcpy(entry, s, n);
		entry[n] = '\0';
		if (q.n == cap) {
			struct urlpol_entry *ne;

			if (cap == URLPOL_MAX_ENTRIES) {
				snprintf(err, errlen, "more than %d entries",
				    URLPOL_MAX_ENTRIES);
				goto out;
			}
			cap = cap != 0 ? cap * 2 : 8;
			ne = realloc(q.e, cap * sizeof(*ne));
			if (ne == NULL) {
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			q.e = ne;
		}
		why = parse_entry(entry, &q.e[q.n]);
		if (why != NULL) {
			snprintf(err, errlen, "entry %zu '%.60s' is %s", q.n + 1,
			    entry, why);
			goto out;
		}
		q.n++;
		if (*end == '\0')
			break;
		s = end + 1;
	}
	*p = q;
	q.e = NULL;
	rc = 0;
out:
	urlpol_free(&q);
	return rc;
}

/* 1 when the address (family, 4 or 16 bytes) is inside an allowed range;
 * an IPv4-mapped address also by the IPv4 ranges. */
static int
addr_allowed(const struct urlpol *p, int family, const unsigned char *a)
{
	static const unsigned char mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};
	size_t i;

	for (i = 0; p != NULL && i < p->n; i++) {
		const struct urlpol_entry *e = &p->e[i];

		if (!e->is_net)
			continue;
		if (e->family == family && prefix_match(a, e->addr, e->prefix))
			return 1;
		if (family == AF_INET6 && e->family == AF_INET &&
		    memcmp(a, mapped, 12) == 0 &&
		    prefix_match(a + 12, e->addr, e->prefix))
			return 1;
	}
	return 0;
}

/* 1 when host (a URL's host: lower case, an IPv6 literal in brackets) is
 * a listed name, or an address literal inside an allowed range. */
static int
host_allowed(const struct urlpol *p, const char *host)
{
	unsigned char a[16];
	char buf[INET6_ADDRSTRLEN + 2];
	size_t i, n = strlen(host);

	if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof(buf)) {
		memcpy(buf, host + 1, n - 2);
		buf[n - 2] = '\0';
		if (inet_pton(AF_INET6, buf, a) == 1)
			return addr_allowed(p, AF_INET6, a);
		return 0;
	}
	if (inet_pton(AF_INET, host, a) == 1)
		return addr_allowed(p, AF_INET, a);
	if (n > 0 && host[n - 1] == '.')
		n--;
	for (i = 0; p != NULL && i < p->n; i++) {
		if (!p->e[i].is_net && strlen(p->e[i].host) == n &&
		    strncasecmp(p->e[i].host, host, n) == 0)
			return 1;
	}
	return 0;
}

/* ---- the address rule -------------------------------------------------- */

/* Refused IPv4 ranges (IANA's special-purpose registry), the first match
 * naming the reason: the narrow ones come before the ranges holding them. */
static const struct v4_range {
	uint32_t net;
	int prefix;
	const char *what;
} v4_refused[] = {
	{ 0xa9fea9feu, 32, "a cloud metadata address" },	/* 169.254.169.254 */
	{ 0xa83f8110u, 32, "a cloud metadata address" },	/* 168.63.129.16, Azure */
	{ 0xffffffffu, 32, "the broadcast address" },
	{ 0x00000000u, 8, "an unspecified (this-network) address" },
	{ 0x0a000000u, 8, "a private address" },		/* 10/8 */
	{ 0x64400000u, 10, "a shared (CGNAT) address" },	/* 100.64/10 */
	{ 0x7f000000u, 8, "a loopback address" },		/* 127/8 */
	{ 0xa9fe0000u, 16, "a link-local address" },		/* 169.254/16 */
	{ 0xac100000u, 12, "a private address" },		/* 172.16/12 */
	{ 0xc0000000u, 24, "a reserved address" },		/* 192.0.0/24 */
	{ 0xc0000200u, 24, "a documentation address" },	/* 192.0.2/24 */
	{ 0xc0586300u, 24, "a reserved address" },		/* 6to4 relay */
	{ 0xc0a80000u, 16, "a private address" },		/* 192.168/16 */
	{ 0xc6120000u, 15, "a reserved address" },		/* benchmarking */
	{ 0xc6336400u, 24, "a documentation address" },	/* 198.51.100/24 */
	{ 0xcb007100u, 24, "a documentation address" },	/* 203.0.113/24 */
	{ 0xe0000000u, 4, "a multicast address" },		/* 224/4 */
	{ 0xf0000000u, 4, "a reserved address" },		/* 240/4 */
};

/* Why the IPv4 address a (4 bytes, network order) is refused, or NULL. */
static const char *
v4_refusal(const unsigned char *a)
{
	uint32_t v = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 |
	    (uint32_t)a[2] << 8 | a[3];
	size_t i;

	for (i = 0; i < sizeof(v4_refused) / sizeof(v4_refused[0]); i++) {
		const struct v4_range *r = &v4_refused[i];
		uint32_t mask = r->prefix == 0 ? 0 : 0xffffffffu << (32 - r->prefix);

		if ((v & mask) == r->net)
			return r->what;
	}
	return NULL;
}

/* A prefix of IPv6 space (the first bytes given, the rest zero). */
struct v6_range {
	unsigned char net[16];
	int prefix;
	const char *what;
};

/* Refused IPv6 ranges inside 2000::/3 (all outside it but the IPv4 forms
 * handled first is refused as reserved), and the metadata address in
 * unique-local space first. */
static const struct v6_range v6_refused[] = {
	{ { 0xfd, 0x00, 0x0e, 0xc2, [14] = 0x02, [15] = 0x54 }, 128,
	    "a cloud metadata address" },			/* fd00:ec2::254 */
	{ { 0xfc }, 7, "a unique-local address" },
	{ { 0xfe, 0x80 }, 10, "a link-local address" },
	{ { 0xfe, 0xc0 }, 10, "a site-local address" },
	{ { 0xff }, 8, "a multicast address" },
	{ { 0x20, 0x01, 0x0d, 0xb8 }, 32, "a documentation address" },
	{ { 0x3f, 0xff }, 20, "a documentation address" },
	{ { 0x20, 0x01, 0x00, 0x00 }, 32, "a Teredo address" },
	{ { 0x20, 0x01, 0x00, 0x02 }, 48, "a reserved address" },	/* benchmarking */
	{ { 0x20, 0x01, 0x00, 0x10 }, 28, "a reserved (ORCHID) address" },
	{ { 0x20, 0x01, 0x00, 0x20 }, 28, "a reserved (ORCHID) address" },
};

/*
 * Why the IPv6 address a (16 bytes) is refused, or NULL; *via names the
 * IPv4 form it carried ("IPv4-mapped", …) when the reason is the IPv4
 * address inside, else NULL.
 */
static const char *
v6_refusal(const unsigned char *a, const char **via)
{
	static const unsigned char zero[16] = { 0 };
	static const unsigned char nat64[12] = { 0, 0x64, 0xff, 0x9b };
	static const unsigned char nat64_local[6] = { 0, 0x64, 0xff, 0x9b, 0, 1 };
	const unsigned char *v4 = NULL;
	const char *why;
	size_t i;

	*via = NULL;
	if (memcmp(a, zero, 15) == 0 && (a[15] == 0 || a[15] == 1))
		return a[15] == 0 ? "an unspecified address" : "a loopback address";
	if (memcmp(a, zero, 10) == 0 && a[10] == 0xff && a[11] == 0xff) {
		v4 = a + 12;
		*via = "IPv4-mapped";
	} else if (memcmp(a, zero, 8) == 0 && a[8] == 0xff && a[9] == 0xff &&
	    a[10] == 0 && a[11] == 0) {
		v4 = a + 12;
		*via = "IPv4-translated";
	} else if (memcmp(a, zero, 12) == 0) {
		/* Deprecated (RFC 4291), and an automatic tunnel on some
		 * hosts: refused whatever it carries. */
		why = v4_refusal(a + 12);
		*via = why != NULL ? "IPv4-compatible" : NULL;
		return why != NULL ? why : "a reserved (IPv4-compatible) address";
	} else if (memcmp(a, nat64, 12) == 0) {
		v4 = a + 12;
		*via = "NAT64";
	} else if (memcmp(a, nat64_local, 6) == 0) {
		return "a reserved (local NAT64) address";
	} else if (a[0] == 0x20 && a[1] == 0x02) {
		v4 = a + 2;
		*via = "6to4";
	}
	if (v4 != NULL) {
		why = v4_refusal(v4);
		if (why == NULL)
			*via = NULL;
		return why;
	}
	for (i = 0; i < sizeof(v6_refused) / sizeof(v6_refused[0]); i++) {
		if (prefix_match(a, v6_refused[i].net, v6_refused[i].prefix))
			return v6_refused[i].what;
	}
	/* Global unicast is 2000::/3; the rest is unassigned or special. */
	if ((a[0] & 0xe0) != 0x20)
		return "a reserved address";
	return NULL;
}

int
urlpol_check_addr(const struct urlpol *p, const struct sockaddr *sa,
    socklen_t len, char *why, size_t whylen)
{
	char shown[INET6_ADDRSTRLEN];
	const unsigned char *a;
	const char *what, *via = NULL;
	int family;

	if (sa == NULL) {
		snprintf(why, whylen, "no address");
		return -1;
	}
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		family = AF_INET;
		a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
	} else if (sa->sa_family == AF_INET6 &&
	    len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		family = AF_INET6;
		a = (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
	} else {
		snprintf(why, whylen, "an address of family %d is not IPv4 or IPv6",
		    sa->sa_family);
		return -1;
	}
	if (addr_allowed(p, family, a))
		return 0;
	what = family == AF_INET ? v4_refusal(a) : v6_refusal(a, &via);
	if (what == NULL)
		return 0;
	if (inet_ntop(family, a, shown, sizeof(shown)) == NULL)
		snprintf(shown, sizeof(shown), "the address");
	snprintf(why, whylen, "%s is %s%s%s%s", shown, what,
	    via != NULL ? " (" : "", via != NULL ? via : "", via != NULL ? ")" : "");
	return -1;
}

/* ---- the URL rule ------------------------------------------------------ */

/* Parses url with libcurl's own parser (the one the transfer uses) into
 * scheme and host (lower case, IPv6 in brackets); -1 with why. Caller
 * frees both with curl_free(). */
static int
url_parts(const char *url, char **scheme, char **host, char *why,
    size_t whylen)
{
	CURLU *u = NULL;
	char *user = NULL, *pass = NULL;
	int rc = -1;

	*scheme = *host = NULL;
	u = curl_url();
	if (u == NULL) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	if (url == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, host, 0) != CURLUE_OK) {
		snprintf(why, whylen, "not a URL with a scheme and a host");
		goto out;
	}
	/* Credentials in a URL would be sent to whoever it names. */
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK) {
		snprintf(why, whylen, "a URL to %s with a user name or password",
		    *host);
		goto out;
	}
	rc = 0;
out:
	if (rc != 0) {
		curl_free(*scheme);
		curl_free(*host);
		*scheme = *host = NULL;
	}
	curl_free(user);
	curl_free(pass);
	curl_url_cleanup(u);
	return rc;
}

int
urlpol_check_url(const struct urlpol *p, const char *url, char *why,
    size_t whylen)
{
	char *scheme = NULL, *host = NULL;
	int rc = -1;

	if (url_parts(url, &scheme, &host, why, whylen) != 0)
		goto out;
	if (strcasecmp(scheme, "https") == 0) {
		rc = 0;
	} else if (strcasecmp(scheme, "http") == 0) {
		if (host_allowed(p, host))
			rc = 0;
		else
			snprintf(why, whylen, "plain http to %.200s: only https, "
			    "unless the host is in " URLPOL_ALLOW_VAR, host);
	} else {
		snprintf(why, whylen, "a %.20s URL: only https (or http to a "
		    "host in " URLPOL_ALLOW_VAR ")", scheme);
	}
out:
	curl_free(scheme);
	curl_free(host);
	return rc;
}
