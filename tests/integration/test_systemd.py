"""systemd (docs/RUNNING.md, systemd): the units in contrib/systemd pass
`systemd-analyze verify` with the build tree's binaries filled in, and
imagegen-fcgi serves the socket systemd passes (LISTEN_FDS) for real,
under systemd-socket-activate: health answers through it, the pool's
children hold the passed socket, READY=1 reaches NOTIFY_SOCKET, TERM
drains and exits 0; more than one passed socket is refused."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import fcgi_client  # noqa: E402
import harness  # noqa: E402

UNIT_DIR = os.path.join(harness._REPO, "contrib", "systemd")
UNITS = ("imagegen-fcgi.socket", "imagegen-fcgi.service", "imagegen-worker.service",
         "imagegen-sweep.service", "imagegen-sweep.timer")
WORKERS = 2


def tool(name):
    """A systemd tool; a missing one is a failure (scripts/lib.sh installs
    the package `systemd`)."""
    path = shutil.which(name) or shutil.which(name, path="/usr/bin:/bin:/usr/sbin")
    if path is None:
        raise AssertionError("%s not found: install the package systemd (scripts/lib.sh does)"
                             % name)
    return path


def render_units(dest):
    """Copies the units to dest, filling @sbindir@/@bindir@ of the .in
    templates with the build tree's binaries; returns {name: text}."""
    bindir = os.path.dirname(harness.imagegen_bin())
    sbindir = os.path.dirname(harness.imagegen_fcgi_bin())
    out = {}
    for name in UNITS:
        src = os.path.join(UNIT_DIR, name + ".in")     # the template, not
        if not os.path.exists(src):                     # what make filled in
            src = os.path.join(UNIT_DIR, name)
        with open(src) as f:
            text = f.read()
        text = text.replace("@sbindir@", sbindir).replace("@bindir@", bindir)
        with open(os.path.join(dest, name), "w") as f:
            f.write(text)
        out[name] = text
    return out


def directives(text):
    """{key: [values]} of a unit's lines (comments left out)."""
    d = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[" or "=" not in line:
            continue
        k, v = line.split("=", 1)
        d.setdefault(k.strip(), []).append(v.strip())
    return d


class SystemdUnitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="imagegen-units-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.units = render_units(cls.tmp)

    def test_systemd_analyze_verify_each_unit(self):
        exe = tool("systemd-analyze")
        for name in UNITS:
            with self.subTest(unit=name):
                r = subprocess.run([exe, "verify", "--man=no", os.path.join(self.tmp, name)],
                                   capture_output=True, text=True, timeout=60, cwd=self.tmp)
                # Unknown keys and bad values are only warnings (rc 0):
                # any output at all fails the unit.
                self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""),
                                 "systemd-analyze verify %s" % name)

    def test_templates_fully_substituted(self):
        for name, text in self.units.items():
            self.assertIsNone(re.search(r"@[a-z_]+@", text), name)

    def test_service_runs_the_pool_on_the_socket_hardened(self):
        sock = directives(self.units["imagegen-fcgi.socket"])
        self.assertEqual(sock["ListenStream"], ["/run/imagegen/imagegen.sock"])
        self.assertEqual(sock["SocketMode"], ["0660"])
        svc = directives(self.units["imagegen-fcgi.service"])
        self.assertEqual(svc["Type"], ["notify"])
        exec_start = svc["ExecStart"][0].split()
        self.assertEqual(exec_start[0], harness.imagegen_fcgi_bin())
        self.assertIn("--workers", exec_start)
        self.assertNotIn("--listen", exec_start)      # the socket is systemd's
        self.assertEqual(svc["ExecReload"], ["/bin/kill -HUP $MAINPID"])
        self.assertEqual(svc["KillSignal"], ["SIGTERM"])
        for name in ("imagegen-fcgi.service", "imagegen-worker.service",
                     "imagegen-sweep.service"):
            d = directives(self.units[name])
            with self.subTest(unit=name):
                for k, v in (("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"),
                             ("PrivateTmp", "yes"), ("ProtectHome", "yes"),
                             ("User", "imagegen"), ("StateDirectory", "imagegen")):
                    self.assertEqual(d.get(k), [v], k)
                env = d.get("Environment", [])
                self.assertIn("IMAGEGEN_SPOOL_DIR=/var/lib/imagegen/spool", env)
                self.assertIn("IMAGEGEN_SLOT_DIR=/var/lib/imagegen/slots", env)
        self.assertEqual(svc["RuntimeDirectory"], ["imagegen"])
        self.assertEqual(directives(self.units["imagegen-worker.service"])["ExecStart"],
                         [harness.imagegen_bin() + " worker"])
        self.assertEqual(directives(self.units["imagegen-sweep.service"])["ExecStart"],
                         [harness.imagegen_bin() + " sweep"])
        self.assertEqual(directives(self.units["imagegen-sweep.timer"])["Unit"],
                         ["imagegen-sweep.service"])


