"""The replicate provider end to end: HTTP through nginx to the pool, an
executor creating a prediction on the fake Replicate
(tests/fakes/replicate.py) and the picture stored by the local storage
backend.

  ReplicatePolling  no IMAGEGEN_PUBLIC_URL: the executor polls GET
                    /predictions/{id} until it ends; the request the fake
                    saw (model path, Bearer token, input, no webhook); the
                    output file downloaded under the outbound URL policy
                    (IMAGEGEN_FETCH_ALLOW=127.0.0.1: the fake is there);
                    cost from the price table ($0.039); each error class
                    ends the job with its code (401, 422, 429 + Retry-After,
                    5xx, failed with an NSFW message, failed, no output),
                    the retryable ones retried; a poll that meets a 503 goes
                    on polling; a failed output download is tried again
                    (no second prediction); a job canceled while the model runs cancels
                    the prediction; the token is never logged
  ReplicateWebhook  IMAGEGEN_PUBLIC_URL set (nginx's address): the
                    prediction is created with webhook
                    $IMAGEGEN_PUBLIC_URL/api/webhooks/nano-banana and
                    ["completed"], its id recorded (sql/015), and no
                    executor process lives while the model runs; the
                    fake's signed webhook (secret fetched once from GET
                    /v1/webhooks/default/secret) completes the job through
                    an executor; a forged, stale or replayed webhook is
                    refused (401) or ignored (200, recorded once) and the
                    job unchanged; a webhook never sent, or sent with a bad
                    signature, leaves the job to the sweeper's poll after
                    IMAGEGEN_WEBHOOK_GRACE_S; a webhook sent twice completes
                    it once; one that comes before the executor recorded
                    the id is kept and taken then; a failed prediction fails the job with its
                    code at generating; create errors end the job with
                    their code; a waiting job canceled cancels its
                    prediction; waiting jobs do not count toward
                    IMAGEGEN_MAX_RUNNING_JOBS unless
                    IMAGEGEN_CAP_COUNTS_REMOTE=1
"""

import json
import os
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "fakes"))

import harness  # noqa: E402
import jobs_helper as jh  # noqa: E402
from replicate import FakeReplicate, sign  # noqa: E402

TOKEN = "r8_FAKEimagegen0123456789abcdefghijklmnop"
MODEL = "google/nano-banana"
CREATE_PATH = "/v1/models/google/nano-banana/predictions"


class ReplicateCase(harness.StackTestCase):
    """One fake and one stack per class; each test resets the fake."""

    extra = {}

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeReplicate().start()
        cls.addClassCleanup(cls.fake.stop)
        env = jh.pool_env(IMAGEGEN_PROVIDER="replicate",
                          REPLICATE_API_TOKEN=TOKEN,
                          REPLICATE_API_URL=cls.fake.api_url,
                          REPLICATE_POLL_MS=100,
                          IMAGEGEN_FETCH_ALLOW="127.0.0.1",
                          IMAGEGEN_PROVIDER_TIMEOUT_MS=2000,
                          **cls.extra)
        cls.stack_args = dict(pool="master", workers=2, extra_env=env)
        super().setUpClass()
        cls.user = jh.seed_user(cls.stack, "replicate")

    def setUp(self):
        self.fake.reset()

    def tearDown(self):
        log = self.stack.read_pool_log() if self.stack else ""
        self.assertNotIn(TOKEN, log, "the API token was logged")

    def create(self, prompt, **over):
        r = jh.post_job(self.stack, self.user.token, self.user.body(prompt, **over))
        self.assertEqual(r.status, 202, r)
        return r.data["jobId"]

    def run_job(self, scenarios, prompt=None, timeout=40, **over):
        self.fake.push(*scenarios)
        jid = self.create(prompt or "job %s" % uuid.uuid4().hex[:8], **over)
        return jh.wait_job(self.stack, self.user.token, jid, timeout=timeout)

    def row(self, jid):
        return jh.psql_json(self.stack, "SELECT row_to_json(j) FROM"
                            " public.image_generation_jobs j WHERE id = '%s'" % jid)

    def stored(self, job):
        r = self.stack.http("GET", job["publicUrl"])
        self.assertEqual(r.status, 200, r)
        return r.body

    def assert_failed(self, job, code, creates, what=""):
        self.assertEqual(job["status"], "failed", what + repr(job))
        self.assertEqual(job["error"]["code"], code, what + repr(job))
        self.assertEqual(job["error"]["failureStage"], "generating", what + repr(job))
        self.assertTrue(job["error"]["message"].startswith("replicate:"),
                        what + repr(job["error"]))
        self.assertNotIn(TOKEN, job["error"]["message"])
        self.assertEqual(len(self.fake.creates()), creates, what + "creates")
        self.assertIsNone(job.get("publicUrl"), what + repr(job))

    def wait_for(self, cond, timeout=20, what="condition"):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            v = cond()
            if v:
                return v
            time.sleep(0.05)
        self.fail("timed out waiting for " + what)


