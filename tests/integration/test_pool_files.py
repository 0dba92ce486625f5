"""The files the pool opens at start: the pid file (written after the
privilege drop, as the pool's user) and the executors' slot directory.  imagegen-fcgi is
started straight from a temp dir (no database needed to start), as root
with --user www-data when the tests run as root."""

import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402


def pool_uid():
    return pwd.getpwnam(harness.POOL_USER).pw_uid if harness.IS_ROOT else os.geteuid()


class PoolFiles(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ig-poolfiles-")
        os.chmod(self.tmp, 0o755)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.run_dir = self.mkdir("run")
        self.slots = self.mkdir("slots", mode=0o700)

    def mkdir(self, name, mode=0o755, owner=True):
        p = os.path.join(self.tmp, name)
        os.makedirs(p, exist_ok=True)
        os.chmod(p, mode)
        if owner and harness.IS_ROOT:
            os.chown(p, pool_uid(), -1)
        return p

    def start(self, env_over=None, pid_file=None, cwd=None, timeout=4.0):
        """Starts a 1-worker pool; returns (exit status or None when it
        was still running after timeout (then stopped), stderr)."""
        env = harness._clean_env()
        env.update(DATABASE_URL="postgresql://nobody@/none?host=%s" % self.tmp,
                   IMAGEGEN_SLOT_DIR=self.slots)
        env.update(env_over or {})
        env = {k: v for k, v in env.items() if v is not None}
        argv = [harness.imagegen_fcgi_bin(), "--listen", os.path.join(self.run_dir, "s.sock"),
                "--workers", "1"]
        if pid_file:
            argv += ["--pid-file", pid_file]
        if harness.IS_ROOT:
            argv += ["--user", harness.POOL_USER]
        p = subprocess.Popen(argv, env=env, cwd=cwd or self.tmp, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True)
        try:
            _, err = p.communicate(timeout=timeout)
            return p.returncode, err.decode(errors="replace")
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGTERM)
            _, err = p.communicate(timeout=20)
            return None, err.decode(errors="replace")

    # ---------------------------------------------------------------- pid file

    def victim(self):
        v = os.path.join(self.tmp, "victim")
        with open(v, "w") as f:
            f.write("precious\n")
        os.chmod(v, 0o644)
        return v

    def assert_victim_untouched(self, v):
        with open(v) as f:
            self.assertEqual(f.read(), "precious\n")

    def test_pid_file_symlink_not_followed(self):
        v = self.victim()
        pid = os.path.join(self.run_dir, "imagegen-fcgi.pid")
        os.symlink(v, pid)
        rc, err = self.start(pid_file=pid)
        self.assert_victim_untouched(v)
        self.assertIsNotNone(rc, "the pool ran with a symlink as its pid file:\n" + err)
        self.assertEqual(rc, 2, err)
        self.assertIn("symbolic link", err)
        self.assertTrue(os.path.islink(pid))

    def test_pid_file_hard_link_not_written(self):
        v = self.victim()
        pid = os.path.join(self.run_dir, "imagegen-fcgi.pid")
        os.link(v, pid)
        rc, err = self.start(pid_file=pid)
        self.assert_victim_untouched(v)
        self.assertEqual(rc, 2, err)
        self.assertIn("--pid-file", err)

    @unittest.skipUnless(harness.IS_ROOT, "needs root: the attack is on root's write")
    def test_pid_file_in_symlinked_directory_not_written_as_root(self):
        # The pool user owns the run directory and makes a directory in it
        # a link to a root-owned directory holding a root-owned file.
        target = os.path.join(self.tmp, "rootdir")
        os.mkdir(target, 0o755)
        v = os.path.join(target, "imagegen-fcgi.pid")
        with open(v, "w") as f:
            f.write("precious\n")
        os.chmod(v, 0o644)
        os.symlink(target, os.path.join(self.run_dir, "d"))
        rc, err = self.start(pid_file=os.path.join(self.run_dir, "d", "imagegen-fcgi.pid"))
        self.assert_victim_untouched(v)
        self.assertEqual(rc, 2, err)
        self.assertIn("--pid-file", err)

    def test_pid_file_written_0644_and_removed(self):
        pid = os.path.join(self.run_dir, "imagegen-fcgi.pid")
        env = harness._clean_env()
        env.update(DATABASE_URL="postgresql://nobody@/none?host=%s" % self.tmp,
                   IMAGEGEN_SLOT_DIR=self.slots)
        argv = [harness.imagegen_fcgi_bin(), "--listen", os.path.join(self.run_dir, "s.sock"),
                "--workers", "1", "--pid-file", pid]
        if harness.IS_ROOT:
            argv += ["--user", harness.POOL_USER]
        p = subprocess.Popen(argv, env=env, cwd=self.tmp, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        try:
            self.assertTrue(harness.wait_until(lambda: os.path.exists(pid), 5), "no pid file")
            st = os.lstat(pid)
            self.assertTrue(stat.S_ISREG(st.st_mode))
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o644)
            with open(pid) as f:
                self.assertEqual(f.read(), "%d\n" % p.pid)
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(20)
        self.assertFalse(os.path.exists(pid))

    # ---------------------------------------------------------------- slots

    def test_slot_dir_writable_by_others_refused(self):
        os.chmod(self.slots, 0o777)
        rc, err = self.start()
        self.assertEqual(rc, 2, "pool ran with a 0777 slot directory:\n" + err)
        self.assertIn("writable by group or others", err)

    def test_slot_dir_not_ours_refused(self):
        if harness.IS_ROOT:
            other = self.mkdir("rootslots", mode=0o700, owner=False)   # root's
        else:
            other = "/usr/share"                                        # root's, 0755
        rc, err = self.start({"IMAGEGEN_SLOT_DIR": other})
        self.assertEqual(rc, 2, "pool ran with a slot directory of another user:\n" + err)
        self.assertIn("not by us", err)

    def test_slot_dir_symlink_refused(self):
        link = os.path.join(self.tmp, "slots-link")
        os.symlink(self.slots, link)
        rc, err = self.start({"IMAGEGEN_SLOT_DIR": link})
        self.assertEqual(rc, 2, err)
        self.assertIn("not a directory", err)

    def test_slot_dir_default_under_state_dir(self):
        state = self.mkdir("state")
        rc, err = self.start({"IMAGEGEN_SLOT_DIR": None}, cwd=state, timeout=1.5)
        self.assertIsNone(rc, "the pool exited (%s):\n%s" % (rc, err))
        d = os.path.join(state, "var", "run", "slots")
        st = os.lstat(d)
        self.assertTrue(stat.S_ISDIR(st.st_mode))
        self.assertEqual(st.st_uid, pool_uid())
        self.assertEqual(stat.S_IMODE(st.st_mode) & 0o077, 0, oct(st.st_mode))

    def test_slot_dir_fine_one_starts(self):
        rc, err = self.start(timeout=1.5)
        self.assertIsNone(rc, "the pool exited (%s):\n%s" % (rc, err))


if __name__ == "__main__":
    unittest.main()
