/* test_urlpolicy.c - the outbound URL policy: refused address ranges (and
 * their IPv4-mapped, -compatible, NAT64 and 6to4 forms), the allow-list
 * and its bad entries, the scheme rule, and fetches against a small HTTP
 * server on 127.0.0.1 (redirects re-checked, the connect-time check, the
 * redirect limit and the size cap). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cfg.h"
#include "cu_main.h"
#include "httpc.h"
#include "urlpolicy.h"

/* ---- helpers ----------------------------------------------------------- */

/* urlpol_check_addr() on a textual address; why into out. */
static int
check_addr(const struct urlpol *p, const char *text, char *out, size_t outlen)
{
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;

	out[0] = '\0';
	memset(&v4, 0, sizeof(v4));
	memset(&v6, 0, sizeof(v6));
	if (inet_pton(AF_INET, text, &v4.sin_addr) == 1) {
		v4.sin_family = AF_INET;
		return urlpol_check_addr(p, (struct sockaddr *)&v4, sizeof(v4),
		    out, outlen);
	}
	if (inet_pton(AF_INET6, text, &v6.sin6_addr) == 1) {
		v6.sin6_family = AF_INET6;
		return urlpol_check_addr(p, (struct sockaddr *)&v6, sizeof(v6),
		    out, outlen);
	}
	CU_FAIL_FATAL("bad test address");
	return 0;
}

/* Asserts text is refused with why containing want (under p). */
static void
refused_as(const struct urlpol *p, const char *text, const char *want)
{
	char why[256];
	int rc = check_addr(p, text, why, sizeof(why));

	if (rc != -1 || strstr(why, want) == NULL)
		fprintf(stderr, "\n  %s: rc %d, why '%s', want '%s'\n", text, rc,
		    why, want);
	CU_ASSERT_EQUAL(rc, -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, want));
}

static void
passes(const struct urlpol *p, const char *text)
{
	char why[256];
	int rc = check_addr(p, text, why, sizeof(why));

	if (rc != 0)
		fprintf(stderr, "\n  %s refused: %s\n", text, why);
	CU_ASSERT_EQUAL(rc, 0);
}

/* ---- the address rule -------------------------------------------------- */

static void
test_urlpol_refuses_ipv4_ranges(void)
{
	static const char *const cases[][2] = {
		{ "127.0.0.1", "127.0.0.1 is a loopback address" },
		{ "127.255.255.254", "a loopback address" },
		{ "10.0.0.1", "10.0.0.1 is a private address" },
		{ "10.255.255.255", "a private address" },
		{ "172.16.0.1", "a private address" },
		{ "172.31.255.255", "a private address" },
		{ "192.168.1.1", "a private address" },
		{ "100.64.0.1", "a shared (CGNAT) address" },
		{ "100.127.255.255", "a shared (CGNAT) address" },
		{ "100.100.100.200", "a shared (CGNAT) address" },
		{ "169.254.1.1", "a link-local address" },
		{ "169.254.169.254", "169.254.169.254 is a cloud metadata address" },
		{ "168.63.129.16", "168.63.129.16 is a cloud metadata address" },
		{ "0.0.0.0", "an unspecified" },
		{ "0.1.2.3", "an unspecified" },
		{ "224.0.0.1", "a multicast address" },
		{ "239.255.255.250", "a multicast address" },
		{ "255.255.255.255", "the broadcast address" },
		{ "240.0.0.1", "a reserved address" },
		{ "192.0.0.192", "a reserved address" },
		{ "192.0.2.1", "a documentation address" },
		{ "198.51.100.7", "a documentation address" },
		{ "203.0.113.9", "a documentation address" },
		{ "198.18.0.1", "a reserved address" },
		{ "198.19.255.255", "a reserved address" },
		{ "192.88.99.1", "a reserved address" },
	};
	static const char *const public[] = {
		"8.8.8.8", "1.1.1.1", "172.15.255.255", "172.32.0.0",
		"100.63.255.255", "100.128.0.0", "192.169.0.0", "169.253.255.255",
		"11.0.0.0", "126.255.255.255", "128.0.0.0", "223.255.255.255",
		"192.0.1.0", "198.20.0.0", "9.255.255.255",
	};
	struct urlpol none = { NULL, 0 };
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		refused_as(&none, cases[i][0], cases[i][1]);
	for (i = 0; i < sizeof(public) / sizeof(public[0]); i++)
		passes(&none, public[i]);
}

