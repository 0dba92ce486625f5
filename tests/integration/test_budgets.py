"""Budgets end to end (sql/011_budgets.sql): HTTP through nginx to the pool,
jobs priced by the real table (Gemini 2.5 Flash Image, $0.039) and run by
the gemini provider against the fake Nano Banana.

  UserAndProjectBudgets   a user budget of $0.39 admits exactly 10 of 50
                          concurrent POSTs, the other 40 are 402 with the
                          budget in the body and create nothing; a project
                          budget likewise; the completed jobs' actual costs
                          replace their reservations; a failed or canceled
                          job's reservation is released and a new job fits
                          again; a retry reserves again; 0 admits no paid
                          job; day and month windows roll over (time moved
                          by SQL: usage rows and jobs shifted a window back)
                          and a job that ends in the next window settles in
                          its own; 50/80/100 % alerts written once each under
                          concurrent POSTs, and logged; GET /api/usage
  DeploymentBudget        IMAGEGEN_DAILY_BUDGET_USD shared by every user
  FreeJobs                the local provider's free jobs pass a budget of 0

Rate limits are test_rate_limits.py's.  The harness turns limits off by
default; each class here sets the ones it tests.
"""

import json
import os
import re
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "fakes"))

import harness  # noqa: E402
import jobs_helper as jh  # noqa: E402
from nano_banana import FakeNanoBanana  # noqa: E402

GEMINI_KEY = "AIzaSyFAKE-imagegen-0123456789abcdefghij"
FLASH_USD = 0.039
NIL = "00000000-0000-0000-0000-000000000000"
# while a burst of POSTs is measured, no job may end (an ending job changes
# what the budget holds): the fake answers after this long
SLOW = {"name": "ok", "latency": 4}


def concurrently(n, fn):
    """fn(i) in n threads released at once; the results in order."""
    out = [None] * n
    gate = threading.Barrier(n)

    def run(i):
        gate.wait()
        try:
            out[i] = fn(i)
        except Exception as e:       # noqa: BLE001 - reported by the caller
            out[i] = e
    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    return out


class BudgetCase(harness.StackTestCase):
    env = {}

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeNanoBanana().start()
        cls.addClassCleanup(cls.fake.stop)
        env = jh.pool_env(IMAGEGEN_PROVIDER="gemini",
                          NANO_BANANA_API_KEY=GEMINI_KEY,
                          NANO_BANANA_API_URL=cls.fake.url + "/v1beta",
                          IMAGEGEN_PROVIDER_TIMEOUT_MS=10000,
                          IMAGEGEN_MAX_RUNNING_JOBS=64,
                          **cls.env)
        cls.stack_args = dict(pool="master", workers=8, extra_env=env)
        super().setUpClass()

    def setUp(self):
        self.fake.reset()

    # ------------------------------------------------------------ helpers

    def user(self, daily=None, monthly=None):
        """A new user; with daily/monthly, an operator's override row."""
        u = jh.seed_user(self.stack, "budget")
        if daily is not None or monthly is not None:
            self.set_budget("user", u.id, daily, monthly)
        return u

    def set_budget(self, scope, sid, daily=None, monthly=None):
        lit = lambda v: "NULL" if v is None else "'%s'" % v  # noqa: E731
        self.stack.psql("INSERT INTO public.budgets (scope, scope_id, daily_usd,"
                        " monthly_usd) VALUES ('%s', '%s', %s, %s)"
                        " ON CONFLICT (scope, scope_id) DO UPDATE SET"
                        " daily_usd = EXCLUDED.daily_usd,"
                        " monthly_usd = EXCLUDED.monthly_usd"
                        % (scope, sid, lit(daily), lit(monthly)))

    def post(self, u, key=None, **over):
        h = {"Idempotency-Key": key or str(uuid.uuid4())}
        return jh.post_job(self.stack, u.token, u.body("budget %s" % uuid.uuid4().hex[:8],
                                                       **over), headers=h)

    def burst(self, u, n, **over):
        """n concurrent first POSTs of u; the answers."""
        rs = concurrently(n, lambda i: self.post(u, **over))
        for r in rs:
            if isinstance(r, Exception):
                raise r
        return rs

    def usage(self, scope, sid, period):
        """(spent, reserved, alerted) of this window's usage row, or None."""
        ws = ("(now() AT TIME ZONE 'UTC')::date" if period == "day" else
              "date_trunc('month', now() AT TIME ZONE 'UTC')::date")
        row = jh.psql_json(self.stack,
                           "SELECT json_build_array(spent_usd::float8, reserved_usd::float8,"
                           " alerted) FROM public.budget_usage WHERE scope = '%s'"
                           " AND scope_id = '%s' AND period = '%s' AND window_start = %s"
                           % (scope, sid, period, ws))
        return tuple(row) if row else None

    def jobs_of(self, u, where="true"):
        return int(self.stack.psql("SELECT count(*) FROM public.image_generation_jobs"
                                   " WHERE user_id = '%s' AND %s" % (u.id, where)).strip())

    def settle(self, u, timeout=60):
        jh.wait_db_settled(self.stack, "user_id = '%s'" % u.id, timeout)

    def assert_budget_402(self, r, scope, period, limit):
        self.assertEqual(r.status, 402, r)
        err = r.data["error"]
        self.assertEqual(err["code"], "BUDGET_EXCEEDED", r)
        self.assertIn("budget", err["message"])
        b = err["budget"]
        self.assertEqual((b["scope"], b["period"]), (scope, period), b)
        self.assertAlmostEqual(b["limitUsd"], limit, places=6)
        # refused because this job's estimate does not fit
        self.assertGreater(b["spentUsd"] + b["reservedUsd"] + FLASH_USD, limit + 1e-9, b)
        for k in ("limitUsd", "spentUsd", "reservedUsd"):
            self.assertIsInstance(b[k], (int, float), b)
        return b


