"""The executor's hard cases, end to end: signals, the claim under a full cap
or a held lock, the spooled image a requeued attempt re-uploads, a database
blip at persist, the job deadline, the sweeper's cancel of a lost job, a
failed second fork, and the descriptors an executor holds.

  ExecSignals       SIGTERM stops an executor at a stage boundary (requeued,
                    then re-uploaded); no inherited FastCGI descriptor
  ExecRequeue       kill -9 while generating: the requeued job shows no error;
                    a lost job whose cancel was asked ends canceled
  ExecClaimLocks    a queued job whose lock is held is skipped, not waited
                    for; the claim lock's key is the documented one; the
                    sweeper deletes objects of jobs that ended failed and
                    spool files no job needs
  ExecCapFull       the cap full of rows whose executors are dead: nothing
                    spins until the sweeper requeues them
  ExecSpool         the Gemini fake, a test-only pause before each upload:
                    kill -9 before the upload re-uploads, never regenerates;
                    a Postgres restart at persist costs nothing
  ExecDeadline      IMAGEGEN_JOB_TIMEOUT=5: JOB_TIMEOUT at generating and
                    at uploading
  ExecSecondFork    the second fork fails (test-only setting): logged, the
                    job stays queued
"""

import os
import signal
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))

import harness  # noqa: E402
import jobs_helper as jh  # noqa: E402
from nano_banana import FakeNanoBanana  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


class ExecCase(harness.StackTestCase):
    """One stack per class: master pool, nginx, Postgres."""

    workers = 2
    pool_settings = {}

    @classmethod
    def setUpClass(cls):
        cls.stack_args = dict(pool="master", workers=cls.workers,
                              extra_env=jh.pool_env(**cls.pool_settings))
        super().setUpClass()

    # ------------------------------------------------------------ helpers

    def create(self, user, prompt, **over):
        r = jh.post_job(self.stack, user.token, user.body(prompt, **over))
        self.assertEqual(r.status, 202, r)
        return r.data["jobId"]

    def wait(self, user, jid, statuses=jh.TERMINAL, timeout=30):
        return jh.wait_job(self.stack, user.token, jid, statuses, timeout)

    def wait_db(self, jid, statuses=jh.TERMINAL, timeout=30):
        """The job's row once its status is in statuses (read by the
        superuser: works while the pool reconnects)."""
        def row():
            try:
                r = self.row(jid)
            except harness.HarnessError:
                return None
            return r if r and r["status"] in statuses else None
        r = harness.wait_until(row, timeout, interval=0.1)
        self.assertTrue(r, "job %s not %s after %ds: %s"
                        % (jid, "/".join(statuses), timeout, self.row_quiet(jid)))
        return r

    def row(self, jid):
        return jh.psql_json(self.stack, "SELECT row_to_json(j) FROM"
                            " public.image_generation_jobs j WHERE id = '%s'" % jid)

    def row_quiet(self, jid):
        try:
            return self.row(jid)
        except harness.HarnessError as e:
            return repr(e)

    def statuses(self, jid):
        return [t for _, t, _, _ in jh.events(self.stack, jid)]

    def requeue_events(self, jid):
        return jh.psql_json(self.stack,
                            "SELECT coalesce(json_agg(detail ORDER BY id), '[]')"
                            " FROM public.image_generation_job_events"
                            " WHERE job_id = '%s' AND event = 'requeued'" % jid)

    def executor(self):
        """The one live ig-executor under the master."""
        execs = jh.executors(self.stack.master_pid())
        self.assertEqual(len(execs), 1, "want one ig-executor, have %s" % execs)
        return execs[0]

    WALK = {"queued": [], "processing": ["processing"],
            "generating": ["processing", "generating"],
            "uploading": ["processing", "generating", "uploading"]}

    def insert_job_sql(self, user, jid, prompt, status="queued", storage_path=None):
        """One transaction that writes a job row as the superuser (no
        responder spawns for it) and walks it to status the state
        machine's way: no sweeper sees it half-way."""
        sql = ["BEGIN", "INSERT INTO public.image_generation_jobs (id, user_id, project_id,"
               " branch_id, job_type, prompt, width, height) VALUES ('%s', '%s', '%s',"
               " '%s', 'master_asset', '%s', 64, 64)"
               % (jid, user.id, user.project_id, user.branch_id, prompt)]
        for st in self.WALK[status]:
            sql.append("UPDATE public.image_generation_jobs SET status = '%s', attempts = 1,"
                       " deadline_at = now() + interval '1 hour'%s WHERE id = '%s'"
                       % (st, ", storage_path = '%s'" % storage_path
                          if storage_path and st == "uploading" else "", jid))
        sql.append("COMMIT")
        return "; ".join(sql)

    def insert_job(self, user, prompt, status="queued"):
        jid = str(uuid.uuid4())
        self.stack.psql(self.insert_job_sql(user, jid, prompt, status))
        return jid

    def spool_files(self):
        return sorted(os.listdir(self.stack.spool_dir))

    def storage_files_of(self, jid):
        return [f for f in jh.storage_files(self.stack) if jid in f]

    def run_cli(self, *args, timeout=60):
        """`imagegen ARGS` with the pool's environment, as the pool's user."""
        argv = self.stack._run_as(harness.POOL_USER if harness.IS_ROOT else None,
                                  [harness.imagegen_bin()] + list(args))
        return subprocess.run(argv, env=self.stack.pool_env(), cwd=self.stack.tmp,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=timeout)


