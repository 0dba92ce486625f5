"""The demo page (nginx/www/index.html) in headless Chromium.

A real stack (master pool, nginx over its self-signed HTTPS, Postgres, the
local provider with IMAGEGEN_LOCAL_DELAY_MS=2500 so a job can be canceled
while it runs, IMAGEGEN_TEST_FAULTS=1 so a prompt can make it fail) and
tests/node/browser.mjs, which drives Debian's /usr/bin/chromium with
playwright-core (tests/node's locked dependencies, installed by npm ci as
jose_helper does): it signs in with a pasted token, finds the user's project
and main branch preselected, generates a master asset and sees the picture
load at the requested size, cancels a slow job and retries a failed one
from the list of recent jobs, and imports /imageService.js in the page to
run generateAssetImageKey(projectId, prompt) to a URL that serves a PNG;
signs out while a job is watched and sees nothing of it left on screen and
no request made after;
then, in a fresh context, signs another user in with email and password
through supabase-js (the page's local /vendor/supabase.js; /config.json,
served here by nginx, names this origin as the Supabase project and nginx
proxies its /auth/v1/ to FakeSupabaseAuth below), a wrong password first;
and, with GET /api/projects answering 404 (playwright's routing), the page
asks for the project ID and an empty branch is the main one.
Controls are found by label and role. It writes demo-desktop.png and
demo-phone.png into the test's temp dir; with IMAGEGEN_TEST_SCREENSHOTS=DIR
they are copied there too (docs/ holds one such pair).
"""

import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402
import jobs_helper as jh  # noqa: E402
import jose_helper  # noqa: E402

CHROMIUM = os.environ.get("IMAGEGEN_CHROMIUM", "/usr/bin/chromium")
ANON_KEY = "anon-key-of-the-test"
SB_PASSWORD = "correct horse battery staple"