class UserAndProjectBudgets(BudgetCase):
    env = {"IMAGEGEN_USER_DAILY_BUDGET_USD": "0.39"}

    def test_user_budget_of_039_admits_exactly_10_of_50_concurrent_posts(self):
        self.fake.default = SLOW
        u = self.user()
        rs = self.burst(u, 50)
        codes = sorted(r.status for r in rs)
        self.assertEqual(codes.count(202), 10, codes)
        self.assertEqual(codes.count(402), 40, codes)
        for r in rs:
            if r.status == 402:
                self.assert_budget_402(r, "user", "day", 0.39)
        # the 402s created nothing; the 10 hold exactly the limit
        self.assertEqual(self.jobs_of(u), 10)
        spent, reserved, _ = self.usage("user", u.id, "day")
        self.assertAlmostEqual(reserved, 0.39, places=6)
        self.assertEqual(spent, 0)
        # the completed jobs' actual costs replace their reservations
        self.settle(u)
        self.assertEqual(self.jobs_of(u, "status = 'completed'"), 10)
        actual = float(self.stack.psql("SELECT sum(actual_cost) FROM"
                                       " public.image_generation_jobs WHERE user_id = '%s'"
                                       % u.id).strip())
        spent, reserved, _ = self.usage("user", u.id, "day")
        self.assertEqual(reserved, 0)
        self.assertAlmostEqual(spent, actual, places=6)
        self.assertNotAlmostEqual(actual, 0.39, places=6,
                                  msg="the fake's usage must differ from the estimate")

    def test_project_budget_admits_exactly_what_fits(self):
        self.fake.default = SLOW
        u = self.user()
        self.set_budget("project", u.project_id, daily="0.117")   # 3 jobs
        rs = self.burst(u, 12)
        codes = sorted(r.status for r in rs)
        self.assertEqual(codes.count(202), 3, codes)
        for r in rs:
            if r.status != 202:
                self.assert_budget_402(r, "project", "day", 0.117)
        self.assertEqual(self.jobs_of(u), 3)
        # another project of the same user is not held by this one's budget
        pid, bid = jh.seed_project(self.stack, u.id, "second")
        r = self.post(u, projectId=pid, branchId=bid)
        self.assertEqual(r.status, 202, r)
        self.settle(u)

    def test_project_monthly_budget(self):
        self.fake.default = SLOW
        u = self.user()
        self.set_budget("project", u.project_id, monthly="0.078")
        rs = self.burst(u, 6)
        self.assertEqual(sorted(r.status for r in rs).count(202), 2)
        for r in rs:
            if r.status != 202:
                self.assert_budget_402(r, "project", "month", 0.078)
        self.settle(u)

    def test_failed_job_releases_its_reservation_and_a_new_job_fits(self):
        u = self.user(daily="0.039")                     # room for one
        self.fake.push({"name": "400", "latency": 2})
        first = self.post(u)
        self.assertEqual(first.status, 202, first)
        r = self.post(u)
        self.assert_budget_402(r, "user", "day", 0.039)
        job = jh.wait_job(self.stack, u.token, first.data["jobId"], timeout=30)
        self.assertEqual(job["status"], "failed", job)
        self.assertIsNone(job["cost"]["actual"], job)
        self.assertEqual(self.usage("user", u.id, "day")[:2], (0, 0))
        again = self.post(u)
        self.assertEqual(again.status, 202, again)
        self.assertEqual(jh.wait_job(self.stack, u.token, again.data["jobId"])["status"],
                         "completed")

    def test_canceled_while_generating_is_charged_what_the_provider_billed(self):
        u = self.user(daily="0.039")                     # room for one
        self.fake.default = {"name": "ok", "latency": 3}
        first = self.post(u)
        self.assertEqual(first.status, 202, first)
        jh.wait_job(self.stack, u.token, first.data["jobId"], statuses=("generating",),
                    timeout=10)
        self.assertEqual(self.post(u).status, 402)
        r = jh.cancel_job(self.stack, u.token, first.data["jobId"])
        self.assertEqual(r.status, 200, r)
        job = jh.wait_job(self.stack, u.token, first.data["jobId"], timeout=30)
        self.assertEqual(job["status"], "canceled", job)
        self.assertEqual(len(self.fake.requests_to(":generateContent")), 1)
        # the provider answered (and billed) before the cancel was seen
        self.assertIsNotNone(job["cost"]["actual"], job)
        self.assertGreater(job["cost"]["actual"], 0)
        spent, reserved, _ = self.usage("user", u.id, "day")
        self.assertEqual(reserved, 0)
        self.assertAlmostEqual(spent, job["cost"]["actual"], places=6)
        # spent now exceeds what was reserved for it only by the difference
        # of actual and estimate; a new job fits only if that leaves room
        r = self.post(u)
        self.assertEqual(r.status, 202 if spent + FLASH_USD <= 0.039 + 1e-9 else 402, r)
        self.settle(u)

    def test_deleted_queued_job_gives_its_reservation_back(self):
        u = self.user(daily="0.039")                     # room for one
        # inserted and deleted in one transaction (as the owner, which the
        # override row holds to the budget too): no executor can claim it
        out = self.stack.psql(
            "BEGIN;"
            " INSERT INTO public.image_generation_jobs (id, user_id, project_id, branch_id,"
            " job_type, prompt, provider, model, estimated_cost) VALUES"
            " ('00000000-0000-4000-8000-00000000d1e7', '%s', '%s', '%s', 'master_asset',"
            " 'queued then deleted', 'gemini', 'gemini-2.5-flash-image', %s);"
            " SELECT reserved_usd::float8 FROM public.budget_usage WHERE scope = 'user'"
            " AND scope_id = '%s' AND period = 'day';"
            " DELETE FROM public.image_generation_jobs"
            " WHERE id = '00000000-0000-4000-8000-00000000d1e7' AND status = 'queued';"
            " COMMIT;" % (u.id, u.project_id, u.branch_id, FLASH_USD, u.id))
        self.assertIn(str(FLASH_USD), out.split(), "the job reserved before it was deleted")
        self.assertEqual(self.usage("user", u.id, "day")[:2], (0, 0))
        self.fake.default = SLOW
        r = self.post(u)
        self.assertEqual(r.status, 202, r)
        self.settle(u)

    def test_deleted_running_job_is_charged_its_estimate(self):
        # its provider call may be under way and bill: deleting the row
        # (or its project, by cascade) must not free the budget for more
        u = self.user(daily="0.078")                     # room for two
        self.fake.default = {"name": "ok", "latency": 8}
        a, b = self.post(u), self.post(u)
        self.assertEqual((a.status, b.status), (202, 202))
        ids = "'%s', '%s'" % (a.data["jobId"], b.data["jobId"])
        self.assertTrue(harness.wait_until(lambda: self.jobs_of(
            u, "id IN (%s) AND status = 'generating'" % ids) == 2, 15, 0.1),
            "both jobs generating")
        self.stack.psql("DELETE FROM public.image_generation_jobs WHERE id = '%s'"
                        % a.data["jobId"])
        self.stack.psql("DELETE FROM public.projects WHERE id = '%s'" % u.project_id)
        spent, reserved, _ = self.usage("user", u.id, "day")
        self.assertAlmostEqual(spent, 2 * FLASH_USD, places=6)
        self.assertAlmostEqual(reserved, 0, places=6)
        pid, bid = jh.seed_project(self.stack, u.id, "after")
        r = self.post(u, projectId=pid, branchId=bid)
        self.assert_budget_402(r, "user", "day", 0.078)

    def test_request_role_cannot_insert_a_job_around_the_api(self):
        # as a Supabase user through PostgREST would: their own token's
        # claims, no responder settings; a price of their choosing
        u = self.user(daily="0.039")
        claims = json.dumps({"sub": u.id, "role": "authenticated", "aud": "authenticated"})
        ins = ("INSERT INTO public.image_generation_jobs (user_id, project_id, branch_id,"
               " job_type, prompt, provider, model, estimated_cost) VALUES ('%s', '%s', '%s',"
               " 'master_asset', 'free ride', 'gemini', 'gemini-2.5-flash-image', 0)"
               % (u.id, u.project_id, u.branch_id))
        with self.assertRaises(harness.HarnessError) as cm:
            self.stack.psql("BEGIN; SET LOCAL ROLE authenticated;"
                            " SELECT set_config('request.jwt.claims', $c$%s$c$, true);"
                            " %s; COMMIT;" % (claims, ins), as_app=True)
        self.assertIn("jobs are created through the imagegen API", str(cm.exception))
        self.assertEqual(self.jobs_of(u), 0)

    def test_request_role_may_only_cancel_its_job(self):
        u = self.user(daily="1")
        self.fake.default = SLOW
        r = self.post(u)
        jid = r.data["jobId"]
        # generating: uploading is the state machine's next step, which only
        # the executor may take
        self.assertTrue(harness.wait_until(lambda: self.jobs_of(
            u, "id = '%s' AND status = 'generating'" % jid) == 1, 15, 0.05))
        claims = json.dumps({"sub": u.id, "role": "authenticated", "aud": "authenticated"})
        pre = ("BEGIN; SET LOCAL ROLE authenticated;"
               " SELECT set_config('request.jwt.claims', $c$%s$c$, true); " % claims)
        for stmt, why in (
                ("UPDATE public.image_generation_jobs SET estimated_cost = 0 WHERE id = '%s'",
                 "permission denied"),
                ("UPDATE public.image_generation_jobs SET prompt = 'other' WHERE id = '%s'",
                 "permission denied"),
                ("UPDATE public.image_generation_jobs SET status = 'uploading' WHERE id = '%s'",
                 "may only cancel it")):
            with self.assertRaises(harness.HarnessError, msg=stmt) as cm:
                self.stack.psql(pre + (stmt % jid) + "; COMMIT;", as_app=True)
            self.assertIn(why, str(cm.exception))
        out = self.stack.psql(pre + "UPDATE public.image_generation_jobs SET status = CASE"
                              " WHEN status = 'queued' THEN 'canceled' ELSE status END,"
                              " cancel_requested = true WHERE id = '%s' RETURNING cancel_requested;"
                              " COMMIT;" % jid, as_app=True)
        self.assertIn("t", out.split())
        self.settle(u)

    def test_retry_reserves_again(self):
        u = self.user(daily="0.039")
        self.fake.push("400")
        first = self.post(u)
        job = jh.wait_job(self.stack, u.token, first.data["jobId"])
        self.assertEqual(job["status"], "failed")
        self.fake.default = SLOW
        blocker = self.post(u)                     # takes the whole budget
        self.assertEqual(blocker.status, 202, blocker)
        r = jh.retry_job(self.stack, u.token, first.data["jobId"])
        self.assert_budget_402(r, "user", "day", 0.039)
        self.assertEqual(self.jobs_of(u), 2, "a refused retry creates nothing")
        jh.wait_job(self.stack, u.token, blocker.data["jobId"], timeout=30)
        self.set_budget("user", u.id, daily="1")
        r = jh.retry_job(self.stack, u.token, first.data["jobId"])
        self.assertIn(r.status, (200, 201, 202), r)
        spent, reserved, _ = self.usage("user", u.id, "day")
        self.assertAlmostEqual(reserved, FLASH_USD, places=6)
        self.settle(u)

    def test_zero_budget_admits_no_paid_job(self):
        u = self.user(daily="0")
        r = self.post(u)
        self.assert_budget_402(r, "user", "day", 0)
        self.assertEqual(self.jobs_of(u), 0)

    def test_no_limit_override_lifts_the_default(self):
        self.fake.default = SLOW
        u = self.user(daily="Infinity")
        rs = self.burst(u, 12)
        self.assertEqual([r.status for r in rs], [202] * 12)
        self.assertIsNone(self.usage("user", u.id, "day"), "no limit: no usage row")
        self.settle(u)

    def test_idempotent_replay_reserves_nothing(self):
        u = self.user(daily="0.039")                     # room for one
        self.fake.default = SLOW
        key, body = str(uuid.uuid4()), u.body("replayed")
        first = jh.post_job(self.stack, u.token, body, headers={"Idempotency-Key": key})
        self.assertEqual(first.status, 202, first)
        # the budget is full, yet the same request replays its job
        for _ in range(3):
            r = jh.post_job(self.stack, u.token, body, headers={"Idempotency-Key": key})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.data["jobId"], first.data["jobId"])
        self.assertAlmostEqual(self.usage("user", u.id, "day")[1], FLASH_USD, places=6)
        self.assertEqual(self.jobs_of(u), 1)
        self.settle(u)

    def _shift(self, u, interval, period):
        """Moves u's jobs and usage rows of period one window back."""
        self.stack.psql(
            "UPDATE public.image_generation_jobs SET created_at = created_at - interval '%s'"
            " WHERE user_id = '%s';"
            "UPDATE public.budget_usage SET window_start = (window_start - interval '%s')::date"
            " WHERE scope = 'user' AND scope_id = '%s' AND period = '%s'"
            % (interval, u.id, interval, u.id, period))

    def test_day_window_rolls_over(self):
        u = self.user(daily="0.078")
        for _ in range(2):
            r = self.post(u)
            self.assertEqual(r.status, 202, r)
        self.settle(u)
        self.assert_budget_402(self.post(u), "user", "day", 0.078)
        self._shift(u, "1 day", "day")                   # a day passes
        self.fake.default = SLOW
        r = self.post(u)
        self.assertEqual(r.status, 202, r)
        today = self.usage("user", u.id, "day")
        self.assertAlmostEqual(today[1], FLASH_USD, places=6)
        # this job ends in the next window: it settles in its own
        yesterday_before = jh.psql_json(
            self.stack, "SELECT json_build_array(spent_usd::float8, reserved_usd::float8)"
            " FROM public.budget_usage WHERE scope_id = '%s' AND period = 'day'"
            " AND window_start = (now() AT TIME ZONE 'UTC')::date - 1" % u.id)
        self.stack.psql("UPDATE public.image_generation_jobs SET created_at = created_at"
                        " - interval '1 day' WHERE id = '%s';"
                        "UPDATE public.budget_usage SET reserved_usd = reserved_usd - 0.039"
                        " WHERE scope_id = '%s' AND period = 'day' AND window_start ="
                        " (now() AT TIME ZONE 'UTC')::date;"
                        "UPDATE public.budget_usage SET reserved_usd = reserved_usd + 0.039"
                        " WHERE scope_id = '%s' AND period = 'day' AND window_start ="
                        " (now() AT TIME ZONE 'UTC')::date - 1"
                        % (r.data["jobId"], u.id, u.id))
        job = jh.wait_job(self.stack, u.token, r.data["jobId"], timeout=30)
        self.assertEqual(job["status"], "completed", job)
        yesterday = jh.psql_json(
            self.stack, "SELECT json_build_array(spent_usd::float8, reserved_usd::float8)"
            " FROM public.budget_usage WHERE scope_id = '%s' AND period = 'day'"
            " AND window_start = (now() AT TIME ZONE 'UTC')::date - 1" % u.id)
        self.assertAlmostEqual(yesterday[0], yesterday_before[0] + job["cost"]["actual"],
                               places=6)
        self.assertEqual(yesterday[1], 0)
        self.assertEqual(self.usage("user", u.id, "day")[:2], (0, 0))

    def test_month_window_rolls_over(self):
        u = self.user(daily="Infinity", monthly="0.039")
        r = self.post(u)
        self.assertEqual(r.status, 202, r)
        self.settle(u)
        self.assert_budget_402(self.post(u), "user", "month", 0.039)
        self._shift(u, "1 month", "month")
        r = self.post(u)
        self.assertEqual(r.status, 202, r)
        self.settle(u)
        # last month's row kept what it spent; this month's has one job
        rows = jh.psql_json(self.stack, "SELECT json_agg(window_start ORDER BY window_start)"
                            " FROM public.budget_usage WHERE scope_id = '%s'"
                            " AND period = 'month'" % u.id)
        self.assertEqual(len(rows), 2, rows)
        self.assertTrue(all(re.match(r"\d{4}-\d\d-01$", d) for d in rows), rows)

    def test_alerts_at_50_80_100_written_once_under_concurrent_posts(self):
        self.fake.default = SLOW
        u = self.user()                                  # the default 0.39
        rs = self.burst(u, 50)
        self.assertEqual(sorted(r.status for r in rs).count(202), 10)
        alerts = jh.psql_json(self.stack, "SELECT json_agg(json_build_array(threshold,"
                              " period, limit_usd::float8) ORDER BY threshold)"
                              " FROM public.cost_alerts WHERE scope = 'user'"
                              " AND scope_id = '%s'" % u.id)
        self.assertEqual(alerts, [[50, "day", 0.39], [80, "day", 0.39],
                                  [100, "day", 0.39]])
        self.settle(u)
        # completions change the sum; the alerts of the window stay once
        n = self.stack.psql("SELECT count(*) FROM public.cost_alerts WHERE scope_id = '%s'"
                            % u.id).strip()
        self.assertEqual(n, "3")
        log = self.stack.read_pool_log()
        for pct in (50, 80, 100):
            lines = [ln for ln in log.splitlines() if "budget alert: user %s daily" % u.id in ln
                     and "reached %d%%" % pct in ln]
            self.assertEqual(len(lines), 1, (pct, lines))
            self.assertIn("WARN", lines[0])

    def test_alert_of_a_refused_job_is_neither_written_nor_logged(self):
        u = self.user(daily="0.078")       # one job would reach 50 % here
        self.set_budget("project", u.project_id, daily="0")      # but not here
        r = self.post(u)
        self.assert_budget_402(r, "project", "day", 0)
        self.assertEqual(self.stack.psql("SELECT count(*) FROM public.cost_alerts"
                                         " WHERE scope_id = '%s'" % u.id).strip(), "0")
        self.assertNotIn("budget alert: user %s" % u.id, self.stack.read_pool_log())
        self.assertIsNone(self.usage("user", u.id, "day"), "the whole INSERT rolled back")

    def test_usage_endpoint(self):
        self.fake.default = SLOW
        u = self.user()
        self.set_budget("project", u.project_id, daily="0.2", monthly="3")
        for _ in range(2):
            self.assertEqual(self.post(u).status, 202)
        r = self.stack.http("GET", "/api/usage", headers=jh.auth(u.token))
        self.assertEqual(r.status, 200, r)
        b = r.data["budgets"]
        self.assertEqual([(x["scope"], x["period"]) for x in b], [("user", "day")], b)
        self.assertAlmostEqual(b[0]["limitUsd"], 0.39)
        self.assertAlmostEqual(b[0]["reservedUsd"] + b[0]["spentUsd"], 0.078, places=6)
        self.assertAlmostEqual(b[0]["remainingUsd"], 0.39 - 0.078, places=6)
        self.assertRegex(b[0]["resetsAt"], r"^\d{4}-\d\d-\d\dT00:00:00Z$")
        self.assertEqual(r.data["currency"], "USD")
        self.assertIsNone(r.data["rateLimit"], "rate limits are off here")
        r = self.stack.http("GET", "/api/usage?projectId=" + u.project_id,
                            headers=jh.auth(u.token))
        self.assertEqual(r.status, 200, r)
        b = r.data["budgets"]
        self.assertEqual([(x["scope"], x["period"]) for x in b],
                         [("user", "day"), ("project", "day"), ("project", "month")], b)
        self.assertEqual(b[1]["projectId"], u.project_id)
        self.assertAlmostEqual(b[2]["limitUsd"], 3)
        # someone else's project, a malformed id, no token
        other = self.user()
        r = self.stack.http("GET", "/api/usage?projectId=" + other.project_id,
                            headers=jh.auth(u.token))
        self.assertEqual((r.status, r.data["error"]["code"]), (403, "FORBIDDEN"), r)
        r = self.stack.http("GET", "/api/usage?projectId=nope", headers=jh.auth(u.token))
        self.assertEqual((r.status, r.data["error"]["code"]), (400, "VALIDATION_ERROR"), r)
        r = self.stack.http("GET", "/api/usage")
        self.assertEqual(r.status, 401, r)
        self.settle(u)