static void
test_urlpol_refuses_ipv6_ranges(void)
{
	static const char *const cases[][2] = {
		{ "::", ":: is an unspecified address" },
		{ "::1", "::1 is a loopback address" },
		{ "fe80::1", "a link-local address" },
		{ "febf:ffff::1", "a link-local address" },
		{ "fc00::1", "a unique-local address" },
		{ "fd12:3456::1", "a unique-local address" },
		{ "fd00:ec2::254", "fd00:ec2::254 is a cloud metadata address" },
		{ "2001:2::1", "2001:2::1 is a reserved address" },
		{ "ff02::1", "a multicast address" },
		{ "ff05::1:3", "a multicast address" },
		{ "fec0::1", "a site-local address" },
		{ "2001:db8::1", "a documentation address" },
		{ "3fff::1", "a documentation address" },
		{ "2001::1", "a Teredo address" },
		{ "2001:10::1", "ORCHID" },
		{ "100::1", "a reserved address" },
		{ "64:ff9b:1::1", "local NAT64" },
		{ "4000::1", "a reserved address" },
		{ "::8.8.8.8", "IPv4-compatible" },
	};
	static const char *const public[] = {
		"2606:4700:4700::1111", "2a00:1450:4001::1", "2001:4860:4860::8888",
		"2400:cb00::1",
	};
	struct urlpol none = { NULL, 0 };
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		refused_as(&none, cases[i][0], cases[i][1]);
	for (i = 0; i < sizeof(public) / sizeof(public[0]); i++)
		passes(&none, public[i]);
}

/* IPv4 inside IPv6: the IPv4 rule applies to what is carried. */
static void
test_urlpol_refuses_ipv4_in_ipv6(void)
{
	static const char *const cases[][2] = {
		{ "::ffff:127.0.0.1", "::ffff:127.0.0.1 is a loopback address "
		    "(IPv4-mapped)" },
		{ "::ffff:10.1.2.3", "a private address (IPv4-mapped)" },
		{ "::ffff:169.254.169.254", "a cloud metadata address (IPv4-mapped)" },
		{ "::ffff:192.168.0.1", "a private address (IPv4-mapped)" },
		{ "::ffff:0.0.0.0", "unspecified" },
		{ "::ffff:0:127.0.0.1", "a loopback address (IPv4-translated)" },
		{ "::127.0.0.1", "a loopback address (IPv4-compatible)" },
		{ "::10.0.0.1", "a private address (IPv4-compatible)" },
		{ "64:ff9b::7f00:1", "a loopback address (NAT64)" },
		{ "64:ff9b::a9fe:a9fe", "a cloud metadata address (NAT64)" },
		{ "2002:7f00:1::1", "a loopback address (6to4)" },
		{ "2002:a9fe:a9fe::", "a cloud metadata address (6to4)" },
		{ "2002:c0a8:101::1", "a private address (6to4)" },
	};
	static const char *const public[] = {
		"::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
	};
	struct urlpol none = { NULL, 0 };
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		refused_as(&none, cases[i][0], cases[i][1]);
	for (i = 0; i < sizeof(public) / sizeof(public[0]); i++)
		passes(&none, public[i]);
}

static void
test_urlpol_other_families_refused(void)
{
	struct sockaddr sa;
	char why[128];

	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_UNIX;
	CU_ASSERT_EQUAL(urlpol_check_addr(NULL, &sa, sizeof(sa), why,
	    sizeof(why)), -1);
	CU_ASSERT_EQUAL(urlpol_check_addr(NULL, NULL, 0, why, sizeof(why)), -1);
	/* A sockaddr_in6 cut short is not read past its length. */
	sa.sa_family = AF_INET6;
	CU_ASSERT_EQUAL(urlpol_check_addr(NULL, &sa, sizeof(sa), why,
	    sizeof(why)), -1);
}

