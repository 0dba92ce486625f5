"""The prefork pool's supervision, end to end (docs/RUNNING.md, Signals):
respawn after a crash, recycling after --max-requests, SIGHUP reload under
load with no failed request, SIGTERM drain, privilege drop.  Run for both
master modes: imagegen-fcgi's own --listen master and spawn-fcgi -n.
"""

import http.client
import os
import pwd
import signal
import stat
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import fcgi_client  # noqa: E402
import harness  # noqa: E402

WORKERS = 2
DRAIN_BOUND = 12.0   # --drain-timeout 10 s default + 1 s TERM->KILL + slack


class Load:
    """Threads sending GET requests through nginx (keep-alive to nginx) until
    stopped; every answer that is not 200, and every exception, is a failure."""

    def __init__(self, port, threads=4, paths=("/api/health/live", "/api/health")):
        self.port = port
        self.paths = paths
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self):
        conn = None
        i = 0
        while not self.stop_ev.is_set():
            path = self.paths[i % len(self.paths)]
            i += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("GET", path)
                r = conn.getresponse()
                body = r.read()
                if r.status != 200:
                    with self.lock:
                        self.failures.append("%s -> %d %r" % (path, r.status, body[:200]))
                else:
                    with self.lock:
                        self.ok += 1
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.failures.append("%s -> %r" % (path, e))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        for t in self.threads:
            t.join(15)
        return False


