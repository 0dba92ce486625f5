"""GET /metrics: Prometheus text from the database through nginx."""

import os
import re
import sys
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402

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
        self.assertAlmostEqual(self.sample(text, "imagegen_job_cost_usd_total",
                                           status="queued", kind="estimated"), 0.078)
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


if __name__ == "__main__":
    unittest.main()
