-- 010_job_request_id.sql - the request that created a job, on its first event.
--
-- An executor logs each line with the job id and the id of the request that
-- created the job, so one grep follows a job from its POST to its end, even
-- when a sweeper or `imagegen worker` runs it hours later on another host.
-- The responder sets imagegen.request_id (set_config(..., true): this
-- transaction only) next to the token's claims; the status trigger keeps it
-- in the detail of the job's first event, and the executor reads it back when
-- it claims the job.  No column: the job row's shape is a contract.

CREATE OR REPLACE FUNCTION public.image_generation_jobs_log_status()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	prev text;
BEGIN
	IF TG_OP = 'UPDATE' THEN
		prev := OLD.status;
	END IF;
	INSERT INTO public.image_generation_job_events
	    (job_id, from_status, to_status, event, detail)
	VALUES (NEW.id, prev, NEW.status, 'status',
	    jsonb_strip_nulls(jsonb_build_object(
		'attempts', NEW.attempts,
		'error_code', CASE WHEN NEW.status IN ('failed', 'queued',
		    'canceled') THEN NEW.error_code END,
		'failure_stage', CASE WHEN NEW.status = 'failed'
		    THEN NEW.failure_stage END,
		'retry_of', CASE WHEN TG_OP = 'INSERT' THEN NEW.retry_of END,
		'request_id', CASE WHEN TG_OP = 'INSERT' THEN
		    nullif(current_setting('imagegen.request_id', true), '') END)));
	RETURN NULL;
END
$fn$;
