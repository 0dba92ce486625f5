"""Paths no other test walks, end to end (real nginx, pool, Postgres,
executors with the offline `local` provider and `local` storage):

  FaultHook        the local provider's `[[fail:CODE]]` prompt hook is a
                   test-only switch: with no IMAGEGEN_TEST_FAULTS such a
                   prompt renders a picture like any other; with
                   IMAGEGEN_TEST_FAULTS=1 it fails the job with CODE
  RetryCanceled    POST .../retry of a canceled job: a new job with retryOf,
                   which completes; the canceled one stays canceled
  SpawnPlain       a spawn-fcgi deployment with no master (pool mode
                   spawn-plain), so nothing sweeps by itself:
                   - `imagegen sweep` finds jobs whose executor was killed
                     (kill -9), requeues the one with attempts left and
                     fails the last attempt WORKER_LOST, prints its figures,
                     and starts an executor that completes the requeued one
                   - `imagegen worker` with IMAGEGEN_SWEEP_INTERVAL=3600 (so
                     only a NOTIFY can wake it within the test) completes
                     jobs posted while the responders' host has no free
                     executor slot: it runs them on its own host's slots

Executor processes are told apart by what they hold: the stack's temp dir
in their environment (Stack.stray_pids), `ig-executor` as their name.
"""

import fcntl
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402
import jobs_helper as jh  # noqa: E402


def as_pool_user():
    """preexec_fn: become the pool's user when root (as a deployment runs
    its `imagegen` commands), so the process started is the command
    itself."""
    if harness.IS_ROOT:
        pw = pwd.getpwnam(harness.POOL_USER)
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)


def stack_executors(stack):
    """The live `ig-executor` processes of this stack, whoever started them."""
    return sorted(p for p in stack.stray_pids() if jh.comm(p) == "ig-executor")


class Case(harness.StackTestCase):
    """One stack per class: jh.pool_env(**pool_settings) in pool mode `mode`."""

    mode = "master"
    workers = 2
    pool_settings = {}

    @classmethod
    def setUpClass(cls):
        cls.stack_args = dict(pool=cls.mode, workers=cls.workers,
                              extra_env=jh.pool_env(**cls.pool_settings))
        super().setUpClass()

    def create(self, user, prompt, **over):
        r = jh.post_job(self.stack, user.token, user.body(prompt, **over))
        self.assertEqual(r.status, 202, r)
        return r.data["jobId"]

    def wait(self, user, job_id, statuses=jh.TERMINAL, timeout=30):
        return jh.wait_job(self.stack, user.token, job_id, statuses, timeout)

    def statuses(self, job_id):
        return [t for _, t, _, _ in jh.events(self.stack, job_id)]

    def restart_pool(self, **env):
        """The pool again with env over the class's settings."""
        self.stack.stop_pool()
        self.stack.start_pool(extra_env={k: str(v) for k, v in env.items()})


# ==================================================================== master

class FaultHook(Case):

    pool_settings = {"IMAGEGEN_LOCAL_DELAY_MS": 0}

    def test_fail_prompt_hook_needs_test_faults_setting(self):
        s = self.stack
        u = jh.seed_user(s, "fault-hook")
        self.assertNotIn("IMAGEGEN_TEST_FAULTS", s.pool_env())
        # off by default: the prompt is a prompt, the picture is made
        jid = self.create(u, "[[fail:AUTH_ERROR]] a lighthouse", width=96, height=64)
        job = self.wait(u, jid)
        self.assertEqual(job["status"], "completed", json.dumps(job))
        self.assertIsNone(job.get("error"), json.dumps(job))
        pic = s.http("GET", job["publicUrl"])
        self.assertEqual(pic.status, 200, pic)
        self.assertEqual(jh.png_size(pic.body), (96, 64))
        # on: the same prompt fails the job with the code it names
        self.restart_pool(IMAGEGEN_TEST_FAULTS=1)
        try:
            jid = self.create(u, "[[fail:AUTH_ERROR]] a lighthouse", width=96, height=64)
            job = self.wait(u, jid)
        finally:
            self.restart_pool()
        self.assertEqual(job["status"], "failed", json.dumps(job))
        self.assertEqual(job["error"]["code"], "AUTH_ERROR", json.dumps(job))
        self.assertEqual(job["error"]["failureStage"], "generating", json.dumps(job))
        self.assertIsNone(job["storagePath"], json.dumps(job))


