"""docs/openapi.json: linted by a real OpenAPI validator (npm's
@seriousme/openapi-schema-validator, tests/node/openapi_lint.mjs), served
by the pool at GET /api/openapi.json byte for byte as the repo has it, in
step with the route table and the error table, and the harness's
response-schema check (tests/lib/openapi_check.py) refuses what the
document does not describe."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402
import jobs_helper as jh  # noqa: E402
import jose_helper  # noqa: E402
import openapi_check  # noqa: E402

DOC = os.path.join(harness.SRCDIR, "docs", "openapi.json")
LINT = os.path.join(harness.SRCDIR, "tests", "node", "openapi_lint.mjs")


def read_doc_bytes():
    with open(DOC, "rb") as f:
        return f.read()


def lint(path):
    """(exit status, parsed JSON line) of openapi_lint.mjs on path."""
    d = jose_helper.install()           # tests/node's locked deps (npm ci)
    mod = os.path.join(d, "node_modules", "@seriousme", "openapi-schema-validator", "package.json")
    if not os.path.isfile(mod):
        raise harness.HarnessError("npm ci in %s did not install "
                                   "@seriousme/openapi-schema-validator" % d)
    shutil.copyfile(LINT, os.path.join(d, "openapi_lint.mjs"))
    p = subprocess.run([shutil.which("node"), os.path.join(d, "openapi_lint.mjs"), path],
                       cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    try:
        out = json.loads(p.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise AssertionError("openapi_lint.mjs printed no result (exit %d): %s %s" % (
            p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")))
    return p.returncode, out


def app_routes():
    """(method, pattern) of each entry of src/http/app.c's route table."""
    with open(os.path.join(harness.SRCDIR, "src", "http", "app.c")) as f:
        text = f.read()
    routes = re.findall(r'\{\s*"([A-Z]+)",\s*"([^"]+)",\s*handle_\w+\s*\}', text)
    if not routes:
        raise AssertionError("no route found in src/http/app.c")
    return set(routes)


def err_table():
    """{code: status} of src/http/err.c's table (IG_OK left out)."""
    with open(os.path.join(harness.SRCDIR, "src", "http", "err.c")) as f:
        text = f.read()
    rows = re.findall(r'\[IG_\w+\]\s*=\s*\{\s*(\d+),\s*"([A-Z_]+)"', text)
    return {code: int(st) for st, code in rows if code != "OK"}


class DocumentLint(unittest.TestCase):
    """The document itself, no stack."""

    def test_lints_clean_with_an_openapi_validator(self):
        rc, out = lint(DOC)
        self.assertEqual((rc, out["valid"], out["errors"]), (0, True, []), out)
        self.assertEqual(out["version"], "3.1", out)

    def test_the_linter_refuses_a_broken_document(self):
        with open(DOC) as f:
            doc = json.load(f)
        tmp = tempfile.mkdtemp(prefix="imagegen-openapi-")
        self.addCleanup(shutil.rmtree, tmp, True)
        cases = {
            "no info.title": lambda d: d["info"].pop("title"),
            "a dangling $ref": lambda d: d["paths"]["/api/me"]["get"]["responses"]["200"]
            ["content"]["application/json"]["schema"].update({"$ref": "#/components/schemas/Nope"}),
            "a status that is no status": lambda d: d["paths"]["/api/me"]["get"]["responses"]
            .update({"2000": {"description": "x"}}),
        }
        for name, breakit in cases.items():
            with self.subTest(name):
                d = json.loads(json.dumps(doc))
                breakit(d)
                p = os.path.join(tmp, "broken.json")
                with open(p, "w") as f:
                    json.dump(d, f)
                rc, out = lint(p)
                self.assertNotEqual(rc, 0, out)
                self.assertFalse(out["valid"], out)

    def test_every_route_of_the_code_is_documented(self):
        with open(DOC) as f:
            doc = json.load(f)
        documented = {(m.upper(), p) for p, item in doc["paths"].items()
                      for m in item if m in openapi_check.METHODS}
        code = app_routes()
        self.assertEqual(code - documented, set(), "routed in src/http/app.c, not in docs/openapi.json")
        self.assertEqual(documented - code, set(),
                         "in docs/openapi.json, not routed in src/http/app.c")

    def test_error_codes_and_statuses_are_the_code_table(self):
        with open(DOC) as f:
            doc = json.load(f)
        table = err_table()
        self.assertEqual(len(table), 13, table)
        self.assertEqual(doc["components"]["schemas"]["ErrorCode"]["enum"], list(table))
        for st, name in openapi_check.ERROR_RESPONSES.items():
            resp = doc["components"]["responses"][name]
            code = resp["content"]["application/json"]["schema"]["properties"]["error"][
                "properties"]["code"]["const"]
            if st in ("502", "504"):    # nginx's own, with a 503's body
                self.assertEqual(code, "SERVICE_UNAVAILABLE", name)
            else:
                self.assertEqual(table[code], int(st), (name, code))
        for st, names in openapi_check.ERROR_ALTERNATIVES.items():
            for name in names:
                resp = doc["components"]["responses"][name]
                code = resp["content"]["application/json"]["schema"]["properties"]["error"][
                    "properties"]["code"]["const"]
                self.assertEqual(table[code], int(st), (name, code))
        # every operation's error responses are the component of their
        # status (or one of its documented alternatives)
        for p, item in doc["paths"].items():
            for m, op in item.items():
                if m not in openapi_check.METHODS:
                    continue
                for st, r in op["responses"].items():
                    if int(st) >= 400:
                        names = (openapi_check.ERROR_RESPONSES[st],) + \
                            openapi_check.ERROR_ALTERNATIVES.get(st, ())
                        self.assertIn(r, [{"$ref": "#/components/responses/" + n}
                                          for n in names], (m, p, st))