class DeploymentBudget(BudgetCase):
    env = {"IMAGEGEN_DAILY_BUDGET_USD": "0.195"}          # 5 jobs, all users

    def test_deployment_budget_is_shared_by_every_user(self):
        self.fake.default = SLOW
        a, b = self.user(), self.user()
        rs = concurrently(20, lambda i: self.post(a if i % 2 else b))
        codes = sorted(r.status for r in rs)
        self.assertEqual(codes.count(202), 5, codes)
        for r in rs:
            if r.status != 202:
                self.assert_budget_402(r, "deployment", "day", 0.195)
        self.assertEqual(self.jobs_of(a) + self.jobs_of(b), 5)
        self.assertAlmostEqual(self.usage("deployment", NIL, "day")[1], 0.195, places=6)
        self.settle(a)
        self.settle(b)


class FreeJobs(harness.StackTestCase):
    """The local provider's jobs cost 0: a budget of 0 still admits them."""

    stack_args = dict(pool="master", workers=2, extra_env=jh.pool_env(
        IMAGEGEN_USER_DAILY_BUDGET_USD="0", IMAGEGEN_DAILY_BUDGET_USD="0"))

    def test_free_jobs_always_pass(self):
        u = jh.seed_user(self.stack, "free")
        for _ in range(5):
            r = jh.post_job(self.stack, u.token, u.body("free"))
            self.assertEqual(r.status, 202, r)
        self.assertEqual(self.stack.psql("SELECT count(*) FROM public.budget_usage").strip(),
                         "0")
