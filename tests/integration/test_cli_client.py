"""`imagegen generate` and `imagegen jobs list|show|cancel|retry`: the
command line as a client of the HTTP API (SPEC §8), never of the database.

  FakeApi   a small HTTP server standing in for the API, to see what the
            client sends and does with what it cannot get from the real
            one on demand: a POST whose connection drops (sent again with
            the same Idempotency-Key), a 503 with Retry-After (waited), a
            relative publicUrl (made absolute, fetched without the token),
            no branchId when none is known, the live line on a terminal.
  CliStack  the real stack (Postgres, the pool, nginx; the local provider
            taking 1.5 s an image, [[fail:CODE]] prompts): --wait prints a
            URL that serves a PNG, --json, --output, a failing job exits 1
            with its code, --timeout exits 3, a refused token 4 (never
            printed), usage errors 2 before any request, the jobs actions,
            and a scripts/up tree's var/stack.env (URL, token, project,
            branch, its certificate trusted) with nothing else set.
"""

import http.server
import json
import os
import pty
import re
import select
import signal
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)

import harness  # noqa: E402
import jobs_helper as jh  # noqa: E402

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
PNG_SIG = b"\x89PNG\r\n\x1a\n"


def cli_env(**over):
    """A clean environment (no IMAGEGEN_*, no stack of the developer's)."""
    env = harness._clean_env()
    env.update({k: str(v) for k, v in over.items()})
    return env