class CheckerRefuses(unittest.TestCase):
    """openapi_check.check itself: what it must refuse, and let pass."""

    H = [("X-Request-Id", "0123456789abcdef0123456789abcdef"),
         ("Content-Type", "application/json; charset=utf-8")]

    def refused(self, *args):
        n = openapi_check.count()
        try:
            with self.assertRaises(openapi_check.Violation) as cm:
                openapi_check.check(*args)
        finally:
            del openapi_check.violations[n:]     # expected: fail no test
        return str(cm.exception)

    def test_refuses_drift(self):
        job = {"jobId": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "status": "queued"}
        ok = json.dumps(job).encode()
        openapi_check.check("POST", jh.GENERATE, 202, self.H, ok)
        openapi_check.check("HEAD", "/api/health/live", 200, self.H, b"")
        openapi_check.check("GET", "/metrics", 200, [], b"not JSON, not under /api/")
        openapi_check.check("GET", "/api/health/live", 301,
                            [("Location", "https://localhost/api/health/live")], b"<html>")
        self.assertIn("status 302 is not documented", self.refused(
            "GET", "/api/health/live", 302, [("Location", "/elsewhere")] + self.H, b"<html>"))
        self.assertIn("'extra' was unexpected", self.refused(
            "POST", jh.GENERATE, 202, self.H, json.dumps(dict(job, extra=1)).encode()))
        self.assertIn("'queued' was expected", self.refused(
            "POST", jh.GENERATE, 202, self.H, json.dumps(dict(job, status="bogus")).encode()))
        self.assertIn("header X-Request-Id missing", self.refused(
            "POST", jh.GENERATE, 202, self.H[1:], ok))
        self.assertIn("status 207 is not documented", self.refused(
            "POST", jh.GENERATE, 207, self.H, ok))
        self.assertIn("Content-Type 'text/html'", self.refused(
            "POST", jh.GENERATE, 202, [self.H[0], ("Content-Type", "text/html")], ok))
        self.assertIn("no path template", self.refused(
            "GET", "/api/nowhere", 200, self.H, b"{}"))
        self.assertIn("'NOT_FOUND' was expected", self.refused(
            "GET", "/api/nowhere", 404, self.H, b'{"error":{"code":"INTERNAL","message":"x"}}'))
        self.assertIn("header Retry-After missing", self.refused(
            "GET", "/api/health", 503, self.H,
            b'{"error":{"code":"SERVICE_UNAVAILABLE","message":"down"}}'))
        self.assertIn("'budget' is a required property", self.refused(
            "POST", jh.GENERATE, 402, self.H, b'{"error":{"code":"BUDGET_EXCEEDED","message":"x"}}'))

    def test_refuses_a_job_the_state_machine_cannot_make(self):
        u = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
        ts = "2026-12-02T12:00:00.123Z"
        job = {"jobId": u, "status": "completed", "jobType": "master_asset", "projectId": u,
               "branchId": u, "assetId": None, "sceneId": None, "shotId": None,
               "visualStyleCapsuleId": None, "prompt": "a castle", "finalPrompt": "a castle",
               "width": 1024, "height": 1024, "provider": "local", "model": "local-1",
               "publicUrl": "http://localhost/storage/v1/object/public/asset-images/x.png",
               "storagePath": "x.png", "mimeType": "image/png",
               "cost": {"estimated": 0.039, "actual": 0.039, "currency": "USD"},
               "attempts": 1, "retryOf": None, "cancelRequested": False, "createdAt": ts,
               "startedAt": ts, "completedAt": ts, "updatedAt": ts}
        get = "/api/images/jobs/" + u

        def body(**over):
            return json.dumps(dict(job, **over)).encode()
        openapi_check.check("GET", get, 200, self.H, body())
        failed = {"code": "PROVIDER_ERROR", "message": "no", "failureStage": "generating"}
        openapi_check.check("GET", get, 200, self.H, body(status="failed", error=failed))
        self.assertIn("None is not of type 'string'", self.refused(
            "GET", get, 200, self.H, body(completedAt=None)))
        self.assertIn("'error' is a required property", self.refused(
            "GET", get, 200, self.H, body(status="failed")))
        self.assertIn("should not be valid", self.refused(
            "GET", get, 200, self.H, body(status="queued", completedAt=None, error=failed)))
        self.assertIn("is not of type 'null'", self.refused(
            "GET", get, 200, self.H, body(status="generating")))
        self.assertIn("body at createdAt", self.refused(
            "GET", get, 200, self.H, body(createdAt="2026-12-02 12:00:00+00")))
        self.assertIn("'USD' was expected", self.refused(
            "GET", get, 200, self.H, body(cost={"estimated": 1, "actual": None, "currency": "EUR"})))

    def test_refuses_an_event_or_a_401_the_document_does_not_describe(self):
        u = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
        ts = "2026-12-02T12:00:00.123Z"
        job = {"jobId": u, "status": "completed", "jobType": "master_asset", "projectId": u,
               "branchId": u, "assetId": None, "sceneId": None, "shotId": None,
               "visualStyleCapsuleId": None, "prompt": "a castle", "finalPrompt": "a castle",
               "width": 1024, "height": 1024, "provider": "local", "model": "local-1",
               "publicUrl": None, "storagePath": None, "mimeType": None,
               "cost": {"estimated": 0.039, "actual": 0.039, "currency": "USD"},
               "attempts": 1, "retryOf": None, "cancelRequested": False, "createdAt": ts,
               "startedAt": ts, "completedAt": ts, "updatedAt": ts}
        sig = "v1," + "A" * 43 + "="
        hdrs = [("webhook-id", "msg_" + "0" * 32), ("webhook-timestamp", "1767225600"),
                ("webhook-signature", sig), ("Content-Type", "application/json")]

        def ev(**over):
            return json.dumps(dict({"type": "image_job.completed", "timestamp": ts,
                                    "data": job}, **over))

        def refused(h, body):
            n = openapi_check.count()
            try:
                with self.assertRaises(openapi_check.Violation) as cm:
                    openapi_check.check_webhook(h, body)
            finally:
                del openapi_check.violations[n:]
            return str(cm.exception)
        openapi_check.check_webhook(hdrs, ev())
        openapi_check.check_webhook(hdrs + [("webhook-signature", sig + " " + sig)], ev())
        started = dict(job, status="processing", completedAt=None)
        openapi_check.check_webhook(hdrs, ev(type="image_job.started", data=started))
        self.assertIn("'processing' was expected", refused(hdrs, ev(type="image_job.started")))
        self.assertIn("not one of the document's webhooks", refused(hdrs, ev(type="job.done")))
        self.assertIn("'extra' was unexpected", refused(hdrs, ev(extra=1)))
        self.assertIn("header webhook-signature missing", refused(hdrs[:2] + hdrs[3:], ev()))
        self.assertIn("header webhook-id", refused([("webhook-id", "x")] + hdrs[1:], ev()))
        self.assertIn("Content-Type 'text/plain'", refused(
            hdrs[:3] + [("Content-Type", "text/plain")], ev()))
        alert = {"type": "budget.threshold", "timestamp": ts, "data": {
            "alertId": 7, "scope": "user", "scopeId": u, "period": "day",
            "windowStart": "2026-12-02", "threshold": 80, "spentUsd": 0.3,
            "reservedUsd": 0.1, "limitUsd": 0.5, "jobId": u, "createdAt": ts}}
        # without IMAGEGEN_ALERT_WEBHOOK_SECRET an alert is not signed
        openapi_check.check_webhook(hdrs[:2] + hdrs[3:], json.dumps(alert))
        alert["data"]["threshold"] = 90
        self.assertIn("90 is not one of", refused(hdrs, json.dumps(alert)))
        # the provider webhook's 401 has no bearer challenge; a bearer 401 has
        e401 = b'{"error":{"code":"UNAUTHORIZED","message":"webhook refused"}}'
        openapi_check.check("POST", "/api/webhooks/nano-banana", 401, self.H, e401)
        self.assertIn("header WWW-Authenticate missing", self.refused(
            "GET", "/api/me", 401, self.H, e401))
        self.assertIn("status 401 is not documented", self.refused(
            "GET", "/api/openapi.json", 401, self.H, e401))

    def test_a_swallowed_violation_is_still_recorded(self):
        n = openapi_check.count()
        try:
            openapi_check.check("GET", "/api/me", 200, self.H, b"{}")
        except AssertionError:
            pass
        try:
            self.assertEqual(len(openapi_check.since(n)), 1)
        finally:
            del openapi_check.violations[n:]


