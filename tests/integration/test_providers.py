"""The real providers end to end: HTTP through nginx to the pool, an
executor calling IMAGEGEN_PROVIDER=gemini|openai pointed at the fake Nano
Banana (tests/fakes/nano_banana.py), and the picture stored by the local
storage backend.

  GeminiProvider   the fake's image stored with its real size and
                   cost.actual from usageMetadata; the request the fake saw
                   (model path, x-goog-api-key, IMAGE modality, aspect ratio
                   for many width/height pairs, inline images for inpaint,
                   the style capsule in the prompt and its audit event);
                   every failure ends failed at generating with its code,
                   the retryable ones succeed after the right number of
                   calls (Retry-After and RetryInfo waited exactly); the key
                   the fake echoes is redacted
  OpenAIProvider   b64_json and url results (redirects, non-images, 404),
                   usage → cost, the estimate without it, the failures;
                   the outbound URL policy on url results: strict by
                   default (a loopback address, a name resolving to one,
                   plain http: refused, nothing fetched), and with
                   IMAGEGEN_FETCH_ALLOW=127.0.0.1 set by the tests that
                   need it (the fake is on 127.0.0.1) a redirect to an
                   address or a plain-http host outside it still refused

The provider timeout is 1 s (IMAGEGEN_PROVIDER_TIMEOUT_MS=1000) so a hang
costs little; the fake's retry hints are 1 s.
"""

import base64
import os
import re
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "fakes"))

import harness  # noqa: E402
import jobs_helper as jh  # noqa: E402
from nano_banana import GEMINI_SIZES, FakeNanoBanana, png_size  # noqa: E402

GEMINI_KEY = "AIzaSyFAKE-imagegen-0123456789abcdefghij"
OPENAI_KEY = "sk-fake-imagegen-0123456789abcdef"
FLASH = "gemini-2.5-flash-image"
# Flash Image's rates, USD per 1M tokens: input, text out, image out.
FLASH_IN, FLASH_TEXT, FLASH_IMAGE = 0.30, 2.50, 30.0
RETRYABLE_GAP = 0.95        # a 1 s hint, measured between two requests


class ProviderCase(harness.StackTestCase):
    """One fake and one stack per class; each test resets the fake."""

    provider = None
    key = None
    url_suffix = ""
    name = None                 # message prefix, "gemini" / "openai"
    call_path = None            # the word in the API call's path

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeNanoBanana().start()
        cls.addClassCleanup(cls.fake.stop)
        env = jh.pool_env(IMAGEGEN_PROVIDER=cls.provider,
                          NANO_BANANA_API_KEY=cls.key,
                          NANO_BANANA_API_URL=cls.fake.url + cls.url_suffix,
                          IMAGEGEN_PROVIDER_TIMEOUT_MS=1000,
                          IMAGEGEN_PROVIDER_MAX_BYTES=1 << 20)
        cls.stack_args = dict(pool="master", workers=2, extra_env=env)
        super().setUpClass()
        cls.user = jh.seed_user(cls.stack, cls.provider)

    def setUp(self):
        self.fake.reset()

    def tearDown(self):
        log = self.stack.read_pool_log() if self.stack else ""
        self.assertNotIn(self.key, log, "the API key was logged")

    # ------------------------------------------------------------ helpers

    def create(self, prompt, **over):
        r = jh.post_job(self.stack, self.user.token, self.user.body(prompt, **over))
        self.assertEqual(r.status, 202, r)
        return r.data["jobId"]

    def run_job(self, scenarios, prompt=None, timeout=40, **over):
        """Queues scenarios on the fake, creates a job, waits for its end."""
        self.fake.push(*scenarios)
        jid = self.create(prompt or "job %s" % uuid.uuid4().hex[:8], **over)
        return jh.wait_job(self.stack, self.user.token, jid, timeout=timeout)

    def row(self, jid):
        return jh.psql_json(self.stack, "SELECT row_to_json(j) FROM"
                            " public.image_generation_jobs j WHERE id = '%s'" % jid)

    def calls(self):
        return self.fake.requests_to(self.call_path)

    def stored(self, job):
        r = self.stack.http("GET", job["publicUrl"])
        self.assertEqual(r.status, 200, r)
        return r.body

    def assert_completed(self, job, calls):
        self.assertEqual(job["status"], "completed", job)
        self.assertEqual(job["attempts"], 1, job)
        self.assertEqual(len(self.calls()), calls, "calls to the provider")
        self.assertEqual(self.stored(job), self.fake.last_image)

    def assert_failed(self, job, code, calls, what=""):
        self.assertEqual(job["status"], "failed", what + repr(job))
        self.assertEqual(job["error"]["code"], code, what + repr(job))
        self.assertEqual(job["error"]["failureStage"], "generating", what + repr(job))
        self.assertTrue(job["error"]["message"].startswith(self.name + ":"),
                        what + repr(job["error"]))
        self.assertNotIn(self.key, job["error"]["message"])
        self.assertEqual(job["attempts"], 1, what + repr(job))
        self.assertEqual(len(self.calls()), calls, what + "calls to the provider")
        self.assertIsNone(job.get("publicUrl"), what + repr(job))

    def fetch_allow(self, value):
        """Restarts the pool with IMAGEGEN_FETCH_ALLOW=value for this test
        only; the class's strict pool (no allow-list) comes back after."""
        self.stack.stop_pool()
        self.addCleanup(self._strict_pool)
        self.stack.start_pool(extra_env={"IMAGEGEN_FETCH_ALLOW": value})

    def _strict_pool(self):
        self.stack.stop_pool()
        self.stack.start_pool()

    def assert_refused(self, job, why, what=""):
        """The job failed at generating over its artifact URL, said why,
        and the fake served no file."""
        self.assert_failed(job, "PROVIDER_ERROR", 1, what)
        msg = job["error"]["message"]
        self.assertTrue(msg.startswith("%s: artifact URL refused by the outbound URL "
                                       "policy: " % self.name), msg)
        self.assertIn(why, msg)
        self.assertEqual(self.fake.requests_to("/files/"), [], "an artifact was fetched")

    def retries_logged(self, jid, code):
        return self.stack.read_pool_log().count("job %s: %s, retry" % (jid, code))

    def gaps(self):
        t = [r.time for r in self.calls()]
        return [b - a for a, b in zip(t, t[1:])]