class RetryCanceled(Case):

    # long enough that the cancel lands before the picture is made
    pool_settings = {"IMAGEGEN_LOCAL_DELAY_MS": 1500}

    def test_retry_of_canceled_job_makes_new_job_that_completes(self):
        s = self.stack
        u = jh.seed_user(s, "retry-canceled")
        jid = self.create(u, "a canceled picture", width=80, height=64)
        r = jh.cancel_job(s, u.token, jid)
        self.assertIn(r.status, (200, 202), r)
        old = self.wait(u, jid)
        self.assertEqual(old["status"], "canceled", json.dumps(old))
        self.assertIsNone(old["storagePath"], json.dumps(old))

        r = jh.retry_job(s, u.token, jid)
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.data["status"], "queued", r)
        new = r.data["jobId"]
        self.assertNotEqual(new, jid)
        job = self.wait(u, new)
        self.assertEqual(job["status"], "completed", json.dumps(job))
        self.assertEqual(job["retryOf"], jid, json.dumps(job))
        for k in ("projectId", "branchId", "jobType", "prompt", "width", "height"):
            self.assertEqual(job[k], old[k], k)
        self.assertEqual(jh.png_size(s.http("GET", job["publicUrl"]).body), (80, 64))
        self.assertEqual(self.statuses(new),
                         ["queued", "processing", "generating", "uploading", "completed"])
        # the canceled job is left as it was
        again = jh.get_job(s, u.token, jid).data
        self.assertEqual(again["status"], "canceled", json.dumps(again))
        self.assertIsNone(again["retryOf"], json.dumps(again))


# ==================================================================== spawn-plain

