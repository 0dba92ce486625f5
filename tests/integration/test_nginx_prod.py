"""nginx/imagegen.conf, the production config, started for real: its
paths and ports rewritten to a test stack's, everything else as shipped.
The route checks pass through its HTTPS server; plain HTTP redirects; the
per-address limit_req of /api/ answers 429 JSON with Retry-After."""

import concurrent.futures
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402
import jobs_helper as jh  # noqa: E402
from route_checks import RouteChecks  # noqa: E402

SRCDIR = os.environ.get("abs_top_srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")
PROD_CONF = os.path.join(SRCDIR, "nginx", "imagegen.conf")


def render(text, tmp, http_port, https_port, stack):
    """The production config with this test's paths and ports."""
    lines = [ln for ln in text.splitlines() if "listen [::]" not in ln]
    text = "\n".join(lines) + "\n"
    for old, new in (
            ("listen 80;", "listen 127.0.0.1:%d;" % http_port),
            ("listen 443 ssl http2;", "listen 127.0.0.1:%d ssl http2;" % https_port),
            ("/etc/letsencrypt/live/imagegen.example.com/fullchain.pem", stack.tls_cert),
            ("/etc/letsencrypt/live/imagegen.example.com/privkey.pem", stack.tls_key),
            ("/var/log/nginx/", os.path.join(tmp, "logs") + "/"),
            ("/etc/nginx/imagegen/fastcgi_params",
             os.path.join(SRCDIR, "nginx", "fastcgi_params")),
            ("unix:/run/imagegen/imagegen.sock", "unix:" + stack.pool_socket),
            ("/var/lib/imagegen/storage/", stack.storage_dir + "/"),
            ("/usr/share/imagegen/www", os.path.join(SRCDIR, "nginx", "www"))):
        if old not in text:
            raise AssertionError("nginx/imagegen.conf no longer has %r" % old)
        text = text.replace(old, new)
    return text