def proc_status(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
    return None


def cpu_ticks(pids):
    """utime + stime of pids (those still alive), in clock ticks."""
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rindex(")") + 2:].split()
        total += int(rest[11]) + int(rest[12])
    return total


def unix_socket_paths():
    """{inode: path} of the unix sockets in /proc/net/unix."""
    out = {}
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            parts = line.split()
            if len(parts) >= 7:
                out[int(parts[6])] = parts[7] if len(parts) > 7 else ""
    return out


# ==================================================================== signals

class ExecSignals(ExecCase):
    """Each render takes 3 s; the sweeper runs every second."""

    pool_settings = {"IMAGEGEN_LOCAL_DELAY_MS": 3000}

    def test_executor_takes_sigterm_at_stage_boundary(self):
        s = self.stack
        u = jh.seed_user(s, "sigterm")
        jid = self.create(u, "a job told to stop")
        self.wait(u, jid, statuses=("generating",), timeout=10)
        pid = self.executor()
        blocked = int(proc_status(pid, "SigBlk"), 16)
        self.assertEqual(blocked & (1 << (signal.SIGTERM - 1)), 0,
                         "the executor starts with SIGTERM blocked (SigBlk %x)" % blocked)
        os.kill(pid, signal.SIGTERM)
        t0 = time.monotonic()
        # the render ends within 3 s; the executor stops at that boundary
        self.assertEqual(harness.wait_gone([pid], 6), [],
                         "the executor ignored SIGTERM for 6 s")
        self.assertLess(time.monotonic() - t0, 6)
        rq = self.requeue_events(jid)
        self.assertEqual([e.get("code") for e in rq], ["EXECUTOR_STOPPED"], rq)
        job = self.wait(u, jid, timeout=20)
        self.assertEqual(job["status"], "completed", job)
        self.assertEqual(job["attempts"], 2, job)
        self.assertNotIn("error", job)
        st = self.statuses(jid)
        self.assertEqual(st[:4], ["queued", "processing", "generating", "queued"], st)
        # the image it had generated was kept and uploaded, not made again
        self.assertIn("job %s: re-upload" % jid, s.read_pool_log())
        self.assertEqual(self.storage_files_of(jid),
                         [os.path.join("asset-images", job["storagePath"])])
        self.assertEqual(self.spool_files(), [])

    def test_executor_holds_no_fastcgi_fd(self):
        s = self.stack
        u = jh.seed_user(s, "fds")
        jid = self.create(u, "a job whose descriptors are counted")
        self.wait(u, jid, statuses=("generating",), timeout=10)
        pid = self.executor()
        fds = {}
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                fds[int(fd)] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                pass
        self.assertEqual(fds.get(0), "/dev/null", fds)
        self.assertEqual(fds.get(1), "/dev/null", fds)
        self.assertTrue(fds.get(3, "").startswith(s.slot_dir + "/slot-"), fds)
        paths = unix_socket_paths()
        fcgi = []
        for fd, target in fds.items():
            if target.startswith("socket:["):
                inode = int(target[len("socket:["):-1])
                if paths.get(inode) == s.pool_socket:
                    fcgi.append((fd, target))
        self.assertEqual(fcgi, [], "the executor holds FastCGI sockets (%s): %s"
                         % (s.pool_socket, fds))
        # every other descriptor is its own: the log, the slot, its database
        # connection (a socket of its own, not the listener's)
        self.assertLessEqual(len(fds), 6, fds)
        self.assertEqual(self.wait(u, jid, timeout=20)["status"], "completed")


