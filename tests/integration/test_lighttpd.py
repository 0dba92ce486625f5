"""The route checks (tests/lib/route_checks.py) through a real lighttpd
running the shipped contrib/lighttpd configs: imagegen.conf in front of
the harness's pool socket, and imagegen-spawn.conf, where lighttpd starts
the build tree's imagegen-fcgi itself (bin-path).

lighttpd runs in the foreground (-D) from a minimal lighttpd.conf in the
stack's temp dir that includes a copy of the shipped file with its var.*
paths set to the stack's."""

import http.client
import os
import pwd
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402
import jobs_helper as jh  # noqa: E402
from route_checks import RouteChecks  # noqa: E402

CONTRIB = os.path.join(harness.SRCDIR, "contrib", "lighttpd")
WWW = os.path.join(harness.SRCDIR, "nginx", "www")


def lighttpd_bin():
    for d in ("/usr/sbin", "/usr/local/sbin", "/usr/bin"):
        p = os.path.join(d, "lighttpd")
        if os.access(p, os.X_OK):
            return p
    raise harness.HarnessError("lighttpd not installed (scripts/lib.sh installs the lighttpd package)")


def render(name, values):
    """The shipped contrib/lighttpd/NAME with each var.KEY = "..." line
    set to values[KEY]; every key must be there."""
    with open(os.path.join(CONTRIB, name)) as f:
        text = f.read()
    for key, val in values.items():
        text, n = re.subn(r'(?m)^var\.%s\s*=\s*"[^"]*"' % re.escape(key),
                          lambda m: 'var.%s = "%s"' % (key, val), text)
        if n != 1:
            raise harness.HarnessError("%s: var.%s set %d times, want 1" % (name, key, n))
    return text


def exe_of(pid):
    try:
        return os.path.realpath("/proc/%d/exe" % pid)
    except OSError:
        return None


