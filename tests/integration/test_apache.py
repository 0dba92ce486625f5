"""The route checks (tests/lib/route_checks.py) through a real Apache httpd
2.4 (Debian's apache2) in front of the pool, with the shipped configs of
contrib/apache/ included unmodified: each test class writes a minimal
httpd.conf in its temp dir (its own port, logs, pid file, the modules the
shipped file names) whose `Define`s set the paths, then `Include`s the
shipped file."""

import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402
import jobs_helper as jh  # noqa: E402
from route_checks import RouteChecks  # noqa: E402

APACHE_BIN = "/usr/sbin/apache2"
MODULE_DIR = "/usr/lib/apache2/modules"
# What every config below needs; each class adds its own.
BASE_MODULES = ("mpm_event", "authz_core", "authz_host", "alias", "dir", "mime",
                "headers", "setenvif", "unique_id", "env")


class Apache:
    """An Apache started in the foreground from a generated httpd.conf."""

    def __init__(self, stack, modules, defines, include, extra="",
                 access_log="imagegen-access.log"):
        self.stack = stack
        self.access_log_name = access_log
        self.dir = os.path.join(stack.tmp, "apache")
        self.run_dir = os.path.join(self.dir, "run")
        self.log_dir = os.path.join(self.dir, "logs")
        for d in (self.dir, self.run_dir, self.log_dir):
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o755)
        self.port = harness.free_port()
        self.modules = list(BASE_MODULES) + list(modules)
        self.defines = dict(defines, IMAGEGEN_PORT=str(self.port),
                            IMAGEGEN_LOG_DIR=self.log_dir)
        self.include = include
        self.extra = extra
        self.conf = os.path.join(self.dir, "httpd.conf")
        self.proc = None

    def conf_text(self):
        mime = os.path.join(self.dir, "mime.types")
        with open(mime, "w") as f:
            f.write("text/html html\ntext/css css\napplication/javascript js\n"
                    "application/json json\nimage/png png\n")
        lines = ["ServerRoot %s" % self.dir,
                 "ServerName 127.0.0.1",
                 "Listen 127.0.0.1:%d" % self.port,
                 "PidFile %s/httpd.pid" % self.run_dir,
                 "DefaultRuntimeDir %s" % self.run_dir,
                 "ErrorLog %s/error.log" % self.log_dir,
                 "LogLevel warn",
                 "TypesConfig %s" % mime]
        for m in self.modules:
            lines.append("LoadModule %s_module %s/mod_%s.so" % (m, MODULE_DIR, m))
        if harness.IS_ROOT:
            lines += ["User %s" % harness.POOL_USER, "Group %s" % harness.POOL_USER]
        lines += ["StartServers 1", "ServerLimit 2", "ThreadsPerChild 10",
                  "MaxRequestWorkers 20", "MinSpareThreads 5", "MaxSpareThreads 20"]
        for k, v in self.defines.items():
            lines.append('Define %s "%s"' % (k, v))
        lines.append(self.extra)
        lines.append("Include %s" % self.include)
        return "\n".join(lines) + "\n"

    def start(self):
        if not os.access(APACHE_BIN, os.X_OK):
            raise harness.HarnessError("%s missing: scripts/lib.sh installs apache2" % APACHE_BIN)
        with open(self.conf, "w") as f:
            f.write(self.conf_text())
        self.stack._log_files.append(("apache error", os.path.join(self.log_dir, "error.log")))
        self.stack._log_files.append(("apache vhost error", os.path.join(
            self.log_dir, self.access_log_name.replace("access", "error"))))
        self.stack._log_files.append(("apache access",
                                      os.path.join(self.log_dir, self.access_log_name)))
        t = subprocess.run([APACHE_BIN, "-f", self.conf, "-t"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=harness._clean_env(), timeout=30)
        if t.returncode != 0 or t.stdout.strip() != b"Syntax OK":
            # a warning (an unknown variable, a macro problem) is a failure too
            raise harness.HarnessError("apache2 -t failed or warned:\n%s"
                                       % t.stdout.decode(errors="replace"))
        out = open(os.path.join(self.log_dir, "apache.stderr"), "ab")
        self.stack._log_files.append(("apache stderr", out.name))
        try:
            self.proc = subprocess.Popen([APACHE_BIN, "-f", self.conf, "-DFOREGROUND"],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         env=harness._clean_env(), cwd=self.dir,
                                         start_new_session=True)
        finally:
            out.close()
        deadline = time.monotonic() + 15
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise harness.HarnessError("apache2 exited with %s" % self.proc.returncode)
            try:
                last = harness.http_request("127.0.0.1", self.port, "GET", "/api/health/live",
                                            timeout=5)
                if last.status == 200:
                    return
            except OSError as e:
                last = e
            time.sleep(0.1)
        raise harness.HarnessError("apache not answering /api/health/live on %d: %r"
                                   % (self.port, last))

    def stop(self):
        if self.proc is None:
            return
        family = [self.proc.pid] + harness.descendants_of(self.proc.pid)
        harness.kill_quiet(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        for p in harness.wait_gone(family, 5):
            harness.kill_quiet(p, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None
        left = harness.wait_gone(family, 5)
        if left:
            raise harness.HarnessError("apache processes left: %s" % left)

    def access_log(self):
        try:
            with open(os.path.join(self.log_dir, self.access_log_name), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""


def contrib(name):
    return os.path.join(harness.SRCDIR, "contrib", "apache", name)


class ApacheRouteExtras:
    """What holds through every Apache config beyond the shared checks."""

    def test_apache_request_id_logged_and_unique(self):
        r = self.web("GET", "/api/health/live")
        rid = self.assert_request_id(r)
        self.assertEqual(len(r.header_all("X-Request-Id")), 1, r)
        ok = harness.wait_until(lambda: ("rid=%s " % rid) in self.apache.access_log(), 5)
        self.assertTrue(ok, "request id %s not in Apache's access log:\n%s"
                        % (rid, self.apache.access_log()[-2000:]))
        r2 = self.web("GET", "/api/health/live")
        self.assertNotEqual(self.assert_request_id(r2), rid)

    def test_apache_security_headers_and_static(self):
        r = self.web("GET", "/")
        self.assertEqual(r.status, 200, r)
        self.assertIn(b"<html", r.body.lower())
        self.assertEqual(r.header("X-Content-Type-Options"), "nosniff", r)
        r = self.web("GET", "/storage/v1/object/public/")
        self.assertIn(r.status, (403, 404), "storage listing: %r" % r)
        self.assertNotIn(b"asset-images", r.body)

    def test_apache_serves_the_client_module_no_cache(self):
        for path, types in (("/imageService.js", ("text/javascript", "application/javascript")),
                            ("/imageService.d.ts", ("text/plain",)), ("/", ("text/html",)),
                            ("/app.js", ("text/javascript", "application/javascript"))):
            with self.subTest(path=path):
                r = self.web("GET", path)
                self.assertEqual(r.status, 200, r)
                self.assertIn(r.content_type, types, r)
                self.assertEqual(r.header_all("Cache-Control"), ["no-cache"], r)
                self.assertEqual(r.header_all("Content-Security-Policy"),
                                 ["script-src 'self'; object-src 'none'; base-uri 'none'"], r)
                etag = r.header("ETag")
                self.assertTrue(etag, r)
                self.assertEqual(self.web("GET", path, headers={"If-None-Match": etag}).status, 304)
        r = self.web("GET", "/api/health/live")
        self.assertNotIn("no-cache", r.header_all("Cache-Control"), r)
        self.assertEqual(r.header_all("Content-Security-Policy"), [], r)


class ApacheProxyFcgiRoutes(ApacheRouteExtras, RouteChecks, harness.StackTestCase):
    """contrib/apache/imagegen.conf: mod_proxy_fcgi to the pool's socket.
    The app answers the 2 MiB body's 413 itself (JSON): Apache's
    LimitRequestBody there is 8 MiB, as nginx's client_max_body_size."""
    stack_args = {"pool": "master", "nginx": False, "extra_env": jh.pool_env()}
    web_name = "Apache mod_proxy_fcgi"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        st = cls.stack
        tls = os.path.join(st.tmp, "apache-tls")
        os.makedirs(tls, mode=0o755)
        cert, key = os.path.join(tls, "cert.pem"), os.path.join(tls, "key.pem")
        harness.make_cert(cert, key)
        cls.tls_port = harness.free_port()
        cls.apache = Apache(st, ("proxy", "proxy_fcgi", "macro", "ssl"),
                            {"IMAGEGEN_SOCKET": st.pool_socket,
                             "IMAGEGEN_WWW": os.path.join(harness.SRCDIR, "nginx", "www"),
                             "IMAGEGEN_STORAGE_DIR": st.storage_dir,
                             "IMAGEGEN_TLS_PORT": str(cls.tls_port),
                             "IMAGEGEN_TLS_CERT": cert, "IMAGEGEN_TLS_KEY": key},
                            contrib("imagegen.conf"),
                            extra="Listen 127.0.0.1:%d" % cls.tls_port)
        cls.addClassCleanup(cls.apache.stop)
        cls.apache.start()
        cls.web_port = cls.apache.port

    @classmethod
    def tearDownClass(cls):
        cls.apache.stop()       # before the stack sweeps its temp dir
        super().tearDownClass()

    def test_tls_vhost_serves_the_same_site(self):
        r = harness.http_request("127.0.0.1", self.tls_port, "GET", "/api/me",
                                 headers=jh.auth(jh.seed_user(self.stack, "tls").token), tls=True)
        self.assertEqual(r.status, 200, r)
        self.assertIn(r.tls_version, ("TLSv1.2", "TLSv1.3"), r)
        self.assertRegex(r.header("Strict-Transport-Security") or "", r"^max-age=\d+$", r)
        self.assertRegex(r.header("X-Request-Id") or "", r"^[0-9a-f]{32}$", r)
        r = self.web("GET", "/api/health/live")
        self.assertIsNone(r.header("Strict-Transport-Security"), "HSTS over plain HTTP: %r" % r)


def write_env_file(stack, path):
    """The pool's settings as an env file (KEY=VALUE lines) readable by the
    web server's user only (and root)."""
    env = stack.pool_env()
    keys = sorted(k for k in env if k == "DATABASE_URL" or k.startswith(("IMAGEGEN_", "SUPABASE_")))
    with open(path, "w") as f:
        for k in keys:
            f.write("%s=%s\n" % (k, env[k]))
    os.chmod(path, 0o640)
    if harness.IS_ROOT:
        harness._chown(path, harness.POOL_USER)


class WrapperApache(ApacheRouteExtras, RouteChecks):
    """Mixed into a StackTestCase: Apache starting imagegen-fcgi itself
    through contrib/apache/imagegen.cgi (no pool of ours); the class names
    the module, the shipped conf, its extra directives and access log. The
    413 is the app's own (JSON)."""
    stack_args = {"pool": None, "nginx": False, "extra_env": jh.pool_env()}
    module = conf = log = None

    @classmethod
    def extra(cls, run):
        return ""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        st = cls.stack
        st._pool_dirs()     # storage, slots, spool: no pool, the processes use them
        env_file = os.path.join(st.tmp, "imagegen.env")
        write_env_file(st, env_file)
        cls.apache = Apache(st, (cls.module,),
                            {"IMAGEGEN_CGI_DIR": os.path.join(harness.SRCDIR, "contrib", "apache"),
                             "IMAGEGEN_FCGI": harness.imagegen_fcgi_bin(),
                             "IMAGEGEN_ENV_FILE": env_file,
                             "IMAGEGEN_WWW": os.path.join(harness.SRCDIR, "nginx", "www"),
                             "IMAGEGEN_STORAGE_DIR": st.storage_dir},
                            contrib(cls.conf),
                            extra=cls.extra(os.path.join(st.tmp, "apache", "run")),
                            access_log=cls.log)
        cls.addClassCleanup(cls.apache.stop)
        cls.apache.start()
        cls.web_port = cls.apache.port

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "apache", None) is not None:
            cls.apache.stop()       # before the stack sweeps its temp dir
        super().tearDownClass()

    def responders(self):
        """imagegen-fcgi processes under Apache."""
        exe = os.path.realpath(harness.imagegen_fcgi_bin())
        out = []
        for p in harness.descendants_of(self.apache.proc.pid):
            try:
                if os.path.realpath("/proc/%d/exe" % p) == exe:
                    out.append(p)
            except OSError:
                pass
        return sorted(out)


class ApacheCgiRoutes(WrapperApache, harness.StackTestCase):
    """contrib/apache/imagegen-cgi.conf under mod_cgid: imagegen-fcgi run
    as a CGI program once per request."""
    web_name = "Apache CGI"
    module, conf, log = "cgid", "imagegen-cgi.conf", "imagegen-cgi-access.log"

    @classmethod
    def extra(cls, run):
        return "ScriptSock %s/cgid.sock" % run

    def test_cgi_process_exits_after_its_request(self):
        r = self.web("GET", "/api/health/live")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(harness.wait_until(lambda: not self.responders(), 5),
                        "imagegen-fcgi still running under Apache: %s" % self.responders())


class ApacheFcgidRoutes(WrapperApache, harness.StackTestCase):
    """contrib/apache/imagegen-fcgid.conf: mod_fcgid starts imagegen-fcgi
    and supervises it."""
    web_name = "Apache mod_fcgid"
    module, conf, log = "fcgid", "imagegen-fcgid.conf", "imagegen-fcgid-access.log"

    @classmethod
    def extra(cls, run):
        return "FcgidIPCDir %s/fcgid\nFcgidProcessTableFile %s/fcgid_shm" % (run, run)

    def test_fcgid_process_serves_many_requests(self):
        for _ in range(5):
            self.assertEqual(self.web("GET", "/api/health/live").status, 200)
        before = self.responders()
        self.assertTrue(before, "no imagegen-fcgi process under Apache")
        for _ in range(10):
            self.assertEqual(self.web("GET", "/api/health/live").status, 200)
        self.assertEqual(self.responders(), before, "mod_fcgid restarted the responder(s)")


class ImagegenCgiMode(harness.StackTestCase):
    """imagegen-fcgi run as a CGI program by the test itself (no web
    server): the request in the environment, the body on stdin."""
    stack_args = {"pool": None, "nginx": False, "extra_env": jh.pool_env()}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.stack._pool_dirs()

    def cgi(self, method, uri, body=b"", env=None, cgi=True, stdin=None):
        e = self.stack.pool_env()
        e.update(REQUEST_METHOD=method, REQUEST_URI=uri, SERVER_PROTOCOL="HTTP/1.1",
                 CONTENT_LENGTH=str(len(body)))
        if cgi:
            e["GATEWAY_INTERFACE"] = "CGI/1.1"
        e.update(env or {})
        argv = [harness.imagegen_fcgi_bin()]
        if harness.IS_ROOT:
            argv = ["runuser", "-u", harness.POOL_USER, "--"] + argv
        return subprocess.run(argv, input=body if stdin is None else stdin, env=e,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)

    @staticmethod
    def parse(out):
        head, _, body = out.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        return int(lines[0].split()[1]), headers, json.loads(body.decode())

    def test_answers_one_request_and_exits(self):
        p = self.cgi("GET", "/api/health", env={"REQUEST_ID": "ab" * 16})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith(b"Status: 200 OK\r\n"), p.stdout)
        status, headers, data = self.parse(p.stdout)
        self.assertEqual(data["database"], "ok", data)
        self.assertEqual(headers["X-Request-Id"], "ab" * 16)

    def test_not_cgi_without_gateway_interface(self):
        p = self.cgi("GET", "/api/health/live", cgi=False)
        self.assertEqual(p.returncode, 2, p)
        self.assertIn(b"fd 0 is not a listening socket", p.stderr)

    def test_reads_no_further_than_content_length_and_its_job_completes(self):
        u = jh.seed_user(self.stack, "cgi")
        body = json.dumps({"projectId": u.project_id, "branchId": u.branch_id,
                           "jobType": "master_asset", "prompt": "a heron by CGI",
                           "width": 64, "height": 64}).encode()
        auth = {"HTTP_AUTHORIZATION": "Bearer " + u.token, "CONTENT_TYPE": "application/json"}
        # Bytes past CONTENT_LENGTH on stdin are not the body (CGI/1.1).
        p = self.cgi("POST", jh.GENERATE, body, env=auth, stdin=body + b"garbage")
        self.assertEqual(p.returncode, 0, p.stderr)
        status, _, data = self.parse(p.stdout)
        self.assertEqual(status, 202, data)
        jid = data["jobId"]

        def job():
            q = self.cgi("GET", "/api/images/jobs/" + jid, env=auth)
            st, _, d = self.parse(q.stdout)
            self.assertEqual(st, 200, d)
            return d if d["status"] in jh.TERMINAL else None
        done = harness.wait_until(job, 30, interval=0.1)
        self.assertIsNotNone(done, "the job's executor never finished it")
        self.assertEqual(done["status"], "completed", done)

    def test_executor_keeps_neither_the_request_env_nor_the_stderr_pipe(self):
        u = jh.seed_user(self.stack, "cgi-env")
        body = json.dumps({"projectId": u.project_id, "branchId": u.branch_id,
                           "jobType": "master_asset", "prompt": "a slow heron by CGI",
                           "width": 64, "height": 64}).encode()
        env = {"HTTP_AUTHORIZATION": "Bearer " + u.token, "CONTENT_TYPE": "application/json",
               "HTTP_COOKIE": "session=secret-cookie", "IMAGEGEN_LOCAL_DELAY_MS": "4000"}
        t0 = time.monotonic()
        p = self.cgi("POST", jh.GENERATE, body, env=env)   # waits for EOF of stdout and stderr
        took = time.monotonic() - t0
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.parse(p.stdout)[0], 202, p.stdout)
        self.assertLess(took, 3.0, "the answer lasted as long as the job: stderr held")
        jid = self.parse(p.stdout)[2]["jobId"]

        def executor_env():
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or jh.comm(int(pid)) != "ig-executor":
                    continue
                try:
                    with open("/proc/%s/environ" % pid, "rb") as f:
                        e = f.read()
                except OSError:
                    continue
                if self.stack.storage_dir.encode() in e:
                    return e
            return None
        e = harness.wait_until(executor_env, 3)
        self.assertIsNotNone(e, "no executor of this stack seen")
        self.assertNotIn(b"Bearer", e)   # the names may stay, wiped empty
        self.assertNotIn(u.token.encode(), e)
        self.assertNotIn(b"secret-cookie", e)
        auth = {"HTTP_AUTHORIZATION": "Bearer " + u.token}

        def job():
            q = self.cgi("GET", "/api/images/jobs/" + jid, env=auth)
            d = self.parse(q.stdout)[2]
            return d if d["status"] in jh.TERMINAL else None
        done = harness.wait_until(job, 30, interval=0.2)
        self.assertIsNotNone(done)
        self.assertEqual(done["status"], "completed", done)


if __name__ == "__main__":
    import unittest
    unittest.main()
