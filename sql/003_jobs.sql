-- 003_jobs.sql - image generation jobs, their event log, and the job state
-- machine (enforced here, by triggers, whoever writes the row).
--
--   queued -> processing -> generating -> uploading -> completed
--   queued -> canceled | failed
--   processing | generating | uploading -> failed | canceled | queued (requeue)
--   completed, failed, canceled: terminal
--
-- A refused transition raises SQLSTATE P0001 with the message
-- "invalid job status transition: <from> -> <to>" and the constraint name
-- image_generation_jobs_status_transition (PG_DIAG_CONSTRAINT_NAME).
--
-- Applied by `imagegen migrate` inside one transaction, as the owner of the
-- tables.  Privileges and row-level security are in 004_access.sql.

CREATE TABLE public.image_generation_jobs (
	id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	-- CASCADE: deleting an account (Supabase's admin API) must not fail
	-- because the user has jobs (with NO ACTION PostgreSQL refuses it even
	-- though the projects cascade would remove them).
	user_id                 uuid NOT NULL
	                        REFERENCES auth.users (id) ON DELETE CASCADE,
	project_id              uuid NOT NULL
	                        REFERENCES public.projects (id) ON DELETE CASCADE,
	branch_id               uuid NOT NULL
	                        REFERENCES public.branches (id) ON DELETE CASCADE,
	job_type                text NOT NULL
	                        CONSTRAINT image_generation_jobs_job_type_check
	                        CHECK (job_type IN ('master_asset', 'start_frame',
	                            'end_frame', 'inpaint')),
	status                  text NOT NULL DEFAULT 'queued'
	                        CONSTRAINT image_generation_jobs_status_check
	                        CHECK (status IN ('queued', 'processing',
	                            'generating', 'uploading', 'completed',
	                            'failed', 'canceled')),
	prompt                  text NOT NULL
	                        CONSTRAINT image_generation_jobs_prompt_check
	                        CHECK (char_length(prompt) BETWEEN 1 AND 4000),
	final_prompt            text,
	visual_style_capsule_id uuid REFERENCES public.visual_style_capsules (id)
	                        ON DELETE SET NULL,
	asset_id                uuid,
	scene_id                uuid,
	shot_id                 uuid,
	source_image_url        text,
	mask_image_url          text,
	width                   integer NOT NULL DEFAULT 1024
	                        CONSTRAINT image_generation_jobs_width_check
	                        CHECK (width BETWEEN 64 AND 4096),
	height                  integer NOT NULL DEFAULT 1024
	                        CONSTRAINT image_generation_jobs_height_check
	                        CHECK (height BETWEEN 64 AND 4096),
	idempotency_key         text
	                        CONSTRAINT image_generation_jobs_idempotency_key_check
	                        CHECK (char_length(idempotency_key) <= 255),
	request_fingerprint     text,
	provider                text,
	model                   text,
	estimated_cost          numeric(12, 6),
	actual_cost             numeric(12, 6),
	currency                text NOT NULL DEFAULT 'USD',
	-- The guide's cost query reads cost_credits; keep it derived, never set.
	cost_credits            numeric(12, 6)
	                        GENERATED ALWAYS AS
	                        (coalesce(actual_cost, estimated_cost)) STORED,
	attempts                integer NOT NULL DEFAULT 0,
	max_attempts            integer NOT NULL DEFAULT 3,
	failure_stage           text
	                        CONSTRAINT image_generation_jobs_failure_stage_check
	                        CHECK (failure_stage IN ('generating', 'uploading',
	                            'persisting')),
	error_code              text,
	error_message           text,
	storage_path            text,
	public_url              text,
	mime_type               text,
	image_width             integer,
	image_height            integer,
	retry_of                uuid REFERENCES public.image_generation_jobs (id)
	                        ON DELETE SET NULL,
	cancel_requested        boolean NOT NULL DEFAULT false,
	deadline_at             timestamptz,
	created_at              timestamptz NOT NULL DEFAULT now(),
	updated_at              timestamptz NOT NULL DEFAULT now(),
	started_at              timestamptz,
	completed_at            timestamptz,

	CONSTRAINT image_generation_jobs_failed_needs_reason
		CHECK (status <> 'failed'
		    OR (failure_stage IS NOT NULL AND error_code IS NOT NULL)),
	CONSTRAINT image_generation_jobs_frame_needs_scene_shot
		CHECK (job_type NOT IN ('start_frame', 'end_frame')
		    OR (scene_id IS NOT NULL AND shot_id IS NOT NULL)),
	CONSTRAINT image_generation_jobs_inpaint_needs_source
		CHECK (job_type <> 'inpaint' OR source_image_url IS NOT NULL)
);

-- Idempotency keys are scoped to the user.
CREATE UNIQUE INDEX image_generation_jobs_user_idempotency_key
	ON public.image_generation_jobs (user_id, idempotency_key)
	WHERE idempotency_key IS NOT NULL;
-- The executor's queue scan: oldest queued first.
CREATE INDEX image_generation_jobs_queued
	ON public.image_generation_jobs (created_at, id)
	WHERE status = 'queued';
-- The sweeper and the running-jobs cap.
CREATE INDEX image_generation_jobs_running
	ON public.image_generation_jobs (status)
	WHERE status IN ('processing', 'generating', 'uploading');
-- Listings, newest first, keyset-paginated on (created_at, id).
CREATE INDEX image_generation_jobs_project_created
	ON public.image_generation_jobs (project_id, created_at DESC, id DESC);
CREATE INDEX image_generation_jobs_user_created
	ON public.image_generation_jobs (user_id, created_at DESC, id DESC);
-- Foreign keys whose parent rows get deleted.
CREATE INDEX image_generation_jobs_branch_id
	ON public.image_generation_jobs (branch_id);
CREATE INDEX image_generation_jobs_retry_of
	ON public.image_generation_jobs (retry_of) WHERE retry_of IS NOT NULL;
CREATE INDEX image_generation_jobs_capsule
	ON public.image_generation_jobs (visual_style_capsule_id)
	WHERE visual_style_capsule_id IS NOT NULL;

-- Every status change (event 'status') plus whatever else the service logs
-- (e.g. 'style_capsule_applied').  created_at is clock_timestamp() so the
-- events of one transaction keep their order in time.
CREATE TABLE public.image_generation_job_events (
	id          bigserial PRIMARY KEY,
	job_id      uuid NOT NULL
	            REFERENCES public.image_generation_jobs (id) ON DELETE CASCADE,
	from_status text,
	to_status   text,
	event       text NOT NULL,
	detail      jsonb,
	created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX image_generation_job_events_job_id
	ON public.image_generation_job_events (job_id, id);

-- The transition table, in one place.  NULL-safe: anything unknown is false.
CREATE OR REPLACE FUNCTION public.image_job_transition_allowed(
	from_status text, to_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE
AS $fn$
	SELECT coalesce(CASE from_status
		WHEN 'queued' THEN
			to_status IN ('processing', 'canceled', 'failed')
		WHEN 'processing' THEN
			to_status IN ('generating', 'failed', 'canceled', 'queued')
		WHEN 'generating' THEN
			to_status IN ('uploading', 'failed', 'canceled', 'queued')
		WHEN 'uploading' THEN
			to_status IN ('completed', 'failed', 'canceled', 'queued')
		ELSE false
	END, false)
$fn$;

-- BEFORE INSERT OR UPDATE: validates the status and maintains timestamps.
-- Runs as the caller (it touches no other table).
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
		 * and its old deadline is void.  An error code or message set by
		 * this very UPDATE (the reason for the requeue) is kept.
		 */
		NEW.completed_at := NULL;
		NEW.failure_stage := NULL;
		IF NEW.error_code IS NOT DISTINCT FROM OLD.error_code THEN
			NEW.error_code := NULL;
		END IF;
		IF NEW.error_message IS NOT DISTINCT FROM OLD.error_message THEN
			NEW.error_message := NULL;
		END IF;
		IF NEW.deadline_at IS NOT DISTINCT FROM OLD.deadline_at THEN
			NEW.deadline_at := NULL;
		END IF;
	ELSIF NEW.status <> 'failed' THEN
		NEW.failure_stage := NULL;
	END IF;
	RETURN NEW;
END
$fn$;

-- AFTER INSERT, and AFTER UPDATE when the status changed: one 'status' event.
-- SECURITY DEFINER because request roles (authenticated) may only read the
-- event table, yet a user inserting or canceling their own job must still
-- get its event written.  Owned by the migrating role, which owns the
-- event table, so row-level security does not apply to the insert.
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
		'retry_of', CASE WHEN TG_OP = 'INSERT' THEN NEW.retry_of END)));
	RETURN NULL;
END
$fn$;

CREATE TRIGGER image_generation_jobs_guard
	BEFORE INSERT OR UPDATE ON public.image_generation_jobs
	FOR EACH ROW EXECUTE FUNCTION public.image_generation_jobs_guard();
CREATE TRIGGER image_generation_jobs_log_insert
	AFTER INSERT ON public.image_generation_jobs
	FOR EACH ROW EXECUTE FUNCTION public.image_generation_jobs_log_status();
CREATE TRIGGER image_generation_jobs_log_update
	AFTER UPDATE ON public.image_generation_jobs
	FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
	EXECUTE FUNCTION public.image_generation_jobs_log_status();
