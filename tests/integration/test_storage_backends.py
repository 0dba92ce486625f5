"""The remote storage backends end to end (SPEC section 7): real nginx, pool,
Postgres and executors (the offline `local` provider), storing through

  SupabaseStorage  IMAGEGEN_STORAGE=supabase against tests/fakes/
                   supabase_storage.py, a fake of Supabase Storage's object
                   and bucket API with its real error format (HTTP 400 with
                   the status in the body's statusCode): the upload and its
                   headers, the public URL serving the picture, each error
                   mapped (409, 413, 415, 404, 403, a wrong key), temporary
                   ones (500, 503, a timeout) retried until the job's
                   deadline, the orphan deleted
                   when persisting the completed row fails, setup-bucket
                   twice
  S3Storage        IMAGEGEN_STORAGE=s3 against s3rver (npm, installed from
                   tests/node's lock file like jose) behind tests/node/
                   s3_server.mjs, which checks every request's Signature
                   Version 4 with aws4 (region, session token, payload hash):
                   setup-bucket twice (bucket + public-read policy), a job
                   completing with the right key and content type and its
                   public URL serving it anonymously, a wrong secret failing
                   the job at `uploading` with STORAGE_ERROR, the orphan of a
                   failed persist deleted
  SetupBucketLocal `imagegen setup-bucket` for the directory backend, twice

A persist failure is forced by a trigger the test adds as the superuser:
it raises when a job whose prompt carries a marker is set to completed.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "fakes"))

import harness  # noqa: E402
import jobs_helper as jh  # noqa: E402
import jose_helper  # noqa: E402
from supabase_storage import FakeSupabaseStorage  # noqa: E402

SERVICE_KEY = "test-service-role-key-" + "0123456789abcdef" * 2
S3_KEY_ID = "AKIDIMAGEGENTEST"
S3_SECRET = "s3-test-secret/" + "0123456789abcdef" * 2
S3_TOKEN = "FwoGZXIvYXdzEtest-session-token/" + "abcdef" * 8
S3_REGION = "eu-central-1"
PERSIST_MARK = "[persist-fail]"


def sql_dir():
    return os.path.join(harness.SRCDIR, "sql")


def policies_text():
    with open(os.path.join(sql_dir(), "storage_policies.sql")) as f:
        return f.read()


def setup_bucket(env_extra, cwd=None):
    """`imagegen setup-bucket` with env_extra (a None value unsets the
    variable: IMAGEGEN_SQL_DIR is the source tree's sql/ unless told),
    run in cwd; CompletedProcess (text)."""
    env = harness._clean_env()
    env["IMAGEGEN_SQL_DIR"] = sql_dir()
    env.update(env_extra)
    env = {k: v for k, v in env.items() if v is not None}
    return subprocess.run([harness.imagegen_bin(), "setup-bucket"], env=env, cwd=cwd,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=60)


def installed_sql_dir():
    """The installed sql directory the binary was built with, as its
    --help names it."""
    p = subprocess.run([harness.imagegen_bin(), "--help"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    m = re.search(r"IMAGEGEN_SQL_DIR, else (\S+?)\);", p.stdout)
    if m is None:
        raise harness.HarnessError("imagegen --help names no sql directory: %s" % p.stdout)
    return m.group(1)


class InpaintFromBucket:
    """An inpaint job whose inputs are the public URL of an earlier job's
    picture, with NO IMAGEGEN_PUBLIC_BASE_URL (a mixin: reads_of(path)
    lists the backend's reads of that object, prepare() readies the
    bucket)."""

    def prepare(self):
        pass

    def test_inpaint_from_bucket_without_public_base_url(self):
        self.prepare()
        self.assertNotIn("IMAGEGEN_PUBLIC_BASE_URL", self.stack.pool_env())
        u, src = self.run_job("inpaint-src", width=96, height=64)
        self.assertEqual(src["status"], "completed", json.dumps(src))
        url = src["publicUrl"]
        self.assertTrue(url.startswith("http://127.0.0.1:"), url)
        # the mask: another object of the same user, so each read is told
        # apart (the source's path must not stand for the mask's)
        r = jh.post_job(self.stack, u.token, u.body("a mask", width=96, height=64))
        self.assertEqual(r.status, 202, r)
        msk = jh.wait_job(self.stack, u.token, r.data["jobId"], timeout=30)
        self.assertEqual(msk["status"], "completed", json.dumps(msk))
        before = len(self.reads_of(src["storagePath"]))
        mbefore = len(self.reads_of(msk["storagePath"]))
        r = jh.post_job(self.stack, u.token, u.body("paint a boat in", jobType="inpaint",
                                                   sourceImageUrl=url,
                                                   maskImageUrl=msk["publicUrl"],
                                                   width=96, height=64))
        self.assertEqual(r.status, 202, r)
        job = jh.wait_job(self.stack, u.token, r.data["jobId"], timeout=30)
        self.assertEqual(job["status"], "completed", json.dumps(job))
        self.assertRegex(job["storagePath"],
                         r"project_%s/branch_%s/inpaint/%s_\d+_[0-9a-f]{8}\.png"
                         % (u.project_id, u.branch_id, job["jobId"]))
        # the executor read the source and the mask back from the bucket,
        # each once
        reads = self.reads_of(src["storagePath"])[before:]
        self.assertEqual(len(reads), 1, reads)
        reads = self.reads_of(msk["storagePath"])[mbefore:]
        self.assertEqual(len(reads), 1, reads)
        status, _, body = fetch(job["publicUrl"])
        self.assertEqual(status, 200)
        self.assertEqual(jh.png_size(body), (96, 64))
        # the same URL with its path escaped names the same object; a URL
        # of another host, bucket or a traversal is still refused
        esc = url.replace("/project_", "/project%5F", 1)
        r = jh.post_job(self.stack, u.token, u.body("again", jobType="inpaint",
                                                   sourceImageUrl=esc))
        self.assertEqual(r.status, 202, r)
        self.assertEqual(jh.wait_job(self.stack, u.token, r.data["jobId"],
                                     timeout=30)["status"], "completed")
        base = url[:url.index("/asset-images/")]
        for bad in (url.replace("127.0.0.1", "127.0.0.2", 1),
                    base + "/other-bucket/" + src["storagePath"],
                    base + "/asset-images/../private/" + src["storagePath"],
                    base + "/asset-images/%2e%2e/private/x.png",
                    "/storage/v1/object/public/asset-images/" + src["storagePath"]):
            r = jh.post_job(self.stack, u.token, u.body("x", jobType="inpaint",
                                                       sourceImageUrl=bad))
            self.assertEqual(r.status, 400, (bad, r))
            self.assertIn("sourceImageUrl", json.dumps(r.data), bad)


class SetupBucketFromBuildTree:
    """setup-bucket of a remote backend (a mixin: env, and bucket_exists(name)
    saying whether the backend now has that bucket) run as from a build tree:
    no IMAGEGEN_SQL_DIR, in a directory with no sql/, nothing installed."""

    def test_setup_bucket_from_build_tree_prints_source_policies(self):
        installed = installed_sql_dir()
        if os.path.exists(os.path.join(installed, "storage_policies.sql")):
            self.skipTest("storage_policies.sql is installed in %s: the fallback to the"
                          " source tree is not reached on this machine" % installed)
        name = "build-tree-" + uuid.uuid4().hex[:8]
        with tempfile.TemporaryDirectory(prefix="imagegen-setup-cwd-") as cwd:
            r = setup_bucket(dict(self.env, IMAGEGEN_SQL_DIR=None, IMAGEGEN_BUCKET=name), cwd=cwd)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("bucket %s ready" % name, r.stdout)
        self.assertTrue(self.bucket_exists(name))
        m = re.search(r"The storage policies \((\S+)\)", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        self.assertEqual(os.path.realpath(m.group(1)),
                         os.path.realpath(os.path.join(sql_dir(), "storage_policies.sql")))
        self.assertIn(policies_text(), r.stdout)
        self.assertNotIn("warning", r.stderr)

    def test_setup_bucket_without_policy_file_warns_and_makes_bucket(self):
        name = "no-policies-" + uuid.uuid4().hex[:8]
        with tempfile.TemporaryDirectory(prefix="imagegen-setup-cwd-") as cwd:
            nowhere = os.path.join(cwd, "no-sql-here")
            r = setup_bucket(dict(self.env, IMAGEGEN_SQL_DIR=nowhere, IMAGEGEN_BUCKET=name),
                             cwd=cwd)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("bucket %s ready" % name, r.stdout)
        self.assertTrue(self.bucket_exists(name))
        self.assertIn("warning: cannot read %s/storage_policies.sql" % nowhere, r.stderr)
        self.assertIn("IMAGEGEN_SQL_DIR", r.stderr)
        self.assertNotIn("CREATE POLICY", r.stdout)


def fetch(url, timeout=10):
    """(status, headers, body) of an anonymous GET."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def mint(sub, email, env_extra):
    """An HS256 token from `imagegen token` with the pool's issuer settings."""
    env = harness._clean_env()
    env["SUPABASE_JWT_SECRET"] = jh.SECRET
    env.update(env_extra)
    p = subprocess.run([harness.imagegen_bin(), "token", "--sub", sub, "--email", email,
                        "--ttl", "3600"], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    if p.returncode != 0:
        raise harness.HarnessError("imagegen token failed: %s" % p.stderr)
    return p.stdout.strip()


class BackendCase(harness.StackTestCase):
    """One stack per class; token_env: what `imagegen token` needs to mint
    tokens the pool accepts (SUPABASE_URL sets the issuer)."""

    token_env = {}

    def seed_user(self, label):
        uid = str(uuid.uuid4())
        email = "%s-%s@example.test" % (label, uid[:8])
        self.stack.psql("INSERT INTO auth.users (id, email) VALUES ('%s', '%s');" % (uid, email))
        pid, bid = jh.seed_project(self.stack, uid, label)
        return jh.User(uid, email, mint(uid, email, self.token_env), pid, bid)

    def run_job(self, label, prompt="a lighthouse at dusk", timeout=30, **over):
        """Posts a job of a new user and waits for its end; (user, job)."""
        u = self.seed_user(label)
        r = jh.post_job(self.stack, u.token, u.body(prompt, **over))
        self.assertEqual(r.status, 202, r)
        return u, jh.wait_job(self.stack, u.token, r.data["jobId"], timeout=timeout)

    def assert_failed(self, job, code, stage, words=()):
        self.assertEqual(job["status"], "failed", json.dumps(job))
        self.assertEqual(job["error"]["code"], code, json.dumps(job))
        self.assertEqual(job["error"]["failureStage"], stage, json.dumps(job))
        for w in words:
            self.assertIn(w, job["error"]["message"], json.dumps(job))

    def statuses(self, job_id):
        return [t for _, t, _, _ in jh.events(self.stack, job_id)]

    def path_re(self, user, job_id):
        return re.compile(r"project_%s/branch_%s/master-assets/%s_\d+_[0-9a-f]{8}\.png"
                          % (user.project_id, user.branch_id, job_id))

    def persist_fails(self):
        """A context manager: while it is open, completing a job whose
        prompt carries PERSIST_MARK raises in the database."""
        case = self

        class Ctx:
            def __enter__(self):
                case.stack.psql(
                    "CREATE FUNCTION public.zz_test_persist_fail() RETURNS trigger"
                    " LANGUAGE plpgsql AS $f$ BEGIN"
                    " IF NEW.status = 'completed' AND position('%s' in NEW.prompt) > 0 THEN"
                    " RAISE EXCEPTION 'forced persist failure (test)'; END IF;"
                    " RETURN NEW; END $f$;"
                    " CREATE TRIGGER zz_test_persist_fail BEFORE UPDATE"
                    " ON public.image_generation_jobs FOR EACH ROW"
                    " EXECUTE FUNCTION public.zz_test_persist_fail();" % PERSIST_MARK)

            def __exit__(self, *exc):
                case.stack.psql("DROP TRIGGER zz_test_persist_fail ON public.image_generation_jobs;"
                                " DROP FUNCTION public.zz_test_persist_fail();")
                return False
        return Ctx()

    def restart_pool(self, **env):
        """The pool again with env over the class's settings (executors
        read the settings they are started with)."""
        self.stack.stop_pool()
        self.stack.start_pool(extra_env=env)


# ==================================================================== supabase

class SupabaseStorage(InpaintFromBucket, SetupBucketFromBuildTree, BackendCase):

    def bucket_exists(self, name):
        return name in self.fake.buckets

    def reads_of(self, path):
        return [r for r in self.fake.requests_for("download")
                if r["path"] == "/storage/v1/object/asset-images/" + path
                and r["apikey_ok"] and r["bearer_ok"]]

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeSupabaseStorage(SERVICE_KEY).start()
        cls.addClassCleanup(cls.fake.stop)
        cls.env = {"IMAGEGEN_STORAGE": "supabase", "SUPABASE_URL": cls.fake.url,
                   "SUPABASE_SERVICE_ROLE_KEY": SERVICE_KEY}
        cls.token_env = {"SUPABASE_URL": cls.fake.url}
        cls.stack_args = dict(pool="master", workers=2, extra_env=jh.pool_env(
            IMAGEGEN_PROVIDER_TIMEOUT_MS=2000, **cls.env))
        super().setUpClass()
        r = setup_bucket(cls.env)
        if r.returncode != 0:
            raise harness.HarnessError("setup-bucket: %s %s" % (r.stdout, r.stderr))

    def setUp(self):
        self.fake.injections.clear()

    def uploads_of(self, job_id):
        return [r for r in self.fake.requests_for("upload") if job_id in r["path"]]

    def test_setup_bucket_twice_public_and_policies(self):
        env = dict(self.env, IMAGEGEN_BUCKET="other-pictures")
        first = setup_bucket(env)
        self.assertEqual(first.returncode, 0, first.stderr)
        b = self.fake.buckets["other-pictures"]
        self.assertTrue(b["public"], b)
        self.assertEqual(sorted(b["allowed_mime_types"]), ["image/jpeg", "image/png", "image/webp"])
        creates = self.fake.requests_for("create_bucket")
        self.assertTrue(all(r["apikey_ok"] and r["bearer_ok"] for r in creates), creates)
        # the second run finds it (400 {"statusCode":"409"}), makes sure it
        # is public, and succeeds
        b["public"] = False
        second = setup_bucket(env)
        self.assertEqual(second.returncode, 0, second.stderr)
        self.assertEqual(self.fake.requests_for("create_bucket")[-1]["statusCode"], "409")
        self.assertEqual(self.fake.requests_for("update_bucket")[-1]["status"], 200)
        self.assertTrue(self.fake.buckets["other-pictures"]["public"])
        for out in (first.stdout, second.stdout):
            self.assertIn("bucket other-pictures ready (supabase storage)", out)
            self.assertIn(policies_text(), out)
            self.assertIn("psql", out)
            self.assertIn("replace every 'asset-images'", out)
        # a refused key is an error naming the key
        bad = setup_bucket(dict(env, SUPABASE_SERVICE_ROLE_KEY="not-the-key"))
        self.assertEqual(bad.returncode, 1, bad.stdout)
        self.assertIn("SUPABASE_SERVICE_ROLE_KEY", bad.stderr)
        self.assertNotIn("not-the-key", bad.stderr + bad.stdout)

    def test_upload_headers_public_url_and_picture(self):
        u, job = self.run_job("supa-ok", width=96, height=64)
        jid = job["jobId"]
        self.assertEqual(job["status"], "completed", json.dumps(job))
        path = job["storagePath"]
        self.assertRegex(path, self.path_re(u, jid))
        obj = self.fake.object("asset-images", path)
        self.assertIsNotNone(obj, "no object %s in the fake" % path)
        self.assertEqual(obj["content_type"], "image/png")
        self.assertEqual(obj["cache_control"], "max-age=3600")
        self.assertEqual(obj["upsert_header"], "false")
        ups = self.uploads_of(jid)
        self.assertEqual(len(ups), 1, ups)
        self.assertEqual(ups[0]["method"], "POST")
        self.assertEqual(ups[0]["path"], "/storage/v1/object/asset-images/" + path)
        self.assertTrue(ups[0]["apikey_ok"] and ups[0]["bearer_ok"], ups[0])
        self.assertEqual(job["publicUrl"],
                         self.fake.url + "/storage/v1/object/public/asset-images/" + path)
        status, headers, body = fetch(job["publicUrl"])
        self.assertEqual(status, 200, body[:200])
        self.assertEqual(headers.get("Content-Type"), "image/png")
        self.assertEqual(jh.png_size(body), (96, 64))
        self.assertEqual(self.statuses(jid),
                         ["queued", "processing", "generating", "uploading", "completed"])
        self.assertNotIn(SERVICE_KEY, self.stack.read_pool_log())

    def test_permanent_errors_mapped_not_retried(self):
        cases = [  # (injected statusCode, words in the job's message)
            (409, ["already exists", "409", "Duplicate"]),
            (413, ["too large", "413"]),
            (415, ["type not allowed", "415", "image/png"]),
            (404, ["bucket not found", "setup-bucket", "404"]),
            (403, ["refused", "403", "row-level security"]),
            (400, ["400"]),
        ]
        for status, words in cases:
            with self.subTest(status=status):
                # 409 in the older error shape too: no "code", just
                # statusCode/error/message
                self.fake.legacy_errors = status == 409
                try:
                    self.fake.inject("upload", status=status)
                    _, job = self.run_job("supa-%d" % status)
                finally:
                    self.fake.legacy_errors = False
                self.assert_failed(job, "STORAGE_ERROR", "uploading", words)
                ups = self.uploads_of(job["jobId"])
                self.assertEqual([(r["status"], r["statusCode"]) for r in ups],
                                 [(400, str(status))], "one attempt, answered as Supabase does")
                self.assertIsNone(job["storagePath"])
                self.assertEqual(self.statuses(job["jobId"])[-2:], ["uploading", "failed"])

    def test_natural_errors_bucket_missing_and_type_refused(self):
        # Storage's own checks, no injection: a bucket that does not exist,
        # and a bucket whose allowed_mime_types exclude PNG
        self.fake.add_bucket("jpeg-only", allowed_mime_types=["image/jpeg"])
        self.restart_pool(IMAGEGEN_BUCKET="jpeg-only")
        try:
            _, job = self.run_job("supa-415")
            self.assert_failed(job, "STORAGE_ERROR", "uploading",
                               ["type not allowed", "415", "mime type image/png is not supported"])
            self.restart_pool(IMAGEGEN_BUCKET="no-such-bucket")
            _, job = self.run_job("supa-404")
            self.assert_failed(job, "STORAGE_ERROR", "uploading",
                               ["bucket not found", "404", "Bucket not found"])
        finally:
            self.restart_pool()

    def test_wrong_key_fails_at_uploading(self):
        self.restart_pool(SUPABASE_SERVICE_ROLE_KEY="a-wrong-service-role-key")
        try:
            _, job = self.run_job("supa-badkey")
        finally:
            self.restart_pool()
        self.assert_failed(job, "STORAGE_ERROR", "uploading", ["401", "Invalid API key"])
        ups = self.uploads_of(job["jobId"])
        self.assertEqual([r["status"] for r in ups], [401])
        self.assertFalse(ups[0]["apikey_ok"])
        self.assertNotIn("a-wrong-service-role-key", json.dumps(job))

    def test_temporary_errors_retried_then_completed(self):
        self.fake.inject("upload", status=500)
        self.fake.inject("upload", status=503)
        _, job = self.run_job("supa-flaky")
        self.assertEqual(job["status"], "completed", json.dumps(job))
        ups = self.uploads_of(job["jobId"])
        self.assertEqual([r["status"] for r in ups], [500, 400, 200], ups)
        self.assertEqual(ups[1]["statusCode"], "503")
        self.assertIsNotNone(self.fake.object("asset-images", job["storagePath"]))

    def test_temporary_errors_exhausted_fail_at_uploading(self):
        # Retried with backoff until the job's deadline (IMAGEGEN_JOB_TIMEOUT
        # 5 s here, one attempt), then failed at uploading, the object gone.
        self.restart_pool(IMAGEGEN_JOB_TIMEOUT="5", IMAGEGEN_MAX_ATTEMPTS="1")
        try:
            self.fake.inject("upload", status=500, count=1000)
            t0 = time.monotonic()
            _, job = self.run_job("supa-down")
            took = time.monotonic() - t0
        finally:
            self.fake.injections.clear()
            self.restart_pool()
        self.assert_failed(job, "STORAGE_ERROR", "uploading", ["500"])
        ups = self.uploads_of(job["jobId"])
        self.assertGreaterEqual(len(ups), 4, "retried until the deadline: %s" % ups)
        self.assertLess(len(ups), 20, "retried without backoff: %d uploads" % len(ups))
        self.assertGreater(took, 2.5, "gave up %.1fs into a 5 s deadline" % took)
        self.assertLess(took, 9)
        self.assertIsNone(job["storagePath"])

    def test_timeout_is_temporary(self):
        # IMAGEGEN_PROVIDER_TIMEOUT_MS=2000: the first upload hangs 3 s
        self.fake.inject("upload", status=503, delay=3)
        t0 = time.monotonic()
        _, job = self.run_job("supa-slow")
        self.assertEqual(job["status"], "completed", json.dumps(job))
        self.assertGreaterEqual(time.monotonic() - t0, 2.0)
        self.assertEqual(len(self.uploads_of(job["jobId"])), 2)

    def test_orphan_deleted_when_persisting_fails(self):
        with self.persist_fails():
            u, job = self.run_job("supa-orphan", prompt="a fox " + PERSIST_MARK)
        jid = job["jobId"]
        self.assert_failed(job, "PERSIST_ERROR", "persisting")
        self.assertIsNone(job["storagePath"])
        ups = self.uploads_of(jid)
        self.assertEqual([r["status"] for r in ups], [200], ups)
        path = ups[0]["path"][len("/storage/v1/object/asset-images/"):]
        self.assertRegex(path, self.path_re(u, jid))
        dels = [r for r in self.fake.requests_for("delete") if r["path"] == ups[0]["path"]]
        self.assertEqual([r["status"] for r in dels], [200], dels)
        self.assertTrue(dels[0]["apikey_ok"] and dels[0]["bearer_ok"])
        self.assertIsNone(self.fake.object("asset-images", path), "the orphan is still there")
        self.assertEqual(self.statuses(jid)[-2:], ["uploading", "failed"])


# ==================================================================== s3

class S3Server:
    """tests/node/s3_server.mjs (s3rver + a SigV4 check) on a free port."""

    def __init__(self):
        d = jose_helper.install()           # tests/node's locked deps
        if not os.path.isfile(os.path.join(d, "node_modules", "s3rver", "package.json")):
            raise harness.HarnessError("npm ci in %s did not install s3rver" % d)
        shutil.copyfile(os.path.join(harness.SRCDIR, "tests", "node", "s3_server.mjs"),
                        os.path.join(d, "s3_server.mjs"))
        self.tmp = tempfile.mkdtemp(prefix="imagegen-s3rver-")
        self.log = os.path.join(self.tmp, "requests.log")
        self.stderr = open(os.path.join(self.tmp, "stderr.log"), "wb")
        self.proc = subprocess.Popen(
            [shutil.which("node"), os.path.join(d, "s3_server.mjs"), "--dir",
             os.path.join(self.tmp, "data"), "--access-key", S3_KEY_ID, "--secret", S3_SECRET,
             "--region", S3_REGION, "--session-token", S3_TOKEN, "--log", self.log],
            cwd=d, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.stderr,
            start_new_session=True)
        line = [None]
        t = threading.Thread(target=lambda: line.__setitem__(0, self.proc.stdout.readline()),
                             daemon=True)
        t.start()
        t.join(30)
        try:
            self.port = json.loads(line[0])["port"]
        except (TypeError, ValueError, KeyError):
            self.stop()
            raise harness.HarnessError("s3_server.mjs did not start: %r %s"
                                       % (line[0], harness.tail(self.stderr.name)))
        self.url = "http://127.0.0.1:%d" % self.port

    def requests(self):
        try:
            with open(self.log) as f:
                return [json.loads(x) for x in f if x.strip()]
        except FileNotFoundError:
            return []

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.stderr.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class S3Storage(InpaintFromBucket, SetupBucketFromBuildTree, BackendCase):

    def prepare(self):
        self.ensure_bucket()

    def reads_of(self, path):
        return [r for r in self.s3.requests()
                if r["method"] == "GET" and r["url"] == "/asset-images/" + path
                and r["authorized"] and r["status"] == 200]

    def bucket_exists(self, name):
        # anonymous read of a missing key: 404 once the bucket and its
        # public-read policy exist (403 before)
        return fetch(self.s3.url + "/%s/x.png" % name)[0] == 404

    @classmethod
    def setUpClass(cls):
        cls.s3 = S3Server()
        cls.addClassCleanup(cls.s3.stop)
        cls.env = {"IMAGEGEN_STORAGE": "s3", "S3_ENDPOINT": cls.s3.url,
                   "S3_REGION": S3_REGION, "S3_ACCESS_KEY_ID": S3_KEY_ID,
                   "S3_SECRET_ACCESS_KEY": S3_SECRET, "S3_SESSION_TOKEN": S3_TOKEN}
        cls.stack_args = dict(pool="master", workers=2, extra_env=jh.pool_env(**cls.env))
        cls.bucket_ready = False
        super().setUpClass()

    def ensure_bucket(self):
        if not type(self).bucket_ready:
            r = setup_bucket(self.env)
            self.assertEqual(r.returncode, 0, r.stderr)
            type(self).bucket_ready = True

    def puts_of(self, job_id):
        return [r for r in self.s3.requests()
                if r["method"] == "PUT" and job_id in r["url"]]

    def test_a_setup_bucket_twice_bucket_and_public_policy(self):
        # before: no bucket, so no policy, so no anonymous read
        self.assertEqual(fetch(self.s3.url + "/asset-images/x.png")[0], 403)
        first = setup_bucket(self.env)
        self.assertEqual(first.returncode, 0, first.stderr)
        second = setup_bucket(self.env)
        self.assertEqual(second.returncode, 0, second.stderr)
        type(self).bucket_ready = True
        for out in (first.stdout, second.stdout):
            self.assertIn("bucket asset-images ready (s3 storage)", out)
            self.assertIn(policies_text(), out)
        self.assertIn("public-read policy set", second.stderr)
        reqs = [(r["method"], r["url"], r["status"], r["code"]) for r in self.s3.requests()
                if r["authorized"]]
        self.assertEqual(reqs, [
            ("PUT", "/asset-images", 200, None),
            ("PUT", "/asset-images?policy", 204, None),
            ("PUT", "/asset-images", 409, "BucketAlreadyExists"),
            ("HEAD", "/asset-images", 200, None),
            ("PUT", "/asset-images?policy", 204, None)])
        # the policy lets anyone read: a missing key is now a 404, not a 403
        self.assertEqual(fetch(self.s3.url + "/asset-images/x.png")[0], 404)

    def test_job_completes_key_content_type_public_url(self):
        self.ensure_bucket()
        u, job = self.run_job("s3-ok", width=128, height=64)
        jid = job["jobId"]
        self.assertEqual(job["status"], "completed", json.dumps(job))
        path = job["storagePath"]
        self.assertRegex(path, self.path_re(u, jid))
        self.assertEqual(job["publicUrl"], self.s3.url + "/asset-images/" + path)
        puts = self.puts_of(jid)
        self.assertEqual(len(puts), 1, puts)
        p = puts[0]
        self.assertEqual((p["url"], p["status"], p["contentType"], p["cacheControl"],
                          p["ifNoneMatch"]),
                         ("/asset-images/" + path, 200, "image/png", "max-age=3600", "*"))
        self.assertEqual(p["signedHeaders"], "cache-control;content-type;host;if-none-match;"
                         "x-amz-content-sha256;x-amz-date;x-amz-security-token")
        # the public URL serves it, anonymously, with its type
        status, headers, body = fetch(job["publicUrl"])
        self.assertEqual(status, 200, body[:300])
        self.assertEqual(headers.get("Content-Type"), "image/png")
        self.assertEqual(jh.png_size(body), (128, 64))
        self.assertNotIn(S3_SECRET, self.stack.read_pool_log())

    def test_wrong_secret_fails_at_uploading(self):
        self.ensure_bucket()
        self.restart_pool(S3_SECRET_ACCESS_KEY="not-the-secret-at-all")
        try:
            _, job = self.run_job("s3-badsecret")
        finally:
            self.restart_pool()
        self.assert_failed(job, "STORAGE_ERROR", "uploading",
                           ["refused", "403", "SignatureDoesNotMatch"])
        puts = self.puts_of(job["jobId"])
        self.assertEqual([(r["status"], r["code"]) for r in puts],
                         [(403, "SignatureDoesNotMatch")], "one attempt: not retried")
        self.assertNotIn("not-the-secret-at-all", json.dumps(job))

    def test_orphan_deleted_when_persisting_fails(self):
        self.ensure_bucket()
        with self.persist_fails():
            u, job = self.run_job("s3-orphan", prompt="a heron " + PERSIST_MARK)
        jid = job["jobId"]
        self.assert_failed(job, "PERSIST_ERROR", "persisting")
        puts = self.puts_of(jid)
        self.assertEqual([r["status"] for r in puts], [200], puts)
        url = puts[0]["url"]
        dels = [r for r in self.s3.requests() if r["method"] == "DELETE" and r["url"] == url]
        self.assertEqual([r["status"] for r in dels], [204], dels)
        self.assertEqual(fetch(self.s3.url + url)[0], 404, "the orphan is still there")


# ==================================================================== local

class SetupBucketLocal(unittest.TestCase):

    def test_setup_bucket_twice_makes_the_directory(self):
        tmp = tempfile.mkdtemp(prefix="imagegen-setup-local-")
        try:
            env = {"IMAGEGEN_STORAGE": "local",
                   "IMAGEGEN_STORAGE_DIR": os.path.join(tmp, "a", "storage")}
            for _ in range(2):
                r = setup_bucket(env)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("bucket asset-images ready (local storage)", r.stdout)
                self.assertIn(policies_text(), r.stdout)
                self.assertIn("needs none of this", r.stdout)
                self.assertTrue(os.path.isdir(os.path.join(tmp, "a", "storage", "asset-images")))
            # the policies file is not needed to make the bucket: found
            # nowhere, it is a warning
            shutil.rmtree(os.path.join(tmp, "a"))
            r = setup_bucket(dict(env, IMAGEGEN_SQL_DIR=os.path.join(tmp, "nowhere")))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("warning: cannot read %s/storage_policies.sql"
                          % os.path.join(tmp, "nowhere"), r.stderr)
            self.assertTrue(os.path.isdir(os.path.join(tmp, "a", "storage", "asset-images")))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_explicit_backend_missing_settings_named(self):
        for env, name in (({"IMAGEGEN_STORAGE": "s3"}, "S3_ENDPOINT"),
                          ({"IMAGEGEN_STORAGE": "s3", "S3_ENDPOINT": "http://127.0.0.1:9"},
                           "S3_ACCESS_KEY_ID"),
                          ({"IMAGEGEN_STORAGE": "supabase"}, "SUPABASE_URL"),
                          ({"IMAGEGEN_STORAGE": "supabase", "SUPABASE_URL": "http://127.0.0.1:9"},
                           "SUPABASE_SERVICE_ROLE_KEY")):
            r = setup_bucket(env)
            self.assertEqual(r.returncode, 2, (env, r.stdout))
            self.assertIn(name, r.stderr)


if __name__ == "__main__":
    unittest.main()
