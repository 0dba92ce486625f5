-- test: provider_requests - sql/015: one waiting row per job, one per (provider, request id), deleted with its job; one receipt per webhook-id; authenticated and anon read and write neither table (RLS on, no grants), service_role both
BEGIN;

DO $t$
DECLARE
	u uuid := gen_random_uuid();
	p uuid := gen_random_uuid();
	b uuid := gen_random_uuid();
	j uuid := gen_random_uuid();
	k uuid := gen_random_uuid();
	n int;
BEGIN
	PERFORM set_config('t.j', j::text, true);
	INSERT INTO auth.users (id, email) VALUES (u, u || '@test.invalid');
	INSERT INTO public.projects (id, owner_id, title) VALUES (p, u, 'pr');
	INSERT INTO public.branches (id, project_id, name, is_main)
	    VALUES (b, p, 'main', true);
	INSERT INTO public.image_generation_jobs (id, user_id, project_id,
	    branch_id, job_type, prompt, width, height)
	VALUES (j, u, p, b, 'master_asset', 'one', 64, 64),
	    (k, u, p, b, 'master_asset', 'two', 64, 64);
	INSERT INTO public.image_provider_requests (job_id, provider, request_id,
	    attempt, poll_at) VALUES (j, 'replicate', 'abc', 1, now());
	BEGIN
		INSERT INTO public.image_provider_requests (job_id, provider,
		    request_id, attempt, poll_at)
		VALUES (k, 'replicate', 'abc', 1, now());
		RAISE EXCEPTION 'a second job took request abc';
	EXCEPTION WHEN unique_violation THEN
		NULL;
	END;
	BEGIN
		INSERT INTO public.image_provider_requests (job_id, provider,
		    request_id, attempt, poll_at, outcome_from)
		VALUES (k, 'replicate', 'def', 1, now(), 'guess');
		RAISE EXCEPTION 'outcome_from ''guess'' accepted';
	EXCEPTION WHEN check_violation THEN
		NULL;
	END;
	INSERT INTO public.image_provider_webhooks (webhook_id, provider, request_id)
	    VALUES ('msg_1', 'replicate', 'abc');
	INSERT INTO public.image_provider_webhooks (webhook_id, provider, request_id)
	    VALUES ('msg_1', 'replicate', 'abc') ON CONFLICT DO NOTHING;
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n <> 0 THEN
		RAISE EXCEPTION 'webhook-id msg_1 recorded twice';
	END IF;
	DELETE FROM public.image_generation_jobs WHERE id = j;
	SELECT count(*) INTO n FROM public.image_provider_requests WHERE job_id = j;
	IF n <> 0 THEN
		RAISE EXCEPTION 'the request outlived its job';
	END IF;
	INSERT INTO public.image_generation_jobs (id, user_id, project_id,
	    branch_id, job_type, prompt, width, height)
	VALUES (j, u, p, b, 'master_asset', 'one', 64, 64);
	INSERT INTO public.image_provider_requests (job_id, provider, request_id,
	    attempt, poll_at) VALUES (j, 'replicate', 'abc', 1, now());
END
$t$;

DO $t$
DECLARE
	r text;
	t text;
	n int;
BEGIN
	FOREACH r IN ARRAY ARRAY['authenticated', 'anon'] LOOP
		FOREACH t IN ARRAY ARRAY['image_provider_requests',
		    'image_provider_webhooks'] LOOP
			EXECUTE format('SET LOCAL ROLE %I', r);
			BEGIN
				EXECUTE format('SELECT count(*) FROM public.%I', t);
				RAISE EXCEPTION '% reads %', r, t;
			EXCEPTION WHEN insufficient_privilege THEN
				NULL;
			END;
			RESET ROLE;
		END LOOP;
	END LOOP;
	SET LOCAL ROLE service_role;
	UPDATE public.image_provider_requests SET outcome = '{"status":"succeeded"}',
	    outcome_from = 'webhook', outcome_at = now()
	    WHERE job_id = current_setting('t.j')::uuid;
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n <> 1 THEN
		RAISE EXCEPTION 'service_role updated % requests, want 1', n;
	END IF;
	INSERT INTO public.image_provider_webhooks (webhook_id, provider)
	    VALUES ('msg_2', 'replicate');
	RESET ROLE;
END
$t$;

ROLLBACK;
