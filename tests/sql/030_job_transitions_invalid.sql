-- test: job_transitions_invalid - every status change outside the state machine (e.g. completed->processing, queued->completed, failed->queued, canceled->processing) and every insert not in 'queued' is refused with SQLSTATE P0001 "invalid job status transition: X -> Y", leaving row and event log untouched
BEGIN;

DO $t$
DECLARE
	statuses text[] := ARRAY['queued', 'processing', 'generating',
	    'uploading', 'completed', 'failed', 'canceled'];
	valid    text[] := ARRAY[
	    'queued>processing', 'queued>canceled', 'queued>failed',
	    'processing>generating', 'processing>failed', 'processing>canceled',
	    'processing>queued',
	    'generating>uploading', 'generating>failed', 'generating>canceled',
	    'generating>queued',
	    'uploading>completed', 'uploading>failed', 'uploading>canceled',
	    'uploading>queued'];
	-- How to reach each status from queued.
	reach    jsonb := '{"queued": [],
	    "processing": ["processing"],
	    "generating": ["processing", "generating"],
	    "uploading":  ["processing", "generating", "uploading"],
	    "completed":  ["processing", "generating", "uploading", "completed"],
	    "failed":     ["failed"],
	    "canceled":   ["canceled"]}';
	u        uuid := gen_random_uuid();
	p        uuid;
	b        uuid;
	j        uuid;
	f        text;
	t        text;
	s        text;
	refused  boolean;
	state    text;
	msg      text;
	cname    text;
	nev      bigint;
	tested   integer := 0;
	cur      text;
BEGIN
	INSERT INTO auth.users (id, email) VALUES (u, u || '@test.invalid');
	INSERT INTO public.projects (owner_id, title) VALUES (u, 'invalid')
	    RETURNING id INTO p;
	INSERT INTO public.branches (project_id, name) VALUES (p, 'main')
	    RETURNING id INTO b;

	FOREACH f IN ARRAY statuses LOOP
		FOREACH t IN ARRAY statuses LOOP
			CONTINUE WHEN f = t OR (f || '>' || t) = ANY (valid);

			INSERT INTO public.image_generation_jobs
			    (user_id, project_id, branch_id, job_type, prompt)
			VALUES (u, p, b, 'master_asset', f || ' -> ' || t)
			RETURNING id INTO j;
			FOR s IN SELECT jsonb_array_elements_text(reach -> f) LOOP
				UPDATE public.image_generation_jobs SET status = s,
				    failure_stage = CASE WHEN s = 'failed'
				        THEN 'generating' END,
				    error_code = CASE WHEN s = 'failed' THEN 'TEST' END
				WHERE id = j;
			END LOOP;
			SELECT count(*) INTO nev FROM public.image_generation_job_events
			    WHERE job_id = j;

			refused := false;
			BEGIN
				-- Failure fields filled in so only the transition is wrong.
				UPDATE public.image_generation_jobs SET status = t,
				    failure_stage = 'generating', error_code = 'TEST'
				WHERE id = j;
			EXCEPTION WHEN OTHERS THEN
				GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE,
				    msg = MESSAGE_TEXT, cname = CONSTRAINT_NAME;
				refused := true;
			END;
			IF NOT refused THEN
				RAISE EXCEPTION 'invalid transition % -> % was accepted', f, t;
			END IF;
			IF state <> 'P0001'
			   OR msg <> format('invalid job status transition: %s -> %s', f, t)
			   OR cname IS DISTINCT FROM
			      'image_generation_jobs_status_transition' THEN
				RAISE EXCEPTION '% -> % refused with % "%" (constraint %)',
				    f, t, state, msg, cname;
			END IF;
			SELECT status INTO cur FROM public.image_generation_jobs
			    WHERE id = j;
			IF cur <> f THEN
				RAISE EXCEPTION '% -> %: status changed to % anyway', f, t, cur;
			END IF;
			IF (SELECT count(*) FROM public.image_generation_job_events
			    WHERE job_id = j) <> nev THEN
				RAISE EXCEPTION '% -> %: an event was written', f, t;
			END IF;
			tested := tested + 1;
		END LOOP;
	END LOOP;
	-- 7 * 6 ordered pairs minus the 15 allowed ones.
	IF tested <> 27 THEN
		RAISE EXCEPTION 'tested % invalid transitions, want 27', tested;
	END IF;

	-- A job is born queued, whatever the caller says.
	FOREACH t IN ARRAY statuses[2:] LOOP
		refused := false;
		BEGIN
			INSERT INTO public.image_generation_jobs (user_id, project_id,
			    branch_id, job_type, prompt, status, failure_stage,
			    error_code)
			VALUES (u, p, b, 'master_asset', 'born ' || t, t, 'generating',
			    'TEST');
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE,
			    msg = MESSAGE_TEXT;
			refused := true;
		END;
		IF NOT refused THEN
			RAISE EXCEPTION 'insert with status % was accepted', t;
		END IF;
		IF state <> 'P0001' OR msg NOT LIKE 'invalid job status transition:%' THEN
			RAISE EXCEPTION 'insert with status % refused with % "%"',
			    t, state, msg;
		END IF;
	END LOOP;
	IF EXISTS (SELECT 1 FROM public.image_generation_jobs
	    WHERE prompt LIKE 'born %' AND user_id = u) THEN
		RAISE EXCEPTION 'a job was born in a status other than queued';
	END IF;
END
$t$;

ROLLBACK;
