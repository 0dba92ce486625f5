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
                    on polling; a job canceled while the model runs cancels
                    the prediction; the token is never logged
"""

import os
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "fakes"))

import harness  # noqa: E402
import jobs_helper as jh  # noqa: E402
from replicate import FakeReplicate  # noqa: E402

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


if __name__ == "__main__":
    import unittest
    unittest.main()
