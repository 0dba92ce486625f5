"""Cost accuracy end to end: one price table, and IMAGEGEN_PRICE_PER_IMAGE_USD
over it.

  PriceTable   imagegen-fcgi refuses to start (exit 2, one line on stderr
               naming NANO_BANANA_MODEL and IMAGEGEN_PRICE_PER_IMAGE_USD)
               with a model the price table does not know, and with a bad
               price; with the price set it starts, and a Gemini job
               through the fake (tests/fakes/nano_banana.py) costs that
               price, estimated and actual, whatever usage the fake
               reports; the local provider is priced by it offline; the
               guide's cost query, run exactly as the guide writes it, sums
               those costs by job type
"""

import os
import subprocess
import sys
import uuid
from decimal import Decimal

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "fakes"))

import harness  # noqa: E402
import jobs_helper as jh  # noqa: E402
from nano_banana import FakeNanoBanana  # noqa: E402

GEMINI_KEY = "AIzaSyFAKE-imagegen-prices-0123456789abcd"
UNKNOWN = "some-unknown-model"
PRICE = "0.05"
LOCAL_PRICE = "0.25"
REFUSAL = ("imagegen-fcgi: NANO_BANANA_MODEL: no price for model '%s' of "
           "IMAGEGEN_PROVIDER=gemini; set IMAGEGEN_PRICE_PER_IMAGE_USD to what "
           "one image costs\n" % UNKNOWN)
# The guide's cost query, verbatim.
GUIDE_COST_QUERY = ("SELECT job_type, AVG(cost_credits) as avg_cost, "
                    "SUM(cost_credits) as total_cost, COUNT(*) as job_count "
                    "FROM image_generation_jobs WHERE status = 'completed' "
                    "GROUP BY job_type;")


