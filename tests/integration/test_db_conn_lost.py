"""A database connection that breaks in the middle of a request: the
responder answers 503 and stays up; the connection is not freed while
the request still holds it (db_check notes the loss, the next db_get
replaces it)."""

import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402


class DbConnLost(harness.StackTestCase):
    # MALLOC_PERTURB_ fills freed memory, so a use of a freed PGconn
    # crashes the responder instead of reading stale bytes that still
    # look like a connection.
    stack_args = {"pool": "master", "workers": 1,
                  "extra_env": {"SUPABASE_JWT_SECRET": "c" * 40,
                                "MALLOC_PERTURB_": "165"}}

    def get_metrics(self):
        return harness.http_request("127.0.0.1", self.stack.http_port, "GET", "/metrics",
                                    timeout=20)

    def worker_backend(self, waiting):
        cond = " AND wait_event_type = 'Lock'" if waiting else ""
        out = self.stack.psql(
            "SELECT pid FROM pg_stat_activity WHERE application_name ="
            " 'imagegen-fcgi-worker'%s" % cond).strip()
        return out.split()[0] if out else None

    def test_worker_connection_lost_mid_metrics_answers_503_without_crash(self):
        self.assertEqual(self.get_metrics().status, 200)
        self.assertIsNotNone(self.worker_backend(False), "no worker-role connection")
        before = sorted(self.stack.children_pids())
        # Hold a lock the metrics queries wait for, after their BEGIN has
        # succeeded, then end the responder's backend under them.
        locker = subprocess.Popen(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=dict(self.stack.pg_env(), PGAPPNAME="ig-test-locker"), text=True)
        answer = {}
        try:
            locker.stdin.write("BEGIN; LOCK TABLE image_generation_jobs IN ACCESS EXCLUSIVE MODE;"
                               " SELECT pg_sleep(60);\n")
            locker.stdin.flush()
            self.assertTrue(harness.wait_until(
                lambda: self.stack.psql(
                    "SELECT count(*) FROM pg_locks WHERE relation ="
                    " 'image_generation_jobs'::regclass AND mode = 'AccessExclusiveLock'"
                    " AND granted").strip() == "1", 10), "lock not taken")
            t = threading.Thread(target=lambda: answer.update(r=self.get_metrics()))
            t.start()
            self.assertTrue(harness.wait_until(lambda: self.worker_backend(True), 10),
                            "the metrics query never waited for the lock")
            pid = self.worker_backend(True)
            self.stack.psql("SELECT pg_terminate_backend(%s)" % pid)
            t.join(20)
            self.assertFalse(t.is_alive(), "no answer")
        finally:
            # pg_sleep does not notice its client going: end the backend.
            self.stack.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE application_name = 'ig-test-locker'")
            locker.kill()
            locker.wait()
        r = answer["r"]
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.data["error"]["code"], "SERVICE_UNAVAILABLE", r)
        time.sleep(0.3)
        self.assertEqual(sorted(self.stack.children_pids()), before,
                         "the responder died:\n" + harness.tail(self.stack.pool_log))
        # The next request connects anew and answers.
        self.assertTrue(self.stack.wait_db_recovered("/metrics"),
                        "metrics did not recover")
        self.assertEqual(self.get_metrics().status, 200)


if __name__ == "__main__":
    import unittest
    unittest.main()
