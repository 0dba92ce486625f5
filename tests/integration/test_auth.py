"""End-to-end authentication: GET /api/me through real nginx to a real pool.

Tokens come from two independent signers: our own `imagegen token` (the
DEMO-style HS256 token) and jose (Node.js, tests/node/mint.mjs), which also
generates the ES256/RS256 key pairs that a loopback JWKS server
(tests/lib/jwks_server.py) serves to the pool as Supabase's auth would.

  AuthEndToEnd   the header and the error shape, HS256/ES256/RS256 tokens,
                 refused claims, an unknown kid, key rotation while the pool
                 runs, algorithm confusion, and row-level security as the
                 second wall (psql as the pool's login role).
  JwksOutage     IMAGEGEN_JWKS_TTL=1: the JWKS endpoint goes down after every
                 worker fetched it; known keys keep working, unknown kids
                 don't.

Every token minted here carries a fresh session_id, so the pool's
verified-token cache never answers for a token a test means to be verified.
"""

import concurrent.futures
import json
import os
import re
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402
import jose_helper  # noqa: E402
import jwks_server  # noqa: E402

SECRET = "imagegen-auth-test-secret-0123456789abcdef"   # >= 32 characters
CHALLENGE = 'Bearer realm="imagegen"'
CHALLENGE_INVALID = 'Bearer realm="imagegen", error="invalid_token"'
RID_RE = re.compile(r"^[0-9a-f]{32}$")
# ts level pid func: message   (docs/RUNNING.md, "Logs")
LOG_RE = re.compile(r"^\S+\s+(\w+)\s+(\d+)\s+(\S+):\s(.*)$")


def supabase_claims(sub, email=None, ttl=3600, now=None, **over):
    """Claims as Supabase's auth issues them for a signed-in user."""
    now = int(time.time()) if now is None else now
    c = {
        "aud": "authenticated",
        "exp": now + ttl,
        "iat": now,
        "sub": sub,
        "email": email,
        "phone": "",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {},
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": now}],
        "session_id": str(uuid.uuid4()),
        "is_anonymous": False,
    }
    if email is None:
        del c["email"]
    c.update(over)
    return c


def new_user():
    n = uuid.uuid4()
    return str(n), "user-%s@example.test" % n.hex[:12]