def activate_argv(socks, env_names, args):
    argv = [tool("systemd-socket-activate")]
    for s in socks:
        argv += ["-l", s]
    for k in env_names:                 # copied from our environment: no
        argv += ["-E", k]               # setting on a command line
    argv += [harness.imagegen_fcgi_bin()] + list(args)
    if harness.IS_ROOT:
        argv += ["--user", harness.POOL_USER]
    return argv


def poke(path):
    """Connects once (systemd-socket-activate starts the program on the
    first connection)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    finally:
        s.close()


def socket_inode(pid, fd):
    try:
        m = re.match(r"socket:\[(\d+)\]$", os.readlink("/proc/%d/fd/%d" % (pid, fd)))
    except OSError:
        return None
    return m.group(1) if m else None


class SocketActivationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Postgres only: the pool is started here, by systemd-socket-activate.
        cls.stack = harness.Stack(pool=None, nginx=False, name="imagegen-sd")
        cls.stack.start()
        cls.addClassCleanup(cls.stack.stop)
        cls.stack._pool_dirs()
        st = cls.stack
        st.pool_socket = os.path.join(st.run_dir, "activated.sock")
        # Type=notify: systemd's datagram socket, here an abstract one.
        cls.notify_name = "@imagegen-test-%d-%d" % (os.getpid(), time.monotonic_ns())
        cls.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        cls.notify.bind("\0" + cls.notify_name[1:])
        cls.addClassCleanup(cls.notify.close)
        env = st.pool_env({"NOTIFY_SOCKET": cls.notify_name})
        names = sorted(k for k in env if k == "NOTIFY_SOCKET" or k.startswith(
            ("DATABASE_URL", "IMAGEGEN_", "PATH")))
        with open(st.pool_log, "ab") as log:
            st.pool_proc = subprocess.Popen(
                activate_argv([st.pool_socket], names, ["--workers", str(WORKERS)]),
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=st.tmp,
                start_new_session=True)
        st.pool_mode = "master"
        ok = harness.wait_until(lambda: os.path.exists(st.pool_socket), 10)
        if not ok:
            raise harness.HarnessError("systemd-socket-activate made no socket:\n%s"
                                       % harness.tail(st.pool_log))
        poke(st.pool_socket)
        st.wait_pool_ready(WORKERS)

    def fcgi(self, uri):
        return fcgi_client.request(self.stack.pool_socket, "GET", uri, timeout=10)

    def test_health_through_the_passed_socket(self):
        for uri in ("/api/health/live", "/api/health", "/api/health/live", "/api/health"):
            r = self.fcgi(uri)
            self.assertEqual(r.status, 200, "%s: %r" % (uri, r))

    def test_master_is_the_activated_process_and_its_children_serve(self):
        st = self.stack
        pid = st.pool_proc.pid
        # systemd-socket-activate execs in place: LISTEN_PID was this pid.
        self.assertEqual(os.path.basename(os.readlink("/proc/%d/exe" % pid)), "imagegen-fcgi")
        master_sock = socket_inode(pid, 3)
        self.assertIsNotNone(master_sock, "the master has no socket on fd 3")
        children = [c for c in st.children_pids()
                    if open("/proc/%d/comm" % c).read().strip() == "imagegen-fcgi"]
        self.assertEqual(len(children), WORKERS, children)
        for c in children:
            self.assertEqual(socket_inode(c, 3), master_sock, "child %d" % c)
        for _ in range(2 * WORKERS):
            self.assertEqual(self.fcgi("/api/health/live").status, 200)
        # the same children, none crashed serving it
        self.assertEqual(sorted(c for c in st.children_pids() if c in children), sorted(children))

    def test_ready_sent_to_notify_socket(self):
        self.notify.settimeout(5)
        msg = self.notify.recv(4096)
        self.assertEqual(msg, b"READY=1")

    def test_z_term_drains_and_exits_zero(self):
        st = self.stack
        family = st.pool_pids()
        self.assertGreaterEqual(len(family), 1 + WORKERS)
        os.kill(st.pool_proc.pid, signal.SIGTERM)
        self.assertEqual(st.pool_proc.wait(20), 0, harness.tail(st.pool_log))
        self.assertEqual(harness.wait_gone(family, 10), [])
        st.pool_proc = None


class SocketActivationRefusedTest(unittest.TestCase):
    def test_two_sockets_refused(self):
        tmp = tempfile.mkdtemp(prefix="imagegen-sd2-")
        self.addCleanup(shutil.rmtree, tmp, True)
        os.chmod(tmp, 0o755)
        socks = [os.path.join(tmp, "a.sock"), os.path.join(tmp, "b.sock")]
        env = harness._clean_env()
        env["DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"
        p = subprocess.Popen(activate_argv(socks, ["DATABASE_URL"], ["--workers", "2"]),
                             env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, cwd=tmp, start_new_session=True)
        try:
            self.assertTrue(harness.wait_until(lambda: all(map(os.path.exists, socks)), 10))
            poke(socks[0])
            out, _ = p.communicate(timeout=15)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        self.assertEqual(p.returncode, 2, out)
        self.assertIn(b"2 sockets passed (LISTEN_FDS), expected exactly one", out)


if __name__ == "__main__":
    unittest.main()
