"""The master's less travelled paths (docs/RUNNING.md, Signals): a wedged
child of an old generation after SIGHUP is escalated QUIT -> TERM -> KILL
on the drain timeout; repeated crashes throttle respawns with a growing
back-off; SIGHUP re-reads --env-file and the new generation uses it."""

import os
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402

WORKERS = 2


def responders(stack):
    """The master's responder children (not its sweeper, not executors)."""
    out = []
    for p in stack.children_pids():
        try:
            with open("/proc/%d/comm" % p) as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm.startswith("imagegen-fcgi"):
            out.append(p)
    return sorted(out)


def wait_responders(stack, n, exclude=(), timeout=10):
    exclude = set(exclude)

    def ok():
        c = responders(stack)
        return c if len(c) == n and not exclude.intersection(c) else None
    got = harness.wait_until(ok, timeout, 0.01)
    if not got:
        raise AssertionError("wanted %d responders not in %s, have %s"
                             % (n, sorted(exclude), responders(stack)))
    return got


class MasterReloadEscalation(harness.StackTestCase):
    stack_args = {"pool": "master", "workers": WORKERS,
                  "extra_args": ["--drain-timeout", "1"],
                  "extra_env": {"IMAGEGEN_SWEEP_INTERVAL": "3600"}}

    def test_reload_escalates_wedged_old_child(self):
        old = wait_responders(self.stack, WORKERS)
        wedged = old[0]
        os.kill(wedged, signal.SIGSTOP)     # takes no signal but KILL
        try:
            t0 = time.monotonic()
            os.kill(self.stack.master_pid(), signal.SIGHUP)
            wait_responders(self.stack, WORKERS, exclude=old)
            # the other old child finishes at once (QUIT); the wedged one
            # gets TERM after the 1 s drain timeout, KILL a second later
            left = harness.wait_gone([wedged], 8)
            took = time.monotonic() - t0
            self.assertEqual(left, [], "a wedged old child outlived the reload's drain")
            self.assertGreaterEqual(took, 1.0, "killed before the drain timeout")
            log = self.stack.read_pool_log()
            self.assertRegex(log, r"drain timeout: TERM to old child %d\b" % wedged)
            self.assertRegex(log, r"KILL to old child %d\b" % wedged)
            # told to stop, not crashed: no respawn throttle
            self.assertNotIn("crash storm", log)
            self.assertEqual(self.stack.http("GET", "/api/health/live").status, 200)
            self.assertEqual(len(responders(self.stack)), WORKERS)
        finally:
            harness.kill_quiet(wedged, signal.SIGCONT)


class MasterCrashStorm(harness.StackTestCase):
    stack_args = {"pool": "master", "workers": WORKERS,
                  "extra_env": {"IMAGEGEN_SWEEP_INTERVAL": "3600"}}

    def test_crash_storm_throttles_respawn_with_growing_backoff(self):
        delays = []
        for _ in range(7):
            kids = wait_responders(self.stack, WORKERS, timeout=15)
            victim = kids[0]
            t0 = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            wait_responders(self.stack, WORKERS, exclude=[victim], timeout=15)
            delays.append(time.monotonic() - t0)
        log = self.stack.read_pool_log()
        backoffs = [int(x) for x in re.findall(r"crash storm: 5 abnormal exits in \d+ ms, "
                                                r"next respawn in (\d+) ms", log)]
        self.assertEqual(backoffs, [250, 500, 1000], log[-3000:])
        # four crashes: respawned at once (no storm line above); then 250,
        # 500, 1000 ms later
        for d in delays[:4]:
            self.assertLess(d, 1.0, delays)
        self.assertGreaterEqual(delays[4], 0.24, delays)
        self.assertGreaterEqual(delays[5], 0.49, delays)
        self.assertGreaterEqual(delays[6], 0.99, delays)
        self.assertLess(delays[6], 3.0, delays)
        self.assertEqual(self.stack.http("GET", "/api/health/live").status, 200)


class MasterReloadEnvFile(harness.StackTestCase):
    """--env-file re-read on SIGHUP: IMAGEGEN_MAX_BODY_BYTES (a 413 through
    nginx) and IMAGEGEN_LOG_LEVEL (debug lines in the log)."""

    @classmethod
    def setUpClass(cls):
        import tempfile
        fd, cls.env_file = tempfile.mkstemp(prefix="ig-envfile-", suffix=".env")
        os.close(fd)
        os.chmod(cls.env_file, 0o644)
        cls.write_env("IMAGEGEN_MAX_BODY_BYTES=1048576\nIMAGEGEN_LOG_LEVEL=info\n")
        cls.addClassCleanup(os.unlink, cls.env_file)
        cls.stack_args = {"pool": "master", "workers": WORKERS,
                          "extra_args": ["--env-file", cls.env_file],
                          "extra_env": {"IMAGEGEN_SWEEP_INTERVAL": "3600"}}
        super().setUpClass()

    @classmethod
    def write_env(cls, text):
        with open(cls.env_file, "w") as f:
            f.write("# written by test_pool_master\n" + text)

    def post(self, n):
        return self.stack.http("POST", "/api/images/generate", body=b"x" * n,
                               headers={"Content-Type": "application/json"})

    def test_sighup_rereads_env_file(self):
        self.assertNotEqual(self.post(5000).status, 413)
        old = wait_responders(self.stack, WORKERS)
        self.assertNotIn("(generation 2)", self.stack.read_pool_log())
        self.write_env("IMAGEGEN_MAX_BODY_BYTES=2048\nIMAGEGEN_LOG_LEVEL=debug\n")
        os.kill(self.stack.master_pid(), signal.SIGHUP)
        wait_responders(self.stack, WORKERS, exclude=old)
        self.assertEqual(harness.wait_gone(old, 5), [])
        for _ in range(6):        # both new children
            r = self.post(5000)
            self.assertEqual(r.status, 413, r)
            self.assertEqual(r.error_code(), "PAYLOAD_TOO_LARGE", r)
        self.assertNotEqual(self.post(1000).status, 413)
        # the master's own debug line for the new generation's children
        self.assertRegex(self.stack.read_pool_log(), r"started child \d+ \(generation 2\)")


if __name__ == "__main__":
    unittest.main()
