"""The route checks every web server in front of the pool must pass.

Mixed into a harness.StackTestCase whose class sets `web_port` (an HTTP
port on 127.0.0.1 where the web server under test listens, in front of
the stack's pool and serving its local storage at
/storage/v1/object/public/) in setUpClass; `web_name` names it in
messages.  The stack runs the local provider and storage (jh.pool_env()).
Each check goes through that web server only."""

import json
import os
import time
import urllib.parse

import harness
import jobs_helper as jh


class RouteChecks:
    web_port = None
    web_tls = False                 # web_port speaks HTTPS
    web_name = "web server"
    # What the web server itself answers for a body over its limit: some
    # (Apache's LimitRequestBody) answer 413 in their own HTML, not ours.
    body_413_is_json = True

    def web(self, method, path, body=None, headers=None, timeout=15.0):
        self.assertIsNotNone(self.web_port, "the test class did not start its web server")
        return harness.http_request("127.0.0.1", self.web_port, method, path, body,
                                    headers, tls=self.web_tls, timeout=timeout)

    def assert_request_id(self, r):
        rid = r.header("X-Request-Id")
        self.assertIsNotNone(rid, "%s: no X-Request-Id: %r" % (self.web_name, r))
        self.assertRegex(rid, r"^[0-9a-f]{32}$", self.web_name)
        return rid

    def test_route_health_live(self):
        r = self.web("GET", "/api/health/live")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.data["status"], "ok", r)
        self.assert_request_id(r)

    def test_route_health_with_database(self):
        r = self.web("GET", "/api/health")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.data["database"], "ok", r)

    def test_route_openapi_document_without_auth(self):
        r = self.web("GET", "/api/openapi.json")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.content_type, "application/json", "%s: %r" % (self.web_name, r))
        with open(os.path.join(harness.SRCDIR, "docs", "openapi.json"), "rb") as f:
            self.assertEqual(r.body, f.read(), "%s: the served document differs from "
                             "docs/openapi.json" % self.web_name)
        self.assert_request_id(r)

    def test_route_me_with_and_without_token(self):
        u = jh.seed_user(self.stack, "route")
        r = self.web("GET", "/api/me", headers=jh.auth(u.token))
        self.assertEqual(r.status, 200, "%s lost the Authorization header? %r"
                         % (self.web_name, r))
        self.assertEqual(r.data["userId"], u.id, r)
        r = self.web("GET", "/api/me")
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.error_code(), "UNAUTHORIZED", r)

    def test_route_provider_webhook_reaches_the_pool_without_a_token(self):
        # The provider's callback has no bearer token: the web server must
        # pass it, and its webhook-* headers, to the pool, which answers
        # (the local provider sends no webhooks: the pool's own 404).
        body = b'{"id":"abc","status":"succeeded"}'
        r = self.web("POST", "/api/webhooks/nano-banana", body,
                     {"Content-Type": "application/json", "webhook-id": "msg_1",
                      "webhook-timestamp": str(int(time.time())),
                      "webhook-signature": "v1,AAAA"})
        self.assertEqual(r.status, 404, "%s: %r" % (self.web_name, r))
        self.assertEqual(r.error_code(), "NOT_FOUND", r)
        self.assertIn("sends no webhooks", r.data["error"]["message"], r)
        self.assert_request_id(r)

    def test_route_generate_to_completed_png_served(self):
        u = jh.seed_user(self.stack, "route-gen")
        h = dict(jh.auth(u.token), **{"Content-Type": "application/json"})
        body = {"projectId": u.project_id, "branchId": u.branch_id,
                "jobType": "master_asset", "prompt": "a heron through " + self.web_name,
                "width": 64, "height": 64}
        r = self.web("POST", jh.GENERATE, json.dumps(body).encode(), h)
        self.assertEqual(r.status, 202, r)
        jid = r.data["jobId"]
        job = None
        for _ in range(200):
            g = self.web("GET", "/api/images/jobs/" + jid, headers=jh.auth(u.token))
            self.assertEqual(g.status, 200, g)
            job = g.data
            if job["status"] in jh.TERMINAL:
                break
            time.sleep(0.05)
        self.assertEqual(job["status"], "completed", job)
        img = self.web("GET", urllib.parse.urlsplit(job["publicUrl"]).path)
        self.assertEqual(img.status, 200, img)
        self.assertEqual(jh.png_size(img.body), (64, 64))

    def test_route_generate_prefer_wait_held_to_201(self):
        """Prefer: wait through this web server: the held answer comes
        when the job ends (the responder's watch on the FastCGI connection
        must not take the web server's silence, or its way of sending a
        request, for a client that left). Without the master pool no
        request waits: the plain 202 (a web server that starts the pool
        itself may start the master: either answer, but whole)."""
        u = jh.seed_user(self.stack, "route-wait")
        h = dict(jh.auth(u.token), **{"Content-Type": "application/json",
                                      "Prefer": "wait=10"})
        body = {"projectId": u.project_id, "branchId": u.branch_id,
                "jobType": "master_asset", "prompt": "a held heron through " + self.web_name,
                "width": 64, "height": 64}
        r = self.web("POST", jh.GENERATE, json.dumps(body).encode(), h)
        if (self.stack.pool_mode not in ("master", "spawn-master")
                and r.header("Preference-Applied") is None):
            self.assertEqual(r.status, 202, r)
            self.assertEqual(set(r.data), {"jobId", "status"}, r)
            # its executor ends before the class's web server stops
            for _ in range(200):
                g = self.web("GET", "/api/images/jobs/" + r.data["jobId"],
                             headers=jh.auth(u.token))
                if g.status == 200 and g.data["status"] in jh.TERMINAL:
                    break
                time.sleep(0.05)
            self.assertEqual(g.data["status"], "completed", g)
            return
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.header("Preference-Applied"), "wait=10", r)
        self.assertEqual(r.data["status"], "completed", r)
        self.assertLess(r.elapsed, 5.0, r.elapsed)

    def test_route_unknown_404_and_wrong_method_405(self):
        r = self.web("GET", "/api/no-such-route")
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.error_code(), "NOT_FOUND", r)
        r = self.web("DELETE", "/api/health/live")
        self.assertEqual(r.status, 405, r)
        self.assertEqual(r.error_code(), "METHOD_NOT_ALLOWED", r)
        self.assertIn("GET", r.header("Allow") or "", r)

    def test_route_body_over_limit_413(self):
        big = b"{" + b" " * (2 << 20) + b"}"
        r = self.web("POST", jh.GENERATE, big, {"Content-Type": "application/json"})
        self.assertEqual(r.status, 413, r)
        if self.body_413_is_json:
            self.assertEqual(r.error_code(), "PAYLOAD_TOO_LARGE", r)

    def test_route_metrics_from_loopback(self):
        r = self.web("GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertIn("imagegen_jobs", r.body.decode())