class AuthCase(harness.StackTestCase):
    """A Stack (master pool, 2 workers) whose pool trusts SECRET and the
    JWKS of a loopback server holding one ES256 and one RS256 key."""

    workers = 2
    pool_extra_env = {}

    @classmethod
    def setUpClass(cls):
        jose_helper.install()           # loud failure if node/npm are missing
        cls.es = jose_helper.genkey("ES256", kid="es-" + uuid.uuid4().hex[:8])
        cls.rs = jose_helper.genkey("RS256", kid="rs-" + uuid.uuid4().hex[:8])
        cls.base_keys = [cls.es["publicJwk"], cls.rs["publicJwk"]]
        cls.jwks = jwks_server.JwksServer(cls.base_keys)
        # after tearDownClass, and also when setUpClass fails
        cls.addClassCleanup(cls.jwks.stop)
        env = {
            "SUPABASE_JWT_SECRET": SECRET,
            "SUPABASE_JWKS_URL": cls.jwks.url,
            "IMAGEGEN_JWKS_MIN_REFRESH": "1",
        }
        env.update(cls.pool_extra_env)
        cls.stack_args = dict(pool="master", workers=cls.workers, extra_env=env)
        super().setUpClass()

    # ------------------------------------------------------------ tokens

    def kid_of(self, keys):
        return keys["publicJwk"]["kid"]

    def jose_token(self, alg, sub, email=None, keys=None, kid=None, **claims_over):
        """A jose-signed token: HS256 with SECRET (no kid unless given),
        ES256/RS256 with keys (default: the served key of that alg) and its
        kid unless kid is given."""
        claims = supabase_claims(sub, email, **claims_over)
        if alg == "HS256":
            return jose_helper.mint("HS256", SECRET, claims, kid=kid)
        keys = keys or (self.es if alg == "ES256" else self.rs)
        return jose_helper.mint(alg, keys["privateJwk"], claims,
                                kid=kid if kid is not None else self.kid_of(keys))

    # ------------------------------------------------------------ requests

    def me(self, token=None, authorization=None):
        headers = {}
        if authorization is not None:
            headers["Authorization"] = authorization
        elif token is not None:
            headers["Authorization"] = "Bearer " + token
        return self.stack.http("GET", "/api/me", headers=headers)

    def me_burst(self, tokens, parallel=4):
        """GET /api/me for each token, `parallel` at a time, so that every
        worker of the pool gets some; Responses in the tokens' order."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as ex:
            return list(ex.map(lambda t: self.me(t), tokens))

    # ------------------------------------------------------------ assertions

    def assert_request_id(self, r):
        ids = r.header_all("X-Request-Id")
        self.assertEqual(len(ids), 1, "X-Request-Id must appear exactly once: %r" % (r,))
        self.assertRegex(ids[0], RID_RE)

    def assert_me_ok(self, r, sub, email=None):
        """200 {"userId": sub, "role": "authenticated", "email": email}."""
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.content_type, "application/json", r)
        self.assertIsInstance(r.data, dict, r)
        self.assertEqual(set(r.data), {"userId", "role", "email"}, r)
        self.assertEqual(r.data["userId"], sub, r)
        self.assertEqual(r.data["role"], "authenticated", r)
        self.assertEqual(r.data["email"], email, r)
        self.assertEqual(r.header_all("WWW-Authenticate"), [], r)
        self.assert_request_id(r)

    def assert_unauthorized(self, r, invalid_token):
        """401 {"error":{"code":"UNAUTHORIZED","message":…}} with exactly one
        WWW-Authenticate: Bearer realm="imagegen" (plus error="invalid_token"
        when a bearer token was given and refused)."""
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.content_type, "application/json", r)
        self.assertIsInstance(r.data, dict, r)
        self.assertEqual(set(r.data), {"error"}, r)
        err = r.data["error"]
        self.assertIsInstance(err, dict, r)
        self.assertEqual(set(err), {"code", "message"}, r)
        self.assertEqual(err["code"], "UNAUTHORIZED", r)
        self.assertIsInstance(err["message"], str, r)
        self.assertTrue(err["message"], r)
        self.assertEqual(r.header_all("WWW-Authenticate"),
                         [CHALLENGE_INVALID if invalid_token else CHALLENGE], r)
        self.assert_request_id(r)

    # ------------------------------------------------------------ pool log

    def log_mark(self):
        return len(self.stack.read_pool_log())

    def pids_logging(self, since, needle):
        """Pids of pool processes that logged a line containing needle
        after offset since."""
        pids = set()
        for line in self.stack.read_pool_log()[since:].splitlines():
            m = LOG_RE.match(line)
            if m and needle in m.group(4):
                pids.add(int(m.group(2)))
        return pids


class AuthEndToEnd(AuthCase):
    """SECRET + a JWKS (ES256, RS256) with the default TTL (600 s)."""

    # ------------------------------------------------------------ the header

    def test_missing_authorization_401_bearer_challenge(self):
        r = self.me()
        self.assert_unauthorized(r, invalid_token=False)

    def test_basic_scheme_401_bearer_challenge(self):
        r = self.me(authorization="Basic dXNlcjpwYXNzd29yZA==")
        self.assert_unauthorized(r, invalid_token=False)

    def test_garbage_token_401_invalid_token(self):
        for tok in ("garbage", "not.a.jwt", "a.b.c", "eyJhbGciOiJIUzI1NiJ9..",
                    "x" * 300):
            with self.subTest(token=tok[:40]):
                self.assert_unauthorized(self.me(tok), invalid_token=True)

    def test_unauthorized_error_json_shape_leaks_nothing(self):
        tok = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2VjcmV0LXByb2Jl"
        r = self.me(tok)
        self.assert_unauthorized(r, invalid_token=True)
        body = r.body.decode()
        # exactly one JSON object, and nothing of the token echoed back
        self.assertEqual(json.loads(body), r.data, r)
        for part in tok.split("."):
            self.assertNotIn(part, body, r)

    # ------------------------------------------------------------ our own minting

    def test_cli_demo_token_hs256_200_with_sub_and_email(self):
        sub, email = new_user()
        env = harness._clean_env()
        env["SUPABASE_JWT_SECRET"] = SECRET
        p = subprocess.run([harness.imagegen_bin(), "token", "--sub", sub, "--email", email,
                            "--ttl", "600"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30, text=True)
        self.assertEqual(p.returncode, 0, "imagegen token failed: %s" % p.stderr)
        tok = p.stdout.strip()
        self.assertEqual(tok.count("."), 2, tok)
        self.assert_me_ok(self.me(tok), sub, email)

    # ------------------------------------------------------------ jose, accepted

    def test_jose_hs256_secret_without_kid_200(self):
        sub, email = new_user()
        self.assert_me_ok(self.me(self.jose_token("HS256", sub, email)), sub, email)

    def test_jose_hs256_kid_not_in_jwks_uses_secret_200(self):
        sub, email = new_user()
        tok = self.jose_token("HS256", sub, email, kid="legacy-" + uuid.uuid4().hex[:8])
        self.assert_me_ok(self.me(tok), sub, email)

    def test_jose_es256_key_from_jwks_200(self):
        sub, email = new_user()
        self.assert_me_ok(self.me(self.jose_token("ES256", sub, email)), sub, email)

    def test_jose_rs256_key_from_jwks_200(self):
        sub, email = new_user()
        self.assert_me_ok(self.me(self.jose_token("RS256", sub, email)), sub, email)

    def test_jose_token_without_email_200_email_null(self):
        sub, _ = new_user()
        self.assert_me_ok(self.me(self.jose_token("ES256", sub)), sub, None)

    # ------------------------------------------------------------ jose, refused
    # Each refused token has a control: the same signer and claims but the
    # one under test, which must be accepted (so the 401 is for that claim).

    def test_expired_beyond_leeway_401(self):
        sub, email = new_user()
        now = int(time.time())
        for alg in ("ES256", "HS256"):
            with self.subTest(alg=alg):
                expired = self.jose_token(alg, sub, email, now=now - 3600, ttl=3600 - 120)
                self.assert_unauthorized(self.me(expired), invalid_token=True)
                # control: expired 5 s ago is inside the 30 s leeway
                within = self.jose_token(alg, sub, email, now=now - 3600, ttl=3600 - 5)
                self.assert_me_ok(self.me(within), sub, email)

    def test_missing_exp_401(self):
        sub, email = new_user()
        claims = supabase_claims(sub, email)
        del claims["exp"]
        tok = jose_helper.mint("ES256", self.es["privateJwk"], claims, kid=self.kid_of(self.es))
        self.assert_unauthorized(self.me(tok), invalid_token=True)

    def test_aud_anon_401(self):
        sub, email = new_user()
        self.assert_unauthorized(self.me(self.jose_token("ES256", sub, email, aud="anon")),
                                 invalid_token=True)
        self.assert_unauthorized(self.me(self.jose_token("HS256", sub, email, aud="anon")),
                                 invalid_token=True)
        self.assert_me_ok(self.me(self.jose_token("ES256", sub, email,
                                                  aud=["other", "authenticated"])), sub, email)

    def test_role_service_role_401(self):
        sub, email = new_user()
        self.assert_unauthorized(self.me(self.jose_token("ES256", sub, email,
                                                         role="service_role")),
                                 invalid_token=True)
        self.assert_unauthorized(self.me(self.jose_token("HS256", sub, email,
                                                         role="service_role")),
                                 invalid_token=True)
        self.assert_me_ok(self.me(self.jose_token("ES256", sub, email, role="authenticated")),
                          sub, email)

    def test_es256_kid_not_in_jwks_401(self):
        sub, email = new_user()
        # signed by a served key, but naming a kid the JWKS doesn't have
        tok = self.jose_token("ES256", sub, email, kid="nope-" + uuid.uuid4().hex[:8])
        self.assert_unauthorized(self.me(tok), invalid_token=True)
        # signed by a key nobody serves, under its own kid
        stranger = jose_helper.genkey("ES256", kid="stranger-" + uuid.uuid4().hex[:8])
        tok = self.jose_token("ES256", sub, email, keys=stranger)
        self.assert_unauthorized(self.me(tok), invalid_token=True)

    def test_es256_signed_by_other_key_under_served_kid_401(self):
        sub, email = new_user()
        stranger = jose_helper.genkey("ES256")
        tok = self.jose_token("ES256", sub, email, keys=stranger, kid=self.kid_of(self.es))
        self.assert_unauthorized(self.me(tok), invalid_token=True)

    # ------------------------------------------------------------ algorithm confusion

    def test_alg_confusion_hs256_with_public_jwk(self):
        """HS256 "signed" with the served ES256 public key's JWK text as the
        HMAC secret, under that key's kid: the kid pins ES256, so 401."""
        sub, email = new_user()
        pub = self.es["publicJwk"]
        served = json.loads(self.jwks.document())["keys"][0]
        self.assertEqual(served, pub)
        texts = [
            json.dumps(pub, separators=(",", ":")),      # as the JWKS serves it
            json.dumps(pub),                              # json.dumps default
            json.dumps(pub, sort_keys=True, separators=(",", ":")),
        ]
        for secret in texts:
            with self.subTest(secret=secret[:40]):
                tok = jose_helper.mint("HS256", secret, supabase_claims(sub, email),
                                       kid=pub["kid"])
                self.assert_unauthorized(self.me(tok), invalid_token=True)
        # control: the same kid with the real ES256 key is accepted
        self.assert_me_ok(self.me(self.jose_token("ES256", sub, email)), sub, email)

    # ------------------------------------------------------------ key rotation

    def test_key_rotation_new_kid_accepted_without_restart(self):
        """A new ES256 key appears in the JWKS while the pool runs: every
        worker refetches on the unknown kid (throttled to once a second)
        and accepts it; no worker is restarted."""
        s = self.stack
        workers = s.children_pids()
        self.assertEqual(len(workers), self.workers, workers)
        new = jose_helper.genkey("ES256", kid="es-rotated-" + uuid.uuid4().hex[:8])
        nkeys = len(self.base_keys) + 1
        mark = self.log_mark()
        served_before = self.jwks.requests
        self.jwks.set_keys(self.base_keys + [new["publicJwk"]])
        try:
            sub, email = new_user()
            deadline = time.monotonic() + 5
            history = []
            loaded = set()
            while True:
                rs = self.me_burst([self.jose_token("ES256", sub, email, keys=new)
                                    for _ in range(4)])
                history.append([r.status for r in rs])
                for r in rs:
                    if r.status != 200:
                        self.assert_unauthorized(r, invalid_token=True)
                loaded = self.pids_logging(mark, "JWKS: %d keys loaded" % nkeys)
                if all(r.status == 200 for r in rs) and set(workers) <= loaded:
                    break
                if time.monotonic() > deadline:
                    self.fail("new kid not accepted by every worker within 5 s: statuses %s; "
                              "workers %s, those that loaded %d keys: %s"
                              % (history, workers, nkeys, sorted(loaded)))
                time.sleep(0.2)
            # Each worker fetched the new set once (the kid is known after).
            self.assertGreaterEqual(self.jwks.requests - served_before, len(workers))
            # And now every request with the new kid is accepted.
            toks = [self.jose_token("ES256", sub, email, keys=new) for _ in range(8)]
            for r in self.me_burst(toks):
                self.assert_me_ok(r, sub, email)
            # The old keys still work.
            self.assert_me_ok(self.me(self.jose_token("ES256", sub, email)), sub, email)
            self.assert_me_ok(self.me(self.jose_token("RS256", sub, email)), sub, email)
            self.assertEqual(s.children_pids(), workers, "the pool was restarted")
        finally:
            self.jwks.set_keys(self.base_keys)

    # ------------------------------------------------------------ RLS, the second wall

    def test_rls_authenticated_sees_only_own_projects(self):
        s = self.stack
        a, _ = new_user()
        b, _ = new_user()
        pa, pb = str(uuid.uuid4()), str(uuid.uuid4())
        s.psql("INSERT INTO auth.users (id, email) VALUES ('%s', 'rls-a-%s@example.test'), "
               "('%s', 'rls-b-%s@example.test');" % (a, a[:8], b, b[:8]))
        s.psql("INSERT INTO public.projects (id, owner_id, title) VALUES "
               "('%s', '%s', 'project of A'), ('%s', '%s', 'project of B');" % (pa, a, pb, b))
        # The superuser sees both: the zero below is RLS, not missing data.
        self.assertEqual(s.psql("SELECT count(*) FROM projects WHERE owner_id IN ('%s', '%s')"
                                % (a, b)).strip(), "2")
        claims = json.dumps({"sub": a, "role": "authenticated"}, separators=(",", ":"))
        out = s.psql(
            "BEGIN;"
            " SET LOCAL ROLE authenticated;"
            " select set_config('request.jwt.claims', '%s', true);"
            " SELECT current_user, auth.uid();"
            " SELECT * FROM projects;"
            " SELECT count(*) FROM projects WHERE owner_id = '%s';"
            " COMMIT;" % (claims, b), as_app=True)
        lines = out.splitlines()
        self.assertGreaterEqual(len(lines), 3, out)
        self.assertEqual(lines[0], claims, out)                       # set_config
        self.assertEqual(lines[1], "authenticated|%s" % a, out)       # role, auth.uid()
        self.assertEqual(lines[-1], "0", "B's project visible to A:\n" + out)
        rows = [ln.split("|") for ln in lines[2:-1]]
        self.assertEqual(len(rows), 1, "SELECT * FROM projects as A:\n" + out)
        self.assertEqual(rows[0][0], pa, out)
        self.assertEqual(rows[0][1], a, out)
        self.assertEqual(rows[0][2], "project of A", out)

    def test_rls_login_role_without_set_role_refused(self):
        """imagegen_app itself may read nothing: only after SET ROLE
        authenticated does a request see (its own) rows.  That holds only
        when the login role is NOINHERIT and owns nothing."""
        s = self.stack
        inherit = s.psql("SELECT rolinherit FROM pg_roles WHERE rolname = '%s'"
                         % harness.APP_ROLE).strip()
        owned = s.psql("SELECT count(*) FROM pg_class WHERE relowner = '%s'::regrole"
                       % harness.APP_ROLE).strip()
        self.assertEqual(owned, "0", "%s owns relations" % harness.APP_ROLE)
        try:
            out = s.psql("SELECT count(*) FROM projects", as_app=True)
        except harness.HarnessError as e:
            self.assertIn("permission denied for table projects", str(e))
        else:
            self.fail("%s read projects without SET ROLE (count %s); pg_roles.rolinherit "
                      "for it is %r: the login role must be created NOINHERIT so that it "
                      "holds none of authenticated's or service_role's privileges itself"
                      % (harness.APP_ROLE, out.strip(), inherit))
        # …and the same connection may still switch to authenticated.
        out = s.psql("BEGIN; SET LOCAL ROLE authenticated; SELECT current_user; COMMIT;",
                     as_app=True)
        self.assertEqual(out.strip(), "authenticated", out)