# ==================================================================== requeue

class ExecRequeue(ExecCase):
    pool_settings = {"IMAGEGEN_LOCAL_DELAY_MS": 3000, "IMAGEGEN_MAX_ATTEMPTS": 3}

    def test_requeue_clears_error_code(self):
        s = self.stack
        u = jh.seed_user(s, "requeue")
        jid = self.create(u, "a job whose executor dies")
        self.wait(u, jid, statuses=("generating",), timeout=10)
        pid = self.executor()
        os.kill(pid, signal.SIGKILL)
        self.assertEqual(harness.wait_gone([pid], 5), [])
        seen = []

        def second_attempt():
            r = jh.get_job(s, u.token, jid)
            self.assertEqual(r.status, 200, r)
            if r.data["attempts"] == 2 or r.data["status"] == "queued":
                seen.append(r.data)
            return r.data["status"] in jh.TERMINAL
        self.assertTrue(harness.wait_until(second_attempt, 20, interval=0.05))
        self.assertTrue(seen, "the requeued attempt was never seen")
        shown = [(j["status"], j["error"]) for j in seen
                 if j["status"] != "completed" and "error" in j]
        self.assertEqual(shown, [], "a requeued job showed an error")
        job = self.wait(u, jid)
        self.assertEqual(job["status"], "completed", job)
        self.assertEqual(job["attempts"], 2, job)
        # why it was requeued stays in the event log
        self.assertEqual([e["code"] for e in self.requeue_events(jid)], ["WORKER_LOST"])

    def test_sweeper_cancels_lost_job_with_cancel_requested(self):
        s = self.stack
        u = jh.seed_user(s, "lost-cancel")
        jid = self.create(u, "a lost job its owner canceled")
        self.wait(u, jid, statuses=("generating",), timeout=10)
        pid = self.executor()
        os.kill(pid, signal.SIGSTOP)        # it cannot see the cancel …
        try:
            r = jh.cancel_job(s, u.token, jid)
            self.assertIn(r.status, (200, 202), r)
            self.assertTrue(self.row(jid)["cancel_requested"])
        finally:
            os.kill(pid, signal.SIGKILL)    # … and never will
        self.assertEqual(harness.wait_gone([pid], 5), [])
        job = self.wait(u, jid, timeout=15)
        self.assertEqual(job["status"], "canceled", job)
        self.assertEqual(job["attempts"], 1, "the lost job ran again: %s" % job)
        self.assertEqual(self.statuses(jid), ["queued", "processing", "generating", "canceled"])
        self.assertIsNone(job.get("publicUrl"), job)
        self.assertEqual(self.storage_files_of(jid), [])


# ==================================================================== claim

