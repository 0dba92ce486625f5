"""End-to-end image jobs: HTTP through real nginx to a real pool (its own
master) and a real Postgres, jobs run by double-forked executors with the
offline `local` provider and the `local` storage backend served by nginx.

  GenerateEndToEnd     IMAGEGEN_LOCAL_DELAY_MS=3000: the 202 comes at once,
                       the job completes with a PNG of the requested size,
                       its events, cost and storage path; canceling a
                       running job
  JobsApi              no delay, 4 workers: validation, idempotency,
                       ownership and RLS, listing, retry, provider errors,
                       a 2,000-request burst, zombies after 500 jobs
  QueuedCancel         one running slot: a queued job canceled never runs
  RunningCap           IMAGEGEN_MAX_RUNNING_JOBS=2 holds under load
  CrashRecovery        kill -9 of an executor: requeued, then completed
  CrashLastAttempt     the same with IMAGEGEN_MAX_ATTEMPTS=1: failed,
                       WORKER_LOST
  PostgresRestart      Postgres restarted while jobs run: none is left
                       running

Users, projects and branches are inserted by the superuser; tokens come
from `imagegen token`.  Every test seeds its own user, so counts are
scoped to it even though a class shares one stack.
"""

import base64
import collections
import datetime
import json
import os
import re
import signal
import sys
import threading
import time
import unittest
import urllib.parse
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402
import jobs_helper as jh  # noqa: E402

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
EPOCH = datetime.datetime(1970, 1, 1)


def ms(dt):
    return (dt - EPOCH).total_seconds() * 1000.0


class JobsCase(harness.StackTestCase):
    """One Stack per class: master pool, nginx, Postgres, with
    jh.pool_env(**pool_settings)."""

    workers = 2
    pool_settings = {}

    @classmethod
    def setUpClass(cls):
        cls.stack_args = dict(pool="master", workers=cls.workers,
                              extra_env=jh.pool_env(**cls.pool_settings))
        super().setUpClass()

    # ------------------------------------------------------------ helpers

    def assert_error(self, r, status, code, field=None, what=""):
        """r is the JSON error status/code; its message starts with
        `field:` when field is given."""
        self.assertEqual(r.status, status, "%s%r" % (what, r))
        self.assertEqual(r.content_type, "application/json", "%s%r" % (what, r))
        self.assertEqual(r.error_code(), code, "%s%r" % (what, r))
        msg = r.data["error"].get("message")
        self.assertIsInstance(msg, str, r)
        if field is not None:
            self.assertTrue(msg.startswith(field + ":"),
                            "%smessage should name %s: %r" % (what, field, msg))

    def assert_created(self, r, what=""):
        """r is `202 {"jobId","status":"queued"}`; returns the job id."""
        self.assertEqual(r.status, 202, "%s%r" % (what, r))
        self.assertIsInstance(r.data, dict, r)
        self.assertEqual(set(r.data), {"jobId", "status"}, r)
        self.assertEqual(r.data["status"], "queued", r)
        self.assertRegex(r.data["jobId"], UUID_RE)
        self.assertIsNone(r.header("Idempotent-Replayed"), r)
        return r.data["jobId"]

    def create(self, user, prompt="a lighthouse at dusk", **over):
        return self.assert_created(jh.post_job(self.stack, user.token, user.body(prompt, **over)))

    def wait(self, user, job_id, statuses=jh.TERMINAL, timeout=30):
        return jh.wait_job(self.stack, user.token, job_id, statuses, timeout)

    def user_jobs(self, user, extra=""):
        return int(self.stack.psql("SELECT count(*) FROM public.image_generation_jobs"
                                   " WHERE user_id = '%s' %s" % (user.id, extra)).strip())

    def to_statuses(self, job_id):
        return [t for _, t, _, _ in jh.events(self.stack, job_id)]

    def post_many(self, user, n, conc, prompt="job %d"):
        """n POSTs on conc keep-alive connections; ([responses], errors,
        wall seconds).  Responses are in request order."""
        bodies = [json.dumps(user.body(prompt % i)).encode() for i in range(n)]
        headers = user.headers()
        out = [None] * n
        errors = []
        lock = threading.Lock()
        nxt = iter(range(n))

        def worker():
            ka = jh.KeepAlive(self.stack.http_port)
            try:
                while True:
                    with lock:
                        i = next(nxt, None)
                    if i is None:
                        return
                    try:
                        out[i] = ka.request("POST", jh.GENERATE, bodies[i], headers)
                    except Exception as e:
                        with lock:
                            errors.append("request %d: %r" % (i, e))
            finally:
                ka.close()
        t0 = time.monotonic()
        threads = [threading.Thread(target=worker, daemon=True) for _ in range(conc)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        return out, errors, time.monotonic() - t0

    def storage_files_of(self, job_id):
        return [f for f in jh.storage_files(self.stack) if job_id in f]


# ==================================================================== 1, 7

class GenerateEndToEnd(JobsCase):
    """Each render takes 3 s (IMAGEGEN_LOCAL_DELAY_MS=3000)."""

    pool_settings = {"IMAGEGEN_LOCAL_DELAY_MS": 3000}

    def test_generate_202_at_once_then_completed_png_events_cost_and_path(self):
        s = self.stack
        u = jh.seed_user(s, "painter")
        asset, scene, shot = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
        p, b = u.project_id, u.branch_id
        cases = [
            # (body, storage path pattern)
            (u.body("a red fox in the snow", width=512, height=256),
             r"project_%s/branch_%s/master-assets/{job}_(\d+)_[0-9a-f]{8}\.png" % (p, b)),
            (u.body("a very tall tower", width=64, height=4096, assetId=asset),
             r"project_%s/branch_%s/master-assets/%s_(\d+)_[0-9a-f]{8}\.png" % (p, b, asset)),
            (u.body("the shot opens", jobType="start_frame", width=320, height=192,
                    sceneId=scene, shotId=shot),
             r"project_%s/branch_%s/scene_%s/shot_%s/start_frame_(\d+)_[0-9a-f]{8}\.png"
             % (p, b, scene, shot)),
            (u.body("the shot closes", jobType="end_frame", width=96, height=128,
                    sceneId=scene, shotId=shot),
             r"project_%s/branch_%s/scene_%s/shot_%s/end_frame_(\d+)_[0-9a-f]{8}\.png"
             % (p, b, scene, shot)),
        ]
        jobs = []
        for body, pattern in cases:
            r = jh.post_job(s, u.token, body)
            jid = self.assert_created(r)
            # well under the render (slack for a loaded machine)
            self.assertLess(r.elapsed, 1.5, "POST took %.3fs with a 3 s render: the answer "
                            "waited for the job" % r.elapsed)
            # the render takes 3 s: right after the 202 the job cannot be done
            g = jh.get_job(s, u.token, jid)
            self.assertEqual(g.status, 200, g)
            self.assertIn(g.data["status"], ("queued", "processing", "generating"), g.data)
            jobs.append((jid, body, pattern.replace("{job}", jid)))

        for jid, body, pattern in jobs:
            job = self.wait(u, jid, timeout=30)
            what = "job %s (%s %dx%d): " % (jid, body["jobType"], body["width"], body["height"])
            self.assertEqual(job["status"], "completed", what + json.dumps(job))
            self.assertEqual(job["jobId"], jid)
            for k_api, k_body in (("jobType", "jobType"), ("projectId", "projectId"),
                                  ("branchId", "branchId"), ("prompt", "prompt"),
                                  ("width", "width"), ("height", "height")):
                self.assertEqual(job[k_api], body[k_body], what + k_api)
            for k in ("assetId", "sceneId", "shotId"):
                self.assertEqual(job[k], body.get(k), what + k)
            self.assertEqual(job["attempts"], 1, what + json.dumps(job))
            self.assertNotIn("error", job, what)

            # cost: estimated and actual, in USD
            cost = job["cost"]
            for k in ("estimated", "actual"):
                self.assertIsInstance(cost.get(k), (int, float), what + json.dumps(cost))
                self.assertNotIsInstance(cost.get(k), bool)
                self.assertGreaterEqual(cost[k], 0, what + json.dumps(cost))
            self.assertEqual(cost.get("currency"), "USD", what + json.dumps(cost))

            # timestamps
            created, started, completed = (jh.parse_ts(job[k]) for k in
                                           ("createdAt", "startedAt", "completedAt"))
            self.assertLessEqual(created, started, what)
            self.assertLessEqual(started, completed, what)

            # storage path (SPEC section 7) and its timestamp
            m = re.fullmatch(pattern, job["storagePath"] or "")
            self.assertIsNotNone(m, "%sstoragePath %r does not match %s"
                                 % (what, job["storagePath"], pattern))
            ts = int(m.group(1))
            self.assertTrue(ms(created) - 1000 <= ts <= ms(completed) + 1000,
                            "%spath timestamp %d outside the job's life %s .. %s"
                            % (what, ts, job["createdAt"], job["completedAt"]))

            # the picture, through nginx
            url = job["publicUrl"]
            self.assertIsInstance(url, str, what)
            path = urllib.parse.urlsplit(url).path
            self.assertEqual(path, jh.BUCKET_PREFIX + job["storagePath"], what + url)
            img = s.http("GET", path)
            self.assertEqual(img.status, 200, what + repr(img))
            self.assertEqual(img.content_type, "image/png", what + repr(img))
            self.assertEqual(jh.png_size(img.body), (body["width"], body["height"]),
                             what + "IHDR size")

            # the events: every state in order, times never going back
            ev = jh.events(s, jid)
            self.assertEqual([(f, t) for f, t, _, _ in ev],
                             [(None, "queued"), ("queued", "processing"),
                              ("processing", "generating"), ("generating", "uploading"),
                              ("uploading", "completed")], what + repr(ev))
            times = [t for _, _, t, _ in ev]
            self.assertEqual(times, sorted(times), what + "event times go back: %r" % ev)

    def test_cancel_running_job_ends_canceled_and_leaves_no_object(self):
        s = self.stack
        u = jh.seed_user(s, "canceler")
        before = set(jh.storage_files(s))
        jid = self.create(u, "a painting that takes its time", width=128, height=128)
        self.wait(u, jid, statuses=("generating",) + jh.TERMINAL, timeout=10)
        r = jh.cancel_job(s, u.token, jid)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.data["jobId"], jid, r)
        self.assertIn(r.data["status"], ("generating", "canceled"), r)
        self.assertTrue(r.data["cancelRequested"], r)

        job = self.wait(u, jid, timeout=15)
        self.assertEqual(job["status"], "canceled", json.dumps(job))
        self.assertIsNone(job["storagePath"], job)
        self.assertIsNone(job["publicUrl"], job)
        # its executor is gone, and nothing was stored for it
        left = harness.wait_until(lambda: not jh.executors(s.master_pid()), 10)
        self.assertTrue(left, "executors still running: %s" % jh.executors(s.master_pid()))
        self.assertEqual(self.storage_files_of(jid), [])
        self.assertEqual(set(jh.storage_files(s)) - before, set(),
                         "objects stored while only the canceled job ran")
        self.assertEqual(self.to_statuses(jid),
                         ["queued", "processing", "generating", "canceled"])


