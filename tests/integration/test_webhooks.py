"""Outbound job events (docs/WEBHOOKS.md, sql/014_webhook_outbox.sql):
POST /api/images/generate with `webhook`, deliveries from the transactional
outbox, signed with Standard Webhooks and verified by the receiver with
the `standardwebhooks` npm package (tests/fakes/webhook_receiver.mjs), an
implementation independent of src/util/stdwh.c.  HTTP through real nginx
to a real pool and Postgres; the receiver on 127.0.0.1, allowed by the
test-only IMAGEGEN_FETCH_ALLOW; IMAGEGEN_TEST_WEBHOOK_BACKOFF_MS shrinks
the retry schedule to 300 ms, 300 ms, then 10 minutes.

  Delivery   started + completed, in order, verified, data = GET's job;
             500, 500, 200: the third attempt, the same webhook-id; 410
             stops; the receiver down: the delivery listed with its
             attempts, last error and next attempt; the end's event waits
             for a started one being retried; a row another deliverer
             holds is skipped, not waited for; a status change that
             rolled back sends nothing; rotation signs with both secrets;
             redeliver sends the last event again with its webhook-id;
             the default filter sends only the end; another user's job's
             deliveries are a 404; without IMAGEGEN_ALERT_WEBHOOK_URL an
             alert's row is dropped
             the secret is stored sealed (v1:, not containing it), a
             copy in another user's row does not open, a legacy plain
             row read by its user is sealed, or by the sweeper when
             nobody reads it (rows it cannot seal do not starve the
             others); a legacy value that is no key is mended by a
             rotation
  LegacyFirstRead  no sweeper: a legacy plain row keeps signing and is
             sealed by the deliverer; `imagegen sweep` counts only the
             secrets it sealed
  NoKey      without IMAGEGEN_WEBHOOK_SECRET_KEY: 503 naming it, for a
             job with a webhook and for its retry; the replay of one made
             while it was set is its 200 replay
  Policy     without the allow-list: http://169.254.169.254/ and
             https://127.0.0.1/ are a 400 at POST, nothing created
  Alerts     a budget threshold reached is a signed budget.threshold event
             to IMAGEGEN_ALERT_WEBHOOK_URL; a refused job sends none
  WorkerRetries  spawn-fcgi responders, no master: the executor's first
             attempt, then `imagegen worker` sends the retry
"""

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402
import jobs_helper as jh  # noqa: E402
from webhook_rx import Receiver  # noqa: E402


def deliveries(stack, user, job_id):
    r = stack.http("GET", "/api/images/jobs/%s/webhooks" % job_id, headers=jh.auth(user.token))
    return r


LEASE_S = 60        # WHDB_LEASE_S (include/webhookdb.h): a claimed row's lease


def attempted(n):
    """A wait_delivery predicate: the first row has made n attempts and the
    last one's outcome is recorded.  A deliverer counts an attempt when it
    claims the row (attempts + 1, next_attempt_at a lease ahead), before
    its POST; until the outcome is written the row is in that lease."""
    def pred(ds):
        if not ds or ds[0]["attempts"] < n:
            return False
        x = ds[0]
        if x["state"] != "pending" or not x["lastAttemptAt"] or not x["nextAttemptAt"]:
            return True
        ahead = jh.parse_ts(x["nextAttemptAt"]) - jh.parse_ts(x["lastAttemptAt"])
        return abs(ahead.total_seconds() - LEASE_S) > 0.001
    return pred


def secret_of(stack, user, rotate=False):
    r = stack.http("POST" if rotate else "GET",
                   "/api/webhooks/secret" + ("/rotate" if rotate else ""),
                   headers=jh.auth(user.token))
    assert r.status == 200, r
    assert r.data["key"].startswith("whsec_"), r
    return r.data["key"]


