-- 004_access.sql - privileges and row-level security.
--
-- Requests run as `authenticated` (SET LOCAL ROLE authenticated, with the
-- verified token in request.jwt.claims), so every policy below keys on
-- auth.uid().  `service_role` has BYPASSRLS and full privileges (executor,
-- sweeper, operator tools).  `anon` gets schema usage only: no table at all.
--
-- Privileges are revoked before they are granted because Supabase's default
-- privileges give anon/authenticated/service_role ALL (TRUNCATE included,
-- which ignores row-level security) on every new table in `public`.
--
-- Applied by `imagegen migrate` inside one transaction, as the table owner.

GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;

-- On Supabase these grants exist already and `postgres` may not hold the
-- grant option on `auth`; grant only what is missing.
DO $do$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
		IF NOT has_schema_privilege(r, 'auth', 'USAGE') THEN
			EXECUTE format('GRANT USAGE ON SCHEMA auth TO %I', r);
		END IF;
	END LOOP;
END
$do$;

REVOKE ALL ON TABLE
	public.projects, public.branches, public.visual_style_capsules,
	public.image_generation_jobs, public.image_generation_job_events
	FROM PUBLIC, anon, authenticated, service_role;
REVOKE ALL ON SEQUENCE public.image_generation_job_events_id_seq
	FROM PUBLIC, anon, authenticated, service_role;

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE
	public.projects, public.branches, public.visual_style_capsules,
	public.image_generation_jobs
	TO authenticated;
GRANT SELECT ON TABLE public.image_generation_job_events TO authenticated;
GRANT USAGE ON SEQUENCE public.image_generation_job_events_id_seq
	TO authenticated;

GRANT ALL ON TABLE
	public.projects, public.branches, public.visual_style_capsules,
	public.image_generation_jobs, public.image_generation_job_events
	TO service_role;
GRANT ALL ON SEQUENCE public.image_generation_job_events_id_seq
	TO service_role;

-- Trigger functions are not for calling; the SECURITY DEFINER one least of
-- all.  (Triggers fire regardless of EXECUTE privilege.)
REVOKE ALL ON FUNCTION
	public.set_updated_at(),
	public.image_generation_jobs_guard(),
	public.image_generation_jobs_log_status()
	FROM PUBLIC, anon, authenticated, service_role;

-- The migrator's bookkeeping table (created by `imagegen migrate`, not
-- here) must not be reachable through Supabase's default grants either.
DO $do$
BEGIN
	IF pg_catalog.to_regclass('public.schema_migrations') IS NOT NULL THEN
		REVOKE ALL ON TABLE public.schema_migrations FROM anon, authenticated;
	END IF;
END
$do$;

ALTER TABLE public.projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.branches ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.visual_style_capsules ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.image_generation_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.image_generation_job_events ENABLE ROW LEVEL SECURITY;

-- (SELECT auth.uid()) rather than auth.uid(): evaluated once per statement
-- (an InitPlan), not once per row.

-- Projects: the owner only.
CREATE POLICY projects_owner ON public.projects
	FOR ALL TO authenticated
	USING (owner_id = (SELECT auth.uid()))
	WITH CHECK (owner_id = (SELECT auth.uid()));

-- Branches: through their project's owner.
CREATE POLICY branches_project_owner ON public.branches
	FOR ALL TO authenticated
	USING (EXISTS (
		SELECT 1 FROM public.projects p
		WHERE p.id = branches.project_id
		  AND p.owner_id = (SELECT auth.uid())))
	WITH CHECK (EXISTS (
		SELECT 1 FROM public.projects p
		WHERE p.id = branches.project_id
		  AND p.owner_id = (SELECT auth.uid())));

-- Capsules: read own, shared (user_id NULL) and public ones; write own only.
CREATE POLICY visual_style_capsules_read ON public.visual_style_capsules
	FOR SELECT TO authenticated
	USING (user_id = (SELECT auth.uid()) OR user_id IS NULL OR is_public);
CREATE POLICY visual_style_capsules_insert_own ON public.visual_style_capsules
	FOR INSERT TO authenticated
	WITH CHECK (user_id = (SELECT auth.uid()));
CREATE POLICY visual_style_capsules_update_own ON public.visual_style_capsules
	FOR UPDATE TO authenticated
	USING (user_id = (SELECT auth.uid()))
	WITH CHECK (user_id = (SELECT auth.uid()));
CREATE POLICY visual_style_capsules_delete_own ON public.visual_style_capsules
	FOR DELETE TO authenticated
	USING (user_id = (SELECT auth.uid()));

-- Jobs: own only.  A job may only be written into a project the caller owns,
-- on a branch of that project, with a style capsule the caller may read.
CREATE POLICY image_generation_jobs_select_own ON public.image_generation_jobs
	FOR SELECT TO authenticated
	USING (user_id = (SELECT auth.uid()));
CREATE POLICY image_generation_jobs_insert_own ON public.image_generation_jobs
	FOR INSERT TO authenticated
	WITH CHECK (
		user_id = (SELECT auth.uid())
		AND EXISTS (
			SELECT 1
			FROM public.projects p
			JOIN public.branches b ON b.project_id = p.id
			WHERE p.id = image_generation_jobs.project_id
			  AND b.id = image_generation_jobs.branch_id
			  AND p.owner_id = (SELECT auth.uid()))
		AND (image_generation_jobs.visual_style_capsule_id IS NULL
		  OR EXISTS (
			SELECT 1 FROM public.visual_style_capsules c
			WHERE c.id = image_generation_jobs.visual_style_capsule_id
			  AND (c.user_id = (SELECT auth.uid()) OR c.user_id IS NULL
			       OR c.is_public))));
CREATE POLICY image_generation_jobs_update_own ON public.image_generation_jobs
	FOR UPDATE TO authenticated
	USING (user_id = (SELECT auth.uid()))
	WITH CHECK (
		user_id = (SELECT auth.uid())
		AND EXISTS (
			SELECT 1
			FROM public.projects p
			JOIN public.branches b ON b.project_id = p.id
			WHERE p.id = image_generation_jobs.project_id
			  AND b.id = image_generation_jobs.branch_id
			  AND p.owner_id = (SELECT auth.uid())));
CREATE POLICY image_generation_jobs_delete_own ON public.image_generation_jobs
	FOR DELETE TO authenticated
	USING (user_id = (SELECT auth.uid()));

-- Events: readable for own jobs; written only by the status trigger (as the
-- table owner) and by service_role.
CREATE POLICY image_generation_job_events_select_own
	ON public.image_generation_job_events
	FOR SELECT TO authenticated
	USING (EXISTS (
		SELECT 1 FROM public.image_generation_jobs j
		WHERE j.id = image_generation_job_events.job_id
		  AND j.user_id = (SELECT auth.uid())));
