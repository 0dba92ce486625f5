-- test: webhook_outbox - the status trigger writes one outbox row per event the job's filter asks for (started on the claim, the end's event on completed/failed/canceled), none without a webhook (the trigger's WHEN clause skips those jobs), none left by a rollback; a user reads only their own jobs' deliveries and never webhook_secrets; the secret functions keep the sealed secret the service made (plain text refused), once, rotate it keeping the old for 24 h (the previous one only, after a second rotation); redeliver copies the last event with its webhook-id, for the owner only, and while the job has a pending delivery returns that one and adds nothing; a cost alert adds a budget.threshold row
BEGIN;

CREATE FUNCTION pg_temp.expect_error(q text, want text, what text)
RETURNS void
LANGUAGE plpgsql AS $f$
DECLARE
	state text;
	msg   text;
BEGIN
	BEGIN
		EXECUTE q;
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
	END;
	IF state IS NULL THEN
		RAISE EXCEPTION '%: accepted as %, want SQLSTATE %',
		    what, current_user, want;
	END IF;
	IF state <> want THEN
		RAISE EXCEPTION '%: got % "%", want %', what, state, msg, want;
	END IF;
END
$f$;

CREATE FUNCTION pg_temp.id(k text) RETURNS uuid
LANGUAGE sql STABLE AS $f$ SELECT current_setting('t.' || k)::uuid $f$;

CREATE FUNCTION pg_temp.as_user(k text) RETURNS void
LANGUAGE sql AS $f$
	SELECT set_config('request.jwt.claims',
	    json_build_object('sub', pg_temp.id(k), 'role', 'authenticated',
	        'aud', 'authenticated')::text, true)
$f$;

DO $t$
DECLARE
	a uuid := gen_random_uuid();
	b uuid := gen_random_uuid();
	p uuid := gen_random_uuid();
	br uuid := gen_random_uuid();
	j1 uuid := gen_random_uuid();
	j2 uuid := gen_random_uuid();
	j3 uuid := gen_random_uuid();
	j4 uuid := gen_random_uuid();
	evs text[];
	body jsonb;
BEGIN
	PERFORM set_config('t.a', a::text, true);
	PERFORM set_config('t.b', b::text, true);
	PERFORM set_config('t.j1', j1::text, true);
	INSERT INTO auth.users (id, email) VALUES
	    (a, a || '@test.invalid'), (b, b || '@test.invalid');
	INSERT INTO public.projects (id, owner_id, title) VALUES (p, a, 'wh');
	INSERT INTO public.branches (id, project_id, name, is_main)
	    VALUES (br, p, 'main', true);
	-- j1: both events; j2: the default (completed) filter; j3: no webhook
	INSERT INTO public.image_generation_jobs (id, user_id, project_id,
	    branch_id, job_type, prompt, webhook_url, webhook_events) VALUES
	    (j1, a, p, br, 'master_asset', 'one', 'https://example.com/h',
	     '{start,completed}'),
	    (j2, a, p, br, 'master_asset', 'two', 'https://example.com/h', NULL),
	    (j3, a, p, br, 'master_asset', 'three', NULL, NULL),
	    (j4, a, p, br, 'master_asset', 'four', 'https://example.com/h',
	     '{start}');
	UPDATE public.image_generation_jobs SET status = 'processing',
	    attempts = 1 WHERE id IN (j1, j2, j3, j4);
	UPDATE public.image_generation_jobs SET status = 'generating'
	    WHERE id IN (j1, j2, j3, j4);
	UPDATE public.image_generation_jobs SET status = 'failed',
	    failure_stage = 'generating', error_code = 'PROVIDER_ERROR'
	    WHERE id IN (j1, j2, j3, j4);
	SELECT array_agg(event ORDER BY id) INTO evs
	FROM public.webhook_deliveries WHERE job_id = j1;
	IF evs IS DISTINCT FROM ARRAY['image_job.started', 'image_job.failed'] THEN
		RAISE EXCEPTION 'j1 events: %', evs;
	END IF;
	SELECT array_agg(event ORDER BY id) INTO evs
	FROM public.webhook_deliveries WHERE job_id = j2;
	IF evs IS DISTINCT FROM ARRAY['image_job.failed'] THEN
		RAISE EXCEPTION 'j2 events: %', evs;
	END IF;
	SELECT array_agg(event ORDER BY id) INTO evs
	FROM public.webhook_deliveries WHERE job_id = j4;
	IF evs IS DISTINCT FROM ARRAY['image_job.started'] THEN
		RAISE EXCEPTION 'j4 events: %', evs;
	END IF;
	IF EXISTS (SELECT 1 FROM public.webhook_deliveries WHERE job_id = j3) THEN
		RAISE EXCEPTION 'a job without a webhook has deliveries';
	END IF;
	-- the trigger is not even called for a job without a webhook
	IF (SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t
	    WHERE t.tgname = 'image_generation_jobs_webhook'
	      AND t.tgrelid = 'public.image_generation_jobs'::regclass)
	    NOT LIKE '%webhook_url IS NOT NULL%' THEN
		RAISE EXCEPTION 'the webhook trigger runs for every job';
	END IF;
	SELECT d.body::jsonb INTO body FROM public.webhook_deliveries d
	WHERE d.job_id = j1 AND d.event = 'image_job.failed';
	IF body->>'type' <> 'image_job.failed' OR body->'data' <>
	    (SELECT public.image_job_json(j) FROM public.image_generation_jobs j
	     WHERE j.id = j1) OR body->>'timestamp' IS NULL THEN
		RAISE EXCEPTION 'body: %', body;
	END IF;
	IF (SELECT count(DISTINCT msg_id) FROM public.webhook_deliveries
	    WHERE job_id = j1) <> 2 THEN
		RAISE EXCEPTION 'each event needs its own webhook-id';
	END IF;

	-- a rolled-back change leaves nothing
	BEGIN
		INSERT INTO public.image_generation_jobs (id, user_id, project_id,
		    branch_id, job_type, prompt, webhook_url)
		VALUES (gen_random_uuid(), a, p, br, 'master_asset', 'gone',
		    'https://example.com/rb');
		UPDATE public.image_generation_jobs SET status = 'canceled'
		    WHERE webhook_url = 'https://example.com/rb';
		RAISE EXCEPTION 'roll back' USING ERRCODE = 'P0009';
	EXCEPTION WHEN SQLSTATE 'P0009' THEN
		NULL;
	END;
	IF EXISTS (SELECT 1 FROM public.webhook_deliveries
	    WHERE url = 'https://example.com/rb') THEN
		RAISE EXCEPTION 'a rolled-back change left an outbox row';
	END IF;

	-- a cost alert's row
	INSERT INTO public.cost_alerts (scope, scope_id, period, window_start,
	    threshold, spent_usd, reserved_usd, limit_usd, job_id)
	VALUES ('user', a, 'day', current_date, 80, 0.3, 0.1, 0.5, j1);
	IF (SELECT count(*) FROM public.webhook_deliveries d
	    WHERE d.event = 'budget.threshold' AND d.url IS NULL
	      AND d.user_id IS NULL
	      AND (d.body::jsonb)->'data'->>'scopeId' = a::text
	      AND ((d.body::jsonb)->'data'->>'threshold')::int = 80) <> 1 THEN
		RAISE EXCEPTION 'no budget.threshold row for the alert';
	END IF;
END
$t$;

-- As user A: their deliveries, no secrets table, one secret made once.
SET LOCAL ROLE authenticated;
SELECT pg_temp.as_user('a');
DO $t$
DECLARE
	s1 text;
	s2 text;
	n bigint;
	n2 bigint;
	q boolean;
BEGIN
	IF (SELECT count(*) FROM public.webhook_deliveries) <> 4 THEN
		RAISE EXCEPTION 'A sees % deliveries, want 4 (no alert rows)',
		    (SELECT count(*) FROM public.webhook_deliveries);
	END IF;
	PERFORM pg_temp.expect_error('SELECT * FROM public.webhook_secrets',
	    '42501', 'reading webhook_secrets');
	PERFORM pg_temp.expect_error('UPDATE public.webhook_deliveries SET'
	    ' state = ''delivered''', '42501', 'writing webhook_deliveries');
	-- the service makes and seals the secret (sql/018): the database
	-- keeps what it is given, sealed text only
	PERFORM pg_temp.expect_error(
	    'SELECT public.image_webhook_secret_rotate(''whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB'')',
	    '23514', 'rotating to a plain-text secret');
	PERFORM pg_temp.expect_error(
	    'SELECT public.image_webhook_secret(''whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB'')',
	    '23514', 'a first secret in plain text');
	IF (SELECT stored FROM public.image_webhook_secret()) IS NOT NULL
	    OR (SELECT owner FROM public.image_webhook_secret()) <> pg_temp.id('a')
	THEN
		RAISE EXCEPTION 'a read made a secret, or is not the caller''s';
	END IF;
	s1 := 'v1:' || encode(sha256(gen_random_uuid()::text::bytea),
	    'base64');
	s2 := (SELECT stored FROM public.image_webhook_secret(s1));
	IF s2 IS DISTINCT FROM s1 OR (SELECT stored FROM
	    public.image_webhook_secret('v1:' || repeat('B', 60))) <> s1 THEN
		RAISE EXCEPTION 'first use: % then %', s1, s2;
	END IF;
	PERFORM set_config('t.s1', s1, true);
	s2 := 'v1:' || encode(sha256(gen_random_uuid()::text::bytea),
	    'base64');
	IF public.image_webhook_secret_rotate(s2) <> s2
	    OR (SELECT stored FROM public.image_webhook_secret()) <> s2 THEN
		RAISE EXCEPTION 'rotation did not take: % -> %', s1, s2;
	END IF;
	-- j1's rows are pending (no deliverer here): the last one is returned
	SELECT delivery_id, queued INTO n, q
	FROM public.image_job_webhook_redeliver(pg_temp.id('j1'));
	IF q OR n <> (SELECT max(id) FROM public.webhook_deliveries
	    WHERE job_id = pg_temp.id('j1')) THEN
		RAISE EXCEPTION 'redeliver while pending: % %', n, q;
	END IF;
	RESET ROLE;
	UPDATE public.webhook_deliveries SET state = 'delivered'
	WHERE job_id = pg_temp.id('j1');
	SET LOCAL ROLE authenticated;
	SELECT delivery_id, queued INTO n, q
	FROM public.image_job_webhook_redeliver(pg_temp.id('j1'));
	IF n IS NULL OR NOT q OR (SELECT event FROM public.webhook_deliveries
	    WHERE id = n) <> 'image_job.failed' THEN
		RAISE EXCEPTION 'redeliver: % %', n, q;
	END IF;
	-- again while that one is pending: the same row, nothing added
	SELECT delivery_id, queued INTO n2, q
	FROM public.image_job_webhook_redeliver(pg_temp.id('j1'));
	IF n2 <> n OR q OR (SELECT count(*) FROM public.webhook_deliveries
	    WHERE job_id = pg_temp.id('j1')) <> 3 THEN
		RAISE EXCEPTION 'a redeliver loop grows the outbox: % % %', n, n2, q;
	END IF;
	IF (SELECT count(DISTINCT msg_id) FROM public.webhook_deliveries
	    WHERE job_id = pg_temp.id('j1') AND event = 'image_job.failed') <> 1 THEN
		RAISE EXCEPTION 'a redelivery needs the webhook-id of its event';
	END IF;
END
$t$;
SELECT pg_temp.as_user('b');
DO $t$
BEGIN
	IF EXISTS (SELECT 1 FROM public.webhook_deliveries) THEN
		RAISE EXCEPTION 'B sees A''s deliveries';
	END IF;
	IF EXISTS (SELECT 1 FROM public.image_job_webhook_redeliver(pg_temp.id('j1')))
	THEN
		RAISE EXCEPTION 'B redelivered A''s event';
	END IF;
END
$t$;
RESET ROLE;
DO $t$
BEGIN
	IF (SELECT previous FROM public.webhook_secrets
	    WHERE user_id = pg_temp.id('a')) <> current_setting('t.s1')
	    OR (SELECT previous_until FROM public.webhook_secrets
	    WHERE user_id = pg_temp.id('a')) NOT BETWEEN now() + interval '23 hours'
	    AND now() + interval '25 hours' THEN
		RAISE EXCEPTION 'the rotated secret is not kept for 24 h';
	END IF;
	PERFORM set_config('t.s2', (SELECT secret FROM public.webhook_secrets
	    WHERE user_id = pg_temp.id('a')), true);
END
$t$;
-- A second rotation within the 24 hours keeps the previous secret only:
-- the first one stops signing then (docs/WEBHOOKS.md says so).
SET LOCAL ROLE authenticated;
SELECT pg_temp.as_user('a');
SELECT public.image_webhook_secret_rotate('v1:' || repeat('C', 60))
    IS NOT NULL;
RESET ROLE;
DO $t$
BEGIN
	IF (SELECT previous FROM public.webhook_secrets
	    WHERE user_id = pg_temp.id('a')) <> current_setting('t.s2')
	    OR EXISTS (SELECT 1 FROM public.webhook_secrets
	    WHERE user_id = pg_temp.id('a') AND current_setting('t.s1')
	    IN (secret, previous)) THEN
		RAISE EXCEPTION 'a second rotation: not the previous secret only';
	END IF;
END
$t$;

ROLLBACK;
