"""The second wall: two database roles, and owner predicates that hold on
their own beside row-level security (docs/RUNNING.md, Database roles).

  ResponderRole   Postgres only. The responders' login role (imagegen_app)
                  reaches no role that bypasses RLS, cannot SET ROLE
                  service_role, and with user A's claims a SELECT of user
                  B's job without any owner predicate returns nothing; the
                  workers' role (imagegen_worker) can become service_role.
                  Every request query of src/db/jobs_db.c with each of its
                  owner predicates removed in turn still finds none of B's
                  rows for A (tests/integration/owner-preds).
  RlsDisabled     RLS disabled on every table: through nginx, A gets 404
                  for B's jobs on GET, cancel and retry, does not see them
                  listed, and cannot create a job in B's project, on B's
                  branch or with B's private capsule: the C predicates
                  alone refuse.
  SingleRole      IMAGEGEN_WORKER_DATABASE_URL unset and DATABASE_URL one
                  role granted authenticated and service_role: jobs and
                  /metrics still work (the fallback), and the responders
                  warn that RLS is then no second wall.
"""

import json
import os
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402
import jobs_helper as jh  # noqa: E402

# Every table with a policy in sql/004_access.sql.
RLS_TABLES = ("public.projects", "public.branches", "public.visual_style_capsules",
              "public.image_generation_jobs", "public.image_generation_job_events")


def claims_of(user_id):
    return json.dumps({"sub": user_id, "role": "authenticated", "aud": "authenticated"},
                      separators=(",", ":"))


