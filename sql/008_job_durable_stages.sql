-- 008_job_durable_stages.sql - a requeued job shows no error; objects of
-- jobs that ended without completing are found at once.
--
-- The executor records where it will store a job's image (storage_path,
-- public_url, cost, size) before it uploads, so a later attempt re-uploads
-- to the same place and the sweeper can delete the object of a job that
-- ended failed or canceled: the partial index is that sweep's scan.
--
-- The guard no longer keeps an error code set by a requeue: GET showed an
-- `error` on a queued (and then running) job.  The executor and the sweeper
-- write the reason as a 'requeued' event instead.

CREATE OR REPLACE FUNCTION public.image_generation_jobs_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	ts timestamptz := clock_timestamp();
BEGIN
	IF TG_OP = 'INSERT' THEN
		IF NEW.status IS DISTINCT FROM 'queued' THEN
			RAISE EXCEPTION 'invalid job status transition: (new) -> %',
			    coalesce(NEW.status, 'NULL')
			    USING ERRCODE = 'P0001',
			    CONSTRAINT = 'image_generation_jobs_status_transition',
			    SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
			    DETAIL = 'A job is always created queued.';
		END IF;
		NEW.started_at := NULL;
		NEW.completed_at := NULL;
		RETURN NEW;
	END IF;

	NEW.updated_at := ts;
	IF NEW.status IS NOT DISTINCT FROM OLD.status THEN
		RETURN NEW;
	END IF;

	IF NOT public.image_job_transition_allowed(OLD.status, NEW.status) THEN
		RAISE EXCEPTION 'invalid job status transition: % -> %',
		    OLD.status, coalesce(NEW.status, 'NULL')
		    USING ERRCODE = 'P0001',
		    CONSTRAINT = 'image_generation_jobs_status_transition',
		    SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
		    DETAIL = format('job %s', OLD.id);
	END IF;

	IF NEW.status = 'processing' AND NEW.started_at IS NULL THEN
		NEW.started_at := ts;
	END IF;

	IF NEW.status IN ('completed', 'failed', 'canceled') THEN
		NEW.completed_at := ts;
	END IF;

	IF NEW.status = 'completed' THEN
		/* Errors of earlier attempts stay in the event log only. */
		NEW.failure_stage := NULL;
		NEW.error_code := NULL;
		NEW.error_message := NULL;
	ELSIF NEW.status = 'queued' THEN
		/*
		 * Requeue of a running job: it is no longer finished or failed,
		 * its old deadline is void, and it carries no error: a queued job
		 * has none to show.  Why it was requeued is an event of its own
		 * ('requeued'); the event log keeps every earlier error.
		 */
		NEW.completed_at := NULL;
		NEW.failure_stage := NULL;
		NEW.error_code := NULL;
		NEW.error_message := NULL;
		IF NEW.deadline_at IS NOT DISTINCT FROM OLD.deadline_at THEN
			NEW.deadline_at := NULL;
		END IF;
	ELSIF NEW.status <> 'failed' THEN
		NEW.failure_stage := NULL;
	END IF;
	RETURN NEW;
END
$fn$;

CREATE INDEX image_generation_jobs_ended_with_object
	ON public.image_generation_jobs (id)
	WHERE status IN ('failed', 'canceled') AND storage_path IS NOT NULL;
