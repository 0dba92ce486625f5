"""What the clients read besides jobs, and what they may leave out:
GET /api/projects (the caller's projects and branches), GET
/api/images/jobs/{jobId}/events (a job's history), and POST
/api/images/generate without branchId (the project's main branch).
HTTP through real nginx to a real pool and Postgres, local provider.

  ProjectsAndEvents   one stack: listing order and shape, row-level
                      security, id validation, the events of a job run
                      with a style capsule, the default branch
"""

import os
import re
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402
import jobs_helper as jh  # noqa: E402

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class ProjectsAndEvents(harness.StackTestCase):

    @classmethod
    def setUpClass(cls):
        cls.stack_args = dict(pool="master", workers=2, extra_env=jh.pool_env())
        super().setUpClass()

    def assert_error(self, r, status, code, field=None):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.content_type, "application/json", r)
        self.assertEqual(r.error_code(), code, r)
        if field is not None:
            self.assertTrue(r.data["error"]["message"].startswith(field + ":"),
                            "message should name %s: %r" % (field, r))

    def projects(self, token):
        return self.stack.http("GET", "/api/projects", headers=jh.auth(token))

    def events(self, token, job_id):
        return self.stack.http("GET", "/api/images/jobs/%s/events" % job_id,
                               headers=jh.auth(token))

    # ------------------------------------------------------------ projects

    def test_projects_newest_first_branches_main_first_then_by_name(self):
        s = self.stack
        u = jh.seed_user(s, "lister")
        older, newer, bare = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
        b_zed, b_alpha, b_main = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
        # the seeded project is now(); these are dated around it
        s.psql("INSERT INTO public.projects (id, owner_id, title, created_at) VALUES"
               " ('%s', '%s', 'Older \"quoted\" one', now() - interval '2 days'),"
               " ('%s', '%s', 'Newer', now() + interval '1 day'),"
               " ('%s', '%s', 'No branches', now() - interval '1 day');"
               "INSERT INTO public.branches (id, project_id, name, is_main) VALUES"
               " ('%s', '%s', 'zed', false), ('%s', '%s', 'alpha', false),"
               " ('%s', '%s', 'trunk', true);"
               % (older, u.id, newer, u.id, bare, u.id,
                  b_zed, newer, b_alpha, newer, b_main, newer))
        other = jh.seed_user(s, "stranger")
        r = self.projects(u.token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.content_type, "application/json", r)
        self.assertEqual(set(r.data), {"projects"}, r)
        ps = r.data["projects"]
        self.assertEqual([p["id"] for p in ps], [newer, u.project_id, bare, older], r)
        for p in ps:
            self.assertEqual(set(p), {"id", "name", "createdAt", "branches"}, p)
            self.assertRegex(p["createdAt"], ISO_RE)
            for b in p["branches"]:
                self.assertEqual(set(b), {"id", "name", "isMain"}, b)
                self.assertRegex(b["id"], UUID_RE)
        self.assertEqual(ps[0]["name"], "Newer")
        self.assertEqual(ps[0]["branches"],
                         [{"id": b_main, "name": "trunk", "isMain": True},
                          {"id": b_alpha, "name": "alpha", "isMain": False},
                          {"id": b_zed, "name": "zed", "isMain": False}], r)
        self.assertEqual(ps[1]["branches"],
                         [{"id": u.branch_id, "name": "main", "isMain": True}])
        self.assertEqual(ps[2]["branches"], [])
        self.assertEqual(ps[3]["name"], 'Older "quoted" one')
        self.assertEqual(ps[3]["branches"], [])
        # the stranger sees only its own
        r = self.projects(other.token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([p["id"] for p in r.data["projects"]], [other.project_id], r)

    def test_projects_none_is_an_empty_list(self):
        uid = str(uuid.uuid4())
        self.stack.psql("INSERT INTO auth.users (id, email) VALUES ('%s', 'none-%s@example.test')"
                        % (uid, uid[:8]))
        r = self.projects(jh.mint_token(uid))
        self.assertEqual((r.status, r.data), (200, {"projects": []}), r)

    def test_projects_needs_a_token(self):
        r = self.stack.http("GET", "/api/projects")
        self.assert_error(r, 401, "UNAUTHORIZED")
        r = self.stack.http("POST", "/api/projects", headers=jh.auth(jh.mint_token(
            str(uuid.uuid4()))))
        self.assert_error(r, 405, "METHOD_NOT_ALLOWED")

    # ------------------------------------------------------------ events

    def test_events_of_a_job_with_a_style_capsule_oldest_first(self):
        s = self.stack
        u = jh.seed_user(s, "history")
        cid = str(uuid.uuid4())
        s.psql("INSERT INTO public.visual_style_capsules (id, user_id, name, style_text)"
               " VALUES ('%s', '%s', 'Ink wash', 'Sumi-e ink wash.')" % (cid, u.id))
        r = jh.post_job(s, u.token, u.body("a heron", visualStyleCapsuleId=cid))
        self.assertEqual(r.status, 202, r)
        jid, rid = r.data["jobId"], r.header("X-Request-Id")
        job = jh.wait_job(s, u.token, jid, timeout=30)
        self.assertEqual(job["status"], "completed", job)
        r = self.events(u.token, jid)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(set(r.data), {"jobId", "events"}, r)
        self.assertEqual(r.data["jobId"], jid)
        evs = r.data["events"]
        for e in evs:
            self.assertEqual(set(e), {"id", "event", "fromStatus", "toStatus", "detail",
                                      "createdAt"}, e)
            self.assertIsInstance(e["id"], int, e)
            self.assertRegex(e["createdAt"], ISO_RE)
        self.assertEqual([e["id"] for e in evs], sorted(e["id"] for e in evs))
        status = [(e["fromStatus"], e["toStatus"]) for e in evs if e["event"] == "status"]
        self.assertEqual(status, [(None, "queued"), ("queued", "processing"),
                                  ("processing", "generating"), ("generating", "uploading"),
                                  ("uploading", "completed")], r)
        self.assertEqual(evs[0]["detail"], {"attempts": 0, "request_id": rid}, r)
        (cap,) = [e for e in evs if e["event"] == "style_capsule_applied"]
        self.assertEqual(cap["detail"], {"capsuleId": cid, "name": "Ink wash",
                                         "shared": False, "styleText": "Sumi-e ink wash."})
        self.assertIsNone(cap["fromStatus"])
        self.assertIsNone(cap["toStatus"])
        # the same rows the database holds, in the same order
        ids = s.psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM"
                     " public.image_generation_job_events WHERE job_id = '%s'" % jid).strip()
        self.assertEqual([str(e["id"]) for e in evs], ids.split(","))

    def test_events_of_another_users_job_is_404_bad_id_400(self):
        s = self.stack
        a, b = jh.seed_user(s, "ev-a"), jh.seed_user(s, "ev-b")
        r = jh.post_job(s, b.token, b.body("B's"))
        self.assertEqual(r.status, 202, r)
        jid = r.data["jobId"]
        self.assertEqual(self.events(b.token, jid).status, 200)
        self.assert_error(self.events(a.token, jid), 404, "NOT_FOUND")
        self.assert_error(self.events(a.token, str(uuid.uuid4())), 404, "NOT_FOUND")
        for bad in ("not-a-uuid", jid[:35] + "g", jid + "0"):
            self.assert_error(self.events(a.token, bad), 400, "VALIDATION_ERROR", "jobId")
        self.assert_error(s.http("GET", "/api/images/jobs/%s/events" % jid), 401,
                          "UNAUTHORIZED")

    def test_events_of_a_job_without_events_is_an_empty_list(self):
        s = self.stack
        u = jh.seed_user(s, "ev-none")
        r = jh.post_job(s, u.token, u.body("gone history"))
        jid = r.data["jobId"]
        jh.wait_job(s, u.token, jid)
        s.psql("DELETE FROM public.image_generation_job_events WHERE job_id = '%s'" % jid)
        r = self.events(u.token, jid)
        self.assertEqual((r.status, r.data), (200, {"jobId": jid, "events": []}), r)

    # ------------------------------------------------------------ branchId

    def branch_of(self, job_id):
        return self.stack.psql("SELECT branch_id FROM public.image_generation_jobs"
                               " WHERE id = '%s'" % job_id).strip()

    def test_generate_without_branch_id_uses_the_main_branch(self):
        s = self.stack
        u = jh.seed_user(s, "nobranch")
        side = str(uuid.uuid4())
        s.psql("INSERT INTO public.branches (id, project_id, name) VALUES ('%s', '%s', 'aaa')"
               % (side, u.project_id))
        for what, body in (("absent", {k: v for k, v in u.body("no branch").items()
                                       if k != "branchId"}),
                           ("null", u.body("null branch", branchId=None))):
            r = jh.post_job(s, u.token, body)
            self.assertEqual(r.status, 202, "%s: %r" % (what, r))
            self.assertEqual(set(r.data), {"jobId", "status"}, r)
            jid = r.data["jobId"]
            self.assertEqual(self.branch_of(jid), u.branch_id, what)
            job = jh.wait_job(s, u.token, jid)
            self.assertEqual((job["status"], job["branchId"]), ("completed", u.branch_id), job)
        # a branch named is still that branch
        r = jh.post_job(s, u.token, u.body("the side branch", branchId=side))
        self.assertEqual(r.status, 202, r)
        self.assertEqual(self.branch_of(r.data["jobId"]), side)

    def test_generate_without_branch_id_no_main_branch_400_names_branch_id(self):
        s = self.stack
        u = jh.seed_user(s, "nomain")
        pid, bid = str(uuid.uuid4()), str(uuid.uuid4())
        s.psql("INSERT INTO public.projects (id, owner_id, title) VALUES ('%s', '%s', 'x');"
               "INSERT INTO public.branches (id, project_id, name) VALUES ('%s', '%s', 'dev')"
               % (pid, u.id, bid, pid))
        body = {"projectId": pid, "jobType": "master_asset", "prompt": "nowhere",
                "width": 64, "height": 64}
        r = jh.post_job(s, u.token, body, headers={"Idempotency-Key": "k-" + pid})
        self.assert_error(r, 400, "VALIDATION_ERROR", "branchId")
        self.assertIn("main branch", r.data["error"]["message"])
        # naming the branch works
        r = jh.post_job(s, u.token, dict(body, branchId=bid))
        self.assertEqual(r.status, 202, r)
        # none was made by the refused one
        self.assertEqual(s.psql("SELECT count(*) FROM public.image_generation_jobs"
                                " WHERE user_id = '%s' AND project_id = '%s'"
                                % (u.id, pid)).strip(), "1")
        # another user's project (with a main branch): 403 on the project,
        # before anything is said about its branches
        other = jh.seed_user(s, "nomain-other")
        r = jh.post_job(s, u.token, dict(body, projectId=other.project_id))
        self.assert_error(r, 403, "FORBIDDEN", "projectId")

    def test_generate_without_branch_id_idempotent_replay(self):
        """The fingerprint is of the request as sent: the same body
        without branchId replays its job, even after the main branch
        moved; naming the branch with the same key is another request."""
        s = self.stack
        u = jh.seed_user(s, "nobranch-idem")
        body = {k: v for k, v in u.body("once").items() if k != "branchId"}
        key = {"Idempotency-Key": "idem-" + u.id}
        first = jh.post_job(s, u.token, body, headers=key)
        self.assertEqual(first.status, 202, first)
        jid = first.data["jobId"]
        again = jh.post_job(s, u.token, body, headers=key)
        self.assertEqual(again.status, 200, again)
        self.assertEqual(again.header("Idempotent-Replayed"), "true", again)
        self.assertEqual(again.data["jobId"], jid, again)
        # the main branch moves: the replay still finds the job, on its branch
        new_main = str(uuid.uuid4())
        s.psql("UPDATE public.branches SET is_main = false WHERE id = '%s';"
               "INSERT INTO public.branches (id, project_id, name, is_main)"
               " VALUES ('%s', '%s', 'next', true)" % (u.branch_id, new_main, u.project_id))
        again = jh.post_job(s, u.token, body, headers=key)
        self.assertEqual((again.status, again.data["jobId"]), (200, jid), again)
        self.assertEqual(self.branch_of(jid), u.branch_id)
        # the same key with branchId given: a different request
        r = jh.post_job(s, u.token, dict(body, branchId=u.branch_id), headers=key)
        self.assert_error(r, 422, "IDEMPOTENCY_KEY_REUSED", "idempotencyKey")
        # a new key without branchId: the new main branch
        r = jh.post_job(s, u.token, body, headers={"Idempotency-Key": "idem2-" + u.id})
        self.assertEqual(r.status, 202, r)
        self.assertEqual(self.branch_of(r.data["jobId"]), new_main)
        self.assertEqual(s.psql("SELECT count(*) FROM public.image_generation_jobs"
                                " WHERE user_id = '%s'" % u.id).strip(), "2")

    def test_replay_without_branch_id_after_the_project_lost_its_main_branch(self):
        """A replay without branchId answers with its job even when the
        project has no main branch any more (not 400 "no main branch"):
        the key's job is looked up before the missing main branch is an
        error. A new key, or the key with another body, still is one."""
        s = self.stack
        u = jh.seed_user(s, "nomain-replay")
        body = {k: v for k, v in u.body("before the loss").items() if k != "branchId"}
        key = {"Idempotency-Key": "lost-" + u.id}
        first = jh.post_job(s, u.token, body, headers=key)
        self.assertEqual(first.status, 202, first)
        jid = first.data["jobId"]
        s.psql("UPDATE public.branches SET is_main = false WHERE id = '%s'" % u.branch_id)
        again = jh.post_job(s, u.token, body, headers=key)
        self.assertEqual(again.status, 200, again)
        self.assertEqual(again.header("Idempotent-Replayed"), "true", again)
        self.assertEqual(again.data["jobId"], jid, again)
        self.assertEqual(self.branch_of(jid), u.branch_id)
        # the key with another request: reused, not the branch's 400
        r = jh.post_job(s, u.token, dict(body, prompt="another"), headers=key)
        self.assert_error(r, 422, "IDEMPOTENCY_KEY_REUSED", "idempotencyKey")
        # a key never used, and no key at all: no main branch, 400
        for h in ({"Idempotency-Key": "lost2-" + u.id}, {}):
            r = jh.post_job(s, u.token, body, headers=h)
            self.assert_error(r, 400, "VALIDATION_ERROR", "branchId")
        self.assertEqual(s.psql("SELECT count(*) FROM public.image_generation_jobs"
                                " WHERE user_id = '%s'" % u.id).strip(), "1")