def owner_preds_bin():
    """tests/integration/owner-preds: a check program (`make check` makes it,
    scripts/build does not), so made here by make in the build tree when it
    is missing or older than the library or its source."""
    target = "tests/integration/owner-preds"
    exe = os.path.join(harness.BUILDDIR, target)
    deps = [os.path.join(harness.BUILDDIR, "libimagegen.a"),
            os.path.join(harness.SRCDIR, "tests", "integration", "owner_preds.c")]
    try:
        fresh = all(os.path.getmtime(exe) >= os.path.getmtime(d) for d in deps)
    except OSError:
        fresh = False
    if not fresh:
        env = {k: v for k, v in os.environ.items()
               if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
        r = subprocess.run(["make", "-s", "-C", harness.BUILDDIR, target], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600,
                           text=True)
        if r.returncode != 0:
            raise harness.HarnessError("make %s failed:\n%s" % (target, r.stdout[-3000:]))
    return exe


def seed_b(s):
    """User B with a project, its main branch, a private capsule and a queued
    job there with an idempotency key (inserted by the superuser, so no
    executor runs it); user A with its own project.  (a, b, ids)."""
    a, b = jh.seed_user(s, "wall-a"), jh.seed_user(s, "wall-b")
    capsule, job, idem = str(uuid.uuid4()), str(uuid.uuid4()), "key-" + uuid.uuid4().hex
    s.psql("INSERT INTO public.visual_style_capsules (id, user_id, name, style_text)"
           " VALUES ('%s', '%s', 'B private', 'ink');"
           "INSERT INTO public.image_generation_jobs (id, user_id, project_id, branch_id,"
           " job_type, prompt, width, height, idempotency_key, request_fingerprint,"
           " provider, model) VALUES ('%s', '%s', '%s', '%s', 'master_asset',"
           " 'B''s private job', 64, 64, '%s', 'fp', 'local', 'local-test');"
           % (capsule, b.id, job, b.id, b.project_id, b.branch_id, idem))
    return a, b, dict(capsule=capsule, job=job, idem=idem)


class ResponderRole(harness.StackTestCase):
    """Postgres only (no pool): what the responders' login role may do."""

    stack_args = dict(pool=None)

    def test_responder_login_role_reaches_no_bypassrls_role(self):
        s = self.stack
        out = s.psql("WITH RECURSIVE m(id) AS ("
                     " SELECT oid FROM pg_roles WHERE rolname = '%s'"
                     " UNION SELECT a.roleid FROM pg_auth_members a JOIN m ON a.member = m.id)"
                     " SELECT r.rolname, r.rolbypassrls, r.rolsuper"
                     " FROM m JOIN pg_roles r ON r.oid = m.id ORDER BY 1" % harness.APP_ROLE)
        rows = [ln.split("|") for ln in out.split()]
        names = [r[0] for r in rows]
        self.assertIn("authenticated", names, "the login role cannot reach authenticated: %s" % out)
        self.assertNotIn("service_role", names, out)
        bypass = [r[0] for r in rows if r[1] == "t" or r[2] == "t"]
        self.assertEqual(bypass, [], "%s reaches roles that bypass RLS (membership, "
                         "recursively): %s" % (harness.APP_ROLE, out))

    def test_responder_login_role_set_role_service_role_fails(self):
        s = self.stack
        for sql in ("SET ROLE service_role",
                    "BEGIN; SET LOCAL ROLE service_role; COMMIT;",
                    # what db_begin_user does, with service_role instead
                    "BEGIN; SELECT set_config('role', 'service_role', true); COMMIT;"):
            with self.assertRaises(harness.HarnessError, msg=sql) as cm:
                s.psql(sql, as_app=True)
            self.assertIn('permission denied to set role "service_role"', str(cm.exception))

    def test_responder_login_role_with_a_claims_selects_none_of_b_job(self):
        """The Done-when line: psql as the responders' login role, A's
        claims, a SELECT of B's job with no owner predicate: nothing."""
        s = self.stack
        a, b, ids = seed_b(s)
        sql = ("BEGIN; SET ROLE authenticated;"
               " SELECT set_config('request.jwt.claims', '%s', true) IS NOT NULL;"
               " SELECT id, user_id FROM public.image_generation_jobs WHERE id = '%s';"
               " COMMIT;")
        out = s.psql(sql % (claims_of(a.id), ids["job"]), as_app=True).split()
        self.assertEqual(out, ["t"], "as A, B's job is visible: %r" % out)
        # The same statement as B finds it: the empty answer above is RLS.
        out = s.psql(sql % (claims_of(b.id), ids["job"]), as_app=True).split()
        self.assertEqual(out, ["t", "%s|%s" % (ids["job"], b.id)], out)

    def test_worker_login_role_may_become_service_role(self):
        s = self.stack
        _, _, ids = seed_b(s)
        with self.assertRaises(harness.HarnessError):
            s.psql("SELECT count(*) FROM public.image_generation_jobs", as_worker=True)
        out = s.psql("SET ROLE service_role; SELECT count(*) FROM public.image_generation_jobs"
                     " WHERE id = '%s'" % ids["job"], as_worker=True)
        self.assertEqual(out.strip(), "1", out)

    def test_each_owner_predicate_removed_in_turn_rls_still_refuses(self):
        s = self.stack
        exe = owner_preds_bin()
        a, b, ids = seed_b(s)
        env = harness._clean_env()
        env["DATABASE_URL"] = s.app_url()
        r = subprocess.run([exe, "--a", a.id, "--b", b.id, "--project", b.project_id,
                            "--branch", b.branch_id, "--capsule", ids["capsule"],
                            "--job", ids["job"], "--idem", ids["idem"]],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=120, text=True)
        self.assertEqual(r.returncode, 0, "owner-preds:\n" + r.stdout)
        runs = [ln for ln in r.stdout.splitlines() if ln.startswith("ok ")]
        # create_owned has 3 predicates; the 10 other queries one each
        self.assertGreaterEqual(len(runs), 13, r.stdout)
        for q in ("create_owned", "create_main", "create_replay", "get", "list", "cancel", "cancel_after",
                  "retry_lock", "retry_insert", "projects", "events"):
            self.assertTrue(any(ln.startswith("ok %s " % q) for ln in runs),
                            "%s not run:\n%s" % (q, r.stdout))
        # Nothing of B's changed (every run rolled back, A's found nothing).
        self.assertEqual(s.psql("SELECT status, cancel_requested FROM public.image_generation_jobs"
                                " WHERE id = '%s'" % ids["job"]).strip(), "queued|f")
        self.assertEqual(s.psql("SELECT count(*) FROM public.image_generation_jobs"
                                " WHERE retry_of = '%s'" % ids["job"]).strip(), "0")


class RlsDisabled(harness.StackTestCase):
    """Row-level security disabled on every table of this stack: the owner
    predicates of the C code are the only wall left.  One executor slot,
    each render 30 s, so B's first job stays running and B's second queued
    (then canceled by B)."""

    @classmethod
    def setUpClass(cls):
        cls.stack_args = dict(pool="master", workers=2, extra_env=jh.pool_env(
            IMAGEGEN_MAX_RUNNING_JOBS=1, IMAGEGEN_LOCAL_DELAY_MS=30000))
        super().setUpClass()
        cls.stack.psql(" ".join("ALTER TABLE %s DISABLE ROW LEVEL SECURITY;" % t
                                for t in RLS_TABLES))

    def test_rls_disabled_owner_predicates_still_refuse_b_jobs(self):
        s = self.stack
        off = s.psql("SELECT count(*) FROM pg_class WHERE oid = ANY (ARRAY['%s']::regclass[])"
                     " AND relrowsecurity" % "','".join(RLS_TABLES)).strip()
        self.assertEqual(off, "0", "RLS is still enabled on some table")
        a, b = jh.seed_user(s, "nowall-a"), jh.seed_user(s, "nowall-b")
        running = self.created(jh.post_job(s, b.token, b.body("B's running job")))
        jh.wait_job(s, b.token, running, statuses=("generating",), timeout=15)
        canceled = self.created(jh.post_job(s, b.token, b.body("B's canceled job")))
        r = jh.cancel_job(s, b.token, canceled)
        self.assertEqual((r.status, r.data and r.data.get("status")), (200, "canceled"), r)

        for jid in (running, canceled):
            self.assert_not_found(jh.get_job(s, a.token, jid), "GET")
            self.assert_not_found(jh.cancel_job(s, a.token, jid), "cancel")
            self.assert_not_found(jh.retry_job(s, a.token, jid), "retry")
        for query in ("", "?projectId=%s" % b.project_id):
            r = s.http("GET", "/api/images/jobs" + query, headers=jh.auth(a.token))
            self.assertEqual(r.status, 200, r)
            self.assertEqual([j["jobId"] for j in r.data["jobs"]], [], r)
        self.assertEqual(s.psql("SELECT status, cancel_requested FROM public.image_generation_jobs"
                                " WHERE id = '%s'" % running).strip(), "generating|f")
        self.assertEqual(s.psql("SELECT count(*) FROM public.image_generation_jobs"
                                " WHERE retry_of IN ('%s', '%s')" % (running, canceled)).strip(),
                         "0")
        # B itself still can (the predicates are not just refusing everyone).
        self.assertEqual(jh.get_job(s, b.token, running).status, 200)
        r = jh.retry_job(s, b.token, canceled)
        self.assertEqual(r.status, 202, r)
        self.assertEqual(jh.cancel_job(s, b.token, r.data["jobId"]).status, 200)

    def test_rls_disabled_no_job_in_b_project_branch_or_capsule(self):
        s = self.stack
        a, b = jh.seed_user(s, "nowall-a"), jh.seed_user(s, "nowall-b")
        capsule = str(uuid.uuid4())
        s.psql("INSERT INTO public.visual_style_capsules (id, user_id, name, style_text)"
               " VALUES ('%s', '%s', 'B private', 'ink')" % (capsule, b.id))
        for what, over in (("B's project", dict(projectId=b.project_id, branchId=b.branch_id)),
                           ("B's branch", dict(branchId=b.branch_id)),
                           ("B's capsule", dict(visualStyleCapsuleId=capsule))):
            r = jh.post_job(s, a.token, a.body("into %s" % what, **over))
            self.assertEqual(r.status, 403, "%s: %r" % (what, r))
            self.assertEqual(r.error_code(), "FORBIDDEN", r)
        self.assertEqual(s.psql("SELECT count(*) FROM public.image_generation_jobs"
                                " WHERE user_id = '%s'" % a.id).strip(), "0")

    def test_rls_disabled_no_retry_into_project_given_away(self):
        s = self.stack
        a, b = jh.seed_user(s, "gone-a"), jh.seed_user(s, "gone-b")
        job = self.created(jh.post_job(s, a.token, a.body("A's job, then B's project")))
        self.assertEqual(jh.cancel_job(s, a.token, job).status, 200)
        # the project changes hands: A's old job stays A's, the project not
        s.psql("UPDATE public.projects SET owner_id = '%s' WHERE id = '%s'"
               % (b.id, a.project_id))
        r = jh.retry_job(s, a.token, job)
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.error_code(), "FORBIDDEN", r)
        self.assertEqual(s.psql("SELECT count(*) FROM public.image_generation_jobs"
                                " WHERE retry_of = '%s'" % job).strip(), "0")

    # ------------------------------------------------------------ helpers

    def created(self, r):
        self.assertEqual(r.status, 202, r)
        return r.data["jobId"]

    def assert_not_found(self, r, what):
        self.assertEqual(r.status, 404, "%s of B's job as A: %r" % (what, r))
        self.assertEqual(r.error_code(), "NOT_FOUND", r)