class PoolChecks:
    """Mixin: supervision checks for a pool that has a master."""

    def setUp(self):
        super().setUp()
        s = self.stack
        if not s.pool_running():
            s.start_pool()
        self.children = s.wait_children(WORKERS, timeout=5)

    def get_ok(self, n, path="/api/health/live"):
        bad = []
        for i in range(n):
            try:
                r = self.stack.http("GET", path)
                if r.status != 200:
                    bad.append((i, r))
            except OSError as e:
                bad.append((i, e))
        return bad

    def test_kill9_child_is_respawned(self):
        s = self.stack
        master = s.master_pid()
        victim = self.children[0]
        os.kill(victim, signal.SIGKILL)
        t0 = time.monotonic()
        got = harness.wait_until(
            lambda: (lambda c: c if len(c) == WORKERS and victim not in c else None)(s.children_pids()),
            3.0, interval=0.02)
        took = time.monotonic() - t0
        self.assertTrue(got, "no replacement child within 3 s: children now %s (killed %d)"
                        % (s.children_pids(), victim))
        self.assertNotIn(victim, got)
        self.assertEqual(len(got), WORKERS)
        self.assertTrue(harness.alive(master), "master died")
        self.assertEqual(s.master_pid(), master)
        bad = self.get_ok(50)
        self.assertEqual(bad, [], "requests failed after respawn (respawn took %.2fs)" % took)

    def test_max_requests_recycles_children_without_failure(self):
        s = self.stack
        s.stop_pool()
        s.start_pool(max_requests=20)
        try:
            first = s.wait_children(WORKERS, timeout=5)
            seen = set(first)
            seen_lock = threading.Lock()
            failures = []

            def worker():
                for _ in range(30):
                    try:
                        r = s.http("GET", "/api/health/live")
                        if r.status != 200:
                            failures.append(r)
                    except OSError as e:
                        failures.append(e)
                    with seen_lock:
                        seen.update(s.children_pids())
            threads = [threading.Thread(target=worker) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            self.assertEqual(failures, [], "requests failed while children were recycled")
            # 120 requests, at most 20 per child: at least 6 children served,
            # so at least 4 beyond the first two.
            later = s.wait_children(WORKERS, timeout=5)
            seen.update(later)
            self.assertGreaterEqual(len(seen), 6, "children seen: %s" % sorted(seen))
            self.assertTrue(set(first) - set(later), "no first-generation child was recycled: %s -> %s"
                            % (first, later))
            self.assertTrue(harness.alive(s.master_pid()))
        finally:
            s.stop_pool()
            s.start_pool()

    def test_sighup_under_load_no_failed_request_children_replaced(self):
        s = self.stack
        master = s.master_pid()
        before = set(self.children)
        with Load(s.http_port, threads=4) as load:
            time.sleep(0.5)
            os.kill(master, signal.SIGHUP)
            time.sleep(0.7)
            os.kill(master, signal.SIGHUP)
            time.sleep(0.8)
        self.assertEqual(load.failures, [], "%d ok, %d failed during SIGHUP"
                         % (load.ok, len(load.failures)))
        self.assertGreater(load.ok, 50, "the load hardly ran")
        self.assertTrue(harness.alive(master), "master died on SIGHUP")
        self.assertEqual(s.master_pid(), master)
        after = harness.wait_until(
            lambda: (lambda c: c if len(c) == WORKERS and not before.intersection(c) else None)(s.children_pids()),
            5.0)
        self.assertTrue(after, "children not replaced after SIGHUP: before %s, now %s"
                        % (sorted(before), s.children_pids()))
        self.assertEqual(self.get_ok(20), [])

    def test_sigterm_drains_in_flight_request_and_exits(self):
        s = self.stack
        master = s.master_pid()
        family = [master] + self.children
        body = b'{"x":"0123456789"}'
        half = len(body) // 2
        if s.pool_mode == "master":
            # --pid-file holds the master's pid while it runs
            with open(s.pool_pidfile) as f:
                self.assertEqual(f.read().strip(), str(master), "--pid-file content")
        c = fcgi_client.Connection(s.pool_socket, timeout=DRAIN_BOUND + 5)
        try:
            c.begin()
            c.params(fcgi_client.cgi_params("POST", "/api/health", content_length=len(body),
                                             content_type="application/json"))
            c.stdin(body[:half])
            time.sleep(0.3)             # a child has accepted and waits for the body
            os.kill(master, signal.SIGTERM)
            t0 = time.monotonic()
            time.sleep(0.5)
            c.stdin(body[half:], end=True)
            resp = c.read_response()
        finally:
            c.close()
        # The request in flight completed: a whole answer and END_REQUEST.
        self.assertEqual(resp.protocol_status, fcgi_client.REQUEST_COMPLETE, resp)
        self.assertEqual(resp.status, 405, resp)
        self.assertEqual(resp.json()["error"]["code"], "METHOD_NOT_ALLOWED", resp)
        left = harness.wait_gone(family + s.children_pids(master), DRAIN_BOUND - (time.monotonic() - t0))
        took = time.monotonic() - t0
        self.assertEqual(left, [], "still alive %.1fs after SIGTERM" % took)
        s.pool_proc.wait(2)
        self.assertEqual(s.pool_proc.returncode, 0, "master exit status after SIGTERM drain")
        if s.pool_mode == "master":
            self.assertFalse(os.path.exists(s.pool_pidfile), "--pid-file not removed on exit")
        s.stop_pool()       # reap; nothing left to kill
        s.start_pool()      # leave the class's stack as it was

    def test_worker_takes_the_next_connection_before_the_web_server_closes(self):
        """A request read to its end is closed at once: the worker does not
        linger for the web server's side (libfcgi's shutdown-and-wait would
        hold it up to 2 s), so with every worker's last peer still holding
        its connection open, a new request is answered at once."""
        s = self.stack
        held = []
        try:
            for _ in range(WORKERS):
                c = fcgi_client.Connection(s.pool_socket, timeout=5)
                held.append(c)
                c.begin()
                c.params(fcgi_client.cgi_params("GET", "/api/health/live"))
                c.stdin(end=True)
                resp = c.read_response()
                self.assertEqual(resp.protocol_status, fcgi_client.REQUEST_COMPLETE, resp)
                self.assertEqual(resp.status, 200, resp)
                # the responder's side is closed: end of stream after the answer
                self.assertEqual(c.sock.recv(1), b"", "more after END_REQUEST")
            t0 = time.monotonic()
            resp = fcgi_client.request(s.pool_socket, "GET", "/api/health/live", timeout=5)
            took = time.monotonic() - t0
            self.assertEqual(resp.status, 200, resp)
            self.assertLess(took, 1.0, "the next request waited %.2fs for held connections" % took)
        finally:
            for c in held:
                c.close()

    def _check_privileges(self):
        s = self.stack
        procs = [s.master_pid()] + self.children
        if harness.IS_ROOT:
            pw = pwd.getpwnam(harness.POOL_USER)
            for pid in procs:
                uids = harness.proc_uids(pid)
                self.assertNotIn(0, uids, "pid %d runs with uid 0: %s" % (pid, uids))
                self.assertEqual(uids, [pw.pw_uid] * 4, "pid %d" % pid)
                gids = [int(x) for x in harness.proc_status_field(pid, "Gid").split()]
                self.assertNotIn(0, gids, "pid %d runs with gid 0: %s" % (pid, gids))
                groups = (harness.proc_status_field(pid, "Groups") or "").split()
                self.assertNotIn("0", groups, "pid %d keeps group 0" % pid)
            st = os.stat(s.pool_socket)
            self.assertEqual(st.st_uid, pw.pw_uid, "socket owner")
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o660, "socket mode")
        else:
            for pid in procs:
                self.assertEqual(harness.proc_uids(pid), [os.geteuid()] * 4, "pid %d" % pid)

    if harness.IS_ROOT:
        def test_privileges_started_as_root_children_not_uid0(self):
            """Suite runs as root: master and children run as www-data (no
            uid or gid 0, no group 0); the socket is www-data's, mode 0660."""
            self._check_privileges()
    else:
        def test_privileges_started_as_user_run_as_own_uid(self):
            """Suite runs as a normal user: nothing to drop; master and
            children run with our own uid."""
            self._check_privileges()


class MasterPool(PoolChecks, harness.StackTestCase):
    """imagegen-fcgi --listen SOCK --workers 2."""
    stack_args = dict(pool="master", workers=WORKERS)


class SpawnMasterPool(PoolChecks, harness.StackTestCase):
    """spawn-fcgi -s SOCK -n -- imagegen-fcgi --workers 2."""
    stack_args = dict(pool="spawn-master", workers=WORKERS)


if __name__ == "__main__":
    unittest.main()