/* ---- the allow-list ---------------------------------------------------- */

static void
test_urlpol_allowed_cidrs_pass_the_connect_check(void)
{
	struct urlpol p;
	char err[256];

	CU_ASSERT_EQUAL_FATAL(urlpol_parse(&p, " 127.0.0.1 , 10.0.0.0/8,"
	    "fd00::/8,gateway.internal, [::1], 192.168.4.0/22", err,
	    sizeof(err)), 0);
	CU_ASSERT_EQUAL(p.n, 6);
	passes(&p, "127.0.0.1");
	refused_as(&p, "127.0.0.2", "127.0.0.2 is a loopback address");
	passes(&p, "10.200.1.1");
	passes(&p, "10.0.0.0");
	refused_as(&p, "172.16.0.1", "a private address");
	passes(&p, "192.168.7.255");
	refused_as(&p, "192.168.8.0", "a private address");
	refused_as(&p, "192.168.3.255", "a private address");
	passes(&p, "fd12::1");
	refused_as(&p, "fc00::1", "a unique-local address");
	passes(&p, "::1");
	/* An IPv4 range also lets its IPv4-mapped form through (the same
	 * peer), not the NAT64 or 6to4 one (another host). */
	passes(&p, "::ffff:127.0.0.1");
	passes(&p, "::ffff:10.9.8.7");
	refused_as(&p, "::ffff:127.0.0.2", "loopback");
	refused_as(&p, "64:ff9b::7f00:1", "(NAT64)");
	refused_as(&p, "2002:7f00:1::1", "(6to4)");
	/* A host name grants plain http, not an address. */
	refused_as(&p, "169.254.169.254", "metadata");
	passes(&p, "8.8.8.8");
	urlpol_free(&p);
	urlpol_free(&p);

	CU_ASSERT_EQUAL_FATAL(urlpol_parse(&p, "0.0.0.0/0", err, sizeof(err)), 0);
	passes(&p, "127.0.0.1");
	passes(&p, "169.254.169.254");
	refused_as(&p, "::1", "loopback");
	urlpol_free(&p);
	CU_ASSERT_EQUAL_FATAL(urlpol_parse(&p, "::/0", err, sizeof(err)), 0);
	passes(&p, "::1");
	passes(&p, "fe80::1");
	refused_as(&p, "127.0.0.1", "loopback");
	urlpol_free(&p);

	/* Empty is the strict default. */
	CU_ASSERT_EQUAL(urlpol_parse(&p, NULL, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(p.n, 0);
	CU_ASSERT_EQUAL(urlpol_parse(&p, "  ", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(p.n, 0);
	refused_as(&p, "127.0.0.1", "loopback");
}

static void
test_urlpol_bad_allow_entries(void)
{
	static const char *const cases[][2] = {
		{ ",", "entry 1 '' is an empty entry" },
		{ "a.example,,b.example", "entry 2 '' is an empty entry" },
		{ "a.example,", "entry 2" },
		{ "https://gw.example", "a URL" },
		{ "10.0.0.1/8", "host bits set" },
		{ "fd00::1/8", "host bits set" },
		{ "10.0.0.0/33", "past 32" },
		{ "::/129", "not a CIDR range" },
		{ "10.0.0.0/", "not a CIDR range" },
		{ "10.0.0.0/x", "not a CIDR range" },
		{ "10.0.0.0/-1", "not a CIDR range" },
		{ "10.0.0.0/+8", "not a CIDR range" },
		{ "gw.example/24", "not a CIDR range" },
		{ "gw.example:8080", "a host takes no port" },
		{ "-bad.example", "not a host name" },
		{ "bad-.example", "not a host name" },
		{ "a..b", "not a host name" },
		{ "127.1", "not a host name" },
		{ "1.2.3.256", "not a host name" },
		{ "0x7f000001", "not a host name" },
		{ "[10.0.0.1]", "brackets" },
		{ "*.example.com", "not a host name" },
		{ "exa mple.com", "not a host name" },
		{ "user@gw.example", "not a host name" },
		{ "gw.example, 10.0.0.0/8, 300.1.1.1", "entry 3 '300.1.1.1'" },
	};
	struct urlpol p;
	char err[256], label[80];
	size_t i;

	memset(label, 'a', 64);
	memcpy(label + 64, ".example", 9);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		CU_ASSERT_EQUAL(urlpol_parse(&p, cases[i][0], err, sizeof(err)), -1);
		if (strstr(err, cases[i][1]) == NULL)
			fprintf(stderr, "\n  '%s': '%s', want '%s'\n", cases[i][0],
			    err, cases[i][1]);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i][1]));
		CU_ASSERT_PTR_NULL(p.e);
		CU_ASSERT_EQUAL(p.n, 0);
	}
	/* A label of 64 characters is one too many. */
	CU_ASSERT_EQUAL(urlpol_parse(&p, label, err, sizeof(err)), -1);
	label[1] = '.';
	CU_ASSERT_EQUAL(urlpol_parse(&p, label, err, sizeof(err)), 0);
	urlpol_free(&p);
	/* Trailing dots, case and underscores are fine. */
	CU_ASSERT_EQUAL(urlpol_parse(&p, "GW.Example., my_gw.internal", err,
	    sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(p.e[0].host, "gw.example");
	urlpol_free(&p);
}

/* A bad entry stops the start with one line naming the variable. */
static void
test_cfg_names_a_bad_fetch_allow(void)
{
	static const char *const vars[] = {
		"IMAGEGEN_ENV_FILE", "IMAGEGEN_PROVIDER", "IMAGEGEN_STORAGE",
		"NANO_BANANA_API_KEY", "NANO_BANANA_API_URL", "SUPABASE_URL",
		"SUPABASE_SERVICE_ROLE_KEY", NULL,
	};
	struct cfg c;
	char err[512];
	size_t i;

	for (i = 0; vars[i] != NULL; i++)
		unsetenv(vars[i]);
	setenv("IMAGEGEN_FETCH_ALLOW", "127.0.0.1, 10.0.0.1/8", 1);
	CU_ASSERT_EQUAL(cfg_load(&c, NULL, 0, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "IMAGEGEN_FETCH_ALLOW: entry 2 "
	    "'10.0.0.1/8'"));
	CU_ASSERT_PTR_NULL(strchr(err, '\n'));
	setenv("IMAGEGEN_FETCH_ALLOW", "127.0.0.1, 10.0.0.0/8", 1);
	CU_ASSERT_EQUAL_FATAL(cfg_load(&c, NULL, 0, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(c.fetch_allow, "127.0.0.1, 10.0.0.0/8");
	cfg_free(&c);
	unsetenv("IMAGEGEN_FETCH_ALLOW");
	CU_ASSERT_EQUAL_FATAL(cfg_load(&c, NULL, 0, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NULL(c.fetch_allow);
	cfg_free(&c);
}

/* ---- the URL rule ------------------------------------------------------ */

static void
url_ok(const struct urlpol *p, const char *url)
{
	char why[256] = "";
	int rc = urlpol_check_url(p, url, why, sizeof(why));

	if (rc != 0)
		fprintf(stderr, "\n  %s refused: %s\n", url, why);
	CU_ASSERT_EQUAL(rc, 0);
}

static void
url_refused(const struct urlpol *p, const char *url, const char *want)
{
	char why[256] = "";
	int rc = urlpol_check_url(p, url, why, sizeof(why));

	if (rc != -1 || strstr(why, want) == NULL)
		fprintf(stderr, "\n  %s: rc %d, why '%s', want '%s'\n", url, rc,
		    why, want);
	CU_ASSERT_EQUAL(rc, -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, want));
}

static void
test_urlpol_scheme_rules(void)
{
	struct urlpol none = { NULL, 0 }, p;
	char why[256], err[256];

	/* https anywhere (the address is the connect check's) */
	url_ok(&none, "https://images.example.com/a.png?sig=1");
	url_ok(&none, "HTTPS://IMAGES.EXAMPLE.COM/a.png");
	url_ok(&none, "https://127.0.0.1/a.png");
	/* plain http only to an allowed host; nothing else */
	url_refused(&none, "http://images.example.com/a.png",
	    "plain http to images.example.com: only https, unless the host is "
	    "in IMAGEGEN_FETCH_ALLOW");
	url_refused(&none, "http://127.0.0.1:8080/a.png", "plain http to 127.0.0.1");
	url_refused(&none, "ftp://images.example.com/a.png", "a ftp URL");
	url_refused(&none, "file:///etc/passwd", "");
	url_refused(&none, "gopher://images.example.com/", "");
	url_refused(&none, "images.example.com/a.png", "not a URL");
	url_refused(&none, "", "not a URL");
	url_refused(&none, NULL, "not a URL");
	url_refused(&none, "https://user:pw@images.example.com/",
	    "with a user name or password");
	url_refused(&none, "https://user@images.example.com/",
	    "with a user name or password");
	/* The reason names the host, never the path or query. */
	CU_ASSERT_EQUAL(urlpol_check_url(&none, "http://h.example/secret?sig=abc",
	    why, sizeof(why)), -1);
	CU_ASSERT_PTR_NULL(strstr(why, "secret"));
	CU_ASSERT_PTR_NULL(strstr(why, "sig"));

	CU_ASSERT_EQUAL_FATAL(urlpol_parse(&p, "gateway.internal,127.0.0.1,"
	    "10.0.0.0/8,::1", err, sizeof(err)), 0);
	url_ok(&p, "http://gateway.internal:8080/x.png");
	url_ok(&p, "http://GATEWAY.Internal./x.png");
	url_ok(&p, "http://127.0.0.1:9/x.png");
	url_ok(&p, "http://10.9.9.9/x.png");
	url_ok(&p, "http://[::1]:80/x.png");
	url_ok(&p, "http://[::ffff:127.0.0.1]/x.png");
	url_ok(&p, "https://anything.example/x.png");
	url_refused(&p, "http://sub.gateway.internal/x.png", "plain http to "
	    "sub.gateway.internal");
	url_refused(&p, "http://localhost:9/x.png", "plain http to localhost");
	url_refused(&p, "http://127.0.0.2/x.png", "plain http to 127.0.0.2");
	url_refused(&p, "http://[::2]/x.png", "plain http to [::2]");
	url_refused(&p, "ftp://gateway.internal/x.png", "a ftp URL");
	urlpol_free(&p);
}

/* ---- fetches: a small server on 127.0.0.1 ------------------------------ */

static pid_t server_pid = -1;
static int server_port;
static int server_count_fd = -1;	/* one byte per request served */

/* Answers the requests of one connection by path; "/keep" keeps the
 * connection open for the next one, everything else closes it. */
static void
serve_one(int fd, int count_fd)
{
	char req[4096], path[256], resp[12288];
	size_t n;
	ssize_t r;
	int len, keep;

	do {
		n = 0;
		while (n < sizeof(req) - 1) {
			r = read(fd, req + n, sizeof(req) - 1 - n);
			if (r <= 0)
				return;
			n += (size_t)r;
			req[n] = '\0';
			/* A TLS hello (0x16) is not HTTP: close at once. */
			if (req[0] < 'A' || req[0] > 'Z')
				return;
			if (strstr(req, "\r\n\r\n") != NULL)
				break;
		}
		if (sscanf(req, "%*s %255s", path) != 1)
			return;
		if (write(count_fd, "x", 1) != 1)
			return;
		keep = strcmp(path, "/keep") == 0;
		if (strcmp(path, "/redirect-http-name") == 0) {
			len = snprintf(resp, sizeof(resp), "HTTP/1.1 302 Found\r\n"
			    "Location: http://localhost:%d/ok\r\nContent-Length: 0\r\n"
			    "Connection: close\r\n\r\n", server_port);
		} else if (strcmp(path, "/redirect-loopback") == 0) {
			len = snprintf(resp, sizeof(resp), "HTTP/1.1 302 Found\r\n"
			    "Location: https://127.0.0.2:%d/ok\r\nContent-Length: 0\r\n"
			    "Connection: close\r\n\r\n", server_port);
		} else if (strcmp(path, "/redirect-ok") == 0) {
			len = snprintf(resp, sizeof(resp), "HTTP/1.1 301 Moved\r\n"
			    "Location: /ok\r\nContent-Length: 0\r\n"
			    "Connection: close\r\n\r\n");
		} else if (strcmp(path, "/loop") == 0) {
			len = snprintf(resp, sizeof(resp), "HTTP/1.1 307 Again\r\n"
			    "Location: /loop\r\nContent-Length: 0\r\n"
			    "Connection: close\r\n\r\n");
		} else if (strcmp(path, "/ok") == 0 || keep) {
			len = snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\n"
			    "Content-Length: 5\r\n%s\r\nhello",
			    keep ? "" : "Connection: close\r\n");
		} else if (strcmp(path, "/big") == 0) {
			len = snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\n"
			    "Content-Length: 8000\r\nConnection: close\r\n\r\n");
			memset(resp + len, 'b', 8000);
			len += 8000;
		} else {
			len = snprintf(resp, sizeof(resp), "HTTP/1.1 404 No\r\n"
			    "Content-Length: 0\r\nConnection: close\r\n\r\n");
		}
		if (write(fd, resp, (size_t)len) != len)
			return;
	} while (keep);
}

static int
server_start(void)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	int s, cp[2], fd;

	s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s, 16) != 0 ||
	    getsockname(s, (struct sockaddr *)&a, &al) != 0 || pipe(cp) != 0) {
		close(s);
		return -1;
	}
	server_port = ntohs(a.sin_port);
	server_pid = fork();
	if (server_pid < 0)
		return -1;
	if (server_pid == 0) {
		close(cp[0]);
		for (;;) {
			fd = accept(s, NULL, NULL);
			if (fd < 0)
				_exit(0);
			serve_one(fd, cp[1]);
			close(fd);
		}
	}
	close(s);
	close(cp[1]);
	server_count_fd = cp[0];
	fcntl(server_count_fd, F_SETFL, O_NONBLOCK);
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int
server_stop(void)
{
	if (server_pid > 0) {
		kill(server_pid, SIGKILL);
		waitpid(server_pid, NULL, 0);
	}
	if (server_count_fd >= 0)
		close(server_count_fd);
	curl_global_cleanup();
	return 0;
}

/* Requests the server answered since the last call. */
static int
served(void)
{
	char b[64];
	ssize_t r;
	int n = 0;

	for (;;) {
		r = read(server_count_fd, b, sizeof(b));
		if (r <= 0)
			return n;
		n += (int)r;
	}
}

/* urlpol_fetch() of url (a path on the server when it starts with '/')
 * under the allow-list spec. */
static enum httpc_err
fetch(const char *spec, const char *url, long max_redirs, size_t max_bytes,
    struct httpc_reply *rep)
{
	struct urlpol p;
	struct httpc c = { NULL };
	struct httpc_req req;
	char full[256], err[256];
	enum httpc_err e;

	CU_ASSERT_EQUAL_FATAL(urlpol_parse(&p, spec, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(httpc_open(&c), 0);
	if (url[0] == '/') {
		snprintf(full, sizeof(full), "http://127.0.0.1:%d%s", server_port, url);
		url = full;
	}
	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.url = url;
	req.timeout_ms = 5000;
	req.max_bytes = max_bytes;
	req.max_redirs = max_redirs;
	req.user_agent = "test";
	served();
	e = urlpol_fetch(&p, &c, &req, rep);
	httpc_close(&c);
	urlpol_free(&p);
	return e;
}

static void
assert_refused(enum httpc_err e, const struct httpc_reply *rep, const char *want)
{
	if (e != HTTPC_REFUSED || strstr(rep->detail, want) == NULL)
		fprintf(stderr, "\n  e %d, %s: %s; want '%s'\n", e,
		    rep->error != NULL ? rep->error : "-", rep->detail, want);
	CU_ASSERT_EQUAL(e, HTTPC_REFUSED);
	CU_ASSERT_PTR_NOT_NULL(rep->error != NULL ?
	    strstr(rep->error, "refused by the outbound URL policy") : NULL);
	CU_ASSERT_PTR_NOT_NULL(strstr(rep->detail, want));
}

/* The connect-time check: refused before any connection is made. */
static void
test_urlpol_fetch_refuses_at_connect(void)
{
	struct httpc_reply rep;
	char url[128];
	enum httpc_err e;

	snprintf(url, sizeof(url), "https://127.0.0.1:%d/ok", server_port);
	e = fetch(NULL, url, 3, 1024, &rep);
	assert_refused(e, &rep, "127.0.0.1 is a loopback address");
	CU_ASSERT_EQUAL(served(), 0);
	httpc_reply_free(&rep);
	/* a name is checked by what it resolves to */
	snprintf(url, sizeof(url), "https://localhost:%d/ok", server_port);
	e = fetch(NULL, url, 3, 1024, &rep);
	assert_refused(e, &rep, "is a loopback address");
	CU_ASSERT_EQUAL(served(), 0);
	httpc_reply_free(&rep);
	snprintf(url, sizeof(url), "https://[::ffff:127.0.0.1]:%d/ok", server_port);
	e = fetch(NULL, url, 3, 1024, &rep);
	assert_refused(e, &rep, "::ffff:127.0.0.1 is a loopback address "
	    "(IPv4-mapped)");
	httpc_reply_free(&rep);
	/* plain http is refused before anything is resolved */
	e = fetch(NULL, "/ok", 3, 1024, &rep);
	assert_refused(e, &rep, "plain http to 127.0.0.1");
	CU_ASSERT_EQUAL(served(), 0);
	httpc_reply_free(&rep);
	/* an allowed address goes through: here to a server speaking plain
	 * http to a TLS client, which fails, but not by the policy */
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/ok", server_port);
	e = fetch("127.0.0.0/8", url, 3, 1024, &rep);
	CU_ASSERT_NOT_EQUAL(e, HTTPC_REFUSED);
	CU_ASSERT_NOT_EQUAL(e, HTTPC_OK);
	httpc_reply_free(&rep);
}

static void
test_urlpol_fetch_allowed_completes(void)
{
	struct httpc_reply rep;
	enum httpc_err e;

	e = fetch("127.0.0.1", "/ok", 3, 1024, &rep);
	CU_ASSERT_EQUAL(e, HTTPC_OK);
	CU_ASSERT_EQUAL(rep.status, 200);
	CU_ASSERT_EQUAL(rep.len, 5);
	CU_ASSERT_PTR_NOT_NULL(rep.body != NULL ? strstr(rep.body, "hello") : NULL);
	CU_ASSERT_EQUAL(served(), 1);
	httpc_reply_free(&rep);
	/* a redirect within the allowed host */
	e = fetch("127.0.0.1", "/redirect-ok", 3, 1024, &rep);
	CU_ASSERT_EQUAL(e, HTTPC_OK);
	CU_ASSERT_EQUAL(rep.status, 200);
	CU_ASSERT_EQUAL(rep.len, 5);
	CU_ASSERT_PTR_NULL(rep.location);
	CU_ASSERT_EQUAL(served(), 2);
	httpc_reply_free(&rep);
	/* the size cap */
	e = fetch("127.0.0.1", "/big", 3, 4096, &rep);
	CU_ASSERT_EQUAL(e, HTTPC_TOO_BIG);
	httpc_reply_free(&rep);
	/* without redirects allowed, a 3xx is the answer */
	e = fetch("127.0.0.1", "/redirect-ok", 0, 1024, &rep);
	CU_ASSERT_EQUAL(e, HTTPC_PERMANENT);
	CU_ASSERT_PTR_NOT_NULL(rep.error != NULL ?
	    strstr(rep.error, "too many redirects") : NULL);
	httpc_reply_free(&rep);
}

/* Each redirect target is checked again: its scheme and host by the URL
 * rule, its address at connect. */
static void
test_urlpol_redirects_rechecked(void)
{
	struct httpc_reply rep;
	enum httpc_err e;

	e = fetch("127.0.0.1", "/redirect-http-name", 3, 1024, &rep);
	assert_refused(e, &rep, "after 1 redirect, plain http to localhost");
	CU_ASSERT_EQUAL(served(), 1);
	httpc_reply_free(&rep);
	e = fetch("127.0.0.1", "/redirect-loopback", 3, 1024, &rep);
	assert_refused(e, &rep, "after 1 redirect, 127.0.0.2 is a loopback "
	    "address");
	CU_ASSERT_EQUAL(served(), 1);
	httpc_reply_free(&rep);
	/* the limit: the first request and two redirects, then no more */
	e = fetch("127.0.0.1", "/loop", 2, 1024, &rep);
	CU_ASSERT_EQUAL(e, HTTPC_PERMANENT);
	CU_ASSERT_PTR_NOT_NULL(rep.error != NULL ?
	    strstr(rep.error, "too many redirects") : NULL);
	CU_ASSERT_PTR_NOT_NULL(strstr(rep.detail, "more than 2"));
	CU_ASSERT_EQUAL(served(), 3);
	httpc_reply_free(&rep);
}

/* A connection the handle kept from a call outside the policy (the
 * provider's own endpoint on the same host) is not reused for one under
 * it: the connect check sees every connection. localhost may use plain
 * http here, but its address is not allowed. */
static void
test_urlpol_fetch_does_not_reuse_a_connection(void)
{
	struct httpc c = { NULL };
	struct httpc_req req;
	struct httpc_reply rep;
	struct urlpol p;
	char url[128], err[128];
	enum httpc_err e;

	CU_ASSERT_EQUAL_FATAL(urlpol_parse(&p, "localhost", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(httpc_open(&c), 0);
	memset(&req, 0, sizeof(req));
	snprintf(url, sizeof(url), "http://localhost:%d/keep", server_port);
	req.method = "GET";
	req.url = url;
	req.timeout_ms = 5000;
	req.max_bytes = 1024;
	req.user_agent = "test";
	served();
	CU_ASSERT_EQUAL(httpc_perform(&c, &req, &rep), HTTPC_OK);
	CU_ASSERT_EQUAL(rep.status, 200);
	httpc_reply_free(&rep);
	e = urlpol_fetch(&p, &c, &req, &rep);
	assert_refused(e, &rep, "is a loopback address");
	httpc_reply_free(&rep);
	CU_ASSERT_EQUAL(served(), 1);
	httpc_close(&c);
	urlpol_free(&p);
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "refuses IPv4 ranges", test_urlpol_refuses_ipv4_ranges },
		{ "refuses IPv6 ranges", test_urlpol_refuses_ipv6_ranges },
		{ "refuses IPv4 in IPv6", test_urlpol_refuses_ipv4_in_ipv6 },
		{ "other families refused", test_urlpol_other_families_refused },
		{ "allowed CIDRs pass the connect check",
		    test_urlpol_allowed_cidrs_pass_the_connect_check },
		{ "bad allow entries", test_urlpol_bad_allow_entries },
		{ "cfg names a bad IMAGEGEN_FETCH_ALLOW",
		    test_cfg_names_a_bad_fetch_allow },
		{ "scheme rules", test_urlpol_scheme_rules },
		{ "fetch refuses at connect", test_urlpol_fetch_refuses_at_connect },
		{ "fetch allowed completes", test_urlpol_fetch_allowed_completes },
		{ "redirects rechecked", test_urlpol_redirects_rechecked },
		{ "fetch does not reuse a connection",
		    test_urlpol_fetch_does_not_reuse_a_connection },
		CU_TEST_INFO_NULL
	};

	return cu_run_fixture("urlpolicy", tests, server_start, server_stop);
}