def run_cli(args, env, cwd, timeout=60):
    return subprocess.run([harness.imagegen_bin()] + list(args), env=env, cwd=cwd,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def closed_port():
    """A port nothing listens on (a request there would be exit 4)."""
    return harness.free_port()


def png_bytes():
    """A tiny real PNG (1x1), from the local renderer's format's signature."""
    import struct
    import zlib

    def chunk(t, d):
        c = struct.pack(">I", len(d)) + t + d
        return c + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (PNG_SIG + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
            + chunk(b"IEND", b""))


# ============================================================ a fake API

class FakeHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _send(self, status, obj=None, headers=None, raw=None, ctype="application/json"):
        body = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _record(self, body=b""):
        srv = self.server
        with srv.lock:
            srv.seen.append({"method": self.command, "path": self.path, "t": time.monotonic(),
                             "headers": {k.lower(): v for k, v in self.headers.items()},
                             "body": body})
            return sum(1 for s in srv.seen if s["method"] == self.command
                       and s["path"] == self.path)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        count = self._record(body)
        if self.path == "/api/images/generate":
            if count == 1:
                # the connection drops before any answer
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._send(202, {"jobId": self.server.job_id, "status": "queued"})
            return
        self._send(404, {"error": {"code": "NOT_FOUND", "message": "no route"}})

    def do_GET(self):
        count = self._record()
        srv = self.server
        if self.path == "/api/images/jobs/" + srv.job_id:
            if count == 1:
                self._send(503, {"error": {"code": "SERVICE_UNAVAILABLE",
                                           "message": "database unavailable"}},
                           headers={"Retry-After": "2"})
            elif count == 2:
                self._send(200, {"jobId": srv.job_id, "status": "generating"})
            else:
                self._send(200, {"jobId": srv.job_id, "status": "completed",
                                 "publicUrl": getattr(srv, "public_url",
                                                      "/storage/v1/object/public/b/x.png")})
            return
        if self.path == "/redirect/x.png":
            self._send(302, raw=b"", headers={"Location": srv.redirect_to})
            return
        if self.path == "/storage/v1/object/public/b/x.png":
            self._send(200, raw=png_bytes(), ctype="image/png")
            return
        self._send(404, {"error": {"code": "NOT_FOUND", "message": "no route"}})


class FakeApi(unittest.TestCase):
    def setUp(self):
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeHandler)
        self.srv.daemon_threads = True
        self.srv.lock = threading.Lock()
        self.srv.seen = []
        self.srv.job_id = str(uuid.uuid4())
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()
        self.tmp = tempfile.mkdtemp(prefix="ig-cli-fake-")
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]
        self.token = "fake-token-" + uuid.uuid4().hex
        self.project = str(uuid.uuid4())

    def tearDown(self):
        self.srv.shutdown()
        self.srv.server_close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def env(self):
        return cli_env(IMAGEGEN_URL=self.url, IMAGEGEN_TOKEN=self.token)

    def test_dropped_post_resent_with_one_key_and_retry_after_honoured(self):
        out = os.path.join(self.tmp, "x.png")
        r = run_cli(["generate", "a castle", "--project", self.project, "--size", "64x96",
                     "--output", out], self.env(), self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, self.url + "/storage/v1/object/public/b/x.png\n")
        with open(out, "rb") as f:
            self.assertEqual(f.read(), png_bytes())
        seen = self.srv.seen
        posts = [s for s in seen if s["method"] == "POST"]
        self.assertEqual(len(posts), 2, seen)
        keys = [p["headers"].get("idempotency-key") for p in posts]
        self.assertRegex(keys[0] or "", UUID_RE)
        self.assertEqual(keys[0], keys[1], "the resent POST must carry the same key")
        self.assertEqual(posts[0]["body"], posts[1]["body"])
        body = json.loads(posts[1]["body"])
        self.assertEqual(body, {"projectId": self.project, "jobType": "master_asset",
                                "prompt": "a castle", "width": 64, "height": 96})
        self.assertNotIn("branchId", body, "branchId is sent only when known")
        for p in posts:
            self.assertEqual(p["headers"]["authorization"], "Bearer " + self.token)
            self.assertEqual(p["headers"]["content-type"], "application/json")
        gets = [s for s in seen if s["method"] == "GET" and s["path"].startswith("/api/")]
        self.assertEqual(len(gets), 3, gets)
        self.assertGreaterEqual(gets[1]["t"] - gets[0]["t"], 1.9, "Retry-After: 2 not waited")
        self.assertLess(gets[2]["t"] - gets[1]["t"], 1.8, "polled every second")
        self.assertGreaterEqual(gets[2]["t"] - gets[1]["t"], 0.9, "polled every second")
        img = [s for s in seen if s["path"].startswith("/storage/")]
        self.assertEqual(len(img), 1)
        self.assertNotIn("authorization", img[0]["headers"], "the token went to the image URL")
        # plain lines on change (stderr is not a terminal), no token
        self.assertIn("job %s: generating" % self.srv.job_id, r.stderr)
        self.assertIn("job %s: completed" % self.srv.job_id, r.stderr)
        self.assertIn("HTTP 503 SERVICE_UNAVAILABLE; trying again in 2 s", r.stderr)
        self.assertRegex(r.stderr, r"imagegen: POST %s/api/images/generate: .*; trying again "
                                   r"in 0\.5 s\n" % re.escape(self.url))
        self.assertNotIn("\r", r.stderr)
        self.assertNotIn(self.token, r.stderr + r.stdout)
        self.assertEqual([f for f in os.listdir(self.tmp) if f != "x.png"], [],
                         "a temporary file was left beside --output")

    def stack_env(self, project, branch):
        os.makedirs(os.path.join(self.tmp, "var"))
        path = os.path.join(self.tmp, "var", "stack.env")
        with open(path, "w") as f:
            f.write("IMAGEGEN_URL='%s'\nexport DEMO_TOKEN='%s'\nDEMO_PROJECT_ID=%s\n"
                    "DEMO_BRANCH_ID=\"%s\"  # the main branch\n"
                    % (self.url, self.token, project, branch))
        os.chmod(path, 0o600)

    def test_stack_env_branch_only_with_its_project(self):
        branch = str(uuid.uuid4())
        self.stack_env(self.project, branch)
        other = str(uuid.uuid4())
        for args, want in ((["generate", "p1"], {"projectId": self.project, "branchId": branch}),
                           (["generate", "p2", "--project", other], {"projectId": other}),
                           (["generate", "p3", "--project", self.project],
                            {"projectId": self.project, "branchId": branch})):
            with self.subTest(args=args):
                n = len(self.srv.seen)
                r = run_cli(args, cli_env(), self.tmp)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stdout, self.srv.job_id + "\n")
                posts = [s for s in self.srv.seen[n:] if s["method"] == "POST"]
                body = json.loads(posts[-1]["body"])
                self.assertEqual({k: v for k, v in body.items()
                                  if k in ("projectId", "branchId")}, want)
                self.assertEqual(posts[-1]["headers"]["authorization"], "Bearer " + self.token)

    def test_user_token_never_sent_to_a_stack_env_url(self):
        # ./var/stack.env names this listener; a token of the user's (the
        # variable or --token) must not go there: usage error, no request
        other = "user-token-" + uuid.uuid4().hex
        self.stack_env(self.project, str(uuid.uuid4()))
        for args, env, name in ((["jobs", "list"], cli_env(IMAGEGEN_TOKEN=other),
                                 "IMAGEGEN_TOKEN"),
                                (["generate", "p", "--token", other], cli_env(), "--token")):
            with self.subTest(via=name):
                r = run_cli(args, env, self.tmp)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("%s given without a URL: give --url URL or IMAGEGEN_URL" % name,
                              r.stderr)
                self.assertNotIn(other, r.stderr + r.stdout)
        self.assertEqual([s["headers"].get("authorization") for s in self.srv.seen], [],
                         "a request reached the stack.env's URL")
        # its own DEMO_TOKEN still goes with it
        r = run_cli(["generate", "p"], cli_env(), self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(self.srv.seen)
        for s in self.srv.seen:
            self.assertEqual(s["headers"].get("authorization"), "Bearer " + self.token)

    def test_insecure_only_for_the_api_origin_not_an_output_elsewhere(self):
        # the image is on another origin, over HTTPS with a certificate no
        # one trusts: --insecure (meant for the API's self-signed one) must
        # not turn its check off, neither directly nor after a redirect
        cert, key = os.path.join(self.tmp, "c.pem"), os.path.join(self.tmp, "k.pem")
        harness.make_cert(cert, key)
        img = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeHandler)
        img.daemon_threads = True
        img.lock = threading.Lock()
        img.seen = []
        img.job_id = self.srv.job_id
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        img.socket = ctx.wrap_socket(img.socket, server_side=True)
        threading.Thread(target=img.serve_forever, daemon=True).start()
        try:
            other = "https://127.0.0.1:%d/storage/v1/object/public/b/x.png" % img.server_address[1]
            self.srv.redirect_to = other
            for via, public in (("direct", other), ("redirect", "/redirect/x.png")):
                with self.subTest(via=via):
                    self.srv.seen = []
                    self.srv.public_url = public
                    out = os.path.join(self.tmp, "x-%s.png" % via)
                    r = run_cli(["generate", "a castle", "--project", self.project, "--insecure",
                                 "--output", out], self.env(), self.tmp)
                    self.assertEqual(r.returncode, 4, r.stderr)
                    self.assertIn("--output", r.stderr)
                    self.assertRegex(r.stderr.lower(), r"certificate|ssl")
                    self.assertFalse(os.path.exists(out), "the image was fetched without a check")
            self.assertEqual([s for s in img.seen], [], "a request got through")
        finally:
            img.shutdown()
            img.server_close()

    def test_progress_redrawn_on_a_terminal(self):
        master, slave = pty.openpty()
        try:
            p = subprocess.Popen([harness.imagegen_bin(), "generate", "a castle", "--wait",
                                  "--project", self.project], env=self.env(), cwd=self.tmp,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=slave)
            os.close(slave)
            slave = -1
            data = b""
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                rd, _, _ = select.select([master], [], [], 0.5)
                if rd:
                    try:
                        chunk = os.read(master, 4096)
                    except OSError:
                        break
                    if not chunk:
                        break
                    data += chunk
                elif p.poll() is not None:
                    break
            out, _ = p.communicate(timeout=30)
        finally:
            if slave >= 0:
                os.close(slave)
            os.close(master)
        self.assertEqual(p.returncode, 0, data)
        text = data.decode(errors="replace")
        self.assertIn("\r\x1b[Kimagegen: job %s: generating" % self.srv.job_id, text)
        self.assertIn("\r\x1b[Kimagegen: job %s: completed" % self.srv.job_id, text)
        self.assertEqual(out.decode(), self.url + "/storage/v1/object/public/b/x.png\n")


