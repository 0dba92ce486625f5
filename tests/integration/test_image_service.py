"""nginx/www/imageService.js: served right, and its Node test-runner suite
(tests/node/imageService.test.mjs) run against a real stack.

  Served          /imageService.js is JavaScript, /imageService.d.ts text,
                  both and the page with Cache-Control: no-cache and an
                  ETag (If-None-Match gets 304), over HTTP and HTTPS; the
                  API's answers get no such header from nginx
  NodeSuite       `node --test imageService.test.mjs` with the stack's URL,
                  a user's token, project and style capsule in its
                  environment: the fake-fetch tests and the real-stack
                  tests (a dropped connection replayed by its key, a
                  timeout, an abort that cancels, the capsule audit,
                  Prefer: wait) all pass, none skipped

IMAGEGEN_LOCAL_DELAY_MS=1500, so a wait can time out and a job be
canceled while it runs.
"""

import os
import re
import subprocess
import sys
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402
import jobs_helper as jh  # noqa: E402

NODE_TEST = os.path.join(harness.SRCDIR, "tests", "node", "imageService.test.mjs")
WWW = os.path.join(harness.SRCDIR, "nginx", "www")


class Case(harness.StackTestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack_args = dict(pool="master", workers=2,
                              extra_env=jh.pool_env(IMAGEGEN_LOCAL_DELAY_MS="1500"))
        super().setUpClass()


CSP = "script-src 'self'; object-src 'none'; base-uri 'none'"


class Served(Case):
    def check_static(self, path, types, tls):
        r = self.stack.http("GET", path, tls=tls)
        self.assertEqual(r.status, 200, r)
        ctype = (r.header("Content-Type") or "").lower()
        self.assertIn(ctype.split(";")[0].strip(), types, r)
        self.assertEqual(r.header_all("Cache-Control"), ["no-cache"], r)
        etag = r.header("ETag")
        self.assertTrue(etag, "an ETag: %r" % r)
        with open(os.path.join(WWW, path.lstrip("/") or "index.html"), "rb") as f:
            self.assertEqual(r.body, f.read())
        # the security headers of the server level are still there
        self.assertEqual(r.header("X-Content-Type-Options"), "nosniff", r)
        self.assertTrue(r.header("X-Request-Id"), r)
        again = self.stack.http("GET", path, headers={"If-None-Match": etag}, tls=tls)
        self.assertEqual(again.status, 304, again)
        return ctype

    def test_module_is_javascript_no_cache_with_etag(self):
        for tls in (False, True):
            with self.subTest(tls=tls):
                ctype = self.check_static("/imageService.js",
                                          ("application/javascript", "text/javascript"), tls)
                self.assertIn("charset=utf-8", ctype)

    def test_types_are_text(self):
        self.check_static("/imageService.d.ts", ("text/plain",), False)

    def test_page_no_cache(self):
        for path in ("/", "/index.html"):
            with self.subTest(path=path):
                r = self.stack.http("GET", path)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.content_type, "text/html", r)
                self.assertEqual(r.header_all("Cache-Control"), ["no-cache"], r)
                self.assertIn(b'<script type="module" src="/app.js"></script>', r.body)
        self.check_static("/app.js", ("application/javascript", "text/javascript"), False)
        r = self.stack.http("GET", "/app.js")
        self.assertIn(b"import { createImageService, ImageServiceError } from '/imageService.js'", r.body)

    def test_page_content_security_policy_no_inline_script(self):
        # script-src 'self' holds only while the page has no inline script
        with open(os.path.join(WWW, "index.html"), "rb") as f:
            page = f.read().decode()
        scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", page, re.S)
        self.assertTrue(scripts)
        self.assertEqual([x for x in scripts if x.strip()], [], "an inline script")
        self.assertNotRegex(page, r"\son[a-z]+\s*=", "an inline event handler")
        for tls in (False, True):
            for path in ("/", "/index.html", "/app.js", "/imageService.js"):
                with self.subTest(path=path, tls=tls):
                    r = self.stack.http("GET", path, tls=tls)
                    self.assertEqual(r.header_all("Content-Security-Policy"), [CSP], r)

    def test_api_answers_get_no_static_cache_header(self):
        for path in ("/api/health/live", "/api/images/jobs", "/storage/v1/object/public/asset-images/x.png"):
            with self.subTest(path=path):
                r = self.stack.http("GET", path)
                self.assertNotIn("no-cache", r.header_all("Cache-Control"), r)
                self.assertEqual(r.header_all("Content-Security-Policy"), [], r)


class NodeSuite(Case):
    def test_node_test_runner_against_the_stack(self):
        node = harness._which("node")   # a HarnessError when missing, never a skip
        u = jh.seed_user(self.stack, "svc")
        capsule = str(uuid.uuid4())
        self.stack.psql("INSERT INTO public.visual_style_capsules (id, user_id, name, style_text)"
                        " VALUES ('%s', '%s', 'Ink wash', 'monochrome ink wash');" % (capsule, u.id))
        env = harness._clean_env()
        env.update(IMAGEGEN_TEST_BASE_URL="http://127.0.0.1:%d" % self.stack.http_port,
                   IMAGEGEN_TEST_TOKEN=u.token, IMAGEGEN_TEST_PROJECT=u.project_id,
                   IMAGEGEN_TEST_CAPSULE=capsule,
                   IMAGEGEN_TEST_MODULE=os.path.join(WWW, "imageService.js"))
        p = subprocess.run([node, "--test", "--test-reporter=tap", NODE_TEST], env=env,
                           cwd=os.path.dirname(NODE_TEST), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300, text=True)
        out = p.stdout
        self.assertEqual(p.returncode, 0, out)
        self.assertNotIn("# SKIP", out, out)
        m = re.search(r"^# pass (\d+)$", out, re.M)
        self.assertTrue(m, out)
        self.assertGreaterEqual(int(m.group(1)), 23, out)
        self.assertRegex(out, r"(?m)^# fail 0$")
        for name in ("a dropped connection is retried with the same Idempotency-Key",
                     "a wait past timeoutMs rejects with TIMEOUT",
                     "an abort stops the wait",
                     "429 and 503 while polling back off as Retry-After says",
                     "gives a URL that serves the PNG",
                     "the retry replays the same job",
                     "a timeout leaves the job running",
                     "an abort with cancelOnAbort cancels the job on the server",
                     "a style capsule applied goes to onAudit",
                     "preferWait: the server holds the answer"):
            self.assertRegex(out, r"(?m)^\s*ok \d+ - .*" + re.escape(name), out)


if __name__ == "__main__":
    unittest.main()