class PriceTable(harness.StackTestCase):
    """The class's pool: gemini at the fake, an unknown model, priced by
    IMAGEGEN_PRICE_PER_IMAGE_USD."""

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeNanoBanana().start()
        cls.addClassCleanup(cls.fake.stop)
        cls.env = jh.pool_env(IMAGEGEN_PROVIDER="gemini",
                              NANO_BANANA_API_KEY=GEMINI_KEY,
                              NANO_BANANA_API_URL=cls.fake.url + "/v1beta",
                              NANO_BANANA_MODEL=UNKNOWN,
                              IMAGEGEN_PRICE_PER_IMAGE_USD=PRICE,
                              IMAGEGEN_PROVIDER_TIMEOUT_MS=5000)
        cls.stack_args = dict(pool="master", workers=2, extra_env=cls.env)
        super().setUpClass()
        cls.user = jh.seed_user(cls.stack, "prices")

    def setUp(self):
        self.fake.reset()

    # ------------------------------------------------------------ helpers

    def start_fcgi(self, **over):
        """imagegen-fcgi with the class's environment changed by over (a
        value None unsets it), as a pool would be started; it must exit
        within 15 s. The CompletedProcess."""
        env = self.stack.pool_env()
        for k, v in over.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        sock = os.path.join(self.stack.tmp, "refused-%s.sock" % uuid.uuid4().hex[:8])
        argv = [harness.imagegen_fcgi_bin(), "--listen", sock, "--workers", "1"]
        r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           cwd=self.stack.tmp, timeout=15, text=True)
        self.assertFalse(os.path.exists(sock), "a refused pool made its socket")
        return r

    def run_job(self, prompt, timeout=40, **over):
        r = jh.post_job(self.stack, self.user.token, self.user.body(prompt, **over))
        self.assertEqual(r.status, 202, r)
        job = jh.wait_job(self.stack, self.user.token, r.data["jobId"], timeout=timeout)
        self.assertEqual(job["status"], "completed", job)
        return job

    def restart_pool(self, **over):
        """This test's pool: the class's environment changed by over; the
        class's pool comes back after."""
        self.stack.stop_pool()
        self.addCleanup(self._class_pool)
        self.stack.start_pool(extra_env=over)

    def _class_pool(self):
        self.stack.stop_pool()
        self.stack.start_pool()

    # ------------------------------------------------------------ tests

    def test_unknown_model_without_a_price_refuses_to_start(self):
        r = self.start_fcgi(IMAGEGEN_PRICE_PER_IMAGE_USD=None)
        self.assertEqual(r.returncode, 2, r)
        self.assertEqual(r.stderr, REFUSAL)
        self.assertEqual(r.stdout, "")

    def test_bad_price_refuses_to_start(self):
        for bad in ("none", "-1", "0.0000001", "1e3", "$1"):
            r = self.start_fcgi(IMAGEGEN_PRICE_PER_IMAGE_USD=bad)
            self.assertEqual(r.returncode, 2, (bad, r))
            self.assertTrue(r.stderr.startswith(
                "imagegen-fcgi: IMAGEGEN_PRICE_PER_IMAGE_USD: expected USD per image"),
                (bad, r.stderr))
            self.assertEqual(r.stderr.count("\n"), 1, r.stderr)

    def test_unknown_model_with_a_price_costs_that_price(self):
        """The class's pool started (setUpClass) with the unknown model
        and the price; the fake reports usage, which is not priced."""
        self.fake.push("ok")
        job = self.run_job("a priced lighthouse", width=1024, height=1024)
        self.assertIsNotNone(self.fake.last_usage, "the fake reported no usage")
        self.assertEqual(job["cost"]["estimated"], float(PRICE), job["cost"])
        self.assertEqual(job["cost"]["actual"], float(PRICE), job["cost"])
        row = jh.psql_json(self.stack, "SELECT row_to_json(j) FROM"
                           " public.image_generation_jobs j WHERE id = '%s'" % job["jobId"])
        self.assertEqual((row["provider"], row["model"]), ("gemini", UNKNOWN))
        (req,) = self.fake.requests_to(":generateContent")
        self.assertEqual(req.path, "/v1beta/models/%s:generateContent" % UNKNOWN)

    def test_local_provider_is_priced_offline_and_the_guide_query_sums_it(self):
        self.restart_pool(IMAGEGEN_PROVIDER="local", NANO_BANANA_MODEL="local-renderer-1",
                          IMAGEGEN_PRICE_PER_IMAGE_USD=LOCAL_PRICE)
        jobs = [self.run_job("a priced local fox %d" % i, width=256, height=256)
                for i in range(3)]
        for job in jobs:
            self.assertEqual(job["cost"]["estimated"], float(LOCAL_PRICE), job["cost"])
            self.assertEqual(job["cost"]["actual"], float(LOCAL_PRICE), job["cost"])
        self.assertEqual(self.fake.requests_to(":generateContent"), [],
                         "the local provider called the network")
        # Every completed job of this stack, as the API priced it, against
        # the guide's query exactly as written.
        want = {}
        rows = jh.psql_json(self.stack, "SELECT json_agg(json_build_object("
                            "'id', id, 'type', job_type)) FROM public.image_generation_jobs"
                            " WHERE status = 'completed'")
        for r in rows:
            got = jh.get_job(self.stack, self.user.token, r["id"])
            self.assertEqual(got.status, 200, got)
            total, n = want.get(r["type"], (Decimal(0), 0))
            want[r["type"]] = (total + Decimal(str(got.data["cost"]["actual"])), n + 1)
        out = self.stack.psql(GUIDE_COST_QUERY)
        got = {}
        for line in out.splitlines():
            job_type, avg, total, count = line.split("|")
            got[job_type] = (Decimal(avg), Decimal(total), int(count))
        self.assertEqual(set(got), set(want), out)
        for job_type, (total, n) in want.items():
            self.assertEqual(got[job_type][1], total, (job_type, out))
            self.assertEqual(got[job_type][2], n, (job_type, out))
            self.assertEqual(round(got[job_type][0], 6), round(total / n, 6), (job_type, out))
        self.assertGreaterEqual(got["master_asset"][2], 3, out)
