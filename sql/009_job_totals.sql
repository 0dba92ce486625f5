-- 009_job_totals.sql - running totals for /metrics counters that only grow.
--
-- /metrics used to sum the job table as it is now, so its "counters" went
-- down when rows went (a job deleted, a project's jobs cascading away):
-- Prometheus reads that as a reset and counts everything again.  These
-- tables are added to, never subtracted from:
--
--   image_job_totals            one row per final status: jobs, actual and
--                               estimated cost, run-time sum and count;
--                               added to by a trigger when a job ends
--   image_job_failure_totals    failed jobs by error code (same trigger)
--   image_provider_error_totals every failed provider call by code, retried
--                               or not, added to by the executor
--
-- Seeded from the jobs that ended before this migration, so the counters
-- go on from the figures /metrics showed.  Only service_role reads them
-- (row-level security on, no policy: `authenticated` sees nothing).

CREATE TABLE public.image_job_totals (
	status          text PRIMARY KEY
	                CHECK (status IN ('completed', 'failed', 'canceled')),
	jobs            bigint NOT NULL DEFAULT 0,
	actual_cost     numeric NOT NULL DEFAULT 0,
	estimated_cost  numeric NOT NULL DEFAULT 0,
	duration_sum    double precision NOT NULL DEFAULT 0,
	duration_count  bigint NOT NULL DEFAULT 0
);

CREATE TABLE public.image_job_failure_totals (
	code    text PRIMARY KEY,
	jobs    bigint NOT NULL DEFAULT 0
);

CREATE TABLE public.image_provider_error_totals (
	code    text PRIMARY KEY CHECK (code ~ '^[A-Z_]{1,40}$'),
	errors  bigint NOT NULL DEFAULT 0
);

INSERT INTO public.image_job_totals
	(status, jobs, actual_cost, estimated_cost, duration_sum, duration_count)
SELECT status, count(*), coalesce(sum(actual_cost), 0),
       coalesce(sum(estimated_cost), 0),
       coalesce(sum(EXTRACT(EPOCH FROM (completed_at - started_at)))
           FILTER (WHERE completed_at IS NOT NULL AND started_at IS NOT NULL), 0),
       count(*) FILTER (WHERE completed_at IS NOT NULL AND started_at IS NOT NULL)
FROM public.image_generation_jobs
WHERE status IN ('completed', 'failed', 'canceled')
GROUP BY status;

INSERT INTO public.image_job_failure_totals (code, jobs)
SELECT error_code, count(*) FROM public.image_generation_jobs
WHERE status = 'failed' AND error_code IS NOT NULL
GROUP BY error_code;

CREATE FUNCTION public.image_job_totals_add()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	timed boolean := NEW.completed_at IS NOT NULL AND NEW.started_at IS NOT NULL;
BEGIN
	INSERT INTO public.image_job_totals AS t
	    (status, jobs, actual_cost, estimated_cost, duration_sum, duration_count)
	VALUES (NEW.status, 1, coalesce(NEW.actual_cost, 0),
	    coalesce(NEW.estimated_cost, 0),
	    CASE WHEN timed THEN EXTRACT(EPOCH FROM (NEW.completed_at - NEW.started_at))
	        ELSE 0 END,
	    CASE WHEN timed THEN 1 ELSE 0 END)
	ON CONFLICT (status) DO UPDATE SET
	    jobs = t.jobs + 1,
	    actual_cost = t.actual_cost + EXCLUDED.actual_cost,
	    estimated_cost = t.estimated_cost + EXCLUDED.estimated_cost,
	    duration_sum = t.duration_sum + EXCLUDED.duration_sum,
	    duration_count = t.duration_count + EXCLUDED.duration_count;
	IF NEW.status = 'failed' AND NEW.error_code IS NOT NULL THEN
		INSERT INTO public.image_job_failure_totals AS f (code, jobs)
		VALUES (NEW.error_code, 1)
		ON CONFLICT (code) DO UPDATE SET jobs = f.jobs + 1;
	END IF;
	RETURN NULL;
END
$fn$;

CREATE TRIGGER image_generation_jobs_totals
	AFTER UPDATE ON public.image_generation_jobs
	FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
	    AND NEW.status IN ('completed', 'failed', 'canceled'))
	EXECUTE FUNCTION public.image_job_totals_add();

REVOKE ALL ON FUNCTION public.image_job_totals_add()
	FROM PUBLIC, anon, authenticated, service_role;

REVOKE ALL ON TABLE public.image_job_totals, public.image_job_failure_totals,
	public.image_provider_error_totals
	FROM PUBLIC, anon, authenticated, service_role;
GRANT SELECT ON TABLE public.image_job_totals, public.image_job_failure_totals
	TO service_role;
GRANT SELECT, INSERT, UPDATE ON TABLE public.image_provider_error_totals
	TO service_role;
ALTER TABLE public.image_job_totals ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.image_job_failure_totals ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.image_provider_error_totals ENABLE ROW LEVEL SECURITY;