class SpawnPlain(Case):
    """No master: the responders start executors for the jobs they take;
    nothing recovers or restarts work but `imagegen sweep` and `imagegen
    worker`."""

    mode = "spawn-plain"
    pool_settings = {"IMAGEGEN_MAX_RUNNING_JOBS": 2, "IMAGEGEN_LOCAL_DELAY_MS": 4000}

    def cli(self, args, env_extra=None):
        """(argv, env) of `imagegen ARGS` with the pool's settings and
        env_extra; run it with preexec_fn=as_pool_user."""
        return [harness.imagegen_bin()] + args, self.stack.pool_env(env_extra)

    def test_sweep_command_recovers_jobs_of_killed_executors(self):
        s = self.stack
        u = jh.seed_user(s, "sweep-cli")
        a = self.create(u, "requeued after its executor died")
        b = self.create(u, "failed after its last executor died")
        for jid in (a, b):
            self.wait(u, jid, statuses=("generating",), timeout=15)
        execs = stack_executors(s)
        self.assertEqual(len(execs), 2, "want the two jobs' executors, have %s" % execs)
        for p in execs:
            os.kill(p, signal.SIGKILL)
        self.assertEqual(harness.wait_gone(execs, 10), [])
        # b had its last attempt
        s.psql("UPDATE public.image_generation_jobs SET max_attempts = 1 WHERE id = '%s'" % b)
        # no master: nothing notices by itself
        time.sleep(2)
        for jid in (a, b):
            self.assertEqual(jh.get_job(s, u.token, jid).data["status"], "generating")

        argv, env = self.cli(["sweep"], {"IMAGEGEN_LOCAL_DELAY_MS": "0"})
        p = subprocess.run(argv, env=env, cwd=s.tmp, stdin=subprocess.DEVNULL,
                           preexec_fn=as_pool_user,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        m = re.search(r"requeued (\d+), failed (\d+)", p.stdout)
        self.assertIsNotNone(m, "no figures in: %r" % p.stdout)
        self.assertEqual((int(m.group(1)), int(m.group(2))), (1, 1), p.stdout)

        job_b = jh.get_job(s, u.token, b).data
        self.assertEqual(job_b["status"], "failed", json.dumps(job_b))
        self.assertEqual(job_b["error"]["code"], "WORKER_LOST", json.dumps(job_b))
        # the sweep started an executor for what it requeued
        job_a = self.wait(u, a, timeout=30)
        self.assertEqual(job_a["status"], "completed", json.dumps(job_a))
        self.assertEqual(job_a["attempts"], 2, json.dumps(job_a))
        st = self.statuses(a)
        self.assertEqual(st[:3], ["queued", "processing", "generating"], st)
        self.assertIn("queued", st[3:], st)
        self.assertEqual(st[-1], "completed", st)
        self.assertTrue(harness.wait_until(lambda: not stack_executors(s), 15),
                        "executors left: %s" % stack_executors(s))

    def hold_pool_slots(self):
        """Takes every executor slot of the responders' host (what its
        running executors would hold) until the returned files are closed."""
        held = []
        try:
            for i in range(self.pool_settings["IMAGEGEN_MAX_RUNNING_JOBS"]):
                path = os.path.join(self.stack.slot_dir, "slot-%d" % i)
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
                held.append(fd)
                if harness.IS_ROOT:
                    shutil.chown(path, harness.POOL_USER, harness.POOL_USER)
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            for fd in held:
                os.close(fd)
            raise
        return held

    def test_worker_completes_queued_jobs_woken_by_notify(self):
        s = self.stack
        u = jh.seed_user(s, "worker-notify")
        self.assertTrue(harness.wait_until(lambda: not stack_executors(s), 15))
        self.assertEqual(int(s.psql("SELECT count(*) FROM public.image_generation_jobs"
                                    " WHERE status = 'queued'").strip()), 0)
        held = self.hold_pool_slots()
        self.addCleanup(lambda: [os.close(fd) for fd in held])

        # the responders' host is full: a job posted now waits
        first = self.create(u, "posted before any worker", width=64, height=64)
        time.sleep(1.5)
        self.assertEqual(jh.get_job(s, u.token, first).data["status"], "queued")
        self.assertEqual(stack_executors(s), [])

        # a worker on a second host (its own slots), sweeping only hourly
        wdir = os.path.join(s.tmp, "worker-host")
        os.makedirs(wdir, mode=0o700)
        slots = os.path.join(wdir, "slots")
        os.makedirs(slots, mode=0o700)
        if harness.IS_ROOT:
            for d in (wdir, slots):
                shutil.chown(d, harness.POOL_USER, harness.POOL_USER)
        log_path = os.path.join(s.tmp, "worker.log")
        argv, env = self.cli(["worker"], {"IMAGEGEN_SLOT_DIR": slots,
                                          "IMAGEGEN_SWEEP_INTERVAL": "3600",
                                          "IMAGEGEN_LOCAL_DELAY_MS": "0"})
        log = open(log_path, "ab")
        self.addCleanup(log.close)
        worker = subprocess.Popen(argv, env=env, cwd=s.tmp, stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=log, start_new_session=True,
                                  preexec_fn=as_pool_user)

        def stop_worker():
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(10)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait(5)
        self.addCleanup(stop_worker)

        def worker_log():
            with open(log_path, errors="replace") as f:
                return f.read()

        # its first pass (at start) runs what is queued already
        self.assertEqual(self.wait(u, first, timeout=20)["status"], "completed")
        self.assertIn(first, worker_log())
        # then it waits: an hour for its next pass, or a NOTIFY
        self.assertTrue(harness.wait_until(lambda: not stack_executors(s), 15))
        time.sleep(1)
        self.assertIsNone(worker.poll(), worker_log())

        t0 = time.monotonic()
        jobs = [self.create(u, "woken by notify %d" % i, width=64, height=64)
                for i in range(3)]
        done = [self.wait(u, jid, timeout=30) for jid in jobs]
        took = time.monotonic() - t0
        for job in done:
            self.assertEqual(job["status"], "completed", json.dumps(job))
        # with the next sweep an hour away, only a NOTIFY explains this
        self.assertLess(took, 8, "slower than a NOTIFY wake-up")
        # run by executors of the worker's host: the responders' slots were
        # held all along, the worker's own were taken, and its executors
        # (its children's output is its log) told of each job
        self.assertTrue(os.listdir(slots), "the worker took no slot of its host")
        text = worker_log()
        for jid in jobs:
            self.assertIn(jid, text)

        stop_worker()
        self.assertEqual(worker.returncode, 0, worker_log())
        self.assertIn("worker: signal 15, exiting", worker_log())


if __name__ == "__main__":
    unittest.main()
