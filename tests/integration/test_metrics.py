"""GET /metrics: Prometheus text from the database through nginx."""

import fcntl
import os
import re
import signal
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402
import jobs_helper  # noqa: E402

STATES = ("queued", "processing", "generating", "uploading", "completed", "failed", "canceled")


class Metrics(harness.StackTestCase):
    stack_args = {"pool": "master", "extra_env": {"SUPABASE_JWT_SECRET": "m" * 40}}

    def get(self):
        return harness.http_request("127.0.0.1", self.stack.http_port, "GET", "/metrics")

    def sample(self, text, name, **labels):
        want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
        for line in text.splitlines():
            m = re.match(r"^(\w+)\{([^}]*)\} (\S+)$", line)
            if m and m.group(1) == name and ",".join(sorted(m.group(2).split(","))) == want:
                return float(m.group(3))
        self.fail("no sample %s{%s} in:\n%s" % (name, want, text))

    def test_metrics_text_counts_jobs_by_status(self):
        r = self.get()
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("Content-Type").startswith("text/plain; version=0.0.4"), r)
        text = r.body.decode()
        for s in STATES:
            self.assertEqual(self.sample(text, "imagegen_jobs", status=s), 0.0)
        # two queued jobs and one failed one, written straight into the DB
        user, proj, br = (str(uuid.uuid4()) for _ in range(3))
        self.stack.psql(
            "INSERT INTO auth.users(id, email) VALUES ('%s', '%s@x.io');"
            "INSERT INTO projects(id, owner_id, title) VALUES ('%s', '%s', 'p');"
            "INSERT INTO branches(id, project_id, name, is_main) VALUES ('%s', '%s', 'main', true);"
            "INSERT INTO image_generation_jobs(user_id, project_id, branch_id, job_type, prompt, estimated_cost)"
            " SELECT '%s', '%s', '%s', 'master_asset', 'p', 0.039 FROM generate_series(1, 3);"
            "UPDATE image_generation_jobs SET status = 'failed', failure_stage = 'generating',"
            " error_code = 'X' WHERE id = (SELECT id FROM image_generation_jobs LIMIT 1);"
            % (user, user, proj, user, br, proj, user, proj, br))
        text = self.get().body.decode()
        self.assertEqual(self.sample(text, "imagegen_jobs", status="queued"), 2.0)
        self.assertEqual(self.sample(text, "imagegen_jobs", status="failed"), 1.0)
        self.assertAlmostEqual(self.sample(text, "imagegen_jobs_estimated_cost_usd",
                                           status="queued"), 0.078)
        self.assertEqual(self.sample(text, "imagegen_jobs_finished_total", status="failed"), 1.0)
        self.assertAlmostEqual(self.sample(text, "imagegen_job_cost_usd_total",
                                           status="failed", kind="estimated"), 0.039)
        self.assertIn("imagegen_tokens_total", text)

    def test_metrics_database_down_503(self):
        self.stack.pg_stop()
        try:
            r = self.get()
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.data["error"]["code"], "SERVICE_UNAVAILABLE", r)
        finally:
            self.stack.pg_start()
            # leave the stack as we found it: no worker still backing off
            self.assertTrue(self.stack.wait_db_recovered("/metrics"),
                            "metrics did not recover after Postgres came back")


def parse_exposition(text):
    """{family: {"type", "help", "samples": {(name, labels): value}}} of
    Prometheus text; raises AssertionError on anything malformed."""
    fams, cur = {}, None
    for line in text.splitlines():
        if not line:
            continue
        m = re.match(r"^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$", line)
        if m:
            f = fams.setdefault(m.group(2), {"type": None, "help": None, "samples": {}})
            key = m.group(1).lower()
            if f[key] is not None:
                raise AssertionError("second %s line for %s" % (m.group(1), m.group(2)))
            f[key] = m.group(3)
            cur = m.group(2)
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\})? (\S+)$',
                     line)
        if not m:
            raise AssertionError("malformed line %r" % line)
        name, labels, value = m.group(1), m.group(3) or "", float(m.group(4))
        fam = name
        if cur and name in (cur, cur + "_sum", cur + "_count", cur + "_bucket"):
            fam = cur
        if fam not in fams or fams[fam]["type"] is None:
            raise AssertionError("sample %r before its TYPE line" % line)
        fams[fam]["samples"][(name, labels)] = value
    for name, f in fams.items():
        if f["type"] is None or f["help"] is None:
            raise AssertionError("%s lacks HELP or TYPE" % name)
        if f["type"] == "counter" and not name.endswith("_total"):
            raise AssertionError("counter %s does not end in _total" % name)
        if f["type"] != "counter" and name.endswith("_total"):
            raise AssertionError("%s ends in _total but is a %s" % (name, f["type"]))
    return fams