class LighttpdMixin(RouteChecks):
    contrib = None          # the shipped file this class runs
    lighttpd_proc = None

    @classmethod
    def contrib_values(cls, d):
        raise NotImplementedError

    @classmethod
    def start_lighttpd(cls):
        st = cls.stack
        d = st._mkdir("lighttpd")
        owner = harness.POOL_USER if harness.IS_ROOT else None
        st._mkdir("lighttpd", "uploads", owner=owner, mode=0o700)
        st._mkdir("lighttpd", "htdocs")
        cls.web_port = harness.free_port()
        site = os.path.join(d, "imagegen.conf")
        with open(site, "w") as f:
            f.write(cls.adjust(render(cls.contrib, cls.contrib_values(d))))
        user = ('server.username = "%s"\nserver.groupname = "%s"\n'
                % (harness.POOL_USER, harness.POOL_USER)) if harness.IS_ROOT else ""
        conf = os.path.join(d, "lighttpd.conf")
        with open(conf, "w") as f:
            f.write('server.modules = ( "mod_indexfile", "mod_access", "mod_alias",'
                    ' "mod_dirlisting", "mod_staticfile" )\n'
                    'server.bind = "127.0.0.1"\n'
                    'server.port = %d\n'
                    'server.document-root = "%s/htdocs"\n'
                    'server.upload-dirs = ( "%s/uploads" )\n'
                    'server.errorlog = "%s/error.log"\n'
                    'server.pid-file = "%s/lighttpd.pid"\n'
                    '%s'
                    'index-file.names = ( "index.html" )\n'
                    'mimetype.assign = ( ".html" => "text/html", ".png" => "image/png",'
                    ' ".js" => "application/javascript", ".css" => "text/css" )\n'
                    'include "%s"\n'
                    % (cls.web_port, d, d, d, d, user, site))
        if harness.IS_ROOT:
            harness._chown(d, harness.POOL_USER)     # the error log, reopened as www-data
        st._log_files.append(("lighttpd error", os.path.join(d, "error.log")))
        out = os.path.join(d, "lighttpd.stderr")
        st._log_files.append(("lighttpd stderr", out))
        exe = lighttpd_bin()
        t = subprocess.run([exe, "-tt", "-f", conf], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=30)
        if t.returncode != 0 or "WARNING" in t.stdout:
            raise harness.HarnessError("lighttpd -tt %s: %s" % (conf, t.stdout))
        with open(out, "ab") as log:
            cls.lighttpd_proc = subprocess.Popen(
                [exe, "-D", "-f", conf], env=cls.lighttpd_env(), stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, cwd=d, start_new_session=True)
        cls.addClassCleanup(cls.stop_lighttpd)
        last = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if cls.lighttpd_proc.poll() is not None:
                raise harness.HarnessError("lighttpd exited with %s: %s" % (
                    cls.lighttpd_proc.returncode, harness.tail(os.path.join(d, "error.log"))))
            try:
                last = harness.http_request("127.0.0.1", cls.web_port, "GET",
                                            "/api/health/live", timeout=3)
                if last.status == 200:
                    return
            except OSError as e:
                last = e
            time.sleep(0.1)
        raise harness.HarnessError("lighttpd not answering on %d: %r" % (cls.web_port, last))

    @classmethod
    def adjust(cls, text):
        """The rendered file as this class runs it (as shipped here)."""
        return text

    @classmethod
    def lighttpd_env(cls):
        return harness._clean_env()

    @classmethod
    def stop_lighttpd(cls):
        p, cls.lighttpd_proc = cls.lighttpd_proc, None
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
            raise harness.HarnessError("lighttpd did not stop on SIGTERM")

    @classmethod
    def tearDownClass(cls):
        # lighttpd first: the stack's sweep would take it for a stray.
        cls.stop_lighttpd()
        super().tearDownClass()

    # ---- beyond the shared route checks

    def test_lighttpd_metrics_refused_to_non_loopback(self):
        # 127.0.0.2 is not the loopback address the config lets through.
        conn = http.client.HTTPConnection("127.0.0.1", self.web_port, timeout=10,
                                          source_address=("127.0.0.2", 0))
        try:
            conn.request("GET", "/metrics")
            r = conn.getresponse()
            body = r.read()
        finally:
            conn.close()
        self.assertEqual(r.status, 403, body)
        self.assertNotIn(b"imagegen_jobs", body)

    def test_lighttpd_serves_demo_page_and_security_headers(self):
        r = self.web("GET", "/")
        self.assertEqual(r.status, 200, r)
        with open(os.path.join(WWW, "index.html"), "rb") as f:
            self.assertEqual(r.body, f.read())
        self.assertEqual(r.header("X-Content-Type-Options"), "nosniff", r)
        self.assertEqual(r.header("X-Frame-Options"), "DENY", r)

    def test_lighttpd_serves_the_client_module_no_cache(self):
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
                self.assertEqual(r.header("X-Content-Type-Options"), "nosniff", r)
                etag = r.header("ETag")
                self.assertTrue(etag, r)
                self.assertEqual(self.web("GET", path, headers={"If-None-Match": etag}).status, 304)
        r = self.web("GET", "/api/health/live")
        self.assertNotIn("no-cache", r.header_all("Cache-Control"), r)
        self.assertEqual(r.header_all("Content-Security-Policy"), [], r)

    def test_lighttpd_storage_lists_nothing_and_follows_no_symlink(self):
        r = self.web("GET", "/storage/v1/object/public/asset-images/")
        self.assertNotEqual(r.status, 200, r)
        bucket = os.path.join(self.stack.storage_dir, "asset-images")
        with open(os.path.join(bucket, "plain.txt"), "w") as f:
            f.write("in the bucket\n")
        os.symlink(os.path.join(self.stack.tmp, "lighttpd", "lighttpd.conf"),
                   os.path.join(bucket, "link.txt"))
        r = self.web("GET", "/storage/v1/object/public/asset-images/plain.txt")
        self.assertEqual((r.status, r.body), (200, b"in the bucket\n"), r)
        r = self.web("GET", "/storage/v1/object/public/asset-images/link.txt")
        self.assertEqual(r.status, 403, r)
        self.assertNotIn(b"server.port", r.body, r)

    def test_lighttpd_request_id_from_the_app(self):
        # lighttpd sets no REQUEST_ID: the app's own id is answered and
        # a client's X-Request-Id is not taken for it.
        ids = set()
        for _ in range(2):
            r = self.web("GET", "/api/health/live", headers={"X-Request-Id": "a" * 32})
            ids.add(self.assert_request_id(r))
        self.assertNotIn("a" * 32, ids)
        self.assertEqual(len(ids), 2, ids)


class LighttpdSocketRoutes(LighttpdMixin, harness.StackTestCase):
    """contrib/lighttpd/imagegen.conf in front of the harness's pool."""
    stack_args = {"pool": "master", "nginx": False, "extra_env": jh.pool_env()}
    web_name = "lighttpd (pool socket)"
    contrib = "imagegen.conf"

    @classmethod
    def contrib_values(cls, d):
        return {"imagegen_socket": cls.stack.pool_socket, "imagegen_www": WWW,
                "imagegen_storage": cls.stack.storage_dir}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.start_lighttpd()