class ReplicatePolling(ReplicateCase):

    def test_completes_by_polling(self):
        job = self.run_job([{"name": "ok", "runtime": 0.8}], "a red fox",
                           width=1344, height=768)
        self.assertEqual(job["status"], "completed", job)
        self.assertEqual(job["attempts"], 1, job)
        self.assertEqual(self.stored(job), self.fake.last_image)
        self.assertEqual((job["width"], job["height"]), (1344, 768), job)
        self.assertAlmostEqual(float(job["cost"]["actual"]), 0.039, places=6)
        self.assertAlmostEqual(float(job["cost"]["estimated"]), 0.039, places=6)
        self.assertEqual(self.row(job["jobId"])["model"], MODEL)
        creates = self.fake.creates()
        self.assertEqual(len(creates), 1)
        c = creates[0]
        self.assertEqual(c.path, CREATE_PATH)
        self.assertEqual(c.headers.get("authorization"), "Bearer " + TOKEN)
        inp = c.json["input"]
        self.assertIn("a red fox", inp["prompt"])
        self.assertEqual(inp["aspect_ratio"], "16:9")
        self.assertEqual(inp["output_format"], "png")
        self.assertNotIn("image_input", inp)
        self.assertNotIn("webhook", c.json)
        pid = list(self.fake.predictions)[0]
        polls = self.fake.requests_to("/v1/predictions/" + pid, "GET")
        self.assertGreaterEqual(len(polls), 2, "polled while it ran")
        self.assertTrue(all(p.headers.get("authorization") == "Bearer " + TOKEN
                            for p in polls))
        files = self.fake.requests_to("/files/", "GET")
        self.assertEqual(len(files), 1)
        self.assertNotIn("authorization", files[0].headers,
                         "the token went to the output file's host")

    def test_each_error_class_ends_with_its_code(self):
        cases = [(["401"], "AUTH_ERROR", 1, "Unauthenticated"),
                 (["422"], "INVALID_REQUEST", 1, "Input validation failed"),
                 (["failed_nsfw"], "CONTENT_POLICY", 1, "NSFW"),
                 (["failed"], "PROVIDER_ERROR", 1, "CUDA out of memory"),
                 (["no_output"], "NO_IMAGE", 1, "without an output file"),
                 (["429"] * 4, "RATE_LIMIT", 4, "throttled"),
                 (["503"] * 4, "TEMPORARY", 4, "HTTP 503")]
        for scenarios, code, creates, words in cases:
            self.fake.reset()
            job = self.run_job(scenarios + ["ok"], "failure %s" % scenarios[0],
                               timeout=60)
            self.assert_failed(job, code, creates, scenarios[0] + ": ")
            self.assertIn(words, job["error"]["message"], job["error"])

    def test_retryable_errors_then_success(self):
        for first in ("429", "500", "502"):
            self.fake.reset()
            job = self.run_job([first, "ok"], "retry %s" % first)
            self.assertEqual(job["status"], "completed", first + repr(job))
            c = self.fake.creates()
            self.assertEqual(len(c), 2, first)
            if first == "429":
                self.assertGreaterEqual(c[1].time - c[0].time, 0.95,
                                        "Retry-After: 1 waited")

    def test_a_failed_poll_is_polled_again(self):
        job = self.run_job([{"name": "poll_500", "count": 2, "runtime": 0.2}],
                           "flaky polls")
        self.assertEqual(job["status"], "completed", job)
        self.assertEqual(len(self.fake.creates()), 1)

    def test_a_failed_download_is_tried_again_not_paid_again(self):
        job = self.run_job([{"name": "ok", "file_fail": 1}], "flaky file")
        self.assertEqual(job["status"], "completed", job)
        self.assertEqual(len(self.fake.creates()), 1, "a second prediction bought")
        self.assertEqual(len(self.fake.requests_to("/files/", "GET")), 2)

    def test_cancel_cancels_the_prediction(self):
        self.fake.push({"name": "ok", "runtime": 60})
        jid = self.create("a long one")
        self.wait_for(lambda: self.fake.predictions, what="the prediction")
        pid = list(self.fake.predictions)[0]
        self.wait_for(lambda: self.fake.requests_to("/v1/predictions/" + pid, "GET"),
                      what="a poll")
        r = jh.cancel_job(self.stack, self.user.token, jid)
        self.assertIn(r.status, (200, 202), r)
        job = jh.wait_job(self.stack, self.user.token, jid, timeout=20)
        self.assertEqual(job["status"], "canceled", job)
        cancels = self.fake.requests_to("/v1/predictions/%s/cancel" % pid, "POST")
        self.assertEqual(len(cancels), 1)
        self.assertEqual(cancels[0].headers.get("authorization"), "Bearer " + TOKEN)
        self.assertEqual(self.fake.prediction(pid)["status"], "canceled")
        self.assertEqual(len(self.fake.creates()), 1)



