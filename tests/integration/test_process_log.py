"""What the processes say about themselves: an executor's lines name the
job and the request that created it; the master's line for each child it
reaps says how the child ended and how long it lived."""

import os
import re
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402
import jobs_helper as jh  # noqa: E402


class ProcessLog(harness.StackTestCase):
    stack_args = {"pool": "master", "workers": 2, "extra_env": jh.pool_env()}

    def test_executor_lines_carry_job_and_creating_request_id(self):
        s = self.stack
        u = jh.seed_user(s, "logger")
        jobs = []
        for i in range(4):
            r = jh.post_job(s, u.token, {"projectId": u.project_id, "branchId": u.branch_id,
                                         "jobType": "master_asset", "prompt": "a heron %d" % i,
                                         "width": 64, "height": 64})
            self.assertEqual(r.status, 202, r)
            jobs.append((r.data["jobId"], r.header("X-Request-Id")))
        for jid, _ in jobs:
            self.assertEqual(jh.wait_job(s, u.token, jid)["status"], "completed")
        log = s.read_pool_log().splitlines()
        for jid, rid in jobs:
            self.assertRegex(rid, r"^[0-9a-f]{32}$")
            mine = [ln for ln in log if " job=%s " % jid in ln + " "]
            done = [ln for ln in mine if "completed" in ln]
            self.assertTrue(done, "no executor line names job %s:\n%s" % (jid, "\n".join(log[-40:])))
            for ln in mine:
                self.assertTrue(ln.endswith(" job=%s rid=%s" % (jid, rid)), ln)

    def test_master_logs_each_reaped_child_with_how_and_how_long(self):
        s = self.stack
        # an executor of the test before may exit between the listing and
        # the read of its name (comm: None)
        victim = [p for p in s.children_pids()
                  if (jh.comm(p) or "").startswith("imagegen-fcgi")][0]
        os.kill(victim, signal.SIGKILL)
        pat = re.compile(r"child %d killed by signal 9 \(SIGKILL\), slot \d+, after \d+\.\d{3} s"
                         % victim)
        self.assertTrue(harness.wait_until(lambda: pat.search(s.read_pool_log()), 10),
                        "no reap line for %d:\n%s" % (victim, harness.tail(s.pool_log)))


if __name__ == "__main__":
    import unittest
    unittest.main()