# ============================================================ 2-6, 8, 9, 13

class JobsApi(JobsCase):
    """No render delay, 4 responders; failures forced by [[fail:CODE]]
    prompts (IMAGEGEN_TEST_FAULTS)."""

    workers = 4
    pool_settings = {"IMAGEGEN_LOCAL_DELAY_MS": 0, "IMAGEGEN_TEST_FAULTS": 1}

    # ------------------------------------------------------------ 3: validation

    def test_generate_each_invalid_body_400_naming_its_field(self):
        s = self.stack
        u = jh.seed_user(s, "validator")
        base = u.body("a valid prompt")

        def body(**over):
            b = dict(base)
            for k, v in over.items():
                if v is DROP:
                    b.pop(k, None)
                else:
                    b[k] = v
            return json.dumps(b).encode()

        def raw_prompt(raw):
            head = json.dumps({k: v for k, v in base.items() if k != "prompt"})
            return head[:-1].encode() + b', "prompt": "' + raw + b'"}'

        DROP = object()
        frame = dict(jobType="start_frame", sceneId=str(uuid.uuid4()), shotId=str(uuid.uuid4()))
        good_path = "project_%s/branch_%s/master-assets/%s_1700000000000_0a1b2c3d.png" % (
            u.project_id, u.branch_id, uuid.uuid4())
        cases = [
            # (what, body bytes, extra headers, field)
            ("projectId missing", body(projectId=DROP), {}, "projectId"),
            ("projectId not a UUID", body(projectId="not-a-uuid"), {}, "projectId"),
            ("projectId a number", body(projectId=42), {}, "projectId"),
            ("projectId UUID with junk", body(projectId=u.project_id + "x"), {}, "projectId"),
            # branchId missing or null: the main branch (test_projects.py)
            ("branchId not a UUID", body(branchId="main"), {}, "branchId"),
            ("jobType unknown", body(jobType="poster"), {}, "jobType"),
            ("jobType a number", body(jobType=1), {}, "jobType"),
            ("jobType wrong case", body(jobType="MASTER_ASSET"), {}, "jobType"),
            ("prompt missing", body(prompt=DROP), {}, "prompt"),
            ("prompt empty", body(prompt=""), {}, "prompt"),
            ("prompt 4001 characters", body(prompt="p" * 4001), {}, "prompt"),
            ("prompt 4001 two-byte characters", body(prompt="\u00e9" * 4001), {}, "prompt"),
            ("prompt a number", body(prompt=12345), {}, "prompt"),
            ("prompt an array", body(prompt=["a", "b"]), {}, "prompt"),
            ("prompt with NUL", body(prompt="a\u0000b"), {}, "prompt"),
            ("prompt invalid UTF-8 0xff", raw_prompt(b"a\xffb"), {}, "prompt"),
            ("prompt truncated UTF-8", raw_prompt(b"caf\xc3"), {}, "prompt"),
            ("prompt overlong UTF-8", raw_prompt(b"\xc0\xaf"), {}, "prompt"),
            ("prompt UTF-8 surrogate", raw_prompt(b"\xed\xa0\x80"), {}, "prompt"),
        ]
        for dim in ("width", "height"):
            for bad in (63, 4097, 0, -512, "512", 512.5, True):
                cases.append(("%s %r" % (dim, bad), body(**{dim: bad}), {}, dim))
        cases += [
            ("start_frame without sceneId", body(**dict(frame, sceneId=DROP)), {}, "sceneId"),
            ("start_frame without shotId", body(**dict(frame, shotId=DROP)), {}, "shotId"),
            ("end_frame without sceneId", body(**dict(frame, jobType="end_frame", sceneId=DROP)),
             {}, "sceneId"),
            ("end_frame without shotId", body(**dict(frame, jobType="end_frame", shotId=DROP)),
             {}, "shotId"),
            ("sceneId not a UUID", body(**dict(frame, sceneId="scene-1")), {}, "sceneId"),
            ("inpaint without sourceImageUrl", body(jobType="inpaint"), {}, "sourceImageUrl"),
            ("sourceImageUrl on another host", body(jobType="inpaint",
             sourceImageUrl="https://evil.example/x.png"), {}, "sourceImageUrl"),
            ("sourceImageUrl file:", body(jobType="inpaint",
             sourceImageUrl="file:///etc/passwd"), {}, "sourceImageUrl"),
            ("sourceImageUrl traversal", body(jobType="inpaint",
             sourceImageUrl=jh.BUCKET_PREFIX + "project_x/../../../../etc/passwd"), {},
             "sourceImageUrl"),
            ("sourceImageUrl other bucket", body(jobType="inpaint",
             sourceImageUrl=jh.BUCKET_PREFIX + "../private-bucket/x.png"), {},
             "sourceImageUrl"),
            ("sourceImageUrl a number", body(jobType="inpaint", sourceImageUrl=7), {},
             "sourceImageUrl"),
            ("maskImageUrl on another host", body(jobType="inpaint",
             sourceImageUrl=jh.BUCKET_PREFIX + good_path,
             maskImageUrl="https://evil.example/mask.png"), {}, "maskImageUrl"),
            ("maskImageUrl traversal", body(jobType="inpaint",
             sourceImageUrl=jh.BUCKET_PREFIX + good_path,
             maskImageUrl=jh.BUCKET_PREFIX + "project_x/../../secret.png"), {},
             "maskImageUrl"),
            ("idempotencyKey 256 characters", body(idempotencyKey="k" * 256), {},
             "idempotencyKey"),
            ("idempotencyKey empty", body(idempotencyKey=""), {}, "idempotencyKey"),
            ("idempotencyKey a number", body(idempotencyKey=12), {}, "idempotencyKey"),
            ("idempotencyKey differs from header", body(idempotencyKey="key-a"),
             {"Idempotency-Key": "key-b"}, "idempotencyKey"),
        ]
        problems = []
        for what, data, headers, field in cases:
            r = jh.post_job(s, u.token, data, headers=headers)
            msg = None
            try:
                msg = r.data["error"]["message"]
            except (TypeError, KeyError):
                pass
            if (r.status != 400 or r.error_code() != "VALIDATION_ERROR"
                    or not isinstance(msg, str) or not msg.startswith(field + ":")):
                problems.append("%s: expected 400 VALIDATION_ERROR naming %s, got %s %s"
                                % (what, field, r.status, r.body[:200]))
        # An over-long key in the header is refused the same way.
        r = jh.post_job(s, u.token, body(), headers={"Idempotency-Key": "h" * 256})
        if r.status != 400 or r.error_code() != "VALIDATION_ERROR" or not re.match(
                r"^(idempotencyKey|Idempotency-Key):", (r.data or {}).get("error", {})
                .get("message", "")):
            problems.append("Idempotency-Key header 256 characters: expected 400 naming "
                            "idempotencyKey, got %s %s" % (r.status, r.body[:200]))
        self.assertEqual(problems, [], "\n" + "\n".join(problems))
        self.assertEqual(self.user_jobs(u), 0, "a refused request created a job")

    def test_generate_source_url_on_foreign_host_with_bucket_path_400(self):
        """https://evil.example/storage/v1/object/public/asset-images/<a path
        we could have written> is not our bucket: only the host differs."""
        s = self.stack
        u = jh.seed_user(s, "foreign-host")
        path = jh.BUCKET_PREFIX + (
            "project_%s/branch_%s/master-assets/%s_1700000000000_0a1b2c3d.png"
            % (u.project_id, u.branch_id, uuid.uuid4()))
        for what, b in (
                ("sourceImageUrl", u.body("inpaint me", jobType="inpaint",
                                          sourceImageUrl="https://evil.example" + path)),
                ("maskImageUrl", u.body("inpaint me", jobType="inpaint", sourceImageUrl=path,
                                        maskImageUrl="http://169.254.169.254" + path))):
            r = jh.post_job(s, u.token, b)
            self.assert_error(r, 400, "VALIDATION_ERROR", what,
                              what="%s on a foreign host: " % what)
        self.assertEqual(self.user_jobs(u), 0, "a job was created with a foreign-host image URL")

    def test_generate_accepts_unknown_fields_and_4000_character_prompts(self):
        s = self.stack
        u = jh.seed_user(s, "acceptor")
        ok = {
            "unknown fields": u.body("unknown fields are ignored", colour="teal",
                                     options={"n": [1, 2]}, seed=None),
            "4000 ASCII": u.body("a" * 4000),
            "4000 two-byte": u.body("\u00e9" * 4000),
            "4000 four-byte": u.body("\U0001F98A" * 4000),
            "3999 + one three-byte": u.body("b" * 3999 + "\u20ac"),
            "smallest and largest sides": u.body("a thin strip", width=4096, height=64),
        }
        ids = {}
        for what, b in ok.items():
            ids[what] = self.assert_created(jh.post_job(s, u.token, b), what + ": ")
        for what, jid in ids.items():
            job = self.wait(u, jid)
            self.assertEqual(job["prompt"], ok[what]["prompt"], what)
            self.assertEqual(job["status"], "completed", "%s: %s" % (what, json.dumps(job)[:500]))

    def test_generate_malformed_json_array_body_wrong_media_type_no_token(self):
        s = self.stack
        u = jh.seed_user(s, "malformed")
        good = json.dumps(u.body("fine")).encode()
        for what, data in (("malformed JSON", b'{"projectId": "%s", ' % u.project_id.encode()),
                           ("trailing garbage", good + b"}"),
                           ("a JSON array", json.dumps([u.body("in an array")]).encode()),
                           ("a JSON string", b'"a prompt"'),
                           ("JSON null", b"null"),
                           ("an empty body", b"")):
            r = jh.post_job(s, u.token, data)
            self.assert_error(r, 400, "VALIDATION_ERROR", what=what + ": ")
        r = jh.post_job(s, u.token, good, headers={"Content-Type": "text/plain"})
        self.assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")
        r = jh.post_job(s, None, good)
        self.assert_error(r, 401, "UNAUTHORIZED")
        r = jh.post_job(s, "not.a.token", good)
        self.assert_error(r, 401, "UNAUTHORIZED")
        self.assertEqual(self.user_jobs(u), 0, "a refused request created a job")

    # ------------------------------------------------------------ 4: idempotency

    def test_idempotency_same_key_same_body_replays_200_same_job_one_row(self):
        s = self.stack
        u = jh.seed_user(s, "idem")
        key = "order-" + uuid.uuid4().hex
        b = u.body("an idempotent fox")
        first = jh.post_job(s, u.token, b, headers={"Idempotency-Key": key})
        jid = self.assert_created(first)
        replays = [jh.post_job(s, u.token, b, headers={"Idempotency-Key": key}),
                   jh.post_job(s, u.token, dict(b, idempotencyKey=key)),   # key in the body
                   jh.post_job(s, u.token, dict(b, idempotencyKey=key),
                               headers={"Idempotency-Key": key})]
        self.wait(u, jid)
        replays.append(jh.post_job(s, u.token, b, headers={"Idempotency-Key": key}))
        for r in replays:
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header_all("Idempotent-Replayed"), ["true"], r)
            self.assertEqual(set(r.data), {"jobId", "status"}, r)
            self.assertEqual(r.data["jobId"], jid, r)
        self.assertEqual(replays[-1].data["status"], "completed", replays[-1])
        self.assertEqual(self.user_jobs(u), 1)
        self.assertEqual(self.user_jobs(u, "AND idempotency_key = '%s'" % key), 1)

    def test_idempotency_same_key_changed_body_422(self):
        s = self.stack
        u = jh.seed_user(s, "idem-change")
        key = "k-" + uuid.uuid4().hex
        self.assert_created(jh.post_job(s, u.token, u.body("original"),
                                        headers={"Idempotency-Key": key}))
        for changed in (u.body("changed prompt"), u.body("original", width=128),
                        u.body("original", assetId=str(uuid.uuid4()))):
            r = jh.post_job(s, u.token, changed, headers={"Idempotency-Key": key})
            self.assert_error(r, 422, "IDEMPOTENCY_KEY_REUSED")
        self.assertEqual(self.user_jobs(u), 1)

    def test_idempotency_key_of_another_user_is_independent(self):
        s = self.stack
        a, b = jh.seed_user(s, "idem-a"), jh.seed_user(s, "idem-b")
        key = "shared-" + uuid.uuid4().hex
        ja = self.assert_created(jh.post_job(s, a.token, a.body("same words"),
                                             headers={"Idempotency-Key": key}))
        jb = self.assert_created(jh.post_job(s, b.token, b.body("same words"),
                                             headers={"Idempotency-Key": key}))
        self.assertNotEqual(ja, jb)
        self.assertEqual(self.user_jobs(a, "AND idempotency_key = '%s'" % key), 1)
        self.assertEqual(self.user_jobs(b, "AND idempotency_key = '%s'" % key), 1)

    def test_idempotency_20_concurrent_first_requests_make_one_job(self):
        s = self.stack
        u = jh.seed_user(s, "idem-race")
        key = "race-" + uuid.uuid4().hex
        data = json.dumps(u.body("twenty at once")).encode()
        headers = u.headers({"Idempotency-Key": key})
        n = 20
        barrier = threading.Barrier(n)
        out = [None] * n

        def go(i):
            barrier.wait(10)
            try:
                out[i] = harness.http_request("127.0.0.1", s.http_port, "POST", jh.GENERATE,
                                              data, headers, timeout=20)
            except Exception as e:
                out[i] = e
        threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        statuses = collections.Counter(getattr(r, "status", repr(r)) for r in out)
        self.assertEqual(statuses, collections.Counter({202: 1, 200: n - 1}), out)
        ids = {r.data["jobId"] for r in out}
        self.assertEqual(len(ids), 1, out)
        for r in out:
            self.assertEqual(r.header_all("Idempotent-Replayed"),
                             ["true"] if r.status == 200 else [], r)
        self.assertEqual(self.user_jobs(u), 1)

    # ------------------------------------------------------------ 5: ownership

    def test_ownership_other_users_project_or_foreign_branch_403(self):
        s = self.stack
        a, b = jh.seed_user(s, "owner-a"), jh.seed_user(s, "owner-b")
        a_p2, a_b2 = jh.seed_project(s, a.id, "A's second project")
        # B into A's project (with A's own branch)
        r = jh.post_job(s, b.token, a.body("not my project"))
        self.assert_error(r, 403, "FORBIDDEN", "projectId")
        # A, own project, branch of A's other project
        r = jh.post_job(s, a.token, a.body("wrong branch", branchId=a_b2))
        self.assert_error(r, 403, "FORBIDDEN", "branchId")
        # A, own project, B's branch
        r = jh.post_job(s, a.token, a.body("someone else's branch", branchId=b.branch_id))
        self.assert_error(r, 403, "FORBIDDEN", "branchId")
        # A project id nobody has
        r = jh.post_job(s, a.token, a.body("no such project", projectId=str(uuid.uuid4())))
        self.assert_error(r, 403, "FORBIDDEN", "projectId")
        self.assertEqual(self.user_jobs(a), 0)
        self.assertEqual(self.user_jobs(b), 0)
        # and the right pair still works
        self.create(a, "my own project", projectId=a_p2, branchId=a_b2)

    def test_ownership_other_users_job_404_on_get_cancel_retry(self):
        s = self.stack
        a, b = jh.seed_user(s, "job-a"), jh.seed_user(s, "job-b")
        jid = self.create(a, "[[fail:INVALID_REQUEST]] A's job")
        job = self.wait(a, jid)
        self.assertEqual(job["status"], "failed", job)    # retryable by A
        for what, r in (("GET", jh.get_job(s, b.token, jid)),
                        ("cancel", jh.cancel_job(s, b.token, jid)),
                        ("retry", jh.retry_job(s, b.token, jid))):
            self.assert_error(r, 404, "NOT_FOUND", what=what + ": ")
            self.assertNotIn(a.project_id, r.body.decode(errors="replace"), r)
        r = s.http("GET", "/api/images/jobs?projectId=%s" % a.project_id, headers=jh.auth(b.token))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.data["jobs"], [], r)
        # nothing changed for A
        self.assertEqual(jh.get_job(s, a.token, jid).data["status"], "failed")
        self.assertEqual(int(s.psql("SELECT count(*) FROM public.image_generation_jobs"
                                    " WHERE retry_of = '%s'" % jid).strip()), 0)

    def test_rls_app_role_with_other_users_claims_sees_none_of_the_jobs(self):
        s = self.stack
        a, b = jh.seed_user(s, "rls-a"), jh.seed_user(s, "rls-b")
        jid = self.create(a, "A's private job")
        self.wait(a, jid)

        def as_user(user):
            claims = json.dumps({"sub": user.id, "role": "authenticated", "aud": "authenticated"},
                                separators=(",", ":"))
            out = s.psql("BEGIN; SET LOCAL ROLE authenticated;"
                         " SELECT set_config('request.jwt.claims', '%s', true) IS NOT NULL;"
                         " SELECT count(*) FROM image_generation_jobs;"
                         " SELECT count(*) FROM image_generation_jobs WHERE user_id = '%s';"
                         " SELECT count(*) FROM image_generation_job_events WHERE job_id = '%s';"
                         " COMMIT;" % (claims, a.id, jid), as_app=True)
            lines = out.split()
            self.assertEqual(len(lines), 4, out)
            return [int(x) for x in lines[1:]]

        self.assertEqual(as_user(b), [0, 0, 0], "B sees A's jobs under RLS")
        n_all, n_a, n_ev = as_user(a)
        self.assertEqual((n_all, n_a), (1, 1), "A should see exactly its own job")
        self.assertGreaterEqual(n_ev, 5)
        total = int(s.psql("SELECT count(*) FROM image_generation_jobs").strip())
        self.assertGreaterEqual(total, 1)

    # ------------------------------------------------------------ 6: listing

    def test_listing_pages_newest_first_complete_under_concurrent_inserts(self):
        s = self.stack
        u = jh.seed_user(s, "lister")
        other_p, other_b = jh.seed_project(s, u.id, "another project of the lister")
        for i in range(23):
            self.create(u, "listed %d" % i)
        self.create(u, "in the other project", projectId=other_p, branchId=other_b)

        stop = threading.Event()
        inserted = []          # (monotonic time, status)

        def inserter():
            ka = jh.KeepAlive(s.http_port)
            i = 0
            try:
                while not stop.is_set():
                    r = ka.request("POST", jh.GENERATE,
                                   json.dumps(u.body("inserted while paging %d" % i)).encode(),
                                   u.headers())
                    inserted.append((time.monotonic(), r.status))
                    i += 1
            finally:
                ka.close()
        t = threading.Thread(target=inserter, daemon=True)
        t.start()
        try:
            self.assertTrue(harness.wait_until(lambda: len(inserted) >= 2, 10), "no inserts")
            before = set(s.psql("SELECT id FROM public.image_generation_jobs WHERE user_id = '%s'"
                                " AND project_id = '%s'" % (u.id, u.project_id)).split())
            limit = 5
            pages, cursor = [], None
            t_first = time.monotonic()
            while len(pages) < 500:
                q = {"projectId": u.project_id, "limit": str(limit)}
                if cursor is not None:
                    q["cursor"] = cursor
                r = s.http("GET", "/api/images/jobs?" + urllib.parse.urlencode(q),
                           headers=jh.auth(u.token))
                self.assertEqual(r.status, 200, r)
                self.assertEqual(set(r.data), {"jobs", "nextCursor"}, r)
                pages.append(r.data)
                cursor = r.data["nextCursor"]
                if cursor is None:
                    break
                self.assertIsInstance(cursor, str, r)
                time.sleep(0.03)
            t_last = time.monotonic()
        finally:
            stop.set()
            t.join(30)
        during = [st for when, st in inserted if t_first <= when <= t_last]
        self.assertGreater(len(during), 0, "no job was inserted while paging")
        self.assertEqual(set(st for _, st in inserted), {202})

        self.assertIsNone(pages[-1]["nextCursor"])
        for pg in pages[:-1]:
            self.assertEqual(len(pg["jobs"]), limit, "a page before the last is short")
        self.assertLessEqual(len(pages[-1]["jobs"]), limit)
        listed = [j for pg in pages for j in pg["jobs"]]
        ids = [j["jobId"] for j in listed]
        dups = [i for i, n in collections.Counter(ids).items() if n > 1]
        self.assertEqual(dups, [], "jobs listed twice")
        missing = before - set(ids)
        self.assertEqual(missing, set(), "%d of %d jobs that existed before paging were not "
                         "listed" % (len(missing), len(before)))
        for j in listed:
            self.assertEqual(j["projectId"], u.project_id, j)
        created = [jh.parse_ts(j["createdAt"]) for j in listed]
        self.assertEqual(created, sorted(created, reverse=True), "not newest first")
        jh.wait_db_settled(s, "user_id = '%s'" % u.id, 60)

    def test_listing_bad_cursor_limit_status_400(self):
        s = self.stack
        u = jh.seed_user(s, "bad-lister")
        self.create(u, "one job")
        fake = base64.urlsafe_b64encode(b"1700000000000000.not-a-uuid-at-all-but-36-chars-long")
        cases = [
            ("cursor=garbage!!", "cursor"),
            ("cursor=" + fake.decode().rstrip("="), "cursor"),
            ("cursor=" + "A" * 400, "cursor"),
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=-1", "limit"),
            ("limit=ten", "limit"),
            ("status=bogus", "status"),
            ("status=COMPLETED", "status"),
            ("projectId=not-a-uuid", "projectId"),
        ]
        for q, field in cases:
            r = s.http("GET", "/api/images/jobs?" + q, headers=jh.auth(u.token))
            self.assert_error(r, 400, "VALIDATION_ERROR", field, what=q + ": ")
        for q in ("limit=1", "limit=100", "status=queued"):
            r = s.http("GET", "/api/images/jobs?" + q, headers=jh.auth(u.token))
            self.assertEqual(r.status, 200, "%s: %r" % (q, r))

    # ------------------------------------------------------------ 7, 8, 9

    def test_job_json_matches_the_sql_view_in_every_end_state(self):
        """GET, the listing and cancel write a job's JSON in C from plain
        columns; SQL's image_job_json() is the same shape.  For jobs in
        every end state, with awkward text, costs and timestamps, the two
        agree value for value."""
        s = self.stack
        u = jh.seed_user(s, "json-shape")
        done = self.create(u, "a plain completed job")
        refused = self.create(u, "[[fail:INVALID_REQUEST]] a refused picture")
        self.assertEqual(self.wait(u, done)["status"], "completed")
        self.assertEqual(self.wait(u, refused)["status"], "failed")
        odd_prompt = ('quotes " and \\ backslash, tab\t, newline\n, bell \x07,'
                      ' escape \x1b, slash /, \u00e9, \u4e2d\u6587, \U0001f98a, \u2028 end')
        odd_message = 'the model said: "no" \\ \n\x01 \u00fc'
        odd_failed, odd_canceled = str(uuid.uuid4()), str(uuid.uuid4())
        # One psql -c, one transaction: no executor ever sees these queued.
        sql = []
        for jid, created in ((odd_failed, "2024-02-29 23:59:59.999999-05:30"),
                             (odd_canceled, "2026-11-24 08:00:00+00")):
            sql.append("INSERT INTO public.image_generation_jobs (id, user_id, project_id,"
                       " branch_id, job_type, prompt, final_prompt, width, height, provider,"
                       " model, estimated_cost, retry_of, created_at)"
                       " VALUES ('%s', '%s', '%s', '%s', 'master_asset', $p$%s$p$, $p$%s$p$,"
                       " 4096, 64, 'gemini', 'gemini-3-pro-image-preview', 0.24, '%s', '%s')"
                       % (jid, u.id, u.project_id, u.branch_id, odd_prompt, odd_prompt,
                          refused, created))
        sql.append("UPDATE public.image_generation_jobs SET status = 'processing' WHERE id = '%s';"
                   "UPDATE public.image_generation_jobs SET status = 'generating' WHERE id = '%s';"
                   "UPDATE public.image_generation_jobs SET status = 'failed',"
                   " error_code = 'PROVIDER_ERROR', error_message = $m$%s$m$,"
                   " failure_stage = 'generating', actual_cost = 0.000001,"
                   " cancel_requested = true WHERE id = '%s'"
                   % (odd_failed, odd_failed, odd_message, odd_failed))
        sql.append("UPDATE public.image_generation_jobs SET status = 'canceled',"
                   " cancel_requested = true WHERE id = '%s'" % odd_canceled)
        s.psql(";".join(sql))
        # cancel of a canceled job answers with its JSON (a no-op)
        r = jh.cancel_job(s, u.token, odd_canceled)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.data["jobId"], odd_canceled, r)
        self.assertEqual(r.data["status"], "canceled", r)
        self.assertEqual(r.data["prompt"], odd_prompt, r)
        jobs = (done, refused, odd_failed, odd_canceled)

        def view(jid):
            return jh.psql_json(s, "SELECT public.image_job_json(j) FROM"
                                " public.image_generation_jobs j WHERE id = '%s'" % jid)

        self.assertEqual(r.data, view(odd_canceled), "cancel")
        for jid in jobs:
            r = jh.get_job(s, u.token, jid)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.data, view(jid), "GET %s" % jid)
        got = jh.get_job(s, u.token, odd_failed).data
        self.assertEqual(got["prompt"], odd_prompt)
        self.assertEqual(got["error"], {"code": "PROVIDER_ERROR", "message": odd_message,
                                        "failureStage": "generating"})
        self.assertEqual(got["createdAt"], "2024-03-01T05:29:59.999Z")
        self.assertEqual(got["cost"], {"estimated": 0.24, "actual": 0.000001, "currency": "USD"})
        self.assertNotIn("error", jh.get_job(s, u.token, done).data)
        r = s.http("GET", "/api/images/jobs?projectId=%s&limit=100" % u.project_id,
                   headers=jh.auth(u.token))
        self.assertEqual(r.status, 200, r)
        listed = {j["jobId"]: j for j in r.data["jobs"]}
        self.assertEqual(set(listed), set(jobs), r.data)
        for jid in jobs:
            self.assertEqual(listed[jid], view(jid), "listed %s" % jid)

    def test_cancel_completed_job_400(self):
        s = self.stack
        u = jh.seed_user(s, "cancel-done")
        jid = self.create(u, "done already")
        self.assertEqual(self.wait(u, jid)["status"], "completed")
        r = jh.cancel_job(s, u.token, jid)
        self.assert_error(r, 400, "VALIDATION_ERROR", "jobId")
        self.assertEqual(jh.get_job(s, u.token, jid).data["status"], "completed")

    def test_retry_failed_job_202_new_job_with_retry_of(self):
        s = self.stack
        u = jh.seed_user(s, "retrier")
        jid = self.create(u, "[[fail:INVALID_REQUEST]] a refused picture", width=256, height=128)
        job = self.wait(u, jid)
        self.assertEqual(job["status"], "failed", job)
        self.assertEqual(job["error"]["code"], "INVALID_REQUEST", job)
        self.assertEqual(job["error"]["failureStage"], "generating", job)
        self.assertIsInstance(job["error"]["message"], str, job)
        self.assertEqual(job["attempts"], 1, job)
        # INVALID_REQUEST is not retried inside the attempt
        self.assertNotIn("job %s: INVALID_REQUEST, retry" % jid, s.read_pool_log())

        r = jh.retry_job(s, u.token, jid)
        new = self.assert_created(r)
        self.assertNotEqual(new, jid)
        nj = jh.get_job(s, u.token, new).data
        self.assertEqual(nj["retryOf"], jid, nj)
        for k in ("projectId", "branchId", "jobType", "prompt", "width", "height"):
            self.assertEqual(nj[k], job[k], k)
        self.wait(u, new)
        self.assertEqual(jh.get_job(s, u.token, jid).data["status"], "failed")

    def test_retry_completed_job_400(self):
        s = self.stack
        u = jh.seed_user(s, "retry-done")
        jid = self.create(u, "a finished picture")
        self.assertEqual(self.wait(u, jid)["status"], "completed")
        r = jh.retry_job(s, u.token, jid)
        self.assert_error(r, 400, "VALIDATION_ERROR", "jobId")
        self.assertEqual(self.user_jobs(u), 1)

    def test_provider_temporary_error_retried_in_attempt_then_failed_temporary(self):
        s = self.stack
        u = jh.seed_user(s, "flaky")
        jid = self.create(u, "[[fail:TEMPORARY]] a flaky provider")
        job = self.wait(u, jid, timeout=40)
        self.assertEqual(job["status"], "failed", job)
        self.assertEqual(job["error"]["code"], "TEMPORARY", job)
        self.assertEqual(job["error"]["failureStage"], "generating", job)
        self.assertEqual(job["attempts"], 1, job)
        self.assertEqual(self.to_statuses(jid), ["queued", "processing", "generating", "failed"])
        retries = s.read_pool_log().count("job %s: TEMPORARY, retry" % jid)
        self.assertGreaterEqual(retries, 1, "the executor did not retry the TEMPORARY error")

    # ------------------------------------------------------------ 2: burst

    def test_burst_2000_posts_64_connections_all_202_no_pg_refusal_all_completed(self):
        s = self.stack
        u = jh.seed_user(s, "burst")
        n, conc = 2000, 64
        max_conn = int(s.psql("SHOW max_connections").strip())
        reserved = int(s.psql("SHOW superuser_reserved_connections").strip())
        pg_log_at = os.path.getsize(s.pg_log)
        pool_log_at = len(s.read_pool_log())
        with jh.PsqlSession(s) as db:
            sampler = jh.Sampler(lambda: int(db.value(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")),
                0.1)
            sampler.start()
            try:
                t0 = time.monotonic()
                out, errors, post_wall = self.post_many(u, n, conc, "burst job %d")
                counts, _ = jh.wait_db_settled(s, "user_id = '%s'" % u.id, 240)
                done_wall = time.monotonic() - t0
            finally:
                samples = sampler.stop()
        sys.stderr.write("\nburst: %d POSTs on %d keep-alive connections answered in %.1fs "
                         "(%.0f/s); all %d jobs finished %.1fs after the first POST; "
                         "pg_stat_activity max %d client backends (max_connections %d)\n"
                         % (n, conc, post_wall, n / post_wall, n, done_wall,
                            max(samples or [0]), max_conn))
        self.assertEqual(errors, [])
        statuses = collections.Counter(r.status for r in out if r is not None)
        self.assertEqual(statuses, collections.Counter({202: n}),
                         "first non-202: %r"
                         % next((r for r in out if r is None or r.status != 202), None))
        ids = {r.data["jobId"] for r in out}
        self.assertEqual(len(ids), n)
        self.assertEqual(counts, {"completed": n})

        with open(s.pg_log, "rb") as f:
            f.seek(pg_log_at)
            pg_log = f.read().decode(errors="replace")
        for needle in ("too many clients", "remaining connection slots"):
            self.assertNotIn(needle, pg_log, "Postgres refused connections:\n" + "\n".join(
                ln for ln in pg_log.splitlines() if needle in ln)[:2000])
            self.assertNotIn(needle, s.read_pool_log()[pool_log_at:])
        self.assertEqual(sampler.errors, [])
        self.assertGreater(len(samples), 3)
        self.assertLess(max(samples), max_conn - reserved,
                        "client backends reached %d of %d" % (max(samples), max_conn))

    # ------------------------------------------------------------ 13: zombies

    def test_no_zombies_after_500_jobs(self):
        s = self.stack
        u = jh.seed_user(s, "reaper")
        out, errors, _ = self.post_many(u, 500, 16, "zombie check %d")
        self.assertEqual(errors, [])
        self.assertEqual(collections.Counter(r.status for r in out), {202: 500})
        counts, _ = jh.wait_db_settled(s, "user_id = '%s'" % u.id, 120)
        self.assertEqual(counts, {"completed": 500})
        master = s.master_pid()
        # idle executors exit once the queue is empty
        self.assertTrue(harness.wait_until(lambda: not jh.executors(master), 10),
                        "executors still alive 10 s after the last job: %s" % jh.executors(master))
        # A zombie seen in two snapshots 200 ms apart is one nobody reaps.
        prev, lasting, seen = set(), set(), {}
        for _ in range(6):
            fam = jh.family(master)
            fam[master] = jh.proc_table().get(master, ("?", 0, "?"))
            z = {p for p, (st, _, _) in fam.items() if st == "Z"}
            for p in z:
                seen[p] = fam[p]
            lasting |= prev & z
            prev = z
            time.sleep(0.2)
        self.assertEqual(lasting, set(), "zombies among the pool's processes: %s"
                         % {p: seen[p] for p in lasting})
        self.assertNotEqual(jh.proc_table()[master][0], "Z")


# ==================================================================== 7

class QueuedCancel(JobsCase):
    """One running slot, each render 2.5 s."""

    pool_settings = {"IMAGEGEN_MAX_RUNNING_JOBS": 1, "IMAGEGEN_LOCAL_DELAY_MS": 2500}

    def test_cancel_queued_job_canceled_at_once_and_never_runs(self):
        s = self.stack
        u = jh.seed_user(s, "queue")
        blocker = self.create(u, "holds the only slot")
        self.wait(u, blocker, statuses=("generating",), timeout=10)
        target = self.create(u, "waits its turn")
        self.assertEqual(jh.get_job(s, u.token, target).data["status"], "queued")
        r = jh.cancel_job(s, u.token, target)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.data["jobId"], target, r)
        self.assertEqual(r.data["status"], "canceled", r)
        self.assertEqual(jh.get_job(s, u.token, target).data["status"], "canceled")

        self.assertEqual(self.wait(u, blocker, timeout=15)["status"], "completed")
        time.sleep(2.5)     # a finishing executor and two sweeps had their chance
        job = jh.get_job(s, u.token, target).data
        self.assertEqual(job["status"], "canceled", job)
        self.assertEqual(job["attempts"], 0, job)
        self.assertIsNone(job["startedAt"], job)
        self.assertIsNone(job["storagePath"], job)
        self.assertEqual([(f, t) for f, t, _, _ in jh.events(s, target)],
                         [(None, "queued"), ("queued", "canceled")])
        self.assertEqual(self.storage_files_of(target), [])


# ==================================================================== 10

class RunningCap(JobsCase):
    """IMAGEGEN_MAX_RUNNING_JOBS=2, each render 600 ms."""

    pool_settings = {"IMAGEGEN_MAX_RUNNING_JOBS": 2, "IMAGEGEN_LOCAL_DELAY_MS": 600}

    def test_running_jobs_never_exceed_cap_of_2_and_all_complete(self):
        s = self.stack
        u = jh.seed_user(s, "capped")
        n = 10
        ids = [self.create(u, "capped %d" % i) for i in range(n)]
        samples = []
        with jh.PsqlSession(s) as db:
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                running, done = (int(x) for x in db.value(
                    "SELECT count(*) FILTER"
                    " (WHERE status IN ('processing', 'generating', 'uploading')),"
                    " count(*) FILTER (WHERE status IN ('completed','failed','canceled')"
                    "  AND user_id = '%s')"
                    " FROM public.image_generation_jobs" % u.id).split("|"))
                samples.append(running)
                if done == n:
                    break
                time.sleep(0.05)
        self.assertLessEqual(max(samples), 2, "running jobs sampled: %s" % samples)
        self.assertEqual(max(samples), 2, "never two at once: %s" % samples)
        self.assertEqual(jh.status_counts(s, "user_id = '%s'" % u.id), {"completed": n})
        # The same from the event log: between a job's processing and its
        # end, at most one other job is running.
        marks = []
        for jid in ids:
            ev = jh.events(s, jid)
            start = [t for _, to, t, _ in ev if to == "processing"]
            end = [t for _, to, t, _ in ev if to in jh.TERMINAL]
            self.assertEqual((len(start), len(end)), (1, 1), ev)
            marks += [(start[0], 1), (end[0], -1)]
        level = peak = 0
        for _, d in sorted(marks, key=lambda m: (m[0], m[1])):
            level += d
            peak = max(peak, level)
        self.assertLessEqual(peak, 2, "the event log shows %d jobs running at once" % peak)


# ==================================================================== 11

class CrashCase(JobsCase):
    """A job that takes 4 s to render; the sweeper runs every second."""

    def kill_executor_while_generating(self, u):
        """Posts a job, waits until it is generating, kill -9s its executor;
        returns (job id, time of the kill)."""
        s = self.stack
        jid = self.create(u, "a job whose executor dies")
        self.wait(u, jid, statuses=("generating",), timeout=10)
        execs = jh.executors(s.master_pid())
        self.assertEqual(len(execs), 1, "want one ig-executor under the master, have %s" % execs)
        os.kill(execs[0], signal.SIGKILL)
        t_kill = time.monotonic()
        self.assertEqual(harness.wait_gone(execs, 5), [])
        return jid, t_kill


class CrashRecovery(CrashCase):
    pool_settings = {"IMAGEGEN_LOCAL_DELAY_MS": 4000, "IMAGEGEN_MAX_ATTEMPTS": 3}

    def test_executor_killed_job_requeued_then_completed(self):
        s = self.stack
        u = jh.seed_user(s, "crash")
        jid, t_kill = self.kill_executor_while_generating(u)

        def requeued():
            return [e for e in jh.events(s, jid)
                    if e[0] in ("processing", "generating") and e[1] == "queued"]
        ev = harness.wait_until(requeued, 15, interval=0.1)
        took = time.monotonic() - t_kill
        self.assertTrue(ev, "not requeued within 15 s of the kill: %s" % jh.events(s, jid))
        self.assertLessEqual(took, 15.5)

        job = self.wait(u, jid, timeout=20)
        self.assertEqual(job["status"], "completed", job)
        self.assertEqual(job["attempts"], 2, job)
        self.assertNotIn("error", job)
        img = s.http("GET", urllib.parse.urlsplit(job["publicUrl"]).path)
        self.assertEqual(img.status, 200, img)
        self.assertEqual(jh.png_size(img.body), (64, 64))


class CrashLastAttempt(CrashCase):
    pool_settings = {"IMAGEGEN_LOCAL_DELAY_MS": 4000, "IMAGEGEN_MAX_ATTEMPTS": 1}

    def test_executor_killed_on_last_attempt_job_failed_worker_lost(self):
        s = self.stack
        u = jh.seed_user(s, "crash-last")
        jid, t_kill = self.kill_executor_while_generating(u)
        job = self.wait(u, jid, timeout=15)
        self.assertLessEqual(time.monotonic() - t_kill, 15.5)
        self.assertEqual(job["status"], "failed", job)
        self.assertEqual(job["error"]["code"], "WORKER_LOST", job)
        self.assertEqual(job["error"]["failureStage"], "generating", job)
        self.assertEqual(job["attempts"], 1, job)
        self.assertEqual(self.to_statuses(jid), ["queued", "processing", "generating", "failed"])


# ==================================================================== 12

class PostgresRestart(JobsCase):
    pool_settings = {"IMAGEGEN_LOCAL_DELAY_MS": 1500}

    def test_postgres_restart_while_jobs_run_every_job_finishes(self):
        s = self.stack
        u = jh.seed_user(s, "outage")
        ids = [self.create(u, "through an outage %d" % i) for i in range(10)]
        where = "user_id = '%s'" % u.id
        self.assertTrue(harness.wait_until(
            lambda: jh.status_counts(s, where).get("generating", 0) >= 1, 10),
            "no job started: %s" % jh.status_counts(s, where))
        s.pg_stop()
        try:
            time.sleep(2)
        finally:
            s.pg_start()
        t_up = time.monotonic()
        counts, waited = jh.wait_db_settled(s, where, 60)
        self.assertLessEqual(time.monotonic() - t_up, 60.5)
        self.assertEqual(sum(counts.values()), 10, counts)
        self.assertEqual(set(counts) - {"completed", "failed"}, set(),
                         "jobs ended neither completed nor failed: %s" % counts)
        sys.stderr.write("\npostgres restart: 10 jobs settled %.1fs after Postgres came back: %s\n"
                         % (waited, counts))
        final = s.psql("SELECT id || '|' || status FROM public.image_generation_jobs"
                       " WHERE %s" % where).split()
        self.assertEqual(sorted(x.split("|")[0] for x in final), sorted(ids))

    def test_job_requests_after_postgres_restart_served_not_503(self):
        """Every responder held a connection when Postgres restarted; once
        Postgres is back, a job request is served (a broken connection is
        replaced), not answered 503 while the database is up."""
        s = self.stack
        u = jh.seed_user(s, "after-outage")
        for i in range(6):      # every responder has used its connection
            self.create(u, "before the restart %d" % i)
        jh.wait_db_settled(s, "user_id = '%s'" % u.id, 30)
        s.pg_stop()
        s.pg_start()
        self.assertEqual(s.psql("SELECT 1").strip(), "1")
        answers = [jh.post_job(s, u.token, u.body("after the restart %d" % i)) for i in range(6)]
        answers += [s.http("GET", "/api/images/jobs?projectId=%s" % u.project_id,
                           headers=jh.auth(u.token)) for _ in range(4)]
        self.assertEqual([r.status for r in answers], [202] * 6 + [200] * 4,
                         "first non-2xx: %r" % next((r for r in answers if r.status >= 300), None))
        for r in answers[:6]:
            self.assertEqual(self.wait(u, r.data["jobId"], timeout=20)["status"], "completed")


if __name__ == "__main__":
    unittest.main()
