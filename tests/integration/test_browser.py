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
run generateAssetImageKey(projectId, prompt) to a URL that serves a PNG.
Controls are found by label and role. It writes demo-desktop.png and
demo-phone.png into the test's temp dir; with IMAGEGEN_TEST_SCREENSHOTS=DIR
they are copied there too (docs/ holds one such pair).
"""

import json
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402
import jobs_helper as jh  # noqa: E402
import jose_helper  # noqa: E402

CHROMIUM = os.environ.get("IMAGEGEN_CHROMIUM", "/usr/bin/chromium")


class DemoPage(harness.StackTestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack_args = dict(pool="master", workers=3, extra_env=jh.pool_env(
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
        shots = os.path.join(self.stack.tmp, "screenshots")
        os.mkdir(shots)
        env = harness._clean_env()
        env.update(IMAGEGEN_TEST_BASE_URL="https://localhost:%d" % self.stack.https_port,
                   IMAGEGEN_TEST_TOKEN=u.token, IMAGEGEN_TEST_PROJECT=newer,
                   IMAGEGEN_TEST_BRANCH=newer_main, IMAGEGEN_TEST_SHOTS=shots,
                   IMAGEGEN_CHROMIUM=CHROMIUM, HOME=self.stack.tmp)
        p = subprocess.run([harness._which("node"), os.path.join(d, "browser.mjs")], cwd=d, env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=300, text=True)
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
        what = "exit %d\nstdout: %s\nstderr: %s" % (p.returncode, p.stdout, p.stderr[-4000:])
        self.assertTrue(lines, what)
        res = json.loads(lines[-1])
        self.assertTrue(res.get("ok"), what)
        self.assertEqual(p.returncode, 0, what)
        self.assertEqual(res["steps"][-1], "screenshots", what)
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