# ============================================================ the real stack

class CliStack(harness.StackTestCase):
    stack_args = {"pool": "master",
                  "extra_env": jh.pool_env(IMAGEGEN_LOCAL_DELAY_MS=1500,
                                           IMAGEGEN_TEST_FAULTS=1)}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user = jh.seed_user(cls.stack, "cli")
        cls.other = jh.seed_user(cls.stack, "other")
        cls.url = "http://127.0.0.1:%d" % cls.stack.http_port
        cls.cwd = tempfile.mkdtemp(prefix="ig-cli-cwd-")
        cls.addClassCleanup(shutil.rmtree, cls.cwd, True)

    def cli(self, *args, token=None, timeout=60, **env):
        e = cli_env(IMAGEGEN_URL=self.url, IMAGEGEN_TOKEN=token or self.user.token, **env)
        return run_cli(args, e, self.cwd, timeout)

    def ok(self, *args, **kw):
        r = self.cli(*args, **kw)
        self.assertEqual(r.returncode, 0, "imagegen %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
        return r

    def gen(self, prompt, *extra, **kw):
        return self.cli("generate", prompt, "--project", self.user.project_id,
                        "--branch", self.user.branch_id, "--size", "64x64", *extra, **kw)

    def fetch(self, url, ctx=None):
        with urllib.request.urlopen(url, timeout=10, context=ctx) as f:
            return f.status, f.read()

    # ------------------------------------------------------------ generate

    def test_generate_wait_prints_a_url_that_serves_a_png(self):
        r = self.gen("a castle", "--wait")
        self.assertEqual(r.returncode, 0, r.stderr)
        url = r.stdout.strip()
        self.assertEqual(r.stdout.count("\n"), 1, r.stdout)
        self.assertTrue(url.startswith(self.url + jh.BUCKET_PREFIX), url)
        status, data = self.fetch(url)
        self.assertEqual(status, 200)
        self.assertEqual(data[:8], PNG_SIG)
        self.assertEqual(jh.png_size(data), (64, 64))
        # progress as plain lines, one per state seen, queued or later first
        self.assertRegex(r.stderr, r"imagegen: job [0-9a-f-]{36}: (queued|processing|generating)")
        self.assertRegex(r.stderr, r"imagegen: job [0-9a-f-]{36}: completed \(\d+\.\d s\)\n")

    def test_generate_without_wait_prints_the_job_id(self):
        r = self.gen("a tower")
        self.assertEqual(r.returncode, 0, r.stderr)
        jid = r.stdout.strip()
        self.assertRegex(jid, r"^[0-9a-f-]{36}$")
        self.assertEqual(r.stderr, "")
        job = jh.get_job(self.stack, self.user.token, jid).data
        self.assertEqual(job["prompt"], "a tower")
        self.assertEqual((job["width"], job["height"]), (64, 64))
        self.assertEqual(job["branchId"], self.user.branch_id)
        jh.wait_job(self.stack, self.user.token, jid)

    def test_generate_json(self):
        r = self.gen("a moat", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        accepted = json.loads(r.stdout)
        self.assertEqual(accepted["status"], "queued")
        jh.wait_job(self.stack, self.user.token, accepted["jobId"])
        r = self.gen("a drawbridge", "--wait", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        job = json.loads(r.stdout)
        self.assertEqual(job["status"], "completed")
        self.assertEqual(job["prompt"], "a drawbridge")
        self.assertTrue(job["publicUrl"])

    def test_output_writes_a_png(self):
        d = tempfile.mkdtemp(dir=self.cwd)
        out = os.path.join(d, "castle.png")
        r = self.gen("a keep", "--output", out, "--size", "96x64")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out, "rb") as f:
            data = f.read()
        self.assertEqual(jh.png_size(data), (96, 64))
        self.assertEqual(os.listdir(d), ["castle.png"])
        _, served = self.fetch(r.stdout.strip())
        self.assertEqual(served, data)

    def test_failing_job_exits_1_with_its_code(self):
        r = self.gen("[[fail:CONTENT_POLICY]] a castle", "--wait")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertRegex(r.stderr, r"job [0-9a-f-]{36} failed: CONTENT_POLICY: .*forced "
                                   r"CONTENT_POLICY \(stage \w+\)")
        r = self.gen("[[fail:INVALID_REQUEST]] a castle", "--wait", "--json")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(json.loads(r.stdout)["error"]["code"], "INVALID_REQUEST")

    def test_timeout_exits_3_and_the_job_runs_on(self):
        t0 = time.monotonic()
        r = self.gen("a slow castle", "--timeout", "1")
        took = time.monotonic() - t0
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertLess(took, 3.5)
        m = re.search(r"timed out after 1 s: job ([0-9a-f-]{36}) is (\w+); it keeps running",
                      r.stderr)
        self.assertIsNotNone(m, r.stderr)
        self.assertEqual(r.stdout, "")
        job = jh.wait_job(self.stack, self.user.token, m.group(1))
        self.assertEqual(job["status"], "completed")

    def test_interrupt_says_which_job_runs_on(self):
        e = cli_env(IMAGEGEN_URL=self.url, IMAGEGEN_TOKEN=self.user.token)
        p = subprocess.Popen([harness.imagegen_bin(), "generate", "an interrupted castle",
                              "--wait", "--project", self.user.project_id, "--branch",
                              self.user.branch_id, "--size", "64x64"], env=e, cwd=self.cwd,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            first = p.stderr.readline()
            m = re.match(r"imagegen: job ([0-9a-f-]{36}): ", first)
            self.assertIsNotNone(m, first)
            t0 = time.monotonic()
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=10)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 130, err)
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertEqual(out, "")
        self.assertIn("interrupted: job %s is" % m.group(1), err)
        self.assertIn("it keeps running", err)
        self.assertEqual(jh.wait_job(self.stack, self.user.token, m.group(1))["status"],
                         "completed")

    def test_bad_token_exits_4_and_is_never_printed(self):
        for tok in ("not-a-jwt-" + uuid.uuid4().hex,
                    jh.mint_token(self.user.id)[:-4] + "AAAA"):
            with self.subTest(token=tok[:12]):
                r = self.gen("a castle", "--wait", token=tok)
                self.assertEqual(r.returncode, 4, r.stderr)
                self.assertIn("HTTP 401 UNAUTHORIZED", r.stderr)
                self.assertNotIn(tok, r.stderr + r.stdout)
                r = self.cli("jobs", "list", "--token", tok)
                self.assertEqual(r.returncode, 4, r.stderr)
                self.assertNotIn(tok, r.stderr + r.stdout)

    def test_usage_errors_exit_2_before_any_request(self):
        dead = "http://127.0.0.1:%d" % closed_port()
        p, b = self.user.project_id, self.user.branch_id
        cases = [
            (["generate"], "PROMPT"),
            (["generate", "a", "castle", "--project", p], "one PROMPT"),
            (["generate", "", "--project", p], "empty"),
            (["generate", "x" * 4001, "--project", p], "4000"),
            (["generate", "x", "--project", "not-a-uuid"], "--project: expected a UUID"),
            (["generate", "x", "--project", p, "--branch", b + "0"], "--branch"),
            (["generate", "x", "--project", p, "--style", "main"], "--style"),
            (["generate", "x", "--project", p, "--size", "1024"], "--size"),
            (["generate", "x", "--project", p, "--size", "32x32"], "--size"),
            (["generate", "x", "--project", p, "--size", "64x5000"], "--size"),
            (["generate", "x", "--project", p, "--type", "poster"], "--type"),
            (["generate", "x", "--project", p, "--type", "start_frame"], "--scene"),
            (["generate", "x", "--project", p, "--scene", p], "--shot"),
            (["generate", "x", "--project", p, "--type", "inpaint"], "--source"),
            (["generate", "x", "--project", p, "--mask", "http://h/m.png"], "--source"),
            (["generate", "x", "--project", p, "--type", "inpaint", "--source", "file:///x"],
             "--source"),
            (["generate", "x", "--project", p, "--timeout", "0"], "--timeout"),
            (["generate", "x", "--project", p, "--bogus"], "unknown option"),
            (["generate", "x", "--project"], "needs a value"),
            (["generate", "x", "--project", p, "--wait=yes"], "takes no value"),
            (["jobs"], "list, show"),
            (["jobs", "delete", p], "unknown action"),
            (["jobs", "show"], "job's ID"),
            (["jobs", "show", "42"], "UUID"),
            (["jobs", "cancel", p, p], "unexpected argument"),
            (["jobs", "list", "--status", "done"], "--status"),
            (["jobs", "list", "--limit", "0"], "--limit"),
            (["jobs", "list", "--project", "x"], "--project"),
            (["jobs", "list", "extra"], "unexpected argument"),
            (["jobs", "retry", p, "--timeout", "x"], "--timeout"),
        ]
        for args, says in cases:
            with self.subTest(args=args):
                r = run_cli(args, cli_env(IMAGEGEN_URL=dead, IMAGEGEN_TOKEN="t"), self.cwd)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(says, r.stderr)
                self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
                self.assertTrue(r.stderr.startswith("imagegen: "), r.stderr)
                self.assertEqual(r.stdout, "")
        # settings: no URL, not http(s), no token, a token of two lines
        # (a copy of the binary: the build tree's own var/stack.env, when
        # scripts/up made one, must not answer for the missing URL)
        bindir = tempfile.mkdtemp(dir=self.cwd)
        os.makedirs(os.path.join(bindir, "bin"))
        exe = os.path.join(bindir, "bin", "imagegen")
        shutil.copy(harness.imagegen_bin(), exe)
        for env, says in (({"IMAGEGEN_TOKEN": "t"}, "no service URL"),
                          ({"IMAGEGEN_URL": "ftp://h", "IMAGEGEN_TOKEN": "t"}, "http"),
                          ({"IMAGEGEN_URL": dead}, "no access token"),
                          ({"IMAGEGEN_URL": "http://u:secret@127.0.0.1:1", "IMAGEGEN_TOKEN": "t"},
                           "without user:password@"),
                          ({"IMAGEGEN_URL": dead, "IMAGEGEN_TOKEN": "a\nb"}, "one word")):
            with self.subTest(env=env):
                r = subprocess.run([exe, "generate", "x", "--project", p], env=cli_env(**env),
                                   cwd=self.cwd, stdin=subprocess.DEVNULL, capture_output=True,
                                   text=True, timeout=60)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(says, r.stderr)
        # a request that is made, to nothing, is exit 4 (so the above were not)
        r = run_cli(["jobs", "list"], cli_env(IMAGEGEN_URL=dead, IMAGEGEN_TOKEN="t"), self.cwd)
        self.assertEqual(r.returncode, 4, r.stderr)
        r = run_cli(["generate", "--help"], cli_env(), self.cwd)
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage: imagegen generate PROMPT", r.stdout)

    # ------------------------------------------------------------ jobs

    def test_jobs_list_show_cancel_retry(self):
        jid = self.gen("a castle to cancel").stdout.strip()
        r = self.ok("jobs", "cancel", jid)
        self.assertRegex(r.stdout, r"^%s (canceled|\w+ \(cancel requested: it stops at its "
                                   r"next stage\))\n$" % jid)
        job = jh.wait_job(self.stack, self.user.token, jid)
        self.assertEqual(job["status"], "canceled")
        r = self.ok("jobs", "show", jid)
        lines = dict(re.split(r"\s{2,}", ln, maxsplit=1) for ln in r.stdout.splitlines())
        self.assertEqual(lines["jobId"], jid)
        self.assertEqual(lines["status"], "canceled")
        self.assertEqual(lines["prompt"], "a castle to cancel")
        self.assertEqual(lines["cost.currency"], "USD")
        self.assertEqual(json.loads(self.ok("jobs", "show", jid, "--json").stdout)["jobId"], jid)
        # retry: a new job naming the old one; --wait as generate's
        new = self.ok("jobs", "retry", jid).stdout.strip()
        self.assertRegex(new, r"^[0-9a-f-]{36}$")
        self.assertNotEqual(new, jid)
        self.assertEqual(json.loads(self.ok("jobs", "show", new, "--json").stdout)["retryOf"], jid)
        jh.wait_job(self.stack, self.user.token, new)
        failed = self.gen("[[fail:CONTENT_POLICY]] retry me", "--wait")
        self.assertEqual(failed.returncode, 1)
        fid = re.search(r"job ([0-9a-f-]{36}) failed", failed.stderr).group(1)
        r = self.cli("jobs", "retry", fid, "--wait")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("CONTENT_POLICY", r.stderr)
        # list: newest first, filters, a limit and the next page's cursor
        r = self.ok("jobs", "list", "--project", self.user.project_id)
        rows = r.stdout.splitlines()
        self.assertEqual(rows[0].split(), ["ID", "STATUS", "TYPE", "CREATED", "PROMPT"])
        ids = [ln.split()[0] for ln in rows[1:]]
        self.assertIn(jid, ids)
        self.assertIn(new, ids)
        self.assertLess(ids.index(new), ids.index(jid), "newest first")
        r = self.ok("jobs", "list", "--status", "canceled")
        self.assertEqual({ln.split()[1] for ln in r.stdout.splitlines()[1:]}, {"canceled"})
        r = self.ok("jobs", "list", "--limit", "1")
        self.assertEqual(len(r.stdout.splitlines()), 2)
        m = re.search(r"more jobs: add --cursor (\S+)", r.stderr)
        self.assertIsNotNone(m, r.stderr)
        r2 = self.ok("jobs", "list", "--limit", "1", "--cursor", m.group(1))
        self.assertNotEqual(r2.stdout.splitlines()[1], r.stdout.splitlines()[1])
        listed = json.loads(self.ok("jobs", "list", "--json", "--limit", "2").stdout)
        self.assertEqual(len(listed["jobs"]), 2)
        # another user's job is a 404 to this one: exit 4
        r = self.cli("jobs", "show", jid, token=self.other.token)
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("HTTP 404 NOT_FOUND", r.stderr)
        r = self.cli("jobs", "list", token=self.other.token)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("(no jobs)", r.stdout)

    # ------------------------------------------------------------ var/stack.env

    def stack_tree(self, cert=True, mode=0o600, token=None):
        """A scripts/up-like tree: var/stack.env as scripts/up writes it
        (quote(): '…' with '\\'' for a quote) and var/tls/cert.pem."""
        root = tempfile.mkdtemp(dir=self.cwd)
        os.makedirs(os.path.join(root, "var", "tls"))

        def quote(v):
            return "'" + v.replace("'", "'\\''") + "'"
        lines = ["# written by scripts/up; load with: set -a; . var/stack.env; set +a",
                 "IMAGEGEN_URL=%s" % quote("https://localhost:%d" % self.stack.https_port),
                 "IMAGEGEN_HTTP_URL=%s" % quote(self.url),
                 "DATABASE_URL=%s" % quote("postgresql://x@/imagegen?host=/it's&port=1"),
                 "DEMO_TOKEN=%s" % quote(token or self.user.token),
                 "DEMO_USER_ID=%s" % quote(self.user.id),
                 "DEMO_PROJECT_ID=%s" % quote(self.user.project_id),
                 "DEMO_BRANCH_ID=%s" % quote(self.user.branch_id)]
        path = os.path.join(root, "var", "stack.env")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(path, mode)
        if cert:
            shutil.copy(self.stack.tls_cert, os.path.join(root, "var", "tls", "cert.pem"))
        return root

    def test_stack_env_gives_url_token_project_branch_and_certificate(self):
        root = self.stack_tree()
        out = os.path.join(root, "castle.png")
        r = run_cli(["generate", "a castle", "--output", out], cli_env(), root)
        self.assertEqual(r.returncode, 0, r.stderr)
        url = r.stdout.strip()
        self.assertTrue(url.startswith("https://localhost:%d/" % self.stack.https_port), url)
        ctx = ssl.create_default_context(cafile=self.stack.tls_cert)
        status, data = self.fetch(url, ctx)
        self.assertEqual(data[:8], PNG_SIG)
        jid = re.search(r"job ([0-9a-f-]{36}): completed", r.stderr).group(1)
        job = jh.get_job(self.stack, self.user.token, jid).data
        self.assertEqual((job["projectId"], job["branchId"]),
                         (self.user.project_id, self.user.branch_id))
        self.assertEqual(jh.png_size(data), (1024, 1024))
        with open(out, "rb") as f:
            self.assertEqual(f.read(), data, "--output through the stack's certificate")
        r = run_cli(["jobs", "list", "--limit", "1"], cli_env(), root)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(jid, r.stdout)

    def test_stack_env_written_by_scripts_up(self):
        # scripts/up's own write_stack_env (test_scripts_up's way of running
        # it), for this stack's HTTPS port and user: "imagegen generate
        # 'a castle' --wait" in that tree, with nothing else set
        from test_scripts_up import run_bash
        root = tempfile.mkdtemp(dir=self.cwd)
        var = os.path.join(root, "var")
        os.makedirs(os.path.join(var, "tls"))
        run_bash("SUPABASE_JWT_SECRET=%s\nIG_SECRET_LOCAL=1\nCLI_BIN=%s\nDEMO_USER_ID=%s\n"
                 "DEMO_EMAIL=%s\nDEMO_PROJECT_ID=%s\nDEMO_BRANCH_ID=%s\n"
                 "build_pool_env\nwrite_stack_env\n"
                 % (jh.SECRET, harness.imagegen_bin(), self.user.id, self.user.email,
                    self.user.project_id, self.user.branch_id),
                 {"IMAGEGEN_HTTPS_PORT": str(self.stack.https_port)}, var)
        shutil.copy(self.stack.tls_cert, os.path.join(var, "tls", "cert.pem"))
        r = run_cli(["generate", "a castle", "--wait"], cli_env(), root)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("warning", r.stderr)
        url = r.stdout.strip()
        self.assertTrue(url.startswith("https://localhost:%d/" % self.stack.https_port), url)
        _, data = self.fetch(url, ssl.create_default_context(cafile=self.stack.tls_cert))
        self.assertEqual(data[:8], PNG_SIG)

    def test_stack_env_with_another_project_and_its_branch(self):
        # another project of the caller's, with its own --branch
        # (FakeApi checks that the stack's branch is not sent with it)
        pid, bid = jh.seed_project(self.stack, self.user.id, "second")
        root = self.stack_tree()
        r = run_cli(["generate", "a castle", "--project", pid, "--branch", bid, "--size", "64x64"],
                    cli_env(), root)
        self.assertEqual(r.returncode, 0, r.stderr)
        job = jh.get_job(self.stack, self.user.token, r.stdout.strip()).data
        self.assertEqual((job["projectId"], job["branchId"]), (pid, bid))

    def test_stack_env_certificate_needed_unless_insecure(self):
        root = self.stack_tree(cert=False)
        r = run_cli(["jobs", "list"], cli_env(), root)
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("certificate", r.stderr.lower())
        r = run_cli(["jobs", "list", "--insecure"], cli_env(), root)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_stack_env_refused_unless_only_ours_can_write_it(self):
        # refused, it is not read, and no other stack.env is looked for
        root = self.stack_tree(mode=0o620)
        r = run_cli(["jobs", "list"], cli_env(), root)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("ignoring var/stack.env", r.stderr)
        self.assertIn("no service URL", r.stderr)

    def test_explicit_url_ignores_stack_env(self):
        # IMAGEGEN_URL set: the stack.env's token and project are not used
        root = self.stack_tree()
        r = run_cli(["generate", "x"], cli_env(IMAGEGEN_URL=self.url), root)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("no access token", r.stderr)
        r = run_cli(["generate", "x"], cli_env(IMAGEGEN_URL=self.url,
                                               IMAGEGEN_TOKEN=self.user.token), root)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--project UUID is required", r.stderr)


if __name__ == "__main__":
    unittest.main()