def proc_age(pid):
    """Seconds since pid started (/proc/PID/stat starttime, /proc/uptime)."""
    with open("/proc/%d/stat" % pid) as f:
        start = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        up = float(f.read().split()[0])
    return up - start / os.sysconf("SC_CLK_TCK")


def responders(stack):
    out = []
    for p in stack.children_pids():
        try:
            with open("/proc/%d/comm" % p) as f:
                if f.read().strip().startswith("imagegen-fcgi"):
                    out.append(p)
        except OSError:
            pass
    return sorted(out)


class MetricsPool(harness.StackTestCase):
    """Pool-wide figures: counters the same whichever child answers, the
    pool and queue gauges, the host's executor slots."""

    WORKERS = 2
    stack_args = {"pool": "master", "workers": WORKERS,
                  "extra_env": {"SUPABASE_JWT_SECRET": jobs_helper.SECRET,
                                "IMAGEGEN_SWEEP_INTERVAL": "3600",
                                "IMAGEGEN_MAX_RUNNING_JOBS": "3"}}

    def scrape(self):
        r = harness.http_request("127.0.0.1", self.stack.http_port, "GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        return parse_exposition(r.body.decode())

    def value(self, fams, family, name=None, **labels):
        want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
        for (n, lab), v in fams[family]["samples"].items():
            if n == (name or family) and ",".join(sorted(lab.split(","))) == want:
                return v
        self.fail("no %s{%s} in %s" % (name or family, want, fams[family]))

    def me(self, token):
        return self.stack.http("GET", "/api/me", headers={"Authorization": "Bearer " + token})

    def wait_responders(self, n, exclude=()):
        got = harness.wait_until(
            lambda: (lambda c: c if len(c) == n and not set(exclude) & set(c) else None)(
                responders(self.stack)), 10)
        self.assertTrue(got, "responders: %s" % responders(self.stack))
        return got

    def test_metrics_families_present_and_valid(self):
        fams = self.scrape()
        want = {
            "imagegen_jobs": "gauge",
            "imagegen_jobs_finished_total": "counter",
            "imagegen_job_cost_usd_total": "counter",
            "imagegen_jobs_estimated_cost_usd": "gauge",
            "imagegen_job_duration_seconds": "summary",
            "imagegen_provider_errors_total": "counter",
            "imagegen_job_failures_total": "counter",
            "imagegen_queue_queued_jobs": "gauge",
            "imagegen_queue_running_jobs": "gauge",
            "imagegen_queue_oldest_queued_age_seconds": "gauge",
            "imagegen_tokens_total": "counter",
            "imagegen_pool_workers": "gauge",
            "imagegen_pool_waiting_requests": "gauge",
            "imagegen_pool_restarts_total": "counter",
            "imagegen_pool_crashes_total": "counter",
            "imagegen_pool_reloads_total": "counter",
            "imagegen_executor_slots": "gauge",
            "imagegen_executor_slots_in_use": "gauge",
            "imagegen_budget_spent_ratio": "gauge",
            "imagegen_cost_alerts_total": "counter",
        }
        for name, typ in want.items():
            self.assertIn(name, fams)
            self.assertEqual(fams[name]["type"], typ, name)
        busy = self.value(fams, "imagegen_pool_workers", state="busy")
        idle = self.value(fams, "imagegen_pool_workers", state="idle")
        self.assertGreaterEqual(busy, 1)      # the one answering this scrape
        self.assertEqual(busy + idle, len(responders(self.stack)))
        self.assertEqual(self.value(fams, "imagegen_executor_slots"), 3)

    def test_metrics_counters_pool_wide_whichever_child_answers(self):
        kids = self.wait_responders(self.WORKERS)
        a, b = kids[0], kids[1]
        base = self.scrape()
        good = jobs_helper.seed_user(self.stack, "metrics").token
        # every token check on child b, then every scrape on child a
        os.kill(a, signal.SIGSTOP)
        try:
            for i in range(5):
                self.me("garbage.token.%d" % i)
            self.assertEqual(self.me(good).status, 200)    # verified
            self.assertEqual(self.me(good).status, 200)    # from the cache
        finally:
            os.kill(a, signal.SIGCONT)
        os.kill(b, signal.SIGSTOP)
        try:
            after_b = [self.scrape() for _ in range(3)]
        finally:
            os.kill(b, signal.SIGCONT)
        samples = [base] + after_b + [self.scrape() for _ in range(20)]
        for fams in samples[1:]:
            for result, delta in (("refused", 5), ("verified", 1), ("cached", 1)):
                self.assertEqual(
                    self.value(fams, "imagegen_tokens_total", result=result)
                    - self.value(base, "imagegen_tokens_total", result=result),
                    delta, result)
        # no counter series ever goes down, whichever child answered
        for prev, cur in zip(samples, samples[1:]):
            for name, f in cur.items():
                if f["type"] != "counter":
                    continue
                for key, v in f["samples"].items():
                    old = prev.get(name, {"samples": {}})["samples"].get(key, 0.0)
                    self.assertGreaterEqual(v, old, "%s%s went down" % key)

    def test_metrics_pool_restarts_and_reloads(self):
        before = self.scrape()
        kids = self.wait_responders(self.WORKERS)
        os.kill(kids[0], signal.SIGKILL)
        kids = self.wait_responders(self.WORKERS, exclude=[kids[0]])
        mid = self.scrape()
        self.assertEqual(self.value(mid, "imagegen_pool_restarts_total")
                         - self.value(before, "imagegen_pool_restarts_total"), 1)
        self.assertEqual(self.value(mid, "imagegen_pool_crashes_total")
                         - self.value(before, "imagegen_pool_crashes_total"), 1)
        os.kill(self.stack.master_pid(), signal.SIGHUP)
        self.wait_responders(self.WORKERS, exclude=kids)
        after = self.scrape()
        self.assertEqual(self.value(after, "imagegen_pool_reloads_total")
                         - self.value(mid, "imagegen_pool_reloads_total"), 1)
        # a reload replaces children but restarts none
        self.assertEqual(self.value(after, "imagegen_pool_restarts_total"),
                         self.value(mid, "imagegen_pool_restarts_total"))

    def test_metrics_queue_errors_and_slots(self):
        # the master's first sweep (1 s after it started) must not run these
        # rows; the next one is an hour away
        time.sleep(max(0.0, 1.5 - proc_age(self.stack.master_pid())))
        before = self.scrape()
        user, proj, br = (str(uuid.uuid4()) for _ in range(3))
        self.stack.psql(
            "INSERT INTO auth.users(id, email) VALUES ('{u}', '{u}@x.io');"
            "INSERT INTO projects(id, owner_id, title) VALUES ('{p}', '{u}', 'p');"
            "INSERT INTO branches(id, project_id, name, is_main) VALUES ('{b}', '{p}', 'main', true);"
            "INSERT INTO image_generation_jobs(user_id, project_id, branch_id, job_type, prompt,"
            " estimated_cost, created_at)"
            " SELECT '{u}', '{p}', '{b}', 'master_asset', 'p', 0.039, now() - interval '40 s'"
            " FROM generate_series(1, 4);"
            "UPDATE image_generation_jobs SET status = 'processing', started_at = now()"
            " WHERE id = (SELECT id FROM image_generation_jobs WHERE user_id = '{u}' LIMIT 1);"
            "UPDATE image_generation_jobs SET status = 'failed', failure_stage = 'generating',"
            " error_code = 'PROVIDER_\"Q\"' WHERE id = (SELECT id FROM image_generation_jobs"
            " WHERE user_id = '{u}' AND status = 'queued' LIMIT 1);".format(u=user, p=proj, b=br))
        slot = os.path.join(self.stack.slot_dir, "slot-1")
        fd = os.open(slot, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)     # as an executor would
            fams = self.scrape()
        finally:
            os.close(fd)
        d = lambda fam, **kw: self.value(fams, fam, **kw) - self.value(before, fam, **kw)  # noqa: E731
        self.assertEqual(d("imagegen_queue_queued_jobs"), 2)
        self.assertEqual(d("imagegen_queue_running_jobs"), 1)
        self.assertGreaterEqual(self.value(fams, "imagegen_queue_oldest_queued_age_seconds"), 39)
        self.assertLess(self.value(fams, "imagegen_queue_oldest_queued_age_seconds"), 600)
        self.assertEqual(d("imagegen_jobs_finished_total", status="failed"), 1)
        self.assertEqual(self.value(fams, "imagegen_job_failures_total", code='PROVIDER_\\"Q\\"'), 1)
        self.assertEqual(self.value(fams, "imagegen_executor_slots_in_use"), 1)
        self.assertEqual(self.value(self.scrape(), "imagegen_executor_slots_in_use"), 0)
        # the running job completes: costs move between statuses, and no
        # counter series goes down for it
        for st in ("generating", "uploading"):
            self.stack.psql("UPDATE image_generation_jobs SET status = '%s'"
                            " WHERE user_id = '%s' AND status IN ('processing', 'generating')"
                            % (st, user))
        self.stack.psql("UPDATE image_generation_jobs SET status = 'completed', actual_cost = 0.039,"
                        " storage_path = 'x/y.png'"
                        " WHERE user_id = '%s' AND status = 'uploading'" % user)
        done = self.scrape()
        self.assertEqual(self.value(done, "imagegen_jobs_finished_total", status="completed")
                         - self.value(fams, "imagegen_jobs_finished_total", status="completed"), 1)
        self.assertAlmostEqual(self.value(done, "imagegen_job_cost_usd_total", status="completed",
                                          kind="actual")
                               - self.value(fams, "imagegen_job_cost_usd_total", status="completed",
                                            kind="actual"), 0.039)
        self.assertEqual(self.value(done, "imagegen_queue_running_jobs"), 0)
        for name, f in done.items():
            if f["type"] == "counter":
                for key, v in f["samples"].items():
                    self.assertGreaterEqual(v, fams[name]["samples"].get(key, 0.0),
                                            "%s%s went down" % key)

    def test_metrics_counters_survive_deleted_jobs(self):
        user, proj, br = (str(uuid.uuid4()) for _ in range(3))
        self.stack.psql(
            "INSERT INTO auth.users(id, email) VALUES ('{u}', '{u}@x.io');"
            "INSERT INTO projects(id, owner_id, title) VALUES ('{p}', '{u}', 'p');"
            "INSERT INTO branches(id, project_id, name, is_main) VALUES ('{b}', '{p}', 'main', true);"
            "INSERT INTO image_generation_jobs(user_id, project_id, branch_id, job_type, prompt,"
            " estimated_cost) SELECT '{u}', '{p}', '{b}', 'master_asset', 'p', 0.039"
            " FROM generate_series(1, 2);"
            "UPDATE image_generation_jobs SET status = 'canceled' WHERE user_id = '{u}';"
            .format(u=user, p=proj, b=br))
        before = self.scrape()
        # the user's jobs go (a project deleted cascades to its jobs):
        # counters are running totals, not sums of the rows left
        self.stack.psql("DELETE FROM public.projects WHERE id = '%s'" % proj)
        self.assertEqual(self.stack.psql("SELECT count(*) FROM image_generation_jobs"
                                         " WHERE user_id = '%s'" % user).strip(), "0")
        after = self.scrape()
        for name, f in before.items():
            if f["type"] == "counter" and name != "imagegen_tokens_total":
                for key, v in f["samples"].items():
                    self.assertGreaterEqual(after[name]["samples"].get(key, 0.0), v,
                                            "%s%s went down after a delete" % key)
        self.assertGreaterEqual(self.value(after, "imagegen_jobs_finished_total",
                                           status="canceled"), 2)


class MetricsNoMaster(harness.StackTestCase):
    """spawn-fcgi -F with no master: no shared memory, so no pool gauges,
    and the token counts are the answering responder's own (documented)."""

    stack_args = {"pool": "spawn-plain", "workers": 2,
                  "extra_env": {"SUPABASE_JWT_SECRET": jobs_helper.SECRET}}

    def test_metrics_without_master_no_pool_families(self):
        r = harness.http_request("127.0.0.1", self.stack.http_port, "GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        fams = parse_exposition(r.body.decode())
        for name in ("imagegen_pool_workers", "imagegen_pool_restarts_total",
                     "imagegen_pool_crashes_total", "imagegen_pool_reloads_total",
                     "imagegen_pool_waiting_requests"):
            self.assertNotIn(name, fams)
        self.assertIn("this responder", fams["imagegen_tokens_total"]["help"])
        for name in ("imagegen_jobs", "imagegen_queue_queued_jobs",
                     "imagegen_provider_errors_total", "imagegen_executor_slots_in_use"):
            self.assertIn(name, fams)


if __name__ == "__main__":
    unittest.main()
