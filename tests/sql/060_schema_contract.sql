-- test: schema_contract - the tables, columns (name, type, nullability), indexes, triggers and RLS flags the C code is written against are exactly there
BEGIN;

CREATE TEMP TABLE want_columns (tbl text, col text, typ text, nullable boolean)
    ON COMMIT DROP;
INSERT INTO want_columns VALUES
    ('projects', 'id', 'uuid', false),
    ('projects', 'owner_id', 'uuid', false),
    ('projects', 'title', 'text', false),
    ('projects', 'project_type', 'text', false),
    ('projects', 'created_at', 'timestamp with time zone', false),
    ('projects', 'updated_at', 'timestamp with time zone', false),
    ('branches', 'id', 'uuid', false),
    ('branches', 'project_id', 'uuid', false),
    ('branches', 'name', 'text', false),
    ('branches', 'is_main', 'boolean', false),
    ('branches', 'created_at', 'timestamp with time zone', false),
    ('visual_style_capsules', 'id', 'uuid', false),
    ('visual_style_capsules', 'user_id', 'uuid', true),
    ('visual_style_capsules', 'name', 'text', false),
    ('visual_style_capsules', 'style_text', 'text', false),
    ('visual_style_capsules', 'is_public', 'boolean', false),
    ('visual_style_capsules', 'created_at', 'timestamp with time zone', false),
    ('visual_style_capsules', 'updated_at', 'timestamp with time zone', false),
    ('image_generation_jobs', 'id', 'uuid', false),
    ('image_generation_jobs', 'user_id', 'uuid', false),
    ('image_generation_jobs', 'project_id', 'uuid', false),
    ('image_generation_jobs', 'branch_id', 'uuid', false),
    ('image_generation_jobs', 'job_type', 'text', false),
    ('image_generation_jobs', 'status', 'text', false),
    ('image_generation_jobs', 'prompt', 'text', false),
    ('image_generation_jobs', 'final_prompt', 'text', true),
    ('image_generation_jobs', 'visual_style_capsule_id', 'uuid', true),
    ('image_generation_jobs', 'asset_id', 'uuid', true),
    ('image_generation_jobs', 'scene_id', 'uuid', true),
    ('image_generation_jobs', 'shot_id', 'uuid', true),
    ('image_generation_jobs', 'source_image_url', 'text', true),
    ('image_generation_jobs', 'mask_image_url', 'text', true),
    ('image_generation_jobs', 'width', 'integer', false),
    ('image_generation_jobs', 'height', 'integer', false),
    ('image_generation_jobs', 'idempotency_key', 'text', true),
    ('image_generation_jobs', 'request_fingerprint', 'text', true),
    ('image_generation_jobs', 'provider', 'text', true),
    ('image_generation_jobs', 'model', 'text', true),
    ('image_generation_jobs', 'estimated_cost', 'numeric(12,6)', true),
    ('image_generation_jobs', 'actual_cost', 'numeric(12,6)', true),
    ('image_generation_jobs', 'currency', 'text', false),
    ('image_generation_jobs', 'cost_credits', 'numeric(12,6)', true),
    ('image_generation_jobs', 'attempts', 'integer', false),
    ('image_generation_jobs', 'max_attempts', 'integer', false),
    ('image_generation_jobs', 'failure_stage', 'text', true),
    ('image_generation_jobs', 'error_code', 'text', true),
    ('image_generation_jobs', 'error_message', 'text', true),
    ('image_generation_jobs', 'storage_path', 'text', true),
    ('image_generation_jobs', 'public_url', 'text', true),
    ('image_generation_jobs', 'mime_type', 'text', true),
    ('image_generation_jobs', 'image_width', 'integer', true),
    ('image_generation_jobs', 'image_height', 'integer', true),
    ('image_generation_jobs', 'retry_of', 'uuid', true),
    ('image_generation_jobs', 'cancel_requested', 'boolean', false),
    ('image_generation_jobs', 'deadline_at', 'timestamp with time zone', true),
    ('image_generation_jobs', 'created_at', 'timestamp with time zone', false),
    ('image_generation_jobs', 'updated_at', 'timestamp with time zone', false),
    ('image_generation_jobs', 'started_at', 'timestamp with time zone', true),
    ('image_generation_jobs', 'completed_at', 'timestamp with time zone', true),
    ('image_generation_jobs', 'webhook_url', 'text', true),
    ('image_generation_jobs', 'webhook_events', 'text[]', true),
    ('webhook_secrets', 'user_id', 'uuid', false),
    ('webhook_secrets', 'secret', 'text', false),
    ('webhook_secrets', 'previous', 'text', true),
    ('webhook_secrets', 'previous_until', 'timestamp with time zone', true),
    ('webhook_secrets', 'created_at', 'timestamp with time zone', false),
    ('webhook_secrets', 'rotated_at', 'timestamp with time zone', true),
    ('webhook_deliveries', 'id', 'bigint', false),
    ('webhook_deliveries', 'msg_id', 'text', false),
    ('webhook_deliveries', 'job_id', 'uuid', true),
    ('webhook_deliveries', 'user_id', 'uuid', true),
    ('webhook_deliveries', 'alert_id', 'bigint', true),
    ('webhook_deliveries', 'event', 'text', false),
    ('webhook_deliveries', 'url', 'text', true),
    ('webhook_deliveries', 'body', 'text', false),
    ('webhook_deliveries', 'state', 'text', false),
    ('webhook_deliveries', 'attempts', 'integer', false),
    ('webhook_deliveries', 'next_attempt_at', 'timestamp with time zone', false),
    ('webhook_deliveries', 'last_status_code', 'integer', true),
    ('webhook_deliveries', 'last_error', 'text', true),
    ('webhook_deliveries', 'last_attempt_at', 'timestamp with time zone', true),
    ('webhook_deliveries', 'delivered_at', 'timestamp with time zone', true),
    ('webhook_deliveries', 'created_at', 'timestamp with time zone', false),
    ('image_generation_job_events', 'id', 'bigint', false),
    ('image_generation_job_events', 'job_id', 'uuid', false),
    ('image_generation_job_events', 'from_status', 'text', true),
    ('image_generation_job_events', 'to_status', 'text', true),
    ('image_generation_job_events', 'event', 'text', false),
    ('image_generation_job_events', 'detail', 'jsonb', true),
    ('image_generation_job_events', 'created_at', 'timestamp with time zone',
        false);

