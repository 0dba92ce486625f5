"""scripts/up's decisions, run from the script itself without starting its
stack (it listens on fixed ports and owns var/): the functions that build
the pool's environment, write var/stack.env and Postgres' settings are
taken out of scripts/up (sed, then eval) or scripts/lib.sh and run in bash
with a temp directory as var/.  What they produce is then used for real:
the DEMO_TOKEN against a pool given the same environment."""

import base64
import json
import os
import shlex
import subprocess
import sys
import tempfile
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402

UP = os.path.join(harness.SRCDIR, "scripts", "up")
LIB = os.path.join(harness.SRCDIR, "scripts", "lib.sh")
SECRET = "u" * 40
HTTPS_PORT = "18443"


def run_bash(script, env_over=None, var_dir=None):
    """Runs script in bash after sourcing scripts/lib.sh and defining the
    named functions of scripts/up; IG_VAR points at var_dir. Returns
    stdout (raises on failure)."""
    env = harness._clean_env()
    env["IMAGEGEN_HTTPS_PORT"] = HTTPS_PORT
    env.update(env_over or {})
    prologue = (
        "set -euo pipefail\n"
        ". %s\n"
        "for f in build_pool_env quote write_stack_env ensure_webhook_key; do\n"
        "  eval \"$(sed -n \"/^$f() {/,/^}/p\" %s)\"\n"
        "done\n" % (shlex.quote(LIB), shlex.quote(UP)))
    if var_dir:
        prologue += ("IG_VAR=%s; IG_STACK_ENV=$IG_VAR/stack.env; mkdir -p $IG_VAR/log\n"
                     % shlex.quote(var_dir))
    r = subprocess.run(["bash", "-c", prologue + script], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("bash failed (%d):\n%s\n%s" % (r.returncode, r.stdout, r.stderr))
    return r.stdout


def pool_env_of(env_over, local_secret=True):
    """POOL_ENV as scripts/up's build_pool_env makes it, as a dict; with
    local_secret, as after ensure_secret made or read var/jwt-secret."""
    out = run_bash('SUPABASE_JWT_SECRET=%s\nIG_SECRET_LOCAL=%d\nbuild_pool_env\n'
                   'printf "%%s\\n" "${POOL_ENV[@]}"\n' % (SECRET, local_secret), env_over)
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def jwt_claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def read_stack_env(path):
    """var/stack.env's NAME='value' lines (scripts/up's quote())."""
    out = {}
    with open(path) as f:
        for line in f:
            if "=" in line and not line.startswith("#"):
                k, v = line.rstrip("\n").split("=", 1)
                out[k] = shlex.split(v)[0] if v else ""
    return out


class UpPoolEnv(unittest.TestCase):
    """build_pool_env of scripts/up: which defaults the pool gets."""

    def test_up_public_base_url_default_only_for_local_storage(self):
        local = pool_env_of({})
        self.assertEqual(local.get("IMAGEGEN_PUBLIC_BASE_URL"),
                         "https://localhost:%s/storage/v1/object/public" % HTTPS_PORT, local)
        self.assertEqual(pool_env_of({"IMAGEGEN_STORAGE": "local"}).get("IMAGEGEN_PUBLIC_BASE_URL"),
                         "https://localhost:%s/storage/v1/object/public" % HTTPS_PORT)
        remote = {
            "supabase (named)": {"IMAGEGEN_STORAGE": "supabase",
                                 "SUPABASE_URL": "https://proj.supabase.co",
                                 "SUPABASE_SERVICE_ROLE_KEY": "k"},
            "supabase (chosen by its settings)": {"SUPABASE_URL": "https://proj.supabase.co",
                                                  "SUPABASE_SERVICE_ROLE_KEY": "k"},
            "s3": {"IMAGEGEN_STORAGE": "s3", "S3_ENDPOINT": "https://s3.example.test",
                   "S3_ACCESS_KEY_ID": "a", "S3_SECRET_ACCESS_KEY": "s"},
        }
        for what, over in remote.items():
            with self.subTest(what):
                env = pool_env_of(over)
                # the backend builds its own public URL (supabase:
                # $SUPABASE_URL/storage/v1/object/public/{bucket}/{path})
                self.assertNotIn("IMAGEGEN_PUBLIC_BASE_URL", env, env)

    def test_up_keeps_a_given_public_base_url(self):
        for over in ({}, {"IMAGEGEN_STORAGE": "s3"}):
            over = dict(over, IMAGEGEN_PUBLIC_BASE_URL="https://cdn.example.test/p")
            self.assertEqual(pool_env_of(over)["IMAGEGEN_PUBLIC_BASE_URL"],
                             "https://cdn.example.test/p")

    def test_up_issuer_default(self):
        self.assertEqual(pool_env_of({}).get("SUPABASE_JWT_ISSUER"),
                         "https://localhost:%s/auth/v1" % HTTPS_PORT)
        # SUPABASE_URL derives the issuer in the binaries; a given one stays
        self.assertNotIn("SUPABASE_JWT_ISSUER", pool_env_of({"SUPABASE_URL": "https://p.supabase.co"}))
        self.assertEqual(pool_env_of({"SUPABASE_JWT_ISSUER": "https://i.test/auth/v1"})
                         ["SUPABASE_JWT_ISSUER"], "https://i.test/auth/v1")

    def test_up_no_issuer_default_with_a_brought_secret(self):
        # SUPABASE_JWT_SECRET of a Supabase project, local storage: that
        # project's tokens (iss its own URL) must still be accepted
        self.assertNotIn("SUPABASE_JWT_ISSUER", pool_env_of({}, local_secret=False))

    def test_up_postgres_settings_durable(self):
        out = run_bash("ig_pg_conf 54329 /x/pg/run\n")
        settings = {}
        for line in out.splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                k, v = line.split("=", 1)
                settings[k.strip()] = v.strip()
        self.assertEqual(settings.get("synchronous_commit"), "on", out)
        self.assertEqual(settings.get("fsync"), "on", out)
        self.assertEqual(settings.get("full_page_writes"), "on", out)
        self.assertEqual(settings.get("port"), "54329", out)
        # and scripts/up writes exactly that file
        with open(UP) as f:
            up = f.read()
        self.assertIn('ig_pg_conf "$IG_PG_PORT" "$IG_PG_RUN" >"$IG_PG_DATA/imagegen.conf"', up)
        self.assertNotIn("synchronous_commit = off", up)


class UpWebhookKey(unittest.TestCase):
    """ensure_webhook_key: IMAGEGEN_WEBHOOK_SECRET_KEY made once in
    var/webhook-secret-key (32 random bytes, base64, mode 0600), the same
    on every later run, the caller's own when set; the pool gets it."""

    def key_of(self, var, env_over=None):
        out = run_bash('ig_log() { :; }\nensure_webhook_key\nSUPABASE_JWT_SECRET=%s\n'
                       'IG_SECRET_LOCAL=1\nbuild_pool_env\n'
                       'printf "%%s\\n" "${POOL_ENV[@]}"\n' % SECRET, env_over, var)
        env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        return env.get("IMAGEGEN_WEBHOOK_SECRET_KEY")

    def test_up_makes_the_webhook_key_once_and_passes_it_to_the_pool(self):
        with tempfile.TemporaryDirectory() as var:
            k1 = self.key_of(var)
            self.assertIsNotNone(k1)
            self.assertEqual(len(base64.b64decode(k1, validate=True)), 32)
            path = os.path.join(var, "webhook-secret-key")
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
            self.assertEqual(self.key_of(var), k1, "a second run made another key")
            mine = base64.b64encode(b"k" * 32).decode()
            self.assertEqual(self.key_of(var, {"IMAGEGEN_WEBHOOK_SECRET_KEY": mine}), mine)
            with open(path) as f:
                self.assertEqual(f.read().strip(), k1)


class UpDemoToken(harness.StackTestCase):
    """write_stack_env of scripts/up mints DEMO_TOKEN with `imagegen token`
    in the pool's environment: it carries the iss Supabase's would, and a
    pool with that environment accepts it (and checks iss)."""

    stack_args = {"pool": "master", "extra_env": {
        "SUPABASE_JWT_SECRET": SECRET,
        "SUPABASE_JWT_ISSUER": "https://localhost:%s/auth/v1" % HTTPS_PORT}}

    def stack_env(self, env_over):
        sub = str(uuid.uuid4())
        with tempfile.TemporaryDirectory() as var:
            run_bash('SUPABASE_JWT_SECRET=%s\nIG_SECRET_LOCAL=1\nCLI_BIN=%s\nDEMO_USER_ID=%s\n'
                     'DEMO_EMAIL=demo@imagegen.local\nDEMO_PROJECT_ID=p\nDEMO_BRANCH_ID=b\n'
                     'build_pool_env\nwrite_stack_env\n'
                     % (SECRET, shlex.quote(harness.imagegen_bin()), sub), env_over, var)
            return sub, read_stack_env(os.path.join(var, "stack.env"))

    def test_up_demo_token_carries_iss(self):
        sub, env = self.stack_env({})
        tok = env["DEMO_TOKEN"]
        self.assertEqual(tok.count("."), 2, env)
        claims = jwt_claims(tok)
        self.assertEqual(claims.get("iss"), "https://localhost:%s/auth/v1" % HTTPS_PORT, claims)
        self.assertEqual(claims.get("sub"), sub, claims)
        # stack.env names the issuer, so `imagegen token` run with it
        # mints tokens the pool accepts
        self.assertEqual(env.get("SUPABASE_JWT_ISSUER"), claims["iss"], env)
        r = self.stack.http("GET", "/api/me", headers={"Authorization": "Bearer " + tok})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.data["userId"], sub, r)

    def test_up_demo_token_iss_from_supabase_url(self):
        _, env = self.stack_env({"SUPABASE_URL": "https://proj.supabase.co"})
        self.assertEqual(jwt_claims(env["DEMO_TOKEN"]).get("iss"),
                         "https://proj.supabase.co/auth/v1")
        self.assertNotIn("SUPABASE_JWT_ISSUER", env)
        # the pool requires its issuer: this one is refused
        r = self.stack.http("GET", "/api/me",
                            headers={"Authorization": "Bearer " + env["DEMO_TOKEN"]})
        self.assertEqual(r.status, 401, r)


if __name__ == "__main__":
    unittest.main()
