-- 006_job_notify.sql - wake `imagegen worker` when a job is queued.
--
-- NOTIFY image_jobs, '<job id>' on every insert and on every requeue, sent
-- at commit.  A worker that misses one (not listening yet) still finds the
-- job on its next periodic sweep; the notification only cuts the wait.

CREATE OR REPLACE FUNCTION public.image_generation_jobs_notify()
RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
	IF NEW.status = 'queued' THEN
		PERFORM pg_notify('image_jobs', NEW.id::text);
	END IF;
	RETURN NULL;
END
$fn$;

CREATE TRIGGER image_generation_jobs_notify
	AFTER INSERT OR UPDATE OF status ON public.image_generation_jobs
	FOR EACH ROW EXECUTE FUNCTION public.image_generation_jobs_notify();

REVOKE ALL ON FUNCTION public.image_generation_jobs_notify()
	FROM PUBLIC, anon, authenticated, service_role;