DO $t$
DECLARE
	r record;
	bad text := '';
BEGIN
	FOR r IN
		WITH have AS (
			SELECT c.relname AS tbl, a.attname AS col,
			    format_type(a.atttypid, a.atttypmod) AS typ,
			    NOT a.attnotnull AS nullable
			FROM pg_attribute a
			JOIN pg_class c ON c.oid = a.attrelid
			JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = 'public' AND a.attnum > 0
			  AND NOT a.attisdropped
			  AND c.relname IN (SELECT DISTINCT tbl FROM want_columns))
		(SELECT 'missing' AS what, * FROM want_columns
		 EXCEPT SELECT 'missing', * FROM have)
		UNION ALL
		(SELECT 'unexpected', * FROM have
		 EXCEPT SELECT 'unexpected', * FROM want_columns)
	LOOP
		bad := bad || format(E'\n  %s %s.%s %s%s', r.what, r.tbl, r.col,
		    r.typ, CASE WHEN r.nullable THEN '' ELSE ' NOT NULL' END);
	END LOOP;
	IF bad <> '' THEN
		RAISE EXCEPTION 'column contract broken:%', bad;
	END IF;

	IF (SELECT attgenerated FROM pg_attribute WHERE attrelid =
	    'public.image_generation_jobs'::regclass AND attname = 'cost_credits')
	    <> 's' THEN
		RAISE EXCEPTION 'cost_credits must be a stored generated column';
	END IF;

	-- Indexes the queries rely on, by what they index.
	FOR r IN SELECT * FROM (VALUES
	    ('image_generation_jobs_user_idempotency_key',
	     'CREATE UNIQUE INDEX image_generation_jobs_user_idempotency_key ON public.image_generation_jobs USING btree (user_id, idempotency_key) WHERE (idempotency_key IS NOT NULL)'),
	    ('image_generation_jobs_queued',
	     'CREATE INDEX image_generation_jobs_queued ON public.image_generation_jobs USING btree (created_at, id) WHERE (status = ''queued''::text)'),
	    ('image_generation_jobs_running',
	     'CREATE INDEX image_generation_jobs_running ON public.image_generation_jobs USING btree (status) WHERE (status = ANY (ARRAY[''processing''::text, ''generating''::text, ''uploading''::text]))'),
	    ('image_generation_jobs_project_created',
	     'CREATE INDEX image_generation_jobs_project_created ON public.image_generation_jobs USING btree (project_id, created_at DESC, id DESC)'),
	    ('image_generation_jobs_user_created',
	     'CREATE INDEX image_generation_jobs_user_created ON public.image_generation_jobs USING btree (user_id, created_at DESC, id DESC)'),
	    ('image_generation_job_events_job_id',
	     'CREATE INDEX image_generation_job_events_job_id ON public.image_generation_job_events USING btree (job_id, id)'),
	    ('branches_one_main_per_project',
	     'CREATE UNIQUE INDEX branches_one_main_per_project ON public.branches USING btree (project_id) WHERE is_main')
	    ) AS v(name, def)
	LOOP
		IF (SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'
		    AND indexname = r.name) IS DISTINCT FROM r.def THEN
			RAISE EXCEPTION 'index % missing or different: %', r.name,
			    (SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'
			     AND indexname = r.name);
		END IF;
	END LOOP;

	IF EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n
	    ON n.oid = c.relnamespace
	    WHERE n.nspname = 'public' AND c.relkind = 'r'
	      AND c.relname IN (SELECT DISTINCT tbl FROM want_columns)
	      AND NOT c.relrowsecurity) THEN
		RAISE EXCEPTION 'row-level security is off on a public table';
	END IF;

	-- the state machine's three triggers, by name (006 adds a notify one;
	-- 019 puts the insert's in zz_admit, the last AFTER INSERT trigger)
	IF (SELECT count(*) FROM pg_trigger WHERE tgrelid =
	    'public.image_generation_jobs'::regclass AND NOT tgisinternal
	    AND tgenabled = 'O' AND tgname IN ('image_generation_jobs_guard',
	    'image_generation_jobs_zz_admit', 'image_generation_jobs_log_update')) <> 3 THEN
		RAISE EXCEPTION 'image_generation_jobs must have its 3 state-machine triggers enabled';
	END IF;
	IF NOT (SELECT prosecdef FROM pg_proc WHERE oid =
	    'public.image_generation_jobs_log_status()'::regprocedure) THEN
		RAISE EXCEPTION 'the event-logging trigger function must be SECURITY DEFINER';
	END IF;
	IF NOT (SELECT prosecdef FROM pg_proc WHERE oid =
	    'public.image_generation_jobs_admit()'::regprocedure) THEN
		RAISE EXCEPTION 'the insert trigger function must be SECURITY DEFINER';
	END IF;
	-- the admitting trigger fires last among the AFTER INSERT ones (by
	-- name): the rows every POST of a user shares are locked last
	IF (SELECT max(tgname COLLATE "C") FROM pg_trigger WHERE tgrelid =
	    'public.image_generation_jobs'::regclass AND NOT tgisinternal
	    AND tgtype & 4 = 4 AND tgtype & 2 = 0) <> 'image_generation_jobs_zz_admit' THEN
		RAISE EXCEPTION 'image_generation_jobs_zz_admit must be the last AFTER INSERT trigger';
	END IF;
END
$t$;

ROLLBACK;