class NginxProduction(RouteChecks, harness.StackTestCase):
    stack_args = {"pool": "master", "nginx": False, "extra_env": jh.pool_env()}
    web_name = "nginx/imagegen.conf"
    web_tls = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        st = cls.stack
        tmp = os.path.join(st.tmp, "prod-nginx")
        for d in ("logs", "temp", "conf"):
            os.makedirs(os.path.join(tmp, d), exist_ok=True)
        harness.make_cert(os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem"))
        st.tls_cert, st.tls_key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        cls.http_port, cls.web_port = harness.free_port(), harness.free_port()
        with open(PROD_CONF) as f:
            snippet = render(f.read(), tmp, cls.http_port, cls.web_port, st)
        with open(os.path.join(tmp, "conf", "imagegen.conf"), "w") as f:
            f.write(snippet)
        main = os.path.join(tmp, "conf", "nginx.conf")
        with open(main, "w") as f:
            f.write(("user %s;\n" % harness.POOL_USER if harness.IS_ROOT else "") +
                    "pid {t}/nginx.pid;\nerror_log {t}/logs/error.log;\n"
                    "events {{ worker_connections 256; }}\n"
                    "http {{\n    include /etc/nginx/mime.types;\n"
                    "    access_log {t}/logs/access.log;\n"
                    "    client_body_temp_path {t}/temp/client_body;\n"
                    "    fastcgi_temp_path {t}/temp/fastcgi;\n"
                    "    proxy_temp_path {t}/temp/proxy;\n"
                    "    scgi_temp_path {t}/temp/scgi;\n"
                    "    uwsgi_temp_path {t}/temp/uwsgi;\n"
                    "    include {t}/conf/imagegen.conf;\n}}\n".format(t=tmp))
        if harness.IS_ROOT:
            subprocess.run(["chown", "-R", harness.POOL_USER, os.path.join(tmp, "temp")],
                           check=True)
        cls.nginx_dir = tmp
        argv = [harness._which("nginx"), "-p", tmp + "/", "-c", main, "-g", "daemon off;"]
        cls.nginx = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        cls.addClassCleanup(cls._stop_nginx)
        ok = harness.wait_until(lambda: cls.nginx.poll() is None and _answers(cls.web_port), 10)
        if not ok:
            err = cls.nginx.stderr.read().decode(errors="replace") if cls.nginx.poll() else ""
            raise harness.HarnessError("production nginx did not start: %s\n%s"
                                       % (err, harness.tail(os.path.join(tmp, "logs", "error.log"))))

    @classmethod
    def _stop_nginx(cls):
        if cls.nginx.poll() is None:
            cls.nginx.terminate()
            try:
                cls.nginx.wait(10)
            except subprocess.TimeoutExpired:
                cls.nginx.kill()
                cls.nginx.wait()

    def test_prod_plain_http_redirects_to_https(self):
        r = harness.http_request("127.0.0.1", self.http_port, "GET", "/api/health/live")
        self.assertEqual(r.status, 301, r)
        self.assertTrue(r.header("Location").startswith("https://"), r)

    def test_prod_tls_and_security_headers(self):
        r = self.web("GET", "/api/health/live")
        self.assertIn(r.tls_version, ("TLSv1.2", "TLSv1.3"), r)
        self.assertEqual(r.header_all("X-Request-Id").__len__(), 1, r)
        self.assertEqual(r.header("X-Content-Type-Options"), "nosniff", r)
        self.assertTrue(r.header("Strict-Transport-Security"), r)

    def test_prod_serves_the_client_module_no_cache(self):
        # With Debian's mime.types (.ts there is video/mp2t).
        for path, types in (("/imageService.js", ("application/javascript", "text/javascript")),
                            ("/imageService.d.ts", ("text/plain",)), ("/", ("text/html",)),
                            ("/app.js", ("text/javascript", "application/javascript"))):
            with self.subTest(path=path):
                r = self.web("GET", path)
                self.assertEqual(r.status, 200, r)
                self.assertIn(r.content_type, types, r)
                self.assertIn("charset=utf-8", r.header("Content-Type").lower(), r)
                self.assertEqual(r.header_all("Cache-Control"), ["no-cache"], r)
                self.assertEqual(r.header_all("Content-Security-Policy"),
                                 ["script-src 'self'; object-src 'none'; base-uri 'none'"], r)
                self.assertTrue(r.header("Strict-Transport-Security"), r)
                etag = r.header("ETag")
                self.assertTrue(etag, r)
                self.assertEqual(self.web("GET", path, headers={"If-None-Match": etag}).status, 304)
        r = self.web("GET", "/api/health/live")
        self.assertNotIn("no-cache", r.header_all("Cache-Control"), r)
        self.assertEqual(r.header_all("Content-Security-Policy"), [], r)

    def test_prod_api_rate_limit_429_json_with_retry_after(self):
        # 10 r/s with a burst of 40 per address: 150 requests at once
        # from one address cannot all pass.
        try:
            with concurrent.futures.ThreadPoolExecutor(16) as ex:
                rs = list(ex.map(lambda _: self.web("GET", "/api/health/live"),
                                 range(150)))
        finally:
            # The other tests of the class must not meet an empty bucket:
            # 40 slots at 10 a second are back after 4 s.
            time.sleep(4.5)
        limited = [r for r in rs if r.status == 429]
        passed = [r for r in rs if r.status == 200]
        self.assertEqual(len(limited) + len(passed), len(rs), [r.status for r in rs])
        self.assertTrue(limited, "no 429 among %d requests" % len(rs))
        self.assertGreaterEqual(len(passed), 41, "the burst of 40 (+1) must pass")
        r = limited[0]
        self.assertEqual(r.error_code(), "RATE_LIMITED", r)
        self.assertEqual(r.header("Retry-After"), "1", r)
        self.assertIsNotNone(r.header("X-Request-Id"), r)


def _answers(port):
    try:
        harness.http_request("127.0.0.1", port, "GET", "/api/health/live", tls=True,
                             timeout=2)
        return True
    except OSError:
        return False


if __name__ == "__main__":
    import unittest
    unittest.main()
