/*
 * urlpolicy.h - the outbound URL policy: how the service fetches a URL it
 * was given by someone else (a provider's artifact URL today, a user's
 * webhook next), as opposed to the endpoints the operator configured.
 *
 *   - https only; plain http only to a host in the allow-list;
 *   - every address curl is about to connect to is checked at connect time
 *     (CURLOPT_OPENSOCKETFUNCTION), so a name that resolves, or re-resolves
 *     (DNS rebinding), to loopback, private, shared (CGNAT), link-local,
 *     unique-local, metadata, multicast or reserved space, or to an
 *     IPv4-mapped, -compatible, NAT64 or 6to4 form of one, is refused
 *     unless the address is in the allow-list;
 *   - no proxy, no reused connection: the check sees the real peer;
 *   - redirects followed here, one hop at a time, each hop's URL checked
 *     again, at most the caller's number;
 *   - the reply bounded in bytes and the whole chain in time.
 *
 * The allow-list is IMAGEGEN_FETCH_ALLOW: comma-separated host names,
 * addresses and CIDR ranges (IPv4 and IPv6).
 */
#ifndef IG_URLPOLICY_H
#define IG_URLPOLICY_H

#include <stddef.h>
#include <sys/socket.h>

#include "httpc.h"

#define URLPOL_HOST_MAX 253		/* a DNS name's longest text */
#define URLPOL_MAX_ENTRIES 256		/* allow-list entries */

/* One allow-list entry: a host name, or an address range. */
struct urlpol_entry {
	int is_net;			/* 0: host name; 1: address range */
	char host[URLPOL_HOST_MAX + 1];	/* lower case, no trailing dot */
	int family;			/* AF_INET or AF_INET6 (is_net) */
	unsigned char addr[16];		/* the network, host bits zero */
	int prefix;			/* 0-32 or 0-128 */
};

/* A parsed allow-list; zeroed is empty (the strict default). */
struct urlpol {
	struct urlpol_entry *e;
	size_t n;
};

/*
 * Parses spec (IMAGEGEN_FETCH_ALLOW; NULL or "" is an empty list) into
 * *p: entries separated by commas, blanks around them ignored; each a host
 * name ("gateway.internal"), an address ("10.0.0.5", "::1", "[::1]") or a
 * CIDR range ("10.0.0.0/8", "fd00::/8", host bits zero). 0, or -1 with
 * err saying which entry is wrong and why (*p left empty). Free with
 * urlpol_free().
 */
int urlpol_parse(struct urlpol *p, const char *spec, char *err, size_t errlen);
/* Accepts a zeroed or freed policy. */
void urlpol_free(struct urlpol *p);

/*
 * The URL rule, applied to the first URL and to every redirect target:
 * a URL libcurl parses, with no user name or password, whose scheme is
 * https, or http when its host is allowed (a listed name, or an address
 * literal inside a listed range). 0 when it may be fetched; -1 with why
 * ("plain http to example.com: only https, unless the host is in
 * IMAGEGEN_FETCH_ALLOW"). Names only scheme and host, never the path or
 * query (which may carry a signature). Can't fail otherwise.
 */
int urlpol_check_url(const struct urlpol *p, const char *url, char *why,
    size_t whylen);

/*
 * The connect-time rule for one address: 0 when sa (len bytes, AF_INET or
 * AF_INET6) is inside an allowed range (an IPv4-mapped IPv6 address also
 * by its IPv4 range), or else public; -1 with why ("127.0.0.1 is a
 * loopback address"). Any other family is refused. Can't fail otherwise.
 */
int urlpol_check_addr(const struct urlpol *p, const struct sockaddr *sa,
    socklen_t len, char *why, size_t whylen);

/*
 * Performs req on c under the policy: req->url checked by
 * urlpol_check_url(), each connection's address by urlpol_check_addr(),
 * and up to req->max_redirs redirects (301, 302, 303, 307, 308) followed
 * one at a time, each target checked again (a 301/302/303 after another
 * method continues as GET without the body; req->headers go with the
 * first request only). req->timeout_ms bounds the whole chain,
 * req->max_bytes the body. As httpc_perform(), plus HTTPC_REFUSED with
 * rep->error "refused by the outbound URL policy" and rep->detail the
 * reason; more redirects than allowed are HTTPC_PERMANENT ("too many
 * redirects"). Free rep with httpc_reply_free() either way.
 */
enum httpc_err urlpol_fetch(const struct urlpol *p, struct httpc *c,
    const struct httpc_req *req, struct httpc_reply *rep);

#endif