class ServedDocument(harness.StackTestCase):
    stack_args = {"pool": "master", "extra_env": jh.pool_env()}

    def test_served_through_nginx_equals_the_repo_file_without_auth(self):
        r = self.stack.http("GET", "/api/openapi.json")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.content_type, "application/json", r)
        self.assertEqual(r.body, read_doc_bytes(), "the served document differs from docs/openapi.json")
        self.assertEqual(r.data["openapi"], "3.1.0")
        r = self.stack.http("HEAD", "/api/openapi.json")
        self.assertEqual((r.status, r.body), (200, b""), r)
        self.assertEqual(r.header("Content-Length"), str(len(read_doc_bytes())), r)

    def test_served_by_the_pool_itself(self):
        r = self.stack.fcgi("GET", "/api/openapi.json")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Type"), "application/json; charset=utf-8", r)
        self.assertEqual(r.body, read_doc_bytes())
        r = self.stack.fcgi("POST", "/api/openapi.json", b"{}", content_type="application/json")
        self.assertEqual(r.status, 405, r)
        self.assertEqual(r.header("Allow"), "GET, HEAD", r)

    def test_answers_through_the_harness_are_checked(self):
        # a document that asks more of /api/health/live than the code
        # gives: every way the tests reach the pool must refuse the answer
        d = openapi_check.doc()
        schemas = d["components"]["schemas"]
        saved = schemas["HealthLive"]
        n = openapi_check.count()
        schemas["HealthLive"] = dict(saved, required=saved["required"] + ["uptime"])
        openapi_check._validators.clear()
        ka = jh.KeepAlive(self.stack.http_port)
        try:
            calls = {"Stack.http": lambda: self.stack.http("GET", "/api/health/live"),
                     "Stack.fcgi": lambda: self.stack.fcgi("GET", "/api/health/live"),
                     "KeepAlive": lambda: ka.request("GET", "/api/health/live")}
            for name, call in calls.items():
                with self.subTest(name), self.assertRaises(openapi_check.Violation) as cm:
                    call()
                self.assertIn("'uptime' is a required property", str(cm.exception))
        finally:
            ka.close()
            schemas["HealthLive"] = saved
            openapi_check._validators.clear()
            del openapi_check.violations[n:]     # expected: fail no test
        self.assertEqual(self.stack.http("GET", "/api/health/live").status, 200)

    def test_info_version_is_the_build_version(self):
        doc = json.loads(read_doc_bytes())
        r = self.stack.http("GET", "/api/health/live")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(doc["info"]["version"], r.data["version"],
                         "docs/openapi.json info.version is not configure.ac's version")


if __name__ == "__main__":
    unittest.main()
