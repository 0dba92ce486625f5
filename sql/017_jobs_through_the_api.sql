-- What the request role may write on its own jobs: only what the API
-- itself writes, so that a Supabase user going around the API (PostgREST
-- on public.image_generation_jobs, with their own token) can neither pick
-- a job's price, provider or prompt nor escape the spending limits.
--
-- * INSERT as `authenticated` needs the responder's transaction settings
--   (imagegen.budget_defaults, always 'D|M|DD' from a responder, see
--   src/db/db.c): without them no default budget and no rate limit would
--   apply, and the row's estimated_cost would be the caller's word.
--   PostgREST cannot set imagegen.* settings, so a direct INSERT is refused
--   (SQLSTATE 42501). Roles other than `authenticated` (service_role, the
--   owner) are not concerned.
-- * UPDATE as `authenticated`: the columns a cancel writes (status,
--   cancel_requested) and nothing else, and status only to 'canceled'.
-- * DELETE (the row, or its project or user by cascade) of a job that
--   was running charges its estimate (or what the provider reported), as
--   a completed job's: its provider call may be under way and bill. A
--   queued job's reservation is still given back (011).

CREATE FUNCTION public.image_generation_jobs_request_role()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
	IF TG_OP = 'INSERT' THEN
		IF position('|' IN coalesce(current_setting('imagegen.budget_defaults',
		    true), '')) = 0 THEN
			RAISE EXCEPTION USING ERRCODE = '42501',
			    MESSAGE = 'jobs are created through the imagegen API'
				' (POST /api/images/generate), not by an INSERT of'
				' their own';
		END IF;
	ELSIF NEW.status IS DISTINCT FROM OLD.status
	    AND NEW.status IS DISTINCT FROM 'canceled' THEN
		RAISE EXCEPTION USING ERRCODE = '42501',
		    MESSAGE = format('a job''s owner may only cancel it, not set'
			' its status to %s', NEW.status);
	END IF;
	RETURN NEW;
END
$fn$;
REVOKE ALL ON FUNCTION public.image_generation_jobs_request_role()
	FROM PUBLIC, anon, authenticated, service_role;

-- Only the request role's rows reach the function (the executors and the
-- sweeper are service_role).
CREATE TRIGGER image_generation_jobs_request_role
	BEFORE INSERT OR UPDATE ON public.image_generation_jobs
	FOR EACH ROW WHEN (current_user = 'authenticated')
	EXECUTE FUNCTION public.image_generation_jobs_request_role();

REVOKE UPDATE ON TABLE public.image_generation_jobs FROM authenticated;
GRANT UPDATE (status, cancel_requested) ON TABLE public.image_generation_jobs
	TO authenticated;

CREATE OR REPLACE FUNCTION public.image_generation_jobs_budget_delete()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	j public.image_generation_jobs := OLD;
BEGIN
	IF OLD.status = 'queued' THEN
		j.status := 'canceled';
		PERFORM public.image_budget_settle(j);
	ELSIF OLD.status NOT IN ('completed', 'failed', 'canceled') THEN
		-- running: charged as if completed (actual, else the estimate)
		j.status := 'completed';
		PERFORM public.image_budget_settle(j);
	END IF;
	RETURN OLD;
END
$fn$;
