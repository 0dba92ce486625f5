"""End-to-end: HTTP through real nginx to a real pool and a real Postgres.

The basic route checks (RouteChecks) run against all three ways of running
the pool (docs/RUNNING.md): its own master, spawn-fcgi + our master, and
spawn-fcgi's unsupervised responders.  The database-outage check and the
TLS check run for both master modes.
"""

import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402

RID_RE = re.compile(r"^[0-9a-f]{32}$")


class RouteChecks:
    """Mixin: the routes every pool mode must answer the same way."""

    def assert_json_error(self, r, status, code):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.content_type, "application/json", r)
        self.assertIsInstance(r.data, dict, r)
        self.assertIsInstance(r.data.get("error"), dict, r)
        self.assertEqual(r.data["error"].get("code"), code, r)
        self.assertIsInstance(r.data["error"].get("message"), str, r)

    def assert_request_id(self, r):
        """X-Request-Id exactly once, 32 hex chars, and the one nginx
        logged for this request (access log field rid=)."""
        ids = r.header_all("X-Request-Id")
        self.assertEqual(len(ids), 1, "X-Request-Id must appear exactly once: %r" % (r.headers,))
        rid = ids[0]
        self.assertRegex(rid, RID_RE)
        logged = harness.wait_until(lambda: ("rid=%s " % rid) in self.stack.access_log(), 3)
        self.assertTrue(logged, "rid=%s not in nginx access log:\n%s"
                        % (rid, self.stack.access_log()[-2000:]))
        return rid

    def test_live_200_json(self):
        r = self.stack.http("GET", "/api/health/live")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.content_type, "application/json", r)
        self.assertIsInstance(r.data, dict, r)
        self.assert_request_id(r)

    def test_health_200_json(self):
        r = self.stack.http("GET", "/api/health")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.content_type, "application/json", r)
        self.assertIsInstance(r.data, dict, r)
        self.assert_request_id(r)

    def test_request_ids_differ_per_request(self):
        ids = {self.stack.http("GET", "/api/health/live").header("X-Request-Id") for _ in range(5)}
        self.assertEqual(len(ids), 5, ids)

    def test_unknown_route_404_json_with_request_id(self):
        r = self.stack.http("GET", "/api/nope")
        self.assert_json_error(r, 404, "NOT_FOUND")
        self.assert_request_id(r)

    def test_wrong_method_405_json_with_allow(self):
        r = self.stack.http("DELETE", "/api/health")
        self.assert_json_error(r, 405, "METHOD_NOT_ALLOWED")
        allow = r.header_all("Allow")
        self.assertEqual(len(allow), 1, r)
        methods = [m.strip() for m in allow[0].split(",")]
        self.assertIn("GET", methods, r)
        self.assertNotIn("DELETE", methods, r)
        self.assert_request_id(r)

    def test_2mib_body_413_json_with_request_id(self):
        body = b"x" * (2 * 1024 * 1024)
        r = self.stack.http("POST", "/api/health", body=body,
                            headers={"Content-Type": "application/json"}, timeout=30)
        self.assert_json_error(r, 413, "PAYLOAD_TOO_LARGE")
        self.assert_request_id(r)
        # and the pool still serves afterwards (the body was drained)
        self.assertEqual(self.stack.http("GET", "/api/health/live").status, 200)

    def test_fcgi_content_length_larger_than_body_400(self):
        r = self.stack.fcgi("POST", "/api/health", b'{"a":1}', content_length=100,
                            content_type="application/json")
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["error"]["code"], "VALIDATION_ERROR", r)
        self.assertEqual(r.protocol_status, 0, r)

    def test_fcgi_content_length_smaller_than_body_400(self):
        r = self.stack.fcgi("POST", "/api/health", b'{"a":1,"b":2}', content_length=3,
                            content_type="application/json")
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["error"]["code"], "VALIDATION_ERROR", r)

    def test_fcgi_content_length_malformed_400(self):
        r = self.stack.fcgi("POST", "/api/health", b"abc", content_length="3abc",
                            content_type="application/json")
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["error"]["code"], "VALIDATION_ERROR", r)

    def test_fcgi_request_id_passed_through(self):
        rid = "0123456789abcdef0123456789abcdef"
        r = self.stack.fcgi("GET", "/api/nope", request_id=rid)
        self.assertEqual(r.status, 404, r)
        self.assertIn(rid, r.header_all("X-Request-Id") + [r.body.decode(errors="replace")]
                      + [self.stack.read_pool_log()], "request id not echoed or logged")


class OutageAndTlsChecks:
    """Mixin for the master modes: Postgres outage and HTTPS."""

    def test_https_http11_tls12(self):
        r = self.stack.http("GET", "/api/health", tls=True)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.version, 11, "HTTP/1.1 expected over TLS")
        self.assertIn(r.tls_version, ("TLSv1.2", "TLSv1.3"))
        self.assertIsInstance(r.data, dict, r)
        self.assertEqual(len(r.header_all("X-Request-Id")), 1, r)

    def test_postgres_down_503_within_2s_then_back_200(self):
        s = self.stack
        self.assertEqual(s.http("GET", "/api/health").status, 200)
        pool_before = s.pool_pids()
        s.pg_stop()
        try:
            # Each child must notice: ask more times than there are children.
            for i in range(4):
                t0 = time.monotonic()
                r = s.http("GET", "/api/health", timeout=10)
                took = time.monotonic() - t0
                self.assertEqual(r.status, 503, "attempt %d: %r" % (i, r))
                self.assertEqual(r.data["error"]["code"], "SERVICE_UNAVAILABLE", r)
                self.assertEqual(r.content_type, "application/json", r)
                retry = r.header_all("Retry-After")
                self.assertEqual(len(retry), 1, r)
                self.assertRegex(retry[0], r"^\d+$")
                self.assertLess(took, 2.0, "503 took %.2fs" % took)
            # liveness does not depend on the database
            self.assertEqual(s.http("GET", "/api/health/live").status, 200)
        finally:
            s.pg_start()
        deadline = time.monotonic() + 5
        statuses = []
        ok = 0
        while time.monotonic() < deadline and ok < 4:
            r = s.http("GET", "/api/health")
            statuses.append(r.status)
            ok = ok + 1 if r.status == 200 else 0
            if r.status != 200:
                time.sleep(0.2)
        self.assertGreaterEqual(ok, 4, "health after Postgres restart: %s" % statuses)
        # without restarting the pool
        self.assertEqual(sorted(s.pool_pids()), sorted(pool_before))
        # and leave no worker backing off for the next test
        self.assertTrue(s.wait_db_recovered(), "health did not settle at 200")


class MasterHealth(RouteChecks, OutageAndTlsChecks, harness.StackTestCase):
    """imagegen-fcgi --listen SOCK --workers 2 (its own master)."""
    stack_args = dict(pool="master", workers=2)


class SpawnMasterHealth(RouteChecks, OutageAndTlsChecks, harness.StackTestCase):
    """spawn-fcgi -s SOCK -n -- imagegen-fcgi --workers 2."""
    stack_args = dict(pool="spawn-master", workers=2)


class SpawnPlainHealth(RouteChecks, harness.StackTestCase):
    """spawn-fcgi -s SOCK -F 2 -- imagegen-fcgi (unsupervised responders)."""
    stack_args = dict(pool="spawn-plain", workers=2)


if __name__ == "__main__":
    unittest.main()
