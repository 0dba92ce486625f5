"""`imagegen budget` (set, clear, show), the spend and alerts of `imagegen
stats`, and the budget families of /metrics, against a real Postgres
migrated to sql/011_budgets.sql and a real pool behind nginx.

Jobs, usage rows and alerts are written by SQL as the migration owner; the
commands run as an operator runs them, with the pool's settings (the worker
role, SET LOCAL ROLE service_role).
"""

import os
import re
import subprocess
import sys
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)

import harness  # noqa: E402
import jobs_helper as jh  # noqa: E402
from test_metrics import parse_exposition, proc_age  # noqa: E402

NIL = "00000000-0000-0000-0000-000000000000"
# The settings' defaults the commands run with.
SETTINGS = {"IMAGEGEN_USER_DAILY_BUDGET_USD": "10",
            "IMAGEGEN_USER_MONTHLY_BUDGET_USD": "none",
            "IMAGEGEN_DAILY_BUDGET_USD": "100"}


class BudgetCli(harness.StackTestCase):
    # No sweep after the first one: the queued jobs written here stay queued.
    stack_args = {"pool": "master",
                  "extra_env": {"SUPABASE_JWT_SECRET": jh.SECRET,
                                "IMAGEGEN_SWEEP_INTERVAL": "3600"}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # the master's first sweep runs 1 s after it started (and must be
        # over: it would start executors for the queued jobs written here)
        time.sleep(max(0.0, 1.5 - proc_age(cls.stack.master_pid())))
        if not harness.wait_until(lambda: not cls.sweepers(), 10):
            raise harness.HarnessError("the master's first sweep did not end")

    @classmethod
    def sweepers(cls):
        out = []
        for p in cls.stack.children_pids(cls.stack.master_pid()):
            try:
                with open("/proc/%d/comm" % p) as f:
                    if f.read().strip() == "ig-sweeper":
                        out.append(p)
            except OSError:
                pass
        return out

    # ------------------------------------------------------------ helpers

    def imagegen(self, *args, env=None):
        e = self.stack.pool_env(dict(SETTINGS, **(env or {})))
        return subprocess.run([harness.imagegen_bin()] + list(args), env=e, cwd=self.stack.tmp,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=60)

    def ok(self, *args, **kw):
        r = self.imagegen(*args, **kw)
        self.assertEqual(r.returncode, 0, "imagegen %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
        return r.stdout

    def sql(self, q):
        return self.stack.psql(q).strip()

    def today(self):
        return self.sql("SELECT public.image_job_budget_day(now())")

    def month(self):
        return self.sql("SELECT public.image_budget_window('month', public.image_job_budget_day(now()))")

    def windows(self, out):
        """{period: {column: value}} of `budget show`'s window table."""
        lines = out.splitlines()
        head = next(i for i, ln in enumerate(lines) if ln.split()[:2] == ["period", "window_start"])
        cols = lines[head].split()
        rows = {}
        for ln in lines[head + 1:]:
            f = ln.split()
            if not f or f[0] not in ("day", "month"):
                break
            rows[f[0]] = dict(zip(cols, f))
        return rows

    def seed_jobs(self, u):
        """Jobs of u today: completed (actual 0.5), failed with a provider
        cost (0.2), canceled without one, and one queued (estimate 0.3).
        Ended, they cost 0.7; the queued one holds 0.3."""
        base = ("INSERT INTO public.image_generation_jobs (user_id, project_id, branch_id,"
                " job_type, prompt, estimated_cost) VALUES ('%s', '%s', '%s', 'master_asset', '%%s', %%s);"
                % (u.id, u.project_id, u.branch_id))
        self.stack.psql("".join(base % (p, c) for p, c in
                                (("done", "0.4"), ("fail", "0.3"), ("cancel", "0.3"),
                                 ("wait", "0.3"))))
        where = "user_id = '%s' AND prompt IN ('done', 'fail')" % u.id
        for st in ("processing", "generating"):
            self.stack.psql("UPDATE public.image_generation_jobs SET status = '%s' WHERE %s" % (st, where))
        self.stack.psql(
            "UPDATE public.image_generation_jobs SET status = 'failed', failure_stage = 'generating',"
            " error_code = 'PROVIDER_ERROR', actual_cost = 0.2"
            " WHERE user_id = '%s' AND prompt = 'fail';"
            "UPDATE public.image_generation_jobs SET status = 'uploading'"
            " WHERE user_id = '%s' AND prompt = 'done';"
            "UPDATE public.image_generation_jobs SET status = 'completed', actual_cost = 0.5,"
            " storage_path = 'x/y.png' WHERE user_id = '%s' AND prompt = 'done';"
            "UPDATE public.image_generation_jobs SET status = 'canceled'"
            " WHERE user_id = '%s' AND prompt = 'cancel';" % ((u.id,) * 4))

    # ------------------------------------------------------------ set / clear / show

    def test_budget_show_user_defaults_and_backfill(self):
        u = jh.seed_user(self.stack, "show")
        self.seed_jobs(u)
        out = self.ok("budget", "show", "--user", u.id)
        self.assertIn("user %s" % u.id, out)
        w = self.windows(out)
        day, month = w["day"], w["month"]
        self.assertEqual(day["window_start"], self.today())
        self.assertEqual(month["window_start"], self.month())
        # the settings' defaults reach image_budget_limits
        self.assertEqual((day["limit_usd"], day["source"]), ("10.000000", "default"))
        self.assertEqual((month["limit_usd"], month["source"]), ("none", "default"))
        # no usage row yet: spent is what ended jobs cost, nothing reserved
        self.assertEqual(self.sql("SELECT count(*) FROM public.budget_usage WHERE scope_id = '%s'"
                                  % u.id), "0")
        self.assertAlmostEqual(float(day["spent_usd"]), 0.7)
        self.assertAlmostEqual(float(day["reserved_usd"]), 0.0)
        self.assertAlmostEqual(float(day["remaining_usd"]), 9.3)
        self.assertAlmostEqual(float(month["spent_usd"]), 0.7)
        self.assertEqual(month["remaining_usd"], "-")
        # other defaults: the command reads the settings, not constants
        w = self.windows(self.ok("budget", "show", "--user", u.id,
                                 env={"IMAGEGEN_USER_DAILY_BUDGET_USD": "none",
                                      "IMAGEGEN_USER_MONTHLY_BUDGET_USD": "2.5"}))
        self.assertEqual(w["day"]["limit_usd"], "none")
        self.assertEqual(w["month"]["limit_usd"], "2.500000")
        self.assertAlmostEqual(float(w["month"]["remaining_usd"]), 1.8)

    def test_budget_show_reads_the_usage_row(self):
        u = jh.seed_user(self.stack, "usage")
        self.seed_jobs(u)
        self.stack.psql("INSERT INTO public.budget_usage (scope, scope_id, period, window_start,"
                        " spent_usd, reserved_usd, limit_usd) VALUES"
                        " ('user', '%s', 'day', public.image_job_budget_day(now()), 1.25, 0.5, 10)"
                        % u.id)
        w = self.windows(self.ok("budget", "show", "--user", u.id))
        self.assertAlmostEqual(float(w["day"]["spent_usd"]), 1.25)
        self.assertAlmostEqual(float(w["day"]["reserved_usd"]), 0.5)
        self.assertAlmostEqual(float(w["day"]["remaining_usd"]), 8.25)
        # the month has no row: backfilled
        self.assertAlmostEqual(float(w["month"]["spent_usd"]), 0.7)

    def test_budget_set_clear_user_override(self):
        u = jh.seed_user(self.stack, "set")
        self.stack.psql("INSERT INTO public.budget_usage (scope, scope_id, period, window_start,"
                        " spent_usd, reserved_usd, limit_usd) VALUES"
                        " ('user', '%s', 'day', public.image_job_budget_day(now()), 1.25, 0.5, 10)"
                        % u.id)
        out = self.ok("budget", "set", "--user", u.id, "--daily", "2", "--monthly", "none")
        self.assertIn("daily 2.000000, monthly none", out)
        row = "SELECT daily_usd, monthly_usd FROM public.budgets WHERE scope = 'user' AND scope_id = '%s'"
        # none is stored as Infinity: no limit
        self.assertEqual(self.sql(row % u.id), "2|Infinity")
        w = self.windows(self.ok("budget", "show", "--user", u.id))
        self.assertEqual((w["day"]["limit_usd"], w["day"]["source"]), ("2.000000", "override"))
        self.assertAlmostEqual(float(w["day"]["remaining_usd"]), 0.25)
        self.assertEqual((w["month"]["limit_usd"], w["month"]["source"]), ("none", "override"))
        # the limits image_budget_limits gives a job now
        self.assertEqual(self.sql("SELECT set_config('imagegen.budget_defaults', '10||', true),"
                                  " l.user_day, l.user_month FROM public.image_budget_limits('%s', NULL) l"
                                  % u.id), "10|||2|")
        # a second set changes only what it names
        self.ok("budget", "set", "--user", u.id, "--monthly", "40.123456")
        self.assertEqual(self.sql(row % u.id), "2|40.123456")
        # clear --daily: that limit is the default again, the other stays
        out = self.ok("budget", "clear", "--user", u.id, "--daily")
        self.assertIn("daily default, monthly 40.123456", out)
        self.assertEqual(self.sql(row % u.id), "|40.123456")
        w = self.windows(self.ok("budget", "show", "--user", u.id))
        self.assertEqual((w["day"]["limit_usd"], w["day"]["source"]), ("10.000000", "default"))
        self.assertEqual((w["month"]["limit_usd"], w["month"]["source"]), ("40.123456", "override"))
        # clear without flags: the row is gone
        out = self.ok("budget", "clear", "--user", u.id)
        self.assertIn("override removed", out)
        self.assertEqual(self.sql(row % u.id), "")
        out = self.ok("budget", "clear", "--user", u.id)
        self.assertIn("no override", out)
        # clearing both limits leaves no row of defaults behind
        self.ok("budget", "set", "--user", u.id, "--daily", "3")
        self.ok("budget", "clear", "--user", u.id, "--daily", "--monthly")
        self.assertEqual(self.sql(row % u.id), "")

    def test_budget_project_and_deployment_show(self):
        u = jh.seed_user(self.stack, "proj")
        self.seed_jobs(u)
        w = self.windows(self.ok("budget", "show", "--project", u.project_id))
        # projects have no default limit
        self.assertEqual((w["day"]["limit_usd"], w["day"]["source"]), ("none", "default"))
        self.ok("budget", "set", "--project", u.project_id, "--daily", "3", "--monthly", "0")
        out = self.ok("budget", "show", "--project", u.project_id)
        self.assertIn("project %s" % u.project_id, out)
        w = self.windows(out)
        self.assertEqual((w["day"]["limit_usd"], w["day"]["source"]), ("3.000000", "override"))
        self.assertAlmostEqual(float(w["day"]["spent_usd"]), 0.7)
        self.assertAlmostEqual(float(w["day"]["remaining_usd"]), 2.3)
        # a limit of 0 allows nothing: nothing remains, never below 0
        self.assertEqual(w["month"]["limit_usd"], "0.000000")
        self.assertEqual(float(w["month"]["remaining_usd"]), 0.0)

        out = self.ok("budget", "show")
        w = self.windows(out)
        self.assertEqual(list(w), ["day"])
        self.assertEqual((w["day"]["limit_usd"], w["day"]["source"]), ("100.000000", "default"))
        spent = float(self.sql("SELECT coalesce((SELECT spent_usd FROM public.budget_usage"
                               " WHERE scope = 'deployment' AND period = 'day'"
                               " AND window_start = public.image_job_budget_day(now())),"
                               " public.image_budget_backfill('deployment', '%s', 'day',"
                               " public.image_job_budget_day(now())))" % NIL))
        self.assertGreaterEqual(spent, 0.7)
        self.assertAlmostEqual(float(w["day"]["spent_usd"]), spent)
        # and every override, this project's among them
        m = re.search(r"^  project\s+%s\s+3\.000000\s+0\.000000\s+\S+" % u.project_id, out, re.M)
        self.assertIsNotNone(m, out)
        w = self.windows(self.ok("budget", "show", env={"IMAGEGEN_DAILY_BUDGET_USD": "none"}))
        self.assertEqual(w["day"]["limit_usd"], "none")

    def test_budget_bad_input_exits_2_naming_the_problem(self):
        u = str(uuid.uuid4())
        cases = [
            (("budget",), "expected set, clear or show"),
            (("budget", "raise", "--user", u), "unknown action 'raise'"),
            (("budget", "set", "--user", "12345", "--daily", "1"), "expected a UUID, got '12345'"),
            (("budget", "show", "--project", "x" + u[1:]), "--project: expected a UUID"),
            (("budget", "set", "--daily", "1"), "--user UUID or --project UUID is required"),
            (("budget", "clear"), "--user UUID or --project UUID is required"),
            (("budget", "set", "--user", u), "give --daily and/or --monthly"),
            (("budget", "set", "--user", u, "--daily", "1e3"), "--daily: expected USD"),
            (("budget", "set", "--user", u, "--monthly", "0.1234567"), "--monthly: expected USD"),
            (("budget", "set", "--user", u, "--daily", "2000000000"), "--daily: expected USD"),
            (("budget", "set", "--user", u, "--weekly", "1"), "unknown option '--weekly'"),
            (("budget", "clear", "--user", u, "--daily=1"), "takes no value"),
            (("budget", "set", "--user", u, "--project", u, "--daily", "1"), "not two"),
            (("budget", "show", "now"), "unexpected argument 'now'"),
        ]
        for args, says in cases:
            with self.subTest(args=args):
                r = self.imagegen(*args)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertEqual(r.stdout, "")
                self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
                self.assertIn(says, r.stderr)
        self.assertEqual(self.sql("SELECT count(*) FROM public.budgets WHERE scope_id = '%s'" % u), "0")
        r = self.imagegen("budget", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("imagegen budget set (--user UUID | --project UUID)", r.stdout)

    # ------------------------------------------------------------ stats

    def section(self, out, title):
        """The rows (split) of the stats table under the line starting title."""
        lines = out.splitlines()
        i = next(i for i, ln in enumerate(lines) if ln.startswith(title))
        rows = []
        for ln in lines[i + 2:]:
            if not ln.startswith("  "):
                break
            rows.append(ln.split())
        return rows

    def test_stats_spend_today_and_alerts(self):
        u = jh.seed_user(self.stack, "stats")
        self.seed_jobs(u)
        # a job of yesterday counts in no figure of today
        self.stack.psql("INSERT INTO public.image_generation_jobs (user_id, project_id, branch_id,"
                        " job_type, prompt, estimated_cost, created_at) VALUES ('%s', '%s', '%s',"
                        " 'master_asset', 'old', 5, now() - interval '2 days')"
                        % (u.id, u.project_id, u.branch_id))
        self.stack.psql("INSERT INTO public.cost_alerts (scope, scope_id, period, window_start,"
                        " threshold, spent_usd, reserved_usd, limit_usd) VALUES"
                        " ('user', '%s', 'day', public.image_job_budget_day(now()), 80, 8, 0.5, 10),"
                        " ('user', '%s', 'day', public.image_job_budget_day(now()) - 3, 50, 5, 0, 10)"
                        % (u.id, u.id))
        self.stack.psql("UPDATE public.cost_alerts SET created_at = now() - interval '3 days'"
                        " WHERE scope_id = '%s' AND threshold = 50" % u.id)
        out = self.ok("stats")
        self.assertIn("Cost per job type (completed jobs):", out)
        self.assertIn("Jobs by status, last 24 hours:", out)
        by_user = {r[0]: r[1:] for r in self.section(out, "Spend today (UTC) by user")}
        self.assertIn(u.id, by_user, out)
        spent, reserved, jobs = by_user[u.id]
        self.assertAlmostEqual(float(spent), 0.7)
        self.assertAlmostEqual(float(reserved), 0.3)
        self.assertEqual(jobs, "4")
        by_proj = {r[0]: r[1:] for r in self.section(out, "Spend today (UTC) by project")}
        self.assertIn(u.project_id, by_proj, out)
        self.assertAlmostEqual(float(by_proj[u.project_id][0]), 0.7)
        self.assertLessEqual(len(by_user), 20)
        alerts = [r for r in self.section(out, "Cost alerts today (UTC)") if u.id in r]
        self.assertEqual(len(alerts), 1, out)
        a = alerts[0]
        self.assertRegex(a[0], r"^\d\d:\d\d:\d\d$")
        self.assertEqual(a[1:5], ["user", u.id, "day", "80%"])
        self.assertEqual([float(x) for x in a[5:8]], [8.0, 0.5, 10.0])

    # ------------------------------------------------------------ /metrics

    def scrape(self):
        r = harness.http_request("127.0.0.1", self.stack.http_port, "GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        return parse_exposition(r.body.decode())

    def test_metrics_budget_ratio_and_alert_count(self):
        fams = self.scrape()
        self.assertEqual(fams["imagegen_budget_spent_ratio"]["type"], "gauge")
        self.assertEqual(fams["imagegen_cost_alerts_total"]["type"], "counter")
        alerts0 = fams["imagegen_cost_alerts_total"]["samples"][("imagegen_cost_alerts_total", "")]
        self.assertEqual(alerts0, float(self.sql("SELECT count(*) FROM public.cost_alerts")))
        a, b, p = (str(uuid.uuid4()) for _ in range(3))
        rows = [
            # today's user rows: the fullest one counts
            ("user", a, "day", "public.image_job_budget_day(now())", 9, 0.5, 10),
            ("user", b, "day", "public.image_job_budget_day(now())", 1, 0, 10),
            # not of the current window, or without a limit: left out
            ("user", b, "day", "public.image_job_budget_day(now()) - 1", 30, 0, 10),
            ("user", b, "month", "public.image_budget_window('month',"
             " public.image_job_budget_day(now())) - interval '1 month'", 30, 0, 10),
            ("project", p, "day", "public.image_job_budget_day(now())", 5, 0, 0),
            # this month's project row
            ("project", p, "month", "public.image_budget_window('month',"
             " public.image_job_budget_day(now()))", 1, 1, 4),
        ]
        self.stack.psql("INSERT INTO public.budget_usage (scope, scope_id, period, window_start,"
                        " spent_usd, reserved_usd, limit_usd) VALUES %s"
                        % ", ".join("('%s', '%s', '%s', (%s)::date, %s, %s, %s)" % r for r in rows))
        self.stack.psql("INSERT INTO public.cost_alerts (scope, scope_id, period, window_start,"
                        " threshold, spent_usd, reserved_usd, limit_usd) VALUES"
                        " ('user', '%s', 'day', public.image_job_budget_day(now()), 50, 5, 0, 10),"
                        " ('user', '%s', 'day', public.image_job_budget_day(now()), 80, 9, 0.5, 10)"
                        % (a, a))
        fams = self.scrape()
        s = fams["imagegen_budget_spent_ratio"]["samples"]
        key = lambda sc, per: ("imagegen_budget_spent_ratio",  # noqa: E731
                               'scope="%s",period="%s"' % (sc, per))
        # other tests' rows of today are below 0.95 (theirs: 0.175 at most)
        self.assertAlmostEqual(s[key("user", "day")], 0.95)
        self.assertAlmostEqual(s[key("project", "month")], 0.5)
        self.assertNotIn(key("user", "month"), s)
        self.assertNotIn(key("project", "day"), s)
        deployment = self.sql("SELECT count(*) FROM public.budget_usage WHERE scope = 'deployment'"
                              " AND limit_usd > 0")
        if deployment == "0":
            self.assertNotIn(key("deployment", "day"), s)
        self.assertEqual(fams["imagegen_cost_alerts_total"]["samples"][("imagegen_cost_alerts_total", "")],
                         alerts0 + 2)
        # a window that fills up through the status trigger shows too
        u = jh.seed_user(self.stack, "metrics")
        self.ok("budget", "set", "--user", u.id, "--daily", "1")
        self.stack.psql("INSERT INTO public.image_generation_jobs (user_id, project_id, branch_id,"
                        " job_type, prompt, estimated_cost) VALUES ('%s', '%s', '%s',"
                        " 'master_asset', 'p', 0.96)" % (u.id, u.project_id, u.branch_id))
        fams = self.scrape()
        self.assertAlmostEqual(fams["imagegen_budget_spent_ratio"]["samples"][key("user", "day")], 0.96)
        # the reservation reached 80 %: its alert is counted
        self.assertEqual(fams["imagegen_cost_alerts_total"]["samples"][("imagegen_cost_alerts_total", "")],
                         alerts0 + 4)
        w = self.windows(self.ok("budget", "show", "--user", u.id))
        self.assertAlmostEqual(float(w["day"]["reserved_usd"]), 0.96)
        self.assertAlmostEqual(float(w["day"]["remaining_usd"]), 0.04)


if __name__ == "__main__":
    unittest.main()
