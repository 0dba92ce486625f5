-- 012_job_done_notify.sql - tell the responders when a job ends.
--
-- NOTIFY image_job_done, '<job id>' when a job becomes completed, failed or
-- canceled, sent at commit.  A responder holding a `Prefer: wait` request
-- LISTENs on it and reads the job again when its id arrives (src/http/
-- h_jobs.c); one that misses it answers 202 when its wait runs out, as it
-- would anyway.  The payload is only the id: the job itself is read as the
-- waiting user, through row-level security.  LISTEN needs no privilege, so
-- the responders' login role (GRANT authenticated) may listen.

CREATE OR REPLACE FUNCTION public.image_generation_jobs_notify_done()
RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
	PERFORM pg_notify('image_job_done', NEW.id::text);
	RETURN NULL;
END
$fn$;

CREATE TRIGGER image_generation_jobs_notify_done
	AFTER UPDATE OF status ON public.image_generation_jobs
	FOR EACH ROW
	WHEN (OLD.status IS DISTINCT FROM NEW.status
	      AND NEW.status IN ('completed', 'failed', 'canceled'))
	EXECUTE FUNCTION public.image_generation_jobs_notify_done();

REVOKE ALL ON FUNCTION public.image_generation_jobs_notify_done()
	FROM PUBLIC, anon, authenticated, service_role;