class LighttpdSpawnRoutes(LighttpdMixin, harness.StackTestCase):
    """contrib/lighttpd/imagegen-spawn.conf: lighttpd starts the build
    tree's imagegen-fcgi itself, its settings in an env file."""
    stack_args = {"pool": None, "nginx": False, "extra_env": jh.pool_env()}
    web_name = "lighttpd (bin-path)"
    contrib = "imagegen-spawn.conf"
    workers = 2             # --workers, a master under lighttpd
    procs = 1               # max-procs

    @classmethod
    def contrib_values(cls, d):
        st = cls.stack
        envf = os.path.join(d, "imagegen.env")
        base = harness._clean_env()
        with open(envf, "w") as f:
            for k, v in sorted(st.pool_env().items()):
                if base.get(k) != v:
                    f.write("%s=%s\n" % (k, v))
        os.chmod(envf, 0o640)
        if harness.IS_ROOT:
            os.chown(envf, 0, pwd.getpwnam(harness.POOL_USER).pw_gid)
        cls.socket = os.path.join(st.run_dir, "lighttpd-imagegen.sock")
        return {"imagegen_fcgi": harness.imagegen_fcgi_bin(), "imagegen_env_file": envf,
                "imagegen_workers": str(cls.workers or 1), "imagegen_socket": cls.socket,
                "imagegen_www": WWW, "imagegen_storage": st.storage_dir}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.stack._pool_dirs()       # storage, slots, spool: no pool of the harness's
        cls.start_lighttpd()
        cls.pool_seen = set()

    @classmethod
    def ours(cls):
        """Live imagegen-fcgi processes (masters, responders, executors)
        that run with this stack's settings."""
        exe = os.path.realpath(harness.imagegen_fcgi_bin())
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit() or exe_of(int(d)) != exe or not harness.alive(int(d)):
                continue
            try:
                with open("/proc/%s/environ" % d, "rb") as f:
                    env = f.read()
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    env += f.read()
            except OSError:
                continue
            if cls.stack.tmp and cls.stack.tmp.encode() in env:
                out.append(int(d))
        return out

    @classmethod
    def tearDownClass(cls):
        seen = set(cls.ours()) | cls.pool_seen
        cls.stop_lighttpd()
        left = harness.wait_gone(sorted(seen), 15) + [p for p in cls.ours() if p not in seen]
        super().tearDownClass()
        if left:
            raise AssertionError("imagegen-fcgi processes left after lighttpd stopped: %s" % left)
        if not seen:
            raise AssertionError("no imagegen-fcgi process of lighttpd's was ever seen")

    def test_lighttpd_children_are_the_pool(self):
        exe = os.path.realpath(harness.imagegen_fcgi_bin())
        kids = harness.children_of(self.lighttpd_proc.pid)
        self.assertEqual(len(kids), self.procs, "lighttpd's children: %s" % kids)
        for k in kids:
            self.assertEqual(exe_of(k), exe)
            if harness.IS_ROOT:
                self.assertEqual(harness.proc_uids(k)[0],
                                 pwd.getpwnam(harness.POOL_USER).pw_uid)
            self.__class__.pool_seen.add(k)
        want = self.workers or 0
        for k in kids:
            got = harness.wait_until(lambda: len(harness.children_of(k)) == want, 10)
            self.assertTrue(got, "%d has children %s, want %d" % (k, harness.children_of(k), want))
            for c in harness.children_of(k):
                self.assertEqual(exe_of(c), exe)
                self.__class__.pool_seen.add(c)
        # lighttpd bound the sockets: SOCKET-0, SOCKET-1, ... one per proc
        for i in range(self.procs):
            self.assertTrue(os.path.exists("%s-%d" % (self.socket, i)),
                            os.listdir(os.path.dirname(self.socket)))


class LighttpdSpawnPlainRoutes(LighttpdSpawnRoutes):
    """imagegen-spawn.conf without --workers and with max-procs 2, the
    alternative its header describes: lighttpd runs two unsupervised
    responders, each on its own socket."""
    web_name = "lighttpd (bin-path, no --workers)"
    workers = None
    procs = 2

    @classmethod
    def adjust(cls, text):
        out = text.replace(' + " --workers " + var.imagegen_workers', "")
        out = out.replace('"max-procs"   => 1', '"max-procs"   => 2')
        if out.count("--workers") != text.count("--workers") - 1 or '=> 2' not in out:
            raise harness.HarnessError("imagegen-spawn.conf no longer has the lines to adjust")
        return out

if __name__ == "__main__":
    unittest.main()