class FakeSupabaseAuth(http.server.ThreadingHTTPServer):
    """Supabase Auth's password grant, as supabase-js calls it: POST
    /auth/v1/token?grant_type=password {"email","password"} with the anon
    key in apikey; the session's access_token is an imagegen token of the
    user (self.user, set by the test). Every request is kept in self.seen."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _AuthHandler)
        self.user = None
        self.seen = []


class _AuthHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def answer(self, status, obj=None):
        body = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n) or b"{}")
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        self.server.seen.append((url.path, q, body, self.headers.get("apikey")))
        u = self.server.user
        if url.path == "/auth/v1/logout":
            return self.answer(204)
        if url.path != "/auth/v1/token" or q.get("grant_type") != ["password"]:
            return self.answer(404, {"error": "not_found"})
        if self.headers.get("apikey") != ANON_KEY:
            return self.answer(401, {"message": "Invalid API key"})
        if body.get("email") != u.email or body.get("password") != SB_PASSWORD:
            return self.answer(400, {"error": "invalid_grant", "code": "invalid_credentials",
                                     "error_description": "Invalid login credentials",
                                     "msg": "Invalid login credentials"})
        user = {"id": u.id, "aud": "authenticated", "role": "authenticated", "email": u.email,
                "app_metadata": {"provider": "email"}, "user_metadata": {},
                "created_at": "2026-01-01T00:00:00Z"}
        return self.answer(200, {"access_token": u.token, "token_type": "bearer",
                                 "expires_in": 3600, "refresh_token": "refresh-of-the-test",
                                 "user": user})

    def do_GET(self):
        self.server.seen.append((self.path, {}, None, self.headers.get("apikey")))
        u = self.server.user
        if self.path.startswith("/auth/v1/user"):
            return self.answer(200, {"id": u.id, "aud": "authenticated", "email": u.email})
        return self.answer(404, {"error": "not_found"})


class DemoPage(harness.StackTestCase):
    @classmethod
    def setUpClass(cls):
        cls.auth = FakeSupabaseAuth()
        threading.Thread(target=cls.auth.serve_forever, daemon=True).start()
        cls.addClassCleanup(cls.auth.server_close)
        cls.addClassCleanup(cls.auth.shutdown)
        # The page's /config.json names this origin as the Supabase
        # project, whose /auth/v1/ nginx proxies to the fake.
        extra = ("location = /config.json { types { } default_type application/json;"
                 " return 200 '{\"supabaseUrl\":\"/\",\"supabaseAnonKey\":\"%s\"}'; }\n"
                 "        location /auth/v1/ { proxy_pass http://127.0.0.1:%d; }"
                 % (ANON_KEY, cls.auth.server_address[1]))
        cls.stack_args = dict(pool="master", workers=3, extra_locations=extra, extra_env=jh.pool_env(
            IMAGEGEN_LOCAL_DELAY_MS="2500", IMAGEGEN_TEST_FAULTS="1"))
        super().setUpClass()

    def test_demo_page_in_headless_chromium(self):
        if not os.access(CHROMIUM, os.X_OK):
            raise harness.HarnessError(
                "%s not found: the browser test needs Debian's chromium "
                "(scripts/build installs it; apt-get install chromium)" % CHROMIUM)
        d = jose_helper.install()
        if not os.path.isfile(os.path.join(d, "node_modules", "playwright-core", "package.json")):
            raise harness.HarnessError("npm ci in %s did not install playwright-core" % d)
        u = jh.seed_user(self.stack, "web")
        # An older project, so "the first project" is the newest one.
        self.stack.psql("UPDATE public.projects SET created_at = now() - interval '1 day'"
                        " WHERE id = '%s';" % u.project_id)
        newer, newer_main = jh.seed_project(self.stack, u.id, "Castles")
        self.stack.psql("INSERT INTO public.branches (project_id, name, is_main)"
                        " VALUES ('%s', 'a-side-branch', false);" % newer)
        sb = jh.seed_user(self.stack, "sb")
        self.auth.user = sb
        shots = os.path.join(self.stack.tmp, "screenshots")
        os.mkdir(shots)
        env = harness._clean_env()
        env.update(IMAGEGEN_TEST_BASE_URL="https://localhost:%d" % self.stack.https_port,
                   IMAGEGEN_TEST_TOKEN=u.token, IMAGEGEN_TEST_PROJECT=newer,
                   IMAGEGEN_TEST_BRANCH=newer_main, IMAGEGEN_TEST_SHOTS=shots,
                   IMAGEGEN_CHROMIUM=CHROMIUM, HOME=self.stack.tmp,
                   IMAGEGEN_TEST_SB_EMAIL=sb.email, IMAGEGEN_TEST_SB_PASSWORD=SB_PASSWORD,
                   IMAGEGEN_TEST_SB_PROJECT=sb.project_id)
        p = subprocess.run([harness._which("node"), os.path.join(d, "browser.mjs")], cwd=d, env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=300, text=True)
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
        what = "exit %d\nstdout: %s\nstderr: %s" % (p.returncode, p.stdout, p.stderr[-4000:])
        self.assertTrue(lines, what)
        res = json.loads(lines[-1])
        self.assertTrue(res.get("ok"), what)
        self.assertEqual(p.returncode, 0, what)
        self.assertEqual(res["steps"][-4:], [
            "screenshots", "sign-out clears the screen and stops polling",
            "signed in with email and password through supabase-js",
            "without GET /api/projects: IDs by hand, the main branch by default"], what)
        # supabase-js asked the fake twice (a wrong password, then the
        # right one) with the anon key, then signed out.
        tokens = [x for x in self.auth.seen if x[0] == "/auth/v1/token"]
        self.assertEqual(len(tokens), 2, self.auth.seen)
        self.assertEqual([t[2]["password"] for t in tokens], ["not the password", SB_PASSWORD])
        self.assertTrue(all(t[3] == ANON_KEY for t in tokens), tokens)
        self.assertIn("/auth/v1/logout", [x[0] for x in self.auth.seen])
        for name in ("demo-desktop.png", "demo-phone.png"):
            path = os.path.join(shots, name)
            with open(path, "rb") as f:
                w, h = jh.png_size(f.read())
            self.assertEqual(w, 1280 if name == "demo-desktop.png" else 390, name)
            self.assertGreater(h, 400, name)
        # The image the page showed is the job's, served by nginx.
        self.assertTrue(res["imageSrc"].startswith("/storage/v1/object/public/asset-images/"), res)
        r = self.stack.http("GET", res["imageSrc"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(jh.png_size(r.body), (768, 512))
        out = os.environ.get("IMAGEGEN_TEST_SCREENSHOTS")
        if out:
            os.makedirs(out, exist_ok=True)
            for name in ("demo-desktop.png", "demo-phone.png"):
                shutil.copyfile(os.path.join(shots, name), os.path.join(out, name))


if __name__ == "__main__":
    unittest.main()