SINGLE_ROLE = "imagegen_single"


class SingleRole(harness.StackTestCase):
    """One login role for everything, granted authenticated and service_role
    (as imagegen_app was before the split), IMAGEGEN_WORKER_DATABASE_URL
    empty: the fallback of single-role setups."""

    @classmethod
    def setUpClass(cls):
        cls.stack_args = dict(pool=None, nginx=True, extra_env=jh.pool_env())
        super().setUpClass()
        # The pool once Postgres runs (its URLs are known then); empty is
        # unset.
        s = cls.stack
        s.psql("CREATE ROLE %s LOGIN NOINHERIT; GRANT authenticated, service_role TO %s"
               % (SINGLE_ROLE, SINGLE_ROLE))
        url = s.app_url().replace(harness.APP_ROLE + "@", SINGLE_ROLE + "@", 1)
        s.start_pool(mode="master", workers=2,
                     extra_env={"DATABASE_URL": url, "IMAGEGEN_WORKER_DATABASE_URL": ""})

    def test_worker_url_unset_falls_back_to_database_url_and_warns(self):
        s = self.stack
        u = jh.seed_user(s, "single")
        r = jh.post_job(s, u.token, u.body("one role for all"))
        self.assertEqual(r.status, 202, r)
        job = jh.wait_job(s, u.token, r.data["jobId"], timeout=30)
        self.assertEqual(job["status"], "completed", job)
        m = s.http("GET", "/metrics")
        self.assertEqual(m.status, 200, m)
        self.assertIn(b'imagegen_jobs{status="completed"}', m.body)
        deadline = time.monotonic() + 5
        while "bypass row-level security" not in s.read_pool_log():
            if time.monotonic() > deadline:
                self.fail("no warning that %s bypasses RLS in the pool log" % SINGLE_ROLE)
            time.sleep(0.1)
        self.assertIn("DATABASE_URL's role %s can reach roles that bypass row-level security"
                      " (service_role)" % SINGLE_ROLE,
                      s.read_pool_log())
