"""Large request headers through nginx (nginx/dev.conf.in as the harness
renders it), over HTTP/1.1 and HTTP/2 (curl against the HTTPS port).

The app takes bearer tokens up to JWT_MAX_TOKEN (8192) bytes and answers
401 itself above that; nginx must hand any such header to the app (no 400
page, no GOAWAY) and answer what it cannot take with a 4xx of its own.
Over HTTP/2 nginx has no 4xx for a field larger than its header buffer: it
ends the connection (GOAWAY ENHANCE_YOUR_CALM); the config keeps that
limit at 32 KB, 4x the app's, and the last test pins that behaviour down.
"""

import os
import random
import string
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402

JWT_MAX_TOKEN = 8192            # include/jwt.h
NGINX_FIELD_MAX = 32 * 1024     # large_client_header_buffers 4 32k
B64URL = string.ascii_letters + string.digits + "-_"
PROTOS = {"1.1": "--http1.1", "2": "--http2"}


def token_like(n, seed):
    """n characters shaped like a JWT (three base64url parts)."""
    rnd = random.Random(seed)
    body = "".join(rnd.choice(B64URL) for _ in range(n - 2))
    a, b = len(body) // 3, 2 * len(body) // 3
    return body[:a] + "." + body[a:b] + "." + body[b:]


def curl_supports_http2():
    r = subprocess.run(["curl", "--version"], stdout=subprocess.PIPE, text=True)
    return "HTTP2" in r.stdout


class NginxHeaders(harness.StackTestCase):
    stack_args = {"pool": "master", "extra_env": {"SUPABASE_JWT_SECRET": "h" * 40}}

    @classmethod
    def setUpClass(cls):
        if not curl_supports_http2():
            raise harness.HarnessError("curl has no HTTP2 feature: cannot test HTTP/2")
        super().setUpClass()

    def curl(self, proto, header, path="/api/me"):
        """(curl exit code, status, http version, body) of GET path with one
        extra header line (through a file: argv has a 128 KB cap)."""
        with tempfile.NamedTemporaryFile("w", suffix=".hdr") as hf, \
                tempfile.NamedTemporaryFile("rb", suffix=".body") as bf:
            hf.write(header + "\n")
            hf.flush()
            r = subprocess.run(["curl", "-sk", PROTOS[proto], "--max-time", "20",
                                "-o", bf.name, "-w", "%{http_code} %{http_version}",
                                "-H", "@" + hf.name,
                                "https://127.0.0.1:%d%s" % (self.stack.https_port, path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               timeout=30)
            status, _, version = r.stdout.partition(" ")
            return r.returncode, int(status or 0), version, bf.read().decode(errors="replace")

    def assert_app_401(self, proto, n):
        rc, status, version, body = self.curl(proto, "Authorization: Bearer " + token_like(n, n))
        self.assertEqual(rc, 0, "HTTP/%s, %d-byte token: curl exit %d (reset?)" % (proto, n, rc))
        self.assertEqual(version, proto)
        self.assertEqual(status, 401, "HTTP/%s, %d-byte token: %s %s" % (proto, n, status, body))
        self.assertIn('"code":"UNAUTHORIZED"', body, body)

    def test_nginx_token_just_under_app_limit_reaches_app(self):
        for proto in PROTOS:
            with self.subTest(proto=proto):
                self.assert_app_401(proto, JWT_MAX_TOKEN)
                self.assert_app_401(proto, JWT_MAX_TOKEN - 1)

    def test_nginx_token_above_app_limit_gets_app_401(self):
        # 9 KB (the size reported), twice the limit, and near nginx's own
        for n in (9 * 1024, 2 * JWT_MAX_TOKEN, 24 * 1024):
            for proto in PROTOS:
                with self.subTest(proto=proto, n=n):
                    self.assert_app_401(proto, n)

    def test_nginx_header_beyond_nginx_limit_http1_4xx_json(self):
        for n in (NGINX_FIELD_MAX + 1024, 100 * 1024):
            with self.subTest(n=n):
                rc, status, version, body = self.curl(
                    "1.1", "Authorization: Bearer " + token_like(n, n))
                self.assertEqual(rc, 0, "curl exit %d" % rc)
                self.assertEqual(status, 400, body)
                self.assertIn('"code":"VALIDATION_ERROR"', body, body)
                self.assertIn("header too large", body)
        # the connection-level answer leaves nginx serving
        self.assert_app_401("1.1", 100)

    def test_nginx_header_beyond_nginx_limit_http2_goaway_not_app(self):
        # nginx's HTTP/2 code ends the connection on a field past
        # large_client_header_buffers (no configuration makes it a 4xx):
        # the request must not reach the app, and nginx keeps serving.
        before = self.stack.access_log().count("/api/me HTTP/2.0\" 401")
        rc, status, _, _ = self.curl("2", "Authorization: Bearer " + token_like(100 * 1024, 7))
        self.assertNotEqual(rc, 0, "a 100 KB field over HTTP/2 got an answer: %s" % status)
        self.assertEqual(status, 0)
        self.assertEqual(self.stack.access_log().count("/api/me HTTP/2.0\" 401"), before)
        self.assert_app_401("2", 100)


class NginxHeadersProductionConf(unittest.TestCase):
    """nginx/imagegen.conf (not started here; test_nginx_conf runs nginx -t
    on it) sizes headers as the dev config tested above does."""

    def test_nginx_production_conf_header_buffers_as_dev(self):
        def read(name):
            with open(os.path.join(harness.SRCDIR, "nginx", name)) as f:
                return [ln.split("#", 1)[0].strip() for ln in f]
        dev, prod = read("dev.conf.in"), read("imagegen.conf")
        want = "large_client_header_buffers 4 32k;"
        self.assertIn(want, dev)
        # every server block of the production config (80 and 443)
        self.assertEqual(prod.count(want), prod.count("server {"), prod)
        self.assertIn("error_page 494 =400 @header_too_large;", prod)
        self.assertIn("location @header_too_large {", prod)


if __name__ == "__main__":
    unittest.main()