class ExecClaimLocks(ExecCase):
    pool_settings = {"IMAGEGEN_MAX_RUNNING_JOBS": 2}

    def test_claim_skips_job_whose_lock_is_held(self):
        s = self.stack
        u = jh.seed_user(s, "held-lock")
        held = self.insert_job(u, "a job an old executor still holds")
        with jh.PsqlSession(s) as holder, jh.PsqlSession(s) as db:
            holder.value("SELECT pg_advisory_lock(hashtextextended('%s', 0))" % held)
            time.sleep(2.5)         # sweeps kick executors at the held job
            waiting = jh.Sampler(lambda: int(db.value(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")),
                0.05)
            waiting.start()
            try:
                t0 = time.monotonic()
                jid = self.create(u, "a job behind it")
                job = self.wait(u, jid, timeout=10)
                took = time.monotonic() - t0
                time.sleep(1)
            finally:
                samples = waiting.stop()
            self.assertEqual(job["status"], "completed", job)
            self.assertLess(took, 5.0, "a job waited %.1fs behind a held job lock" % took)
            self.assertTrue(samples)
            self.assertEqual(max(samples), 0,
                             "claimers waited on an advisory lock: %s" % samples)
            self.assertEqual(self.row(held)["status"], "queued")
            holder.value("SELECT pg_advisory_unlock(hashtextextended('%s', 0))" % held)
        self.assertEqual(self.wait(u, held, timeout=15)["status"], "completed")

    def test_sweeper_removes_objects_of_ended_jobs_and_unneeded_spool_files(self):
        s = self.stack
        u = jh.seed_user(s, "sweep-clean")

        def own(path):
            if harness.IS_ROOT:
                harness._chown(path, harness.POOL_USER)

        def put(path, data, mode=0o600):
            d = os.path.dirname(path)
            made = []
            while not os.path.isdir(d):
                made.append(d)
                d = os.path.dirname(d)
            for d in reversed(made):
                os.mkdir(d, 0o755)
                own(d)
            with open(path, "wb") as f:
                f.write(data)
            os.chmod(path, mode)
            own(path)

        # a job that failed at uploading, its object left behind
        failed = str(uuid.uuid4())
        obj = "project_%s/branch_%s/master-assets/%s_1700000000000_deadbeef.png" % (
            u.project_id, u.branch_id, failed)
        s.psql(self.insert_job_sql(u, failed, "a job that failed with an object", "uploading",
                                   obj).replace("; COMMIT", "; UPDATE public.image_generation_jobs"
                                                " SET status = 'failed', failure_stage ="
                                                " 'uploading', error_code = 'STORAGE_ERROR'"
                                                " WHERE id = '%s'; COMMIT" % failed))
        with jh.PsqlSession(s) as holder:
            # … and a running job whose executor lives (its lock is held
            # from before the job is seen running)
            alive = str(uuid.uuid4())
            holder.value(self.insert_job_sql(u, alive, "a job still uploading", "uploading")
                         .replace("; COMMIT", "; SELECT pg_advisory_lock(hashtextextended("
                                  "'%s', 0)); COMMIT" % alive))
            put(os.path.join(s.storage_dir, "asset-images", obj), b"\x89PNG left behind")
            gone = str(uuid.uuid4())
            for name in (failed + ".spool", gone + ".spool", alive + ".spool",
                         alive + ".4242.part", "not-a-spool-file"):
                put(os.path.join(s.spool_dir, name), b"IGSPOOL1 -\nbytes")

            def cleaned():
                return (not os.path.exists(os.path.join(s.storage_dir, "asset-images", obj))
                        and self.spool_files() == sorted([alive + ".spool",
                                                          "not-a-spool-file"]))
            ok = harness.wait_until(cleaned, 10, interval=0.1)
            self.assertTrue(ok, "left after 10 s of sweeps: object %s, spool %s"
                            % (os.path.exists(os.path.join(s.storage_dir, "asset-images", obj)),
                               self.spool_files()))
            row = self.row(failed)
            self.assertIsNone(row["storage_path"], row)
            self.assertIsNone(row["public_url"], row)
            self.assertEqual(row["status"], "failed")
            self.assertEqual(self.row(alive)["status"], "uploading")
            # it ends (its executor gone): the spool file it had goes too
            s.psql("UPDATE public.image_generation_jobs SET status = 'failed',"
                   " failure_stage = 'uploading', error_code = 'TEST' WHERE id = '%s'" % alive)
            holder.value("SELECT pg_advisory_unlock(hashtextextended('%s', 0))" % alive)
        self.assertTrue(harness.wait_until(
            lambda: self.spool_files() == ["not-a-spool-file"], 10, interval=0.1),
            "the spool of an ended job stayed: %s" % self.spool_files())

    def test_claim_lock_key_is_namespaced(self):
        s = self.stack
        u = jh.seed_user(s, "claim-key")
        with jh.PsqlSession(s) as db:
            db.value("BEGIN; SELECT pg_advisory_xact_lock(hashtextextended('imagegen:claim', 0))")
            jid = self.create(u, "a job behind the claim lock")
            time.sleep(2)
            self.assertEqual(self.row(jid)["status"], "queued",
                             "a claim went by the lock on hashtextextended('imagegen:claim', 0)")
            db.value("COMMIT; SELECT 1")
        self.assertEqual(self.wait(u, jid, timeout=15)["status"], "completed")


# ==================================================================== cap full

class ExecCapFull(ExecCase):
    """The master sweeps once at start, then not for an hour."""

    pool_settings = {"IMAGEGEN_MAX_RUNNING_JOBS": 2, "IMAGEGEN_SWEEP_INTERVAL": 3600}

    def test_cap_full_executor_exits_without_spinning(self):
        s = self.stack
        u = jh.seed_user(s, "cap-full")
        time.sleep(1)               # the start-up sweep is over
        dead = [self.insert_job(u, "a job whose executor died %d" % i, "processing")
                for i in range(2)]
        jid = self.create(u, "a job over the cap")
        time.sleep(1)
        family = lambda: ([s.master_pid()] + list(jh.family(s.master_pid()))
                          + [s.postmaster_pid()] + list(jh.family(s.postmaster_pid())))
        pids = family()
        execs0 = jh.executors(s.master_pid())
        t0 = cpu_ticks(pids)
        time.sleep(5)
        burnt = (cpu_ticks(pids) - t0) / CLK_TCK
        execs = jh.executors(s.master_pid())
        sys.stderr.write("\ncap full: %d executor(s); pool + Postgres CPU over 5 s: %.2f s\n"
                         % (len(execs), burnt))
        self.assertEqual(execs0, [], "an executor stayed at a full cap: %s" % execs0)
        self.assertEqual(execs, [], "an executor stayed at a full cap: %s" % execs)
        self.assertLess(burnt, 0.5, "%.2f s of CPU in 5 s with nothing to do" % burnt)
        self.assertEqual(self.row(jid)["status"], "queued")
        # the sweeper requeues the dead rows and starts the work
        r = self.run_cli("sweep")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("requeued 2", r.stdout)
        for j in dead + [jid]:
            self.assertEqual(self.wait(u, j, timeout=20)["status"], "completed")


# ==================================================================== spool

class ExecSpool(ExecCase):
    """The Gemini fake; each executor pauses 3 s after recording where it
    will upload, before the upload (IMAGEGEN_TEST_STAGE_DELAY_MS)."""

    key = "fake-key-exec-spool-0123456789"

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeNanoBanana().start()
        cls.addClassCleanup(cls.fake.stop)
        cls.pool_settings = {"IMAGEGEN_PROVIDER": "gemini", "NANO_BANANA_API_KEY": cls.key,
                             "NANO_BANANA_API_URL": cls.fake.url,
                             "IMAGEGEN_TEST_STAGE_DELAY_MS": 3000,
                             "IMAGEGEN_MAX_ATTEMPTS": 3}
        super().setUpClass()

    def setUp(self):
        self.fake.reset()

    def calls_for(self, prompt):
        return [r for r in self.fake.requests_to("generateContent")
                if prompt in (r.body or b"").decode(errors="replace")]

    def test_spooled_image_reuploaded_not_regenerated(self):
        s = self.stack
        u = jh.seed_user(s, "spool")
        prompt = "paid for once %s" % uuid.uuid4().hex[:8]
        jid = self.create(u, prompt)
        self.wait(u, jid, statuses=("uploading",), timeout=15)
        before = self.row(jid)
        self.assertIsNotNone(before["storage_path"], "no path recorded before the upload")
        self.assertEqual(self.spool_files(), [jid + ".spool"])
        mode = os.stat(os.path.join(s.spool_dir, jid + ".spool")).st_mode & 0o777
        self.assertEqual(mode, 0o600)
        self.assertEqual(os.stat(s.spool_dir).st_mode & 0o777, 0o700)
        image = self.fake.last_image
        pid = self.executor()
        os.kill(pid, signal.SIGKILL)
        self.assertEqual(harness.wait_gone([pid], 5), [])
        self.assertEqual(self.storage_files_of(jid), [], "uploaded before the kill")

        job = self.wait(u, jid, timeout=30)
        self.assertEqual(job["status"], "completed", job)
        self.assertEqual(job["attempts"], 2, job)
        self.assertEqual(len(self.calls_for(prompt)), 1,
                         "the provider was called again for a paid image")
        self.assertIn("job %s: re-upload" % jid, s.read_pool_log())
        self.assertEqual(job["storagePath"], before["storage_path"])
        self.assertEqual(job["cost"]["actual"], float(before["actual_cost"]))
        self.assertEqual(self.storage_files_of(jid),
                         [os.path.join("asset-images", job["storagePath"])])
        with open(os.path.join(s.storage_dir, "asset-images", job["storagePath"]), "rb") as f:
            self.assertEqual(f.read(), image)
        self.assertEqual(self.spool_files(), [])

    def test_executor_takes_sigterm_during_retry_wait(self):
        # The model asks for a 30 s wait; told to stop meanwhile, the
        # executor gives the job back at once instead of sleeping it out
        # (and then paying for another call).
        s = self.stack
        u = jh.seed_user(s, "sigterm-wait")
        prompt = "stopped while waiting %s" % uuid.uuid4().hex[:8]
        self.fake.push({"name": "429_retry_after", "seconds": 30}, "ok")
        jid = self.create(u, prompt)
        self.assertTrue(harness.wait_until(
            lambda: "job %s: RATE_LIMIT, retry 1" % jid in s.read_pool_log(), 10),
            "the executor never started its wait")
        pid = self.executor()
        t0 = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        self.assertEqual(harness.wait_gone([pid], 5), [],
                         "the executor slept on through SIGTERM")
        self.assertLess(time.monotonic() - t0, 3)
        rq = self.requeue_events(jid)
        self.assertEqual([e.get("code") for e in rq], ["EXECUTOR_STOPPED"], rq)
        job = self.wait(u, jid, timeout=30)
        self.assertEqual(job["status"], "completed", job)
        self.assertEqual([r.status for r in self.calls_for(prompt)], [429, 200])

    def test_last_attempt_lost_while_uploading_still_stores_its_image(self):
        # The executor dies in uploading on the job's last attempt: the
        # image is paid for and spooled, so the sweeper gives the job one
        # more attempt that only stores it, instead of failing the job and
        # deleting what was bought.
        s = self.stack
        u = jh.seed_user(s, "last-attempt")
        prompt = "stored on the last attempt %s" % uuid.uuid4().hex[:8]
        jid = self.create(u, prompt)
        self.wait(u, jid, statuses=("uploading",), timeout=15)
        s.psql("UPDATE public.image_generation_jobs SET max_attempts = attempts"
               " WHERE id = '%s'" % jid)
        pid = self.executor()
        os.kill(pid, signal.SIGKILL)
        self.assertEqual(harness.wait_gone([pid], 5), [])
        job = self.wait(u, jid, timeout=30)
        self.assertEqual(job["status"], "completed", job)
        self.assertEqual(len(self.calls_for(prompt)), 1,
                         "the provider was called again for a paid image")
        self.assertEqual(self.storage_files_of(jid),
                         [os.path.join("asset-images", job["storagePath"])])
        self.assertEqual(self.spool_files(), [])

    def test_stored_object_finishes_job_without_spool(self):
        """An attempt killed after its upload, its spool on another host:
        the next attempt finds the object at the recorded path and
        completes the job with it, without calling the provider."""
        s = self.stack
        u = jh.seed_user(s, "stored")
        prompt = "stored before the kill %s" % uuid.uuid4().hex[:8]
        jid = self.create(u, prompt)
        self.wait(u, jid, statuses=("uploading",), timeout=15)
        path = self.row(jid)["storage_path"]
        image = self.fake.last_image
        pid = self.executor()
        # as the upload would have left it, and no spool on this host
        dest = os.path.join(s.storage_dir, "asset-images", path)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as f:
            f.write(image)
        os.chmod(dest, 0o644)
        os.unlink(os.path.join(s.spool_dir, jid + ".spool"))
        os.kill(pid, signal.SIGKILL)
        self.assertEqual(harness.wait_gone([pid], 5), [])
        job = self.wait(u, jid, timeout=30)
        self.assertEqual(job["status"], "completed", job)
        self.assertEqual(job["attempts"], 2, job)
        self.assertEqual(job["storagePath"], path)
        self.assertEqual(len(self.calls_for(prompt)), 1, "generated again")
        self.assertIn("job %s: its image is already stored" % jid, s.read_pool_log())
        self.assertEqual(self.storage_files_of(jid), [os.path.join("asset-images", path)])
        self.assertEqual(self.spool_files(), [])

    def blip(self, jid, prompt, down_s):
        """Postgres down for down_s seconds now; then the job must complete
        with its one paid image: one provider call, one object, no spool
        file. The executor reconnects and goes on, or (when the sweeper
        saw its lock free first) the next attempt re-uploads the spooled
        image. Returns the row."""
        s = self.stack
        s.pg_stop()
        try:
            time.sleep(down_s)
        finally:
            s.pg_start()
        row = self.wait_db(jid, timeout=30)
        self.assertEqual(row["status"], "completed", row)
        self.assertEqual(len(self.calls_for(prompt)), 1, "generated again after the blip")
        self.assertEqual(self.storage_files_of(jid),
                         [os.path.join("asset-images", row["storage_path"])])
        log = s.read_pool_log()
        self.assertIn("job %s: reconnected" % jid, log)
        if row["attempts"] != 1:
            self.assertEqual(row["attempts"], 2, row)
            self.assertIn("job %s: re-upload" % jid, log)
        self.assertEqual(self.spool_files(), [])
        return row

    def test_persist_survives_database_blip(self):
        u = jh.seed_user(self.stack, "blip")
        prompt = "through a blip %s" % uuid.uuid4().hex[:8]
        jid = self.create(u, prompt)
        self.wait(u, jid, statuses=("uploading",), timeout=15)
        # Postgres goes away while the executor waits to upload, and is
        # back after the upload: the completing write meets the outage.
        self.blip(jid, prompt, 4)

    def test_restart_during_provider_call_costs_no_second_generation(self):
        # A Postgres restart frees every job's lock while its executor is
        # alive, here waiting 4 s on a call that then fails and is retried.
        # The sweeper must not take the job for lost (another executor
        # would buy the image again), and the executor must not retry for
        # a job that is no longer its own.
        s = self.stack
        u = jh.seed_user(s, "restart-call")
        prompt = "a call across a restart %s" % uuid.uuid4().hex[:8]
        self.fake.push({"name": "503", "latency": 4}, "ok")
        jid = self.create(u, prompt)
        self.wait(u, jid, statuses=("generating",), timeout=15)
        s.pg_stop()
        s.pg_start()
        time.sleep(3)       # sweeps run while the call is still out
        row = self.wait_db(jid, timeout=30)
        self.assertEqual(row["status"], "completed", row)
        time.sleep(1.5)     # a stale executor's retry would come by now
        paid = [r for r in self.calls_for(prompt) if r.status == 200]
        self.assertEqual(len(paid), 1, "the image was bought %d times" % len(paid))
        self.assertEqual(row["attempts"], 1, row)
        self.assertEqual(self.spool_files(), [])

    def test_generation_survives_database_blip(self):
        u = jh.seed_user(self.stack, "blip-gen")
        prompt = "generated through a blip %s" % uuid.uuid4().hex[:8]
        self.fake.push({"name": "hang", "seconds": 3})
        jid = self.create(u, prompt)
        self.wait(u, jid, statuses=("generating",), timeout=15)
        time.sleep(1)
        # the image arrives while Postgres is down: the next write meets it
        self.blip(jid, prompt, 3)


# ==================================================================== deadline

class ExecDeadline(ExecCase):
    """IMAGEGEN_JOB_TIMEOUT=5, one attempt; the Gemini fake; a 6 s pause
    before each upload (past the deadline)."""

    key = "fake-key-exec-deadline-0123456789"

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeNanoBanana().start()
        cls.addClassCleanup(cls.fake.stop)
        cls.pool_settings = {"IMAGEGEN_PROVIDER": "gemini", "NANO_BANANA_API_KEY": cls.key,
                             "NANO_BANANA_API_URL": cls.fake.url,
                             "IMAGEGEN_JOB_TIMEOUT": 5, "IMAGEGEN_MAX_ATTEMPTS": 1,
                             "IMAGEGEN_TEST_STAGE_DELAY_MS": 6000}
        super().setUpClass()

    def setUp(self):
        self.fake.reset()

    def test_job_timeout_fails_at_reached_stage(self):
        s = self.stack
        u = jh.seed_user(s, "deadline")
        # generating: the model hangs past the deadline
        self.fake.push({"name": "hang", "seconds": 9})
        gen = self.create(u, "a model that hangs")
        t0 = time.monotonic()
        job = self.wait(u, gen, timeout=20)
        self.assertEqual(job["status"], "failed", job)
        self.assertEqual(job["error"]["code"], "JOB_TIMEOUT", job)
        self.assertEqual(job["error"]["failureStage"], "generating", job)
        self.assertLess(time.monotonic() - t0, 9)
        # uploading: generated at once, then past the deadline before the upload
        up = self.create(u, "an upload too late")
        job = self.wait(u, up, timeout=20)
        self.assertEqual(job["status"], "failed", job)
        self.assertEqual(job["error"]["code"], "JOB_TIMEOUT", job)
        self.assertEqual(job["error"]["failureStage"], "uploading", job)
        self.assertIsNone(job.get("publicUrl"), job)
        self.assertIsNone(job.get("storagePath"), job)
        self.assertEqual(self.storage_files_of(up), [])
        self.assertEqual(self.spool_files(), [])


# ==================================================================== fork

class ExecSecondFork(ExecCase):
    pool_settings = {"IMAGEGEN_TEST_FAIL_SECOND_FORK": 1, "IMAGEGEN_SWEEP_INTERVAL": 3600}

    def test_failed_second_fork_leaves_job_queued(self):
        s = self.stack
        u = jh.seed_user(s, "fork")
        time.sleep(1)               # the start-up sweep is over
        jid = self.create(u, "a job whose executor cannot be forked")
        line = "executor for job %s not started: fork" % jid
        self.assertTrue(harness.wait_until(lambda: line in s.read_pool_log(), 5),
                        "the failed fork was not logged")
        time.sleep(1)
        self.assertEqual(self.row(jid)["status"], "queued")
        self.assertEqual(jh.executors(s.master_pid()), [])
        # no zombie middle child, and the slot it held is free again
        zombies = [p for p, (st, _, _) in jh.family(s.master_pid()).items() if st == "Z"]
        self.assertEqual(zombies, [])


if __name__ == "__main__":
    unittest.main()