class ReplicateWebhook(ReplicateCase):
    """The pool restarted with IMAGEGEN_PUBLIC_URL = nginx's own address
    (allowed for the fake, which is on the same host)."""

    GRACE = 3

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.restart_pool()

    @classmethod
    def restart_pool(cls, **extra):
        env = {"IMAGEGEN_PUBLIC_URL": "http://127.0.0.1:%d" % cls.stack.http_port,
               "IMAGEGEN_WEBHOOK_GRACE_S": str(cls.GRACE)}
        env.update({k: str(v) for k, v in extra.items()})
        cls.stack.stop_pool()
        cls.stack.start_pool(extra_env=env)

    def tearDown(self):
        super().tearDown()
        log = self.stack.read_pool_log() if self.stack else ""
        self.assertNotIn(self.fake.secret, log, "the webhook secret was logged")
        self.assertNotIn(self.fake.secret[6:], log, "the webhook key was logged")

    # ------------------------------------------------------------ helpers

    def waiting(self, jid):
        return jh.psql_json(self.stack, "SELECT row_to_json(q) FROM"
                            " public.image_provider_requests q WHERE job_id = '%s'"
                            % jid)

    def receipts(self, wid):
        return jh.psql_json(self.stack, "SELECT count(*) FROM"
                            " public.image_provider_webhooks WHERE webhook_id = '%s'"
                            % wid)

    def our_executors(self):
        mark = ("IMAGEGEN_SLOT_DIR=%s" % self.stack.slot_dir).encode()
        out = []
        for pid, (st, _, comm) in jh.proc_table().items():
            if comm != "ig-executor" or st in ("Z", "X"):
                continue
            try:
                with open("/proc/%d/environ" % pid, "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue
            if mark in env:
                out.append(pid)
        return out

    def submitted(self, scenario, prompt="waits on the model"):
        """Creates a job on scenario; returns (job id, prediction id) once
        the job waits on it."""
        self.fake.push(scenario)
        jid = self.create(prompt)
        row = self.wait_for(lambda: self.waiting(jid), what="the recorded prediction")
        return jid, row["request_id"]

    def post_webhook(self, body, wid=None, ts=None, key=None, headers=None):
        raw = json.dumps(body).encode()
        wid = wid or "msg_" + uuid.uuid4().hex
        ts = int(time.time()) if ts is None else ts
        h = {"Content-Type": "application/json", "webhook-id": wid,
             "webhook-timestamp": str(ts),
             "webhook-signature": sign(key or self.fake.secret, wid, ts, raw)}
        if headers is not None:
            h = headers
        return self.stack.http("POST", "/api/webhooks/nano-banana", raw, h)

    def job(self, jid):
        return jh.get_job(self.stack, self.user.token, jid).data

    # ------------------------------------------------------------ tests

    def test_completes_via_webhook_with_no_executor_alive_meanwhile(self):
        jid, pid = self.submitted({"name": "ok", "runtime": 2.0}, "a blue whale")
        c = self.fake.creates()[0]
        self.assertEqual(c.json["webhook"], "http://127.0.0.1:%d/api/webhooks/"
                         "nano-banana" % self.stack.http_port)
        self.assertEqual(c.json["webhook_events_filter"], ["completed"])
        self.assertTrue(self.waiting(jid)["waiting"])
        self.assertEqual(self.job(jid)["status"], "generating")
        # the model runs; no executor waits on it
        self.wait_for(lambda: not self.our_executors(), 10, "executors to exit")
        self.assertIn(self.fake.prediction(pid)["status"], ("starting", "processing"),
                      "the model ended before the executors were looked at")
        self.assertEqual(self.our_executors(), [])
        job = jh.wait_job(self.stack, self.user.token, jid, timeout=30)
        self.assertEqual(job["status"], "completed", job)
        self.assertEqual(job["attempts"], 1, job)
        self.assertEqual(self.stored(job), self.fake.last_image)
        self.assertAlmostEqual(float(job["cost"]["actual"]), 0.039, places=6)
        row = self.waiting(jid)
        self.assertEqual(row["outcome_from"], "webhook", row)
        self.assertFalse(row["waiting"])
        self.assertEqual([w["status"] for w in self.fake.webhooks], [200])
        self.assertEqual(self.fake.requests_to("/v1/predictions/" + pid, "GET"), [],
                         "polled although the webhook came in time")
        # the secret was asked of Replicate (not configured), once per
        # responder at most
        self.assertIn(self.fake.secret_fetches, (1, 2))

    def test_forged_stale_and_replayed_webhooks_change_nothing(self):
        jid, pid = self.submitted({"name": "ok", "runtime": 60})
        before = self.waiting(jid)
        ended = dict(self.fake.prediction(pid), status="failed", error="forged")
        other = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
        cases = [("no signature", dict(headers={"Content-Type": "application/json"})),
                 ("another secret", dict(key=other)),
                 ("stale", dict(ts=int(time.time()) - 600)),
                 ("from the future", dict(ts=int(time.time()) + 600))]
        for what, kw in cases:
            r = self.post_webhook(ended, **kw)
            self.assertEqual(r.status, 401, what + repr(r))
            self.assertEqual(r.data["error"]["code"], "UNAUTHORIZED", what)
        self.assertEqual(self.waiting(jid), before)
        self.assertEqual(self.job(jid)["status"], "generating")
        self.assertEqual(jh.psql_json(self.stack, "SELECT count(*) FROM"
                                      " public.image_provider_webhooks"
                                      " WHERE request_id = '%s'" % pid), 0)
        # a signed one still running, then the same webhook-id again
        running = dict(self.fake.prediction(pid))
        r1 = self.post_webhook(running, wid="msg_replay1")
        r2 = self.post_webhook(running, wid="msg_replay1")
        self.assertEqual((r1.status, r2.status), (200, 200))
        self.assertEqual((r1.data["replayed"], r2.data["replayed"]), (False, True))
        self.assertEqual(self.receipts("msg_replay1"), 1)
        self.assertEqual(self.waiting(jid)["outcome"], None)
        # a real end, replayed after the job ended: ignored
        failed = dict(running, status="failed", error="NSFW content detected.")
        r = self.post_webhook(failed, wid="msg_end")
        self.assertEqual(r.status, 200, r)
        job = jh.wait_job(self.stack, self.user.token, jid, timeout=20)
        self.assertEqual(job["status"], "failed", job)
        self.assertEqual(job["error"]["code"], "CONTENT_POLICY", job)
        self.assertEqual(job["error"]["failureStage"], "generating", job)
        ok = dict(running, status="succeeded", output="%s/files/x" % self.fake.url)
        r = self.post_webhook(ok, wid="msg_end")
        self.assertEqual((r.status, r.data["replayed"]), (200, True))
        r = self.post_webhook(ok, wid="msg_late")
        self.assertEqual((r.status, r.data["replayed"]), (200, False))
        time.sleep(1.5)
        self.assertEqual(self.job(jid)["status"], "failed")
        self.assertEqual(self.receipts("msg_end"), 1)

    def test_webhook_dropped_completes_by_polling(self):
        for scenario in ("webhook_never", "webhook_bad_sig", "webhook_stale"):
            self.fake.reset()
            jid, pid = self.submitted({"name": scenario, "runtime": 0.3})
            job = jh.wait_job(self.stack, self.user.token, jid, timeout=30)
            self.assertEqual(job["status"], "completed", scenario + repr(job))
            self.assertEqual(self.waiting(jid)["outcome_from"], "poll", scenario)
            polls = self.fake.requests_to("/v1/predictions/" + pid, "GET")
            self.assertGreaterEqual(len(polls), 1, scenario)
            sent = [w["status"] for w in self.fake.webhooks]
            self.assertEqual(sent, [] if scenario == "webhook_never" else [401],
                             scenario)
            self.assertGreaterEqual(polls[0].wall - self.fake.creates()[0].wall,
                                    self.GRACE - 0.5, "polled before the grace")

    def test_webhook_before_the_id_is_recorded_still_completes_it(self):
        self.fake.push({"name": "ok", "runtime": 0, "early_webhook": True})
        t0 = time.monotonic()
        jid = self.create("a quick model")
        job = jh.wait_job(self.stack, self.user.token, jid, timeout=30)
        self.assertEqual(job["status"], "completed", job)
        self.assertLess(time.monotonic() - t0, self.GRACE, "waited for a poll")
        self.assertEqual([w["status"] for w in self.fake.webhooks], [200])
        self.assertEqual(self.waiting(jid)["outcome_from"], "webhook")
        pid = list(self.fake.predictions)[0]
        self.assertEqual(self.fake.requests_to("/v1/predictions/" + pid, "GET"), [])

    def test_webhook_sent_twice_completes_once(self):
        jid, pid = self.submitted({"name": "webhook_twice", "runtime": 0.5})
        job = jh.wait_job(self.stack, self.user.token, jid, timeout=30)
        self.assertEqual(job["status"], "completed", job)
        self.wait_for(lambda: len(self.fake.webhooks) == 2, what="two webhooks")
        self.assertEqual([w["status"] for w in self.fake.webhooks], [200, 200])
        wid = self.fake.webhooks[0]["headers"]["webhook-id"]
        self.assertEqual(self.receipts(wid), 1)
        self.assertEqual(job["attempts"], 1)

    def test_failed_prediction_fails_the_job_with_its_code(self):
        jid, pid = self.submitted({"name": "failed_nsfw", "runtime": 0.5})
        job = jh.wait_job(self.stack, self.user.token, jid, timeout=30)
        self.assertEqual(job["status"], "failed", job)
        self.assertEqual(job["error"]["code"], "CONTENT_POLICY", job)
        self.assertEqual(job["error"]["failureStage"], "generating", job)
        self.assertEqual(self.waiting(jid)["outcome_from"], "webhook")

    def test_create_errors_end_the_job_with_their_code(self):
        for scenario, code in (("401", "AUTH_ERROR"), ("422", "INVALID_REQUEST")):
            self.fake.reset()
            job = self.run_job([scenario], "create %s" % scenario)
            self.assert_failed(job, code, 1, scenario + ": ")
            self.assertIsNone(self.waiting(job["jobId"]))

    def test_waiting_jobs_and_the_running_jobs_cap(self):
        """IMAGEGEN_MAX_RUNNING_JOBS=1: jobs waiting on the model do not
        count by default (both predictions run), and do with
        IMAGEGEN_CAP_COUNTS_REMOTE=1 (a third job stays queued)."""
        self.addCleanup(self.restart_pool)
        self.restart_pool(IMAGEGEN_MAX_RUNNING_JOBS=1)
        jobs = [self.submitted({"name": "ok", "runtime": 60}, "capped %d" % i)
                for i in range(2)]
        self.assertEqual(len(self.fake.creates()), 2)
        self.restart_pool(IMAGEGEN_MAX_RUNNING_JOBS=1, IMAGEGEN_CAP_COUNTS_REMOTE=1)
        self.fake.push({"name": "ok", "runtime": 60})
        third = self.create("over the cap")
        time.sleep(3)
        self.assertEqual(self.job(third)["status"], "queued")
        self.assertEqual(len(self.fake.creates()), 2)
        for jid, pid in jobs:
            jh.cancel_job(self.stack, self.user.token, jid)
        # the waiting ones end canceled, then the third runs
        for jid, pid in jobs:
            self.assertEqual(jh.wait_job(self.stack, self.user.token, jid,
                                         timeout=20)["status"], "canceled")
        self.wait_for(lambda: self.waiting(third), what="the third job submitted")
        jh.cancel_job(self.stack, self.user.token, third)
        self.assertEqual(jh.wait_job(self.stack, self.user.token, third,
                                     timeout=20)["status"], "canceled")

    def test_cancel_of_a_waiting_job_cancels_the_prediction(self):
        jid, pid = self.submitted({"name": "ok", "runtime": 60})
        r = jh.cancel_job(self.stack, self.user.token, jid)
        self.assertIn(r.status, (200, 202), r)
        job = jh.wait_job(self.stack, self.user.token, jid, timeout=20)
        self.assertEqual(job["status"], "canceled", job)
        self.wait_for(lambda: self.fake.prediction(pid)["status"] == "canceled",
                      what="the prediction canceled")
        self.assertEqual(len(self.fake.requests_to("/v1/predictions/%s/cancel" % pid,
                                                   "POST")), 1)
        self.assertFalse(self.waiting(jid)["waiting"])


if __name__ == "__main__":
    import unittest
    unittest.main()