# ==================================================================== gemini

class GeminiProvider(ProviderCase):
    provider = "gemini"
    key = GEMINI_KEY
    url_suffix = "/v1beta"
    name = "gemini"
    call_path = ":generateContent"

    def test_completes_with_the_fakes_image_real_size_and_usage_cost(self):
        job = self.run_job(["ok"], "a red fox in the snow", width=1920, height=1080)
        self.assert_completed(job, 1)
        row = self.row(job["jobId"])
        # the image's real size, not the requested one
        self.assertEqual((row["image_width"], row["image_height"]), GEMINI_SIZES["16:9"])
        self.assertEqual(png_size(self.stored(job)), GEMINI_SIZES["16:9"])
        self.assertEqual(row["mime_type"], "image/png")
        self.assertEqual((row["provider"], row["model"]), ("gemini", FLASH))
        # cost.actual from usageMetadata: prompt, text + thoughts, image tokens
        u = self.fake.last_usage
        image = [d["tokenCount"] for d in u["candidatesTokensDetails"]
                 if d["modality"] == "IMAGE"][0]
        text = u["candidatesTokenCount"] - image + u["thoughtsTokenCount"]
        want = (u["promptTokenCount"] * FLASH_IN + text * FLASH_TEXT
                + image * FLASH_IMAGE) / 1e6
        self.assertAlmostEqual(job["cost"]["actual"], want, places=6)
        self.assertAlmostEqual(job["cost"]["estimated"], 0.039, places=6)
        # the request the fake received
        (req,) = self.calls()
        self.assertEqual(req.method, "POST")
        self.assertEqual(req.path, "/v1beta/models/%s:generateContent" % FLASH)
        self.assertEqual(req.query, "", "the key must not travel in the URL")
        self.assertEqual(req.headers.get("x-goog-api-key"), GEMINI_KEY)
        self.assertNotIn("authorization", req.headers)
        self.assertTrue(req.headers.get("content-type", "").startswith("application/json"))
        gc = req.json["generationConfig"]
        self.assertEqual(gc["responseModalities"], ["IMAGE"])
        self.assertEqual(gc["imageConfig"], {"aspectRatio": "16:9"},
                         "Flash takes no imageSize")
        parts = req.json["contents"][0]["parts"]
        self.assertEqual(len(parts), 1, parts)
        self.assertEqual(parts[0]["text"], row["final_prompt"])
        self.assertTrue(row["final_prompt"].startswith("Master asset: a red fox in the snow."),
                        row["final_prompt"])
        self.assertIn("neutral background", row["final_prompt"])

    def test_aspect_ratio_for_many_sizes(self):
        cases = [(1024, 1024, "1:1"), (768, 1024, "3:4"), (1024, 768, "4:3"),
                 (1200, 800, "3:2"), (800, 1200, "2:3"), (1000, 800, "5:4"),
                 (800, 1000, "4:5"), (720, 1280, "9:16"), (2560, 1080, "21:9"),
                 (64, 4096, "9:16"), (320, 192, "16:9")]
        jobs = {}
        for w, h, ratio in cases:
            prompt = "ratio probe %dx%d" % (w, h)
            jobs[self.create(prompt, width=w, height=h)] = (prompt, ratio)
        by_prompt = {}
        for jid, (prompt, ratio) in jobs.items():
            job = jh.wait_job(self.stack, self.user.token, jid, timeout=40)
            self.assertEqual(job["status"], "completed", job)
            row = self.row(jid)
            self.assertEqual((row["image_width"], row["image_height"]),
                             GEMINI_SIZES[ratio], prompt)
        for req in self.calls():
            by_prompt[req.json["contents"][0]["parts"][0]["text"]] = req.json
        self.assertEqual(len(by_prompt), len(cases))
        for prompt, ratio in jobs.values():
            (body,) = [b for t, b in by_prompt.items() if prompt + "." in t]
            self.assertEqual(body["generationConfig"]["imageConfig"]["aspectRatio"], ratio,
                             prompt)

    def test_inpaint_sends_source_and_mask_inline(self):
        src = self.run_job(["ok"], "the source picture", width=1024, height=768)
        self.assertEqual(src["status"], "completed", src)
        mask = self.run_job(["ok"], "the mask picture", width=1024, height=768)
        self.assertEqual(mask["status"], "completed", mask)
        src_bytes, mask_bytes = self.stored(src), self.stored(mask)
        self.fake.reset()
        job = self.run_job(["ok"], "remove the hat", jobType="inpaint", width=1024,
                           height=768, sourceImageUrl=src["publicUrl"],
                           maskImageUrl=mask["publicUrl"])
        self.assert_completed(job, 1)
        self.assertIn("/inpaint/", job["storagePath"])
        (req,) = self.calls()
        parts = req.json["contents"][0]["parts"]
        self.assertEqual(len(parts), 3, [list(p) for p in parts])
        text = parts[0]["text"]
        self.assertTrue(text.startswith("Edit the provided image: remove the hat."), text)
        self.assertIn("keep everything else", text)
        self.assertIn("The second image is a mask", text)
        for part, want in ((parts[1], src_bytes), (parts[2], mask_bytes)):
            inl = part["inline_data"]
            self.assertEqual(inl["mime_type"], "image/png")
            self.assertEqual(base64.b64decode(inl["data"], validate=True), want)
        self.assertEqual(req.json["generationConfig"]["imageConfig"]["aspectRatio"], "4:3")

        # without a mask: the source alone, no mask sentence
        self.fake.reset()
        job = self.run_job(["ok"], "make it night", jobType="inpaint",
                           sourceImageUrl=src["publicUrl"])
        self.assertEqual(job["status"], "completed", job)
        (req,) = self.calls()
        parts = req.json["contents"][0]["parts"]
        self.assertEqual(len(parts), 2)
        self.assertNotIn("mask", parts[0]["text"])

        # a source that is not in the bucket: INVALID_REQUEST, no call
        self.fake.reset()
        missing = jh.BUCKET_PREFIX + "project_%s/branch_%s/master-assets/%s_1_0a1b2c3d.png" % (
            self.user.project_id, self.user.branch_id, uuid.uuid4())
        job = self.run_job([], "edit a ghost", jobType="inpaint", sourceImageUrl=missing)
        self.assertEqual(job["status"], "failed", job)
        self.assertEqual(job["error"]["code"], "INVALID_REQUEST", job)
        self.assertTrue(job["error"]["message"].startswith("sourceImageUrl:"), job)
        self.assertEqual(self.calls(), [])

    def test_style_capsule_in_prompt_and_audit_event(self):
        own, shared = str(uuid.uuid4()), str(uuid.uuid4())
        self.stack.psql("INSERT INTO public.visual_style_capsules (id, user_id, name, style_text)"
                        " VALUES ('%s', '%s', 'Ink wash', 'Sumi-e ink wash, grey paper.'),"
                        " ('%s', NULL, 'House style', 'Flat pastel vectors.')"
                        % (own, self.user.id, shared))
        for cid, name, style, is_shared in ((own, "Ink wash", "Sumi-e ink wash, grey paper.",
                                             False),
                                            (shared, "House style", "Flat pastel vectors.",
                                             True)):
            self.fake.reset()
            job = self.run_job(["ok"], "a heron", visualStyleCapsuleId=cid)
            self.assert_completed(job, 1)
            row = self.row(job["jobId"])
            fp = row["final_prompt"]
            self.assertTrue(fp.startswith("Master asset: a heron."), fp)
            self.assertTrue(fp.endswith("\n\nVisual style: " + style), fp)
            (req,) = self.calls()
            self.assertEqual(req.json["contents"][0]["parts"][0]["text"], fp)
            ev = jh.psql_json(self.stack, "SELECT coalesce(json_agg(detail ORDER BY id), '[]')"
                              " FROM public.image_generation_job_events WHERE job_id = '%s'"
                              " AND event = 'style_capsule_applied'" % job["jobId"])
            self.assertEqual(ev, [{"capsuleId": cid, "name": name, "shared": is_shared,
                                   "styleText": style}])
        # no capsule, no event
        self.fake.reset()
        job = self.run_job(["ok"], "a plain heron")
        n = self.stack.psql("SELECT count(*) FROM public.image_generation_job_events"
                            " WHERE job_id = '%s' AND event = 'style_capsule_applied'"
                            % job["jobId"]).strip()
        self.assertEqual(n, "0")
        self.assertNotIn("Visual style", self.row(job["jobId"])["final_prompt"])

    def test_failures_end_the_job_with_their_code_and_no_retry(self):
        cases = [("400", "INVALID_REQUEST", "INVALID_ARGUMENT"),
                 ("401", "AUTH_ERROR", "UNAUTHENTICATED"),
                 ("403", "AUTH_ERROR", "PERMISSION_DENIED"),
                 ("malformed", "PROVIDER_ERROR", "not a JSON object"),
                 ("truncated_b64", "PROVIDER_ERROR", "not valid base64"),
                 ("oversized", "PROVIDER_ERROR", "larger than 1048576 bytes"),
                 ("not_image", "PROVIDER_ERROR", "not a whole PNG, JPEG or WebP"),
                 ("safety", "CONTENT_POLICY", "SAFETY"),
                 ("image_safety", "CONTENT_POLICY", "IMAGE_SAFETY"),
                 ("prohibited", "CONTENT_POLICY", "PROHIBITED_CONTENT"),
                 ("prompt_block", "CONTENT_POLICY", "prompt was blocked"),
                 ("no_image", "NO_IMAGE", "NO_IMAGE"),
                 ("text_only", "NO_IMAGE", "the model said")]
        for scenario, code, words in cases:
            self.fake.reset()
            job = self.run_job([scenario, "ok"], "failure %s" % scenario)
            self.assert_failed(job, code, 1, scenario + ": ")
            self.assertIn(words, job["error"]["message"], job["error"])
            self.assertEqual(self.retries_logged(job["jobId"], code), 0)

    def test_key_echoed_by_the_provider_is_redacted(self):
        job = self.run_job(["400_key"], "a bad key")
        self.assert_failed(job, "AUTH_ERROR", 1)
        msg = job["error"]["message"]
        self.assertIn("API key not valid", msg)
        self.assertIn("[redacted]", msg)
        self.assertNotIn(GEMINI_KEY, msg)
        self.assertNotIn(GEMINI_KEY, self.row(job["jobId"])["error_message"])

    def test_retryable_failures_succeed_after_the_right_number_of_calls(self):
        cases = [(["429_retry_after", "ok"], 2, "RATE_LIMIT", 1.0),
                 (["429_retry_info", "ok"], 2, "RATE_LIMIT", 1.0),
                 (["500", "ok"], 2, "TEMPORARY", None),
                 (["503", "503", "ok"], 3, "TEMPORARY", None),
                 (["504", "ok"], 2, "TEMPORARY", None),
                 ([{"name": "hang", "seconds": 3}, "ok"], 2, "TIMEOUT", None)]
        for scenarios, calls, code, gap in cases:
            what = "%s: " % (scenarios,)
            self.fake.reset()
            job = self.run_job(scenarios, "retry %s" % calls)
            self.assert_completed(job, calls)
            self.assertEqual(self.retries_logged(job["jobId"], code), calls - 1, what)
            if gap is not None:
                # the provider's hint, exactly: 1000 ms, no backoff, no jitter
                self.assertIn("job %s: %s, retry 1 in 1000 ms" % (job["jobId"], code),
                              self.stack.read_pool_log())
                self.assertGreaterEqual(self.gaps()[0], RETRYABLE_GAP, what)
                self.assertLess(self.gaps()[0], 1.8, what)

    def provider_errors(self):
        """/metrics' imagegen_provider_errors_total, {code: count}."""
        r = self.stack.http("GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        out = {}
        for line in r.body.decode().splitlines():
            m = re.match(r'imagegen_provider_errors_total\{code="([A-Z_]+)"\} (\S+)$', line)
            if m:
                out[m.group(1)] = float(m.group(2))
        return out

    def test_metrics_count_every_failed_provider_call_retried_ones_too(self):
        before = self.provider_errors()
        self.fake.reset()
        job = self.run_job(["503", "500", "429_retry_info", "ok"], "counted errors")
        self.assert_completed(job, 4)
        after = self.provider_errors()
        self.assertEqual(after.get("TEMPORARY", 0) - before.get("TEMPORARY", 0), 2, after)
        self.assertEqual(after.get("RATE_LIMIT", 0) - before.get("RATE_LIMIT", 0), 1, after)

    def test_retryable_failures_give_up_after_four_calls(self):
        cases = [(["503"] * 4, "TEMPORARY", "UNAVAILABLE"),
                 (["429_retry_info"] * 4, "RATE_LIMIT", "RESOURCE_EXHAUSTED"),
                 ([{"name": "hang", "seconds": 3}] * 4, "TIMEOUT", "no complete answer")]
        for scenarios, code, words in cases:
            self.fake.reset()
            job = self.run_job(scenarios + ["ok"], "give up %s" % code, timeout=60)
            self.assert_failed(job, code, 4, code + ": ")
            self.assertIn(words, job["error"]["message"], job["error"])
            self.assertEqual(self.retries_logged(job["jobId"], code), 3)
            if code == "RATE_LIMIT":
                self.assertTrue(all(g >= RETRYABLE_GAP for g in self.gaps()), self.gaps())


# ==================================================================== openai

class OpenAIProvider(ProviderCase):
    """NANO_BANANA_MODEL is left at its default: a gateway serving Gemini's
    model over the OpenAI images API."""

    provider = "openai"
    key = OPENAI_KEY
    url_suffix = ""
    name = "openai"
    call_path = "/images/generations"

    def test_b64_json_completes_with_usage_cost(self):
        job = self.run_job(["ok"], "a lighthouse", width=512, height=256)
        self.assert_completed(job, 1)
        row = self.row(job["jobId"])
        self.assertEqual((row["image_width"], row["image_height"]), (512, 256))
        u = self.fake.last_usage
        want = (u["input_tokens"] * FLASH_IN + u["output_tokens"] * FLASH_IMAGE) / 1e6
        self.assertAlmostEqual(job["cost"]["actual"], want, places=6)
        (req,) = self.calls()
        self.assertEqual(req.path, "/v1/images/generations")
        self.assertEqual(req.headers.get("authorization"), "Bearer " + OPENAI_KEY)
        self.assertNotIn("x-goog-api-key", req.headers)
        self.assertEqual(req.json, {"model": FLASH, "prompt": row["final_prompt"], "n": 1,
                                    "size": "512x256", "response_format": "b64_json"})

    def test_url_results(self):
        self.fetch_allow("127.0.0.1")       # the fake's address
        for scenario in ("ok_url", {"name": "url_redirect", "redirects": 3}):
            self.fake.reset()
            job = self.run_job([scenario], "a url result")
            self.assert_completed(job, 1)
            self.assertEqual(len(self.fake.requests_to("/files/")), 1)
            # the download carries no credentials
            dl = self.fake.requests_to("/files/")[0]
            self.assertNotIn("authorization", dl.headers)
        cases = [({"name": "url_redirect", "redirects": 4}, "PROVIDER_ERROR", "redirect"),
                 ("url_not_image", "PROVIDER_ERROR", "text/html"),
                 ("url_404", "PROVIDER_ERROR", "HTTP 404")]
        for scenario, code, words in cases:
            self.fake.reset()
            job = self.run_job([scenario], "a bad url result")
            self.assert_failed(job, code, 1, "%s: " % (scenario,))
            self.assertIn(words, job["error"]["message"].lower()
                          if words == "redirect" else job["error"]["message"])

    # ---- the outbound URL policy (the pool has no allow-list unless the
    # ---- test sets one)

    def test_artifact_url_to_loopback_refused(self):
        job = self.run_job([{"name": "ok_url", "base": "https://127.0.0.1:{port}"}],
                           "a loopback url")
        self.assert_refused(job, "127.0.0.1 is a loopback address")

    def test_artifact_url_name_resolving_to_loopback_refused(self):
        # the check is on the address curl connects to, not the URL's text
        job = self.run_job([{"name": "ok_url", "base": "https://localhost:{port}"}],
                           "a name for loopback")
        self.assert_refused(job, "is a loopback address")

    def test_artifact_url_plain_http_refused(self):
        job = self.run_job(["ok_url"], "a plain http url")
        self.assert_refused(job, "plain http to 127.0.0.1: only https, unless the "
                                 "host is in IMAGEGEN_FETCH_ALLOW")

    def test_artifact_url_plain_http_to_unlisted_host_refused(self):
        # localhost resolves to an allowed address, but is not a listed host
        self.fetch_allow("127.0.0.1")
        job = self.run_job([{"name": "ok_url", "base": "http://localhost:{port}"}],
                           "plain http, unlisted host")
        self.assert_refused(job, "plain http to localhost")

    def test_artifact_redirect_to_disallowed_address_refused(self):
        self.fetch_allow("127.0.0.1")
        job = self.run_job([{"name": "url_redirect", "redirects": 1,
                             "to": "https://127.0.0.2:{port}"}], "redirect to loopback")
        self.assert_refused(job, "after 1 redirect, 127.0.0.2 is a loopback address")
        self.assertEqual(len(self.fake.requests_to("/redirect/")), 1)

    def test_artifact_redirect_to_plain_http_host_refused(self):
        self.fetch_allow("127.0.0.1")
        job = self.run_job([{"name": "url_redirect", "redirects": 2,
                             "to": "http://localhost:{port}"}], "redirect to plain http")
        self.assert_refused(job, "after 2 redirects, plain http to localhost")
        self.assertEqual(len(self.fake.requests_to("/redirect/")), 2)

    def test_no_usage_keeps_the_estimate(self):
        job = self.run_job(["ok_no_usage"], "no usage")
        self.assert_completed(job, 1)
        self.assertAlmostEqual(job["cost"]["actual"], job["cost"]["estimated"], places=6)
        self.assertAlmostEqual(job["cost"]["actual"], 0.039, places=6)

    def test_failures_and_retries(self):
        cases = [("400", "INVALID_REQUEST", 1),
                 ("401", "AUTH_ERROR", 1),
                 ("content_policy", "CONTENT_POLICY", 1),
                 ("malformed", "PROVIDER_ERROR", 1),
                 ("truncated_b64", "PROVIDER_ERROR", 1),
                 ("not_image", "PROVIDER_ERROR", 1),
                 ("oversized", "PROVIDER_ERROR", 1)]
        for scenario, code, calls in cases:
            self.fake.reset()
            job = self.run_job([scenario, "ok"], "openai %s" % scenario)
            self.assert_failed(job, code, calls, scenario + ": ")
        self.fake.reset()
        job = self.run_job(["400_key"], "echoed key")
        self.assert_failed(job, "AUTH_ERROR", 1)
        self.assertIn("[redacted]", job["error"]["message"])
        self.fake.reset()
        job = self.run_job(["429_retry_after", "ok"], "openai rate limited")
        self.assert_completed(job, 2)
        self.assertGreaterEqual(self.gaps()[0], RETRYABLE_GAP)
        self.fake.reset()
        job = self.run_job(["503"] * 4, "openai down")
        self.assert_failed(job, "TEMPORARY", 4)

    def test_inpaint_is_refused_without_a_call(self):
        src = self.run_job(["ok"], "a source")
        self.assertEqual(src["status"], "completed", src)
        self.fake.reset()
        job = self.run_job([], "edit it", jobType="inpaint", sourceImageUrl=src["publicUrl"])
        self.assert_failed(job, "INVALID_REQUEST", 0)