class Delivery(harness.StackTestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack_args = dict(pool="master", workers=2, extra_env=jh.pool_env(
            IMAGEGEN_FETCH_ALLOW="127.0.0.1",
            IMAGEGEN_TEST_WEBHOOK_BACKOFF_MS="300,300,600000,600000"))
        super().setUpClass()
        cls.rx = Receiver()
        cls.addClassCleanup(cls.rx.stop)

    def job_with_webhook(self, user, path, events=None, **over):
        body = user.body("a lighthouse with a webhook", webhook=self.rx.base + path, **over)
        if events is not None:
            body["webhookEventsFilter"] = events
        r = jh.post_job(self.stack, user.token, body)
        self.assertEqual(r.status, 202, r)
        return r.data["jobId"]

    def wait_log(self, path, n, timeout=20.0):
        deadline = time.monotonic() + timeout
        while True:
            got = self.rx.log(path)
            if len(got) >= n or time.monotonic() > deadline:
                return got
            time.sleep(0.1)

    def wait_delivery(self, user, job_id, pred, timeout=20.0):
        deadline = time.monotonic() + timeout
        while True:
            r = deliveries(self.stack, user, job_id)
            self.assertEqual(r.status, 200, r)
            if pred(r.data["deliveries"]) or time.monotonic() > deadline:
                return r.data
            time.sleep(0.1)

    def test_started_and_completed_arrive_in_order_verified(self):
        s = self.stack
        u = jh.seed_user(s, "wh-both")
        self.rx.config(secret=secret_of(s, u), script=[], default=200)
        jid = self.job_with_webhook(u, "/hook/both", ["start", "completed"])
        job = jh.wait_job(s, u.token, jid)
        self.assertEqual(job["status"], "completed", job)
        got = self.wait_log("/hook/both", 2)
        self.assertEqual(len(got), 2, got)
        for e in got:
            self.assertTrue(e["verified"], e)
            self.assertEqual(e["contentType"], "application/json", e)
        bodies = [json.loads(e["body"]) for e in got]
        self.assertEqual([b["type"] for b in bodies],
                         ["image_job.started", "image_job.completed"], bodies)
        self.assertEqual(bodies[0]["data"]["status"], "processing", bodies[0])
        # the job exactly as GET returns it
        self.assertEqual(bodies[1]["data"], jh.get_job(s, u.token, jid).data)
        self.assertNotEqual(got[0]["id"], got[1]["id"])
        self.assertLess(abs(int(got[1]["timestamp"]) - time.time()), 60)
        d = self.wait_delivery(u, jid, lambda ds: all(x["state"] == "delivered" for x in ds))
        self.assertEqual([(x["event"], x["state"], x["attempts"], x["lastStatusCode"])
                          for x in d["deliveries"]],
                         [("image_job.started", "delivered", 1, 200),
                          ("image_job.completed", "delivered", 1, 200)], d)
        self.assertEqual(d["deliveries"][1]["webhookId"], got[1]["id"])
        self.assertIsNotNone(d["deliveries"][1]["deliveredAt"])
        self.assertIsNone(d["deliveries"][1]["nextAttemptAt"])

    def test_default_filter_sends_only_the_end(self):
        s = self.stack
        u = jh.seed_user(s, "wh-default")
        self.rx.config(secret=secret_of(s, u), script=[], default=200)
        jid = self.job_with_webhook(u, "/hook/default")
        jh.wait_job(s, u.token, jid)
        got = self.wait_log("/hook/default", 1)
        time.sleep(1.5)
        got = self.rx.log("/hook/default")
        self.assertEqual([json.loads(e["body"])["type"] for e in got],
                         ["image_job.completed"], got)

    def test_500_500_200_is_delivered_on_the_third_attempt_same_id(self):
        s = self.stack
        u = jh.seed_user(s, "wh-retry")
        self.rx.config(secret=secret_of(s, u), script=[500, 500], default=200)
        jid = self.job_with_webhook(u, "/hook/retry")
        jh.wait_job(s, u.token, jid)
        got = self.wait_log("/hook/retry", 3)
        self.assertEqual([e["answered"] for e in got], [500, 500, 200], got)
        self.assertEqual(len({e["id"] for e in got}), 1, got)
        self.assertTrue(all(e["verified"] for e in got), got)
        self.assertEqual(len({e["body"] for e in got}), 1, "the body changed between attempts")
        d = self.wait_delivery(u, jid, lambda ds: ds and ds[0]["state"] == "delivered")
        self.assertEqual((d["deliveries"][0]["attempts"], d["deliveries"][0]["lastStatusCode"]),
                         (3, 200), d)

    def test_a_later_event_waits_for_the_earlier_one(self):
        s = self.stack
        u = jh.seed_user(s, "wh-order")
        self.rx.config(secret=secret_of(s, u), script=[500], default=200)
        jid = self.job_with_webhook(u, "/hook/order", ["start", "completed"])
        jh.wait_job(s, u.token, jid)
        got = self.wait_log("/hook/order", 3)
        self.assertEqual([(json.loads(e["body"])["type"], e["answered"]) for e in got],
                         [("image_job.started", 500), ("image_job.started", 200),
                          ("image_job.completed", 200)], got)

    def test_a_blocked_later_event_is_not_left_due_behind_a_backed_off_one(self):
        s = self.stack
        u = jh.seed_user(s, "wh-blocked")
        body = u.body("blocked", webhook="http://127.0.0.1:%d/hook" % harness.free_port())
        body["webhookEventsFilter"] = ["start", "completed"]
        r = jh.post_job(s, u.token, body)
        self.assertEqual(r.status, 202, r)
        jid = r.data["jobId"]
        jh.wait_job(s, u.token, jid)
        # the started row backs off 300, 300 ms, then 10 minutes
        self.wait_delivery(u, jid, lambda ds: len(ds) == 2 and attempted(3)(ds),
                           timeout=25)
        q = ("SELECT count(*) FROM public.webhook_deliveries WHERE job_id = '%s'"
             " AND state = 'pending' AND next_attempt_at <= now()" % jid)
        deadline = time.monotonic() + 10
        while s.psql(q).strip() != "0" and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(s.psql(q).strip(), "0", "a waiting row is still due")
        d = deliveries(s, u, jid).data["deliveries"]
        self.assertEqual([(x["event"], x["attempts"]) for x in d],
                         [("image_job.started", 3), ("image_job.completed", 0)], d)
        self.assertGreaterEqual(jh.parse_ts(d[1]["nextAttemptAt"]),
                                jh.parse_ts(d[0]["nextAttemptAt"]), d)

    def test_a_row_another_deliverer_holds_is_skipped_not_waited_for(self):
        s = self.stack
        u = jh.seed_user(s, "wh-skip")
        # job A's delivery fails (nobody listens), due again every sweep
        a = jh.post_job(s, u.token, u.body("held", webhook="http://127.0.0.1:%d/x"
                                           % harness.free_port()))
        self.assertEqual(a.status, 202, a)
        self.wait_delivery(u, a.data["jobId"], attempted(1))
        with jh.PsqlSession(s) as db:
            # another deliverer's claim, held: FOR UPDATE of A's row
            self.assertEqual(db.value(
                "BEGIN; SELECT count(*) FROM (SELECT id FROM public.webhook_deliveries"
                " WHERE job_id = '%s' FOR UPDATE) x" % a.data["jobId"]), "1")
            held = deliveries(s, u, a.data["jobId"]).data["deliveries"][0]["attempts"]
            # job B's retry (its first answer a 500) is the sweeper's: it
            # must skip A's row, which is due first, not wait for it
            self.rx.config(secret=secret_of(s, u), script=[500], default=200)
            b = self.job_with_webhook(u, "/hook/skip")
            got = self.wait_log("/hook/skip", 2, timeout=10)
            self.assertEqual([e["answered"] for e in got], [500, 200], got)
            self.assertEqual(deliveries(s, u, a.data["jobId"]).data["deliveries"][0]
                             ["attempts"], held, "a held row was attempted")
            db.value("ROLLBACK; SELECT 1")
        self.assertTrue(b)

    def test_alerts_without_an_alert_url_are_dropped(self):
        s = self.stack
        u = jh.seed_user(s, "wh-noalert")
        aid = s.psql("INSERT INTO public.cost_alerts (scope, scope_id, period, window_start,"
                     " threshold, spent_usd, reserved_usd, limit_usd) VALUES ('user', '%s',"
                     " 'day', current_date, 50, 0.3, 0, 0.5) RETURNING id" % u.id).split()[0]
        deadline = time.monotonic() + 10
        state = None
        while time.monotonic() < deadline:
            state = s.psql("SELECT state || ' ' || coalesce(last_error, '')"
                           " FROM public.webhook_deliveries WHERE alert_id = %s" % aid).strip()
            if not state.startswith("pending"):
                break
            time.sleep(0.2)
        self.assertEqual(state, "dropped IMAGEGEN_ALERT_WEBHOOK_URL is not set")

    def test_410_stops(self):
        s = self.stack
        u = jh.seed_user(s, "wh-gone")
        self.rx.config(secret=secret_of(s, u), script=[410], default=200)
        jid = self.job_with_webhook(u, "/hook/gone")
        jh.wait_job(s, u.token, jid)
        self.wait_log("/hook/gone", 1)
        time.sleep(3)   # past several sweeps and the 300 ms backoff
        got = self.rx.log("/hook/gone")
        self.assertEqual([e["answered"] for e in got], [410], got)
        d = self.wait_delivery(u, jid, lambda ds: ds and ds[0]["state"] == "gone")
        x = d["deliveries"][0]
        self.assertEqual((x["state"], x["attempts"], x["lastStatusCode"]), ("gone", 1, 410), d)
        self.assertIsNone(x["nextAttemptAt"], d)

    def test_receiver_down_leaves_the_delivery_listed_with_attempts_and_next_time(self):
        s = self.stack
        u = jh.seed_user(s, "wh-down")
        port = harness.free_port()      # nothing listens there
        body = u.body("a webhook to nowhere", webhook="http://127.0.0.1:%d/hook" % port)
        r = jh.post_job(s, u.token, body)
        self.assertEqual(r.status, 202, r)
        jid = r.data["jobId"]
        jh.wait_job(s, u.token, jid)
        d = self.wait_delivery(u, jid, attempted(3), timeout=25)
        x = d["deliveries"][0]
        self.assertEqual((x["event"], x["state"], x["attempts"]),
                         ("image_job.completed", "pending", 3), d)
        self.assertIsNone(x["lastStatusCode"], d)
        self.assertTrue(x["lastError"], d)
        nxt = jh.parse_ts(x["nextAttemptAt"]).timestamp()
        self.assertGreater(nxt - time.time(), 500, "the third wait is 10 minutes: %s" % d)
        self.assertIsNotNone(x["lastAttemptAt"], d)
        self.assertIsNone(x["deliveredAt"], d)

    def test_an_unusable_secret_fails_after_the_last_attempt_not_forever(self):
        s = self.stack
        u = jh.seed_user(s, "wh-badkey")
        # sealed text that opens with no key (altered, or another key's)
        s.psql("INSERT INTO public.webhook_secrets (user_id, secret)"
               " VALUES ('%s', 'v1:%s')" % (u.id, base64.b64encode(os.urandom(78)).decode()))
        jid = self.job_with_webhook(u, "/hook/badkey")
        jh.wait_job(s, u.token, jid)
        self.wait_delivery(u, jid, attempted(1))
        # the schedule (4 waits) spent: the next attempt is the last
        s.psql("UPDATE public.webhook_deliveries SET attempts = 4,"
               " next_attempt_at = now() WHERE job_id = '%s'" % jid)
        d = self.wait_delivery(u, jid, lambda ds: ds[0]["state"] != "pending"
                               or ds[0]["attempts"] > 5, timeout=15)
        x = d["deliveries"][0]
        self.assertEqual((x["state"], x["attempts"], x["lastError"]),
                         ("failed", 5, "the signing secret cannot be read: rotate it"), d)
        self.assertIsNone(x["nextAttemptAt"], d)
        self.assertEqual(self.rx.log("/hook/badkey"), [])

    def test_an_unusable_legacy_secret_is_mended_by_a_rotation(self):
        s = self.stack
        u = jh.seed_user(s, "wh-legacy-bad")
        # plain text that is no key, as the RPC functions of sql/014 let a
        # user store: it cannot be sealed, nor kept as previous
        self.put_legacy(u, "whsec_!!!!")
        r = s.http("GET", "/api/webhooks/secret", headers=jh.auth(u.token))
        self.assertEqual(r.status, 500, r)
        self.assertEqual(r.error_code(), "INTERNAL", r)
        self.assertIn("POST /api/webhooks/secret/rotate", r.data["error"]["message"], r)
        new = secret_of(s, u, rotate=True)
        self.assertEqual(secret_of(s, u), new)
        self.assert_sealed(self.stored(u), new)
        self.assertEqual(self.stored(u, "previous"), "", "an unusable secret kept as previous")
        self.assertEqual(self.stored(u, "previous_until"), "")
        self.rx.config(secret=new, script=[], default=200)
        jid = self.job_with_webhook(u, "/hook/legacybad")
        jh.wait_job(s, u.token, jid)
        got = self.wait_log("/hook/legacybad", 1)
        self.assertEqual(len(got), 1, got)
        self.assertTrue(got[0]["verified"], got)
        self.assertEqual(len(got[0]["signature"].split(" ")), 1, got)

    def test_last_error_names_no_internal_address_or_resolver_message(self):
        s = self.stack
        u = jh.seed_user(s, "wh-lasterror")
        r = jh.post_job(s, u.token, u.body("last error", webhook="http://127.0.0.1:%d/h"
                                           % harness.free_port()))
        self.assertEqual(r.status, 202, r)
        jid = r.data["jobId"]
        jh.wait_job(s, u.token, jid)
        d = self.wait_delivery(u, jid, attempted(1))
        self.assertEqual(d["deliveries"][0]["lastError"], "could not connect", d)
        # an address the policy refuses at delivery (as DNS could answer)
        s.psql("UPDATE public.webhook_deliveries SET url = 'https://10.0.0.7/h',"
               " next_attempt_at = now() WHERE job_id = '%s'" % jid)
        d = self.wait_delivery(u, jid, lambda ds: ds[0]["state"] != "pending")
        x = d["deliveries"][0]
        self.assertEqual((x["state"], x["lastError"]),
                         ("failed", "refused by the outbound URL policy"), d)

    def test_a_silent_receiver_holds_the_executor_for_seconds_not_tens(self):
        s = self.stack
        u = jh.seed_user(s, "wh-silent")
        # accepts connections (the kernel's backlog) and never answers
        sink = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(sink.close)
        sink.bind(("127.0.0.1", 0))
        sink.listen(16)
        body = u.body("silent receiver",
                      webhook="http://127.0.0.1:%d/h" % sink.getsockname()[1])
        body["webhookEventsFilter"] = ["start", "completed"]
        t0 = time.monotonic()
        r = jh.post_job(s, u.token, body)
        self.assertEqual(r.status, 202, r)
        jid = r.data["jobId"]
        # the executor sends image_job.started before it runs the job:
        # WH_EXEC_BUDGET_MS (5 s), not WH_TIMEOUT_MS (10 s)
        jh.wait_job(s, u.token, jid, timeout=30)
        took = time.monotonic() - t0
        self.assertLess(took, 8.5, "the job took %.1f s behind its webhook" % took)
        d = deliveries(s, u, jid).data["deliveries"]
        self.assertEqual(d[0]["event"], "image_job.started", d)
        self.assertGreaterEqual(d[0]["attempts"], 1, d)
        self.assertEqual(d[0]["lastError"], "timed out", d)

    def test_a_status_change_that_rolled_back_sends_nothing(self):
        s = self.stack
        u = jh.seed_user(s, "wh-rollback")
        self.rx.config(secret=secret_of(s, u), script=[], default=200)
        url = self.rx.base + "/hook/rollback"
        # In one transaction: a job with a webhook, canceled (the trigger
        # writes its outbox row: seen inside), then rolled back.
        out = s.psql(
            "BEGIN;"
            "INSERT INTO public.image_generation_jobs (id, user_id, project_id, branch_id,"
            " job_type, prompt, width, height, webhook_url, webhook_events)"
            " VALUES ('00000000-0000-4000-8000-00000000feed', '%s', '%s', '%s',"
            " 'master_asset', 'rolled back', 64, 64, '%s', '{completed}');"
            "UPDATE public.image_generation_jobs SET status = 'canceled'"
            " WHERE id = '00000000-0000-4000-8000-00000000feed';"
            "SELECT 'inside=' || count(*) FROM public.webhook_deliveries"
            " WHERE job_id = '00000000-0000-4000-8000-00000000feed';"
            "ROLLBACK;" % (u.id, u.project_id, u.branch_id, url))
        self.assertIn("inside=1", out)
        time.sleep(3)   # several sweeps
        self.assertEqual(self.rx.log("/hook/rollback"), [])
        self.assertEqual(s.psql("SELECT count(*) FROM public.webhook_deliveries"
                                " WHERE job_id = '00000000-0000-4000-8000-00000000feed'").strip(),
                         "0")

    def test_the_first_delivery_makes_the_secret_the_user_then_reads(self):
        s = self.stack
        u = jh.seed_user(s, "wh-firstkey")      # never asked for a secret
        self.rx.config(secret=None, script=[], default=200)
        jid = self.job_with_webhook(u, "/hook/firstkey")
        jh.wait_job(s, u.token, jid)
        got = self.wait_log("/hook/firstkey", 1)
        self.assertEqual(len(got), 1, got)
        self.assertEqual(s.psql("SELECT count(*) FROM public.webhook_secrets"
                                " WHERE user_id = '%s'" % u.id).strip(), "1")
        key = base64.b64decode(secret_of(s, u)[len("whsec_"):])
        self.assertEqual(len(key), 32)
        mac = base64.b64encode(hmac.new(key, ("%s.%s.%s" % (
            got[0]["id"], got[0]["timestamp"], got[0]["body"])).encode(),
            hashlib.sha256).digest()).decode()
        self.assertIn("v1," + mac, got[0]["signature"].split(" "), got)

    def test_rotation_signs_with_both_secrets_for_a_day(self):
        s = self.stack
        u = jh.seed_user(s, "wh-rotate")
        old = secret_of(s, u)
        self.assertEqual(secret_of(s, u), old, "the secret changed without a rotation")
        new = secret_of(s, u, rotate=True)
        self.assertNotEqual(new, old)
        self.assertEqual(secret_of(s, u), new)
        for i, key in enumerate((old, new)):
            self.rx.config(secret=key, script=[], default=200)
            path = "/hook/rotate%d" % i
            jid = self.job_with_webhook(u, path)
            jh.wait_job(s, u.token, jid)
            got = self.wait_log(path, 1)
            self.assertEqual(len(got), 1, got)
            self.assertTrue(got[0]["verified"], got)
            self.assertEqual(len(got[0]["signature"].split(" ")), 2, got)

    def stored(self, u, col="secret"):
        return self.stack.psql("SELECT %s FROM public.webhook_secrets WHERE user_id = '%s'"
                               % (col, u.id)).strip()

    def put_legacy(self, u, secret, previous=None):
        """A row as sql/014 to sql/017 wrote it: plain text, which no
        statement can write since sql/018 (its trigger is skipped here)."""
        self.stack.psql(
            "BEGIN; SET LOCAL session_replication_role = replica;"
            " INSERT INTO public.webhook_secrets (user_id, secret, previous, previous_until)"
            " VALUES ('%s', '%s', %s, %s); COMMIT;"
            % (u.id, secret, "'%s'" % previous if previous else "NULL",
               "now() + interval '1 hour'" if previous else "NULL"))

    def assert_sealed(self, stored, *secrets):
        self.assertRegex(stored, r"^v1:[A-Za-z0-9+/]+={0,2}$")
        raw = base64.b64decode(stored[3:])
        for sec in secrets:
            self.assertNotIn(sec, stored)
            self.assertNotIn(sec[len("whsec_"):], stored)
            self.assertNotIn(base64.b64decode(sec[len("whsec_"):]), raw)

    def test_the_stored_secret_is_sealed_not_the_secret(self):
        s = self.stack
        u = jh.seed_user(s, "wh-sealed")
        key = secret_of(s, u)
        first = self.stored(u)
        self.assert_sealed(first, key)
        self.assertNotIn(s.webhook_secret_key, first)
        # the key of the service never reaches the database or the log
        self.assertEqual(s.psql("SELECT count(*) FROM public.webhook_secrets"
                                " WHERE secret LIKE 'whsec%%' OR previous LIKE 'whsec%%'"
                                " OR secret LIKE '%%%s%%'" % key[6:]).strip(), "0")
        self.rx.config(secret=key, script=[], default=200)
        jid = self.job_with_webhook(u, "/hook/sealed")
        jh.wait_job(s, u.token, jid)
        got = self.wait_log("/hook/sealed", 1)
        self.assertEqual(len(got), 1, got)
        self.assertTrue(got[0]["verified"], got)
        self.assertEqual(self.stored(u), first, "reading the secret changed it")
        # a rotation keeps the old one sealed as previous, the new one sealed
        new = secret_of(s, u, rotate=True)
        self.assertEqual(self.stored(u, "previous"), first)
        self.assert_sealed(self.stored(u), key, new)
        self.assertEqual(secret_of(s, u), new)
        with open(s.pool_log, errors="replace") as f:
            log = f.read()
        for sec in (key[len("whsec_"):], new[len("whsec_"):], s.webhook_secret_key):
            self.assertNotIn(sec, log)

    def test_a_sealed_secret_copied_to_another_user_does_not_open(self):
        s = self.stack
        a = jh.seed_user(s, "wh-copy-a")
        b = jh.seed_user(s, "wh-copy-b")
        ka = secret_of(s, a)
        secret_of(s, b)
        s.psql("UPDATE public.webhook_secrets SET secret = (SELECT secret FROM"
               " public.webhook_secrets WHERE user_id = '%s') WHERE user_id = '%s'"
               % (a.id, b.id))
        r = s.http("GET", "/api/webhooks/secret", headers=jh.auth(b.token))
        self.assertEqual(r.status, 500, r)
        self.assertEqual(r.error_code(), "INTERNAL", r)
        self.assertIn("rotate", r.data["error"]["message"], r)
        self.assertNotIn(ka[6:], r.body.decode(errors="replace"))
        # a rotation mends it
        kb = secret_of(s, b, rotate=True)
        self.assertNotEqual(kb, ka)
        self.assertEqual(secret_of(s, b), kb)
        self.assertEqual(secret_of(s, a), ka)

    def test_a_previous_secret_that_does_not_open_is_no_error_on_every_delivery(self):
        s = self.stack
        u = jh.seed_user(s, "wh-prev-bad")
        secret_of(s, u)
        # sealed text that opens with no key, then rotated away from
        s.psql("UPDATE public.webhook_secrets SET secret = 'v1:%s' WHERE user_id = '%s'"
               % (base64.b64encode(os.urandom(78)).decode(), u.id))
        new = secret_of(s, u, rotate=True)
        self.assertTrue(self.stored(u, "previous").startswith("v1:"))
        self.rx.config(secret=new, script=[], default=200)
        for i in range(2):
            path = "/hook/prevbad%d" % i
            jid = self.job_with_webhook(u, path)
            jh.wait_job(s, u.token, jid)
            got = self.wait_log(path, 1)
            self.assertEqual(len(got), 1, got)
            self.assertTrue(got[0]["verified"], got)
            self.assertEqual(len(got[0]["signature"].split(" ")), 1, got)
        with open(s.pool_log, errors="replace") as f:
            errors = [ln for ln in f if u.id in ln and " ERROR " in ln]
        self.assertEqual(errors, [])

    def test_a_legacy_plain_secret_read_by_its_user_first_is_sealed_and_rotates(self):
        s = self.stack
        new_secret = lambda: "whsec_" + base64.b64encode(os.urandom(32)).decode()
        # the deliverer first: LegacyFirstRead, without a sweeper
        # read by its user first: the same secret back, sealed from then on,
        # and a rotation signs with it and the new one
        v = jh.seed_user(s, "wh-legacy-r")
        old = new_secret()
        self.put_legacy(v, old)
        self.assertEqual(secret_of(s, v), old)
        self.assert_sealed(self.stored(v), old)
        self.assertEqual(secret_of(s, v), old)
        w = jh.seed_user(s, "wh-legacy-rot")
        old = new_secret()
        self.put_legacy(w, old)
        new = secret_of(s, w, rotate=True)
        self.assertNotEqual(new, old)
        self.assert_sealed(self.stored(w), old, new)
        self.assert_sealed(self.stored(w, "previous"), old, new)
        for i, key in enumerate((old, new)):
            self.rx.config(secret=key, script=[], default=200)
            path = "/hook/legacyrot%d" % i
            jid = self.job_with_webhook(w, path)
            jh.wait_job(s, w.token, jid)
            got = self.wait_log(path, 1)
            self.assertEqual(len(got), 1, got)
            self.assertTrue(got[0]["verified"], got)
            self.assertEqual(len(got[0]["signature"].split(" ")), 2, got)

    def test_the_sweeper_seals_legacy_secrets_nobody_reads(self):
        s = self.stack
        u = jh.seed_user(s, "wh-legacy-idle")
        cur = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        prev = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        self.put_legacy(u, cur, prev)
        deadline = time.time() + 15
        while time.time() < deadline and (self.stored(u).startswith("whsec_")
                                          or self.stored(u, "previous").startswith("whsec_")):
            time.sleep(0.2)
        self.assert_sealed(self.stored(u), cur, prev)
        self.assert_sealed(self.stored(u, "previous"), cur, prev)
        self.assertEqual(s.psql("SELECT count(*) FROM public.webhook_secrets"
                                " WHERE secret LIKE 'whsec%' OR previous LIKE 'whsec%'").strip(), "0")
        self.assertEqual(secret_of(s, u), cur)

    def test_legacy_rows_the_sweeper_cannot_seal_do_not_starve_the_others(self):
        s = self.stack
        # more than a pass seals (64), each plain text that is no key: they
        # stay plain until their users rotate
        ids = ["00000000-0000-4000-8000-%012d" % i for i in range(100)]
        listed = ",".join("'%s'" % i for i in ids)
        self.addCleanup(s.psql, "DELETE FROM public.webhook_secrets"
                        " WHERE user_id IN (%s)" % listed)
        s.psql("BEGIN; SET LOCAL session_replication_role = replica;"
               " INSERT INTO public.webhook_secrets (user_id, secret)"
               " SELECT x::uuid, 'whsec_!!!!' FROM unnest(ARRAY[%s]) x; COMMIT;" % listed)
        u = jh.seed_user(s, "wh-legacy-starved")
        cur = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        self.put_legacy(u, cur)
        deadline = time.time() + 15
        while time.time() < deadline and self.stored(u).startswith("whsec_"):
            time.sleep(0.2)
        self.assert_sealed(self.stored(u), cur)
        self.assertEqual(secret_of(s, u), cur)
        self.assertEqual(s.psql("SELECT count(*) FROM public.webhook_secrets"
                                " WHERE secret = 'whsec_!!!!'").strip(), "100")

    def test_redeliver_sends_the_last_event_again_with_its_webhook_id(self):
        s = self.stack
        u = jh.seed_user(s, "wh-redeliver")
        self.rx.config(secret=secret_of(s, u), script=[], default=200)
        jid = self.job_with_webhook(u, "/hook/redeliver")
        jh.wait_job(s, u.token, jid)
        first = self.wait_log("/hook/redeliver", 1)
        self.assertEqual(len(first), 1, first)
        r = s.http("POST", "/api/images/jobs/%s/webhooks/redeliver" % jid,
                   headers=jh.auth(u.token))
        self.assertEqual(r.status, 202, r)
        self.assertIs(r.data["queued"], True, r)
        got = self.wait_log("/hook/redeliver", 2)
        self.assertEqual(len(got), 2, got)
        self.assertEqual(got[1]["id"], got[0]["id"])
        self.assertEqual(got[1]["body"], got[0]["body"])
        self.assertTrue(got[1]["verified"], got)
        # a job without a webhook has nothing to send again
        plain = jh.post_job(s, u.token, u.body("no webhook"))
        jh.wait_job(s, u.token, plain.data["jobId"])
        r = s.http("POST", "/api/images/jobs/%s/webhooks/redeliver" % plain.data["jobId"],
                   headers=jh.auth(u.token))
        self.assertEqual(r.status, 404, r)

    def test_redeliver_while_a_delivery_is_pending_returns_it_and_adds_nothing(self):
        s = self.stack
        u = jh.seed_user(s, "wh-redeliver-loop")
        r = jh.post_job(s, u.token, u.body("redeliver loop", webhook="http://127.0.0.1:%d/h"
                                           % harness.free_port()))
        self.assertEqual(r.status, 202, r)
        jid = r.data["jobId"]
        jh.wait_job(s, u.token, jid)
        d = self.wait_delivery(u, jid, attempted(1))
        pending = d["deliveries"][0]
        self.assertEqual(pending["state"], "pending", d)
        for _ in range(5):
            r = s.http("POST", "/api/images/jobs/%s/webhooks/redeliver" % jid,
                       headers=jh.auth(u.token))
            self.assertEqual(r.status, 200, r)
            self.assertIs(r.data["queued"], False, r)
        self.assertEqual(s.psql("SELECT count(*) FROM public.webhook_deliveries"
                                " WHERE job_id = '%s'" % jid).strip(), "1")
        self.assertEqual(s.psql("SELECT max(id) FROM public.webhook_deliveries"
                                " WHERE job_id = '%s'" % jid).strip(), str(r.data["deliveryId"]))

    def test_another_users_job_deliveries_are_404(self):
        s = self.stack
        a = jh.seed_user(s, "wh-owner")
        b = jh.seed_user(s, "wh-other")
        self.rx.config(secret=secret_of(s, a), script=[], default=200)
        jid = self.job_with_webhook(a, "/hook/owner")
        jh.wait_job(s, a.token, jid)
        self.assertEqual(deliveries(s, b, jid).status, 404)
        r = s.http("POST", "/api/images/jobs/%s/webhooks/redeliver" % jid,
                   headers=jh.auth(b.token))
        self.assertEqual(r.status, 404, r)
        self.assertEqual(deliveries(s, a, jid).status, 200)

    def test_webhook_field_validation(self):
        s = self.stack
        u = jh.seed_user(s, "wh-validate")
        for over, what in (({"webhook": "ftp://example.com/x"}, "webhook"),
                           ({"webhook": "https://example.com/" + "a" * 2048}, "webhook"),
                           ({"webhook": 5}, "webhook"),
                           ({"webhook": "https://example.com/x",
                             "webhookEventsFilter": ["started"]}, "webhookEventsFilter"),
                           ({"webhook": "https://example.com/x",
                             "webhookEventsFilter": []}, "webhookEventsFilter"),
                           ({"webhook": "https://example.com/x",
                             "webhookEventsFilter": ["start", "start"]}, "webhookEventsFilter"),
                           ({"webhookEventsFilter": ["start"]}, "webhookEventsFilter")):
            r = jh.post_job(s, u.token, u.body("bad webhook", **over))
            self.assertEqual(r.status, 400, (over, r))
            self.assertEqual(r.error_code(), "VALIDATION_ERROR", r)
            self.assertIn(what, r.data["error"]["message"], r)


class Policy(harness.StackTestCase):
    """No IMAGEGEN_FETCH_ALLOW: the strict outbound URL policy."""

    @classmethod
    def setUpClass(cls):
        cls.stack_args = dict(pool="master", workers=2, extra_env=jh.pool_env())
        super().setUpClass()

    def test_metadata_and_loopback_webhooks_are_400_at_post(self):
        s = self.stack
        u = jh.seed_user(s, "wh-policy")
        for url in ("http://169.254.169.254/", "https://169.254.169.254/latest/meta-data",
                    "https://127.0.0.1/", "https://[::1]:8443/hook", "https://10.1.2.3/",
                    "http://example.com/hook", "https://user:pw@example.com/"):
            r = jh.post_job(s, u.token, u.body("a webhook inside", webhook=url))
            self.assertEqual(r.status, 400, (url, r))
            self.assertEqual(r.error_code(), "VALIDATION_ERROR", r)
            self.assertIn("webhook", r.data["error"]["message"], r)
        self.assertEqual(s.psql("SELECT count(*) FROM public.image_generation_jobs"
                                " WHERE user_id = '%s'" % u.id).strip(), "0")
        # a name is accepted at POST (resolved and checked at delivery;
        # .invalid never resolves, so no test reaches the internet)
        r = jh.post_job(s, u.token, u.body("a webhook outside",
                                           webhook="https://webhook.invalid/hook"))
        self.assertEqual(r.status, 202, r)


class NoKey(harness.StackTestCase):
    """Without IMAGEGEN_WEBHOOK_SECRET_KEY the secrets cannot be sealed or
    opened: the secret endpoints and a job with a `webhook` are a 503
    naming the setting; a job without one is not affected."""

    @classmethod
    def setUpClass(cls):
        cls.stack_args = dict(pool="master", workers=1, extra_env=jh.pool_env(
            IMAGEGEN_WEBHOOK_SECRET_KEY="", IMAGEGEN_FETCH_ALLOW="127.0.0.1"))
        super().setUpClass()

    def test_secret_endpoints_and_webhook_jobs_are_503_naming_the_setting(self):
        s = self.stack
        u = jh.seed_user(s, "wh-nokey")
        for method, path in (("GET", "/api/webhooks/secret"),
                             ("POST", "/api/webhooks/secret/rotate")):
            r = s.http(method, path, headers=jh.auth(u.token))
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.error_code(), "SERVICE_UNAVAILABLE", r)
            self.assertIn("IMAGEGEN_WEBHOOK_SECRET_KEY", r.data["error"]["message"], r)
        r = jh.post_job(s, u.token, u.body("no key", webhook="http://127.0.0.1:9/hook"))
        self.assertEqual(r.status, 503, r)
        self.assertIn("IMAGEGEN_WEBHOOK_SECRET_KEY", r.data["error"]["message"], r)
        self.assertEqual(s.psql("SELECT count(*) FROM public.image_generation_jobs"
                                " WHERE user_id = '%s'" % u.id).strip(), "0")
        self.assertEqual(s.psql("SELECT count(*) FROM public.webhook_secrets"
                                " WHERE user_id = '%s'" % u.id).strip(), "0")
        r = jh.post_job(s, u.token, u.body("no key, no webhook"))
        self.assertEqual(r.status, 202, r)

    def test_a_replay_of_a_webhook_job_made_with_the_key_is_200_without_it(self):
        s = self.stack
        u = jh.seed_user(s, "wh-nokey-replay")
        body = u.body("made with the key", webhook="http://127.0.0.1:9/hook")
        # the job made while the key was set (the pool started with it)
        s.stop_pool()
        try:
            s.start_pool(extra_env={"IMAGEGEN_WEBHOOK_SECRET_KEY": s.webhook_secret_key})
            r = jh.post_job(s, u.token, body, headers={"Idempotency-Key": "replay-1"})
            self.assertEqual(r.status, 202, r)
            jid = r.data["jobId"]
        finally:
            s.stop_pool()
            s.start_pool()
        r = jh.post_job(s, u.token, body, headers={"Idempotency-Key": "replay-1"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Idempotent-Replayed"), "true", r)
        self.assertEqual(r.data["jobId"], jid, r)
        # the key's request changed: as ever, 422
        other = dict(body, prompt="another request")
        r = jh.post_job(s, u.token, other, headers={"Idempotency-Key": "replay-1"})
        self.assertEqual(r.status, 422, r)
        # a new key makes a job: 503, nothing made
        r = jh.post_job(s, u.token, body, headers={"Idempotency-Key": "replay-2"})
        self.assertEqual(r.status, 503, r)
        self.assertIn("IMAGEGEN_WEBHOOK_SECRET_KEY", r.data["error"]["message"], r)
        self.assertEqual(s.psql("SELECT count(*) FROM public.image_generation_jobs"
                                " WHERE user_id = '%s'" % u.id).strip(), "1")

    def test_a_retry_of_a_job_with_a_webhook_is_503_naming_the_setting(self):
        s = self.stack
        u = jh.seed_user(s, "wh-nokey-retry")
        jobs = []
        for i in range(2):
            r = jh.post_job(s, u.token, u.body("to retry %d" % i))
            self.assertEqual(r.status, 202, r)
            jh.wait_job(s, u.token, r.data["jobId"])
            jobs.append(r.data["jobId"])
        # jobs that failed, one with a webhook (made while the key was set)
        s.psql("BEGIN; SET LOCAL session_replication_role = replica;"
               " UPDATE public.image_generation_jobs SET status = 'failed',"
               " failure_stage = 'generating', error_code = 'PROVIDER_ERROR',"
               " webhook_url = CASE WHEN id = '%s' THEN 'http://127.0.0.1:9/hook' END"
               " WHERE id IN ('%s', '%s'); COMMIT;" % (jobs[0], jobs[0], jobs[1]))
        count = lambda: s.psql("SELECT count(*) FROM public.image_generation_jobs"
                               " WHERE user_id = '%s'" % u.id).strip()
        r = s.http("POST", "/api/images/jobs/%s/retry" % jobs[0], headers=jh.auth(u.token))
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.error_code(), "SERVICE_UNAVAILABLE", r)
        self.assertIn("IMAGEGEN_WEBHOOK_SECRET_KEY", r.data["error"]["message"], r)
        self.assertEqual(count(), "2")
        # without a webhook a retry is not affected
        r = s.http("POST", "/api/images/jobs/%s/retry" % jobs[1], headers=jh.auth(u.token))
        self.assertEqual(r.status, 202, r)
        self.assertEqual(count(), "3")


class LegacyFirstRead(harness.StackTestCase):
    """A legacy plain row read by the deliverer first, with no sweeper to
    seal it before (IMAGEGEN_SWEEP_INTERVAL of an hour: one sweep at the
    start, none during the test)."""

    @classmethod
    def setUpClass(cls):
        cls.stack_args = dict(pool="master", workers=2, extra_env=jh.pool_env(
            IMAGEGEN_FETCH_ALLOW="127.0.0.1", IMAGEGEN_SWEEP_INTERVAL="3600"))
        super().setUpClass()
        cls.rx = Receiver()
        cls.addClassCleanup(cls.rx.stop)

    job_with_webhook = Delivery.job_with_webhook
    wait_log = Delivery.wait_log
    stored = Delivery.stored
    put_legacy = Delivery.put_legacy
    assert_sealed = Delivery.assert_sealed

    def test_a_legacy_plain_secret_keeps_signing_and_is_sealed_by_the_deliverer(self):
        s = self.stack
        new_secret = lambda: "whsec_" + base64.b64encode(os.urandom(32)).decode()
        u = jh.seed_user(s, "wh-legacy-d")
        cur, prev = new_secret(), new_secret()
        self.put_legacy(u, cur, prev)
        for i, key in enumerate((cur, prev)):
            self.rx.config(secret=key, script=[], default=200)
            path = "/hook/legacy%d" % i
            jid = self.job_with_webhook(u, path)
            jh.wait_job(s, u.token, jid)
            got = self.wait_log(path, 1)
            self.assertEqual(len(got), 1, got)
            self.assertTrue(got[0]["verified"], got)
            self.assertEqual(len(got[0]["signature"].split(" ")), 2, got)
        self.assert_sealed(self.stored(u), cur, prev)
        self.assert_sealed(self.stored(u, "previous"), cur, prev)
        # the deliverer sealed them (both values), not a sweeper
        with open(s.pool_log, errors="replace") as f:
            log = f.read()
        line = "user %s: legacy signing secret sealed by the deliverer" % u.id
        self.assertEqual(log.count(line), 2, log[-4000:])
        self.assertNotIn("user %s: legacy signing secret sealed by the sweeper" % u.id, log)
        self.assertEqual(secret_of(s, u), cur)

    def sweep(self):
        """`imagegen sweep` with the pool's environment, as the pool's user."""
        s = self.stack
        argv = s._run_as(harness.POOL_USER if harness.IS_ROOT else None,
                         [harness.imagegen_bin(), "sweep"])
        r = subprocess.run(argv, env=s.pool_env(), cwd=s.tmp, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_the_sweep_counts_only_the_secrets_it_sealed(self):
        s = self.stack
        # the pool's own sweeper also runs when a slot frees (an executor of
        # the test before ending): no pool, so the sweeps below are the only
        # sealers and their counts are exact
        s.stop_pool()
        self.addCleanup(s.start_pool)
        u = jh.seed_user(s, "wh-legacy-count")
        cur = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        self.put_legacy(u, cur)
        # the deliverers' role may not write the secrets: every seal fails
        grant = "GRANT UPDATE (secret, previous) ON public.webhook_secrets TO service_role"
        s.psql("REVOKE UPDATE (secret, previous) ON public.webhook_secrets FROM service_role")
        self.addCleanup(s.psql, grant)
        self.assertIn("; sealed 0 signing secrets", self.sweep())
        self.assertEqual(self.stored(u), cur)
        s.psql(grant)
        self.assertIn("; sealed 1 signing secrets", self.sweep())
        self.assert_sealed(self.stored(u), cur)


ALERT_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Alerts(harness.StackTestCase):
    """Budget alerts as budget.threshold events to the operator's
    IMAGEGEN_ALERT_WEBHOOK_URL, signed with IMAGEGEN_ALERT_WEBHOOK_SECRET:
    a $0.30 image against a $0.50 daily budget reaches 50 %."""

    @classmethod
    def setUpClass(cls):
        cls.rx = Receiver()
        cls.addClassCleanup(cls.rx.stop)
        cls.rx.config(secret=ALERT_SECRET, script=[], default=200)
        cls.stack_args = dict(pool="master", workers=2, extra_env=jh.pool_env(
            IMAGEGEN_PRICE_PER_IMAGE_USD="0.3",
            IMAGEGEN_USER_DAILY_BUDGET_USD="0.5",
            IMAGEGEN_ALERT_WEBHOOK_URL=cls.rx.base + "/hook/alerts",
            IMAGEGEN_ALERT_WEBHOOK_SECRET=ALERT_SECRET,
            IMAGEGEN_TEST_WEBHOOK_BACKOFF_MS="300,300,600000"))
        super().setUpClass()

    def test_a_threshold_reached_is_a_signed_budget_threshold_event(self):
        s = self.stack
        u = jh.seed_user(s, "wh-alert")
        r = jh.post_job(s, u.token, u.body("a priced lighthouse"))
        self.assertEqual(r.status, 202, r)
        jh.wait_job(s, u.token, r.data["jobId"])
        deadline = time.monotonic() + 20
        got = []
        while time.monotonic() < deadline:
            got = [e for e in self.rx.log("/hook/alerts")
                   if json.loads(e["body"])["data"]["scopeId"] == u.id]
            if got:
                break
            time.sleep(0.1)
        self.assertEqual(len(got), 1, got)
        self.assertTrue(got[0]["verified"], got)
        b = json.loads(got[0]["body"])
        self.assertEqual(b["type"], "budget.threshold", b)
        d = b["data"]
        self.assertEqual((d["scope"], d["period"], d["threshold"], d["limitUsd"]),
                         ("user", "day", 50, 0.5), d)
        self.assertEqual(d["jobId"], r.data["jobId"], d)
        self.assertEqual(s.psql("SELECT state FROM public.webhook_deliveries"
                                " WHERE alert_id = %d" % d["alertId"]).strip(), "delivered")
        # the second job (0.6 > 0.5) is refused: its transaction rolled
        # back, so no 100 % alert row and no event
        r = jh.post_job(s, u.token, u.body("over the budget"))
        self.assertEqual(r.status, 402, r)
        time.sleep(2)
        self.assertEqual(len([e for e in self.rx.log("/hook/alerts")
                              if json.loads(e["body"])["data"]["scopeId"] == u.id]), 1)


class WorkerRetries(harness.StackTestCase):
    """spawn-fcgi responders without a master (no sweeper): the executor
    makes the first attempt, `imagegen worker` every retry."""

    @classmethod
    def setUpClass(cls):
        cls.stack_args = dict(pool="spawn-plain", workers=2, extra_env=jh.pool_env(
            IMAGEGEN_FETCH_ALLOW="127.0.0.1",
            IMAGEGEN_TEST_WEBHOOK_BACKOFF_MS="300,300,600000"))
        super().setUpClass()
        cls.rx = Receiver()
        cls.addClassCleanup(cls.rx.stop)

    def start_worker(self):
        s = self.stack
        env = s.pool_env({"IMAGEGEN_SWEEP_INTERVAL": "1"})
        log = open(os.path.join(s.tmp, "worker.log"), "ab")
        self.addCleanup(log.close)

        def as_pool_user():
            if harness.IS_ROOT:
                import pwd
                pw = pwd.getpwnam(harness.POOL_USER)
                os.setgroups([])
                os.setgid(pw.pw_gid)
                os.setuid(pw.pw_uid)
        w = subprocess.Popen([harness.imagegen_bin(), "worker"], env=env, cwd=s.tmp,
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                             start_new_session=True, preexec_fn=as_pool_user)

        def stop():
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
                try:
                    w.wait(10)
                except subprocess.TimeoutExpired:
                    w.kill()
                    w.wait(5)
        self.addCleanup(stop)

    def test_the_worker_sends_the_retries(self):
        s = self.stack
        u = jh.seed_user(s, "wh-worker")
        self.rx.config(secret=secret_of(s, u), script=[500], default=200)
        body = u.body("a lighthouse for the worker", webhook=self.rx.base + "/hook/worker")
        r = jh.post_job(s, u.token, body)
        self.assertEqual(r.status, 202, r)
        jh.wait_job(s, u.token, r.data["jobId"])
        deadline = time.monotonic() + 10
        while not self.rx.log("/hook/worker") and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2)   # no sweeper here: nothing retries it yet
        self.assertEqual([e["answered"] for e in self.rx.log("/hook/worker")], [500])
        self.start_worker()
        deadline = time.monotonic() + 15
        while len(self.rx.log("/hook/worker")) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        got = self.rx.log("/hook/worker")
        self.assertEqual([e["answered"] for e in got], [500, 200], got)
        self.assertTrue(all(e["verified"] for e in got), got)
        self.assertEqual(got[0]["id"], got[1]["id"])