class JwksOutage(AuthCase):
    """IMAGEGEN_JWKS_TTL=1: every worker's key set goes stale each second."""

    pool_extra_env = {"IMAGEGEN_JWKS_TTL": "1"}

    def test_jwks_down_known_keys_still_200_unknown_kid_401(self):
        s = self.stack
        workers = s.children_pids()
        self.assertEqual(len(workers), self.workers, workers)
        sub, email = new_user()
        nkeys = len(self.base_keys)

        # 1. Every worker has fetched the keys.
        mark = self.log_mark()
        deadline = time.monotonic() + 10
        while True:
            rs = self.me_burst([self.jose_token(alg, sub, email)
                                for alg in ("ES256", "RS256", "ES256", "RS256")])
            for r in rs:
                self.assert_me_ok(r, sub, email)
            loaded = self.pids_logging(mark, "JWKS: %d keys loaded" % nkeys)
            if set(workers) <= loaded:
                break
            if time.monotonic() > deadline:
                self.fail("not every worker fetched the JWKS: workers %s, loaded %s"
                          % (workers, sorted(loaded)))
        served = self.jwks.requests
        self.assertGreaterEqual(served, len(workers))

        # 2. The endpoint goes down; wait past the TTL (and the refetch throttle).
        self.jwks.stop()
        try:
            time.sleep(2.2)
            mark = self.log_mark()
            deadline = time.monotonic() + 10
            while True:
                rs = self.me_burst([self.jose_token(alg, sub, email)
                                    for alg in ("ES256", "RS256", "ES256", "RS256")])
                for r in rs:
                    self.assert_me_ok(r, sub, email)
                failed = self.pids_logging(mark, "JWKS fetch failed")
                if set(workers) <= failed:
                    break
                if time.monotonic() > deadline:
                    self.fail("not every worker tried (and failed) to refetch the stale "
                              "JWKS: workers %s, failed %s" % (workers, sorted(failed)))
            self.assertEqual(self.jwks.requests, served, "served while stopped?")
            # Still known after more stale refetch attempts, once a second.
            time.sleep(1.2)
            for r in self.me_burst([self.jose_token("ES256", sub, email) for _ in range(4)]):
                self.assert_me_ok(r, sub, email)

            # 3. A kid nobody has seen: no key, no fallback that accepts it.
            stranger = jose_helper.genkey("ES256", kid="es-unknown-" + uuid.uuid4().hex[:8])
            toks = [self.jose_token("ES256", sub, email, keys=stranger) for _ in range(4)]
            for r in self.me_burst(toks):
                self.assert_unauthorized(r, invalid_token=True)
            self.assertEqual(s.children_pids(), workers, "a worker died during the outage")
        finally:
            self.jwks.start()

        # 4. Back up: the keys are fetched again and tokens keep working.
        mark = self.log_mark()
        deadline = time.monotonic() + 10
        while True:
            rs = self.me_burst([self.jose_token("ES256", sub, email) for _ in range(4)])
            for r in rs:
                self.assert_me_ok(r, sub, email)
            if set(workers) <= self.pids_logging(mark, "JWKS: %d keys loaded" % nkeys):
                break
            if time.monotonic() > deadline:
                self.fail("the workers did not refetch the JWKS after it came back")
            time.sleep(0.3)
        self.assertGreater(self.jwks.requests, served)


if __name__ == "__main__":
    unittest.main()
