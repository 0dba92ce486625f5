-- test: job_transitions_valid - every allowed status transition is accepted, writes one 'status' event (from, to, in order, times non-decreasing) and maintains started_at/completed_at/updated_at and the requeue clean-up
BEGIN;

DO $t$
DECLARE
	u       uuid := gen_random_uuid();
	p       uuid;
	b       uuid;
	j       uuid;
	e       record;
	ev      record;
	job     public.image_generation_jobs;
	path    text[];
	s       text;
	i       integer;
	n       integer;
	prev_ts timestamptz;
	prev_id bigint;
	prev_up timestamptz;
	started timestamptz;
BEGIN
	INSERT INTO auth.users (id, email) VALUES (u, u || '@test.invalid');
	INSERT INTO public.projects (owner_id, title) VALUES (u, 'transitions')
	    RETURNING id INTO p;
	INSERT INTO public.branches (project_id, name, is_main)
	    VALUES (p, 'main', true) RETURNING id INTO b;

	FOR e IN SELECT * FROM (VALUES
	    ('queued', 'processing'), ('queued', 'canceled'), ('queued', 'failed'),
	    ('processing', 'generating'), ('processing', 'failed'),
	    ('processing', 'canceled'), ('processing', 'queued'),
	    ('generating', 'uploading'), ('generating', 'failed'),
	    ('generating', 'canceled'), ('generating', 'queued'),
	    ('uploading', 'completed'), ('uploading', 'failed'),
	    ('uploading', 'canceled'), ('uploading', 'queued')) AS v(f, t)
	LOOP
		path := (ARRAY['queued', 'processing', 'generating', 'uploading'])
		    [1:array_position(ARRAY['queued', 'processing', 'generating',
		    'uploading'], e.f)] || e.t;

		INSERT INTO public.image_generation_jobs
		    (user_id, project_id, branch_id, job_type, prompt)
		VALUES (u, p, b, 'master_asset', 'edge ' || e.f || ' -> ' || e.t)
		RETURNING * INTO job;
		j := job.id;
		IF job.status <> 'queued' OR job.started_at IS NOT NULL
		   OR job.completed_at IS NOT NULL THEN
			RAISE EXCEPTION 'new job: want queued with no start/completion, got %',
			    row_to_json(job);
		END IF;
		prev_up := job.updated_at;

		FOR i IN 2 .. array_length(path, 1) LOOP
			s := path[i];
			UPDATE public.image_generation_jobs SET
			    status = s,
			    attempts = attempts + CASE WHEN s = 'processing' THEN 1
			        ELSE 0 END,
			    failure_stage = CASE WHEN s = 'failed' THEN
			        CASE WHEN path[i - 1] = 'uploading' THEN 'uploading'
			        ELSE 'generating' END END,
			    error_code = CASE WHEN s = 'failed' THEN 'TEMPORARY' END,
			    error_message = CASE WHEN s = 'failed' THEN 'test failure' END
			WHERE id = j
			RETURNING * INTO job;
			IF NOT FOUND OR job.status <> s THEN
				RAISE EXCEPTION 'transition % -> % (path %) not applied',
				    path[i - 1], s, path;
			END IF;
			IF job.updated_at < prev_up THEN
				RAISE EXCEPTION 'updated_at went backwards on % -> %',
				    path[i - 1], s;
			END IF;
			prev_up := job.updated_at;
		END LOOP;

		-- The event log mirrors the path exactly.
		n := 0;
		prev_ts := NULL;
		prev_id := NULL;
		FOR ev IN SELECT * FROM public.image_generation_job_events
		    WHERE job_id = j ORDER BY id
		LOOP
			n := n + 1;
			IF ev.event <> 'status'
			   OR ev.to_status IS DISTINCT FROM path[n]
			   OR ev.from_status IS DISTINCT FROM
			      (CASE WHEN n = 1 THEN NULL ELSE path[n - 1] END) THEN
				RAISE EXCEPTION 'event % of path %: got %/% -> %',
				    n, path, ev.event, ev.from_status, ev.to_status;
			END IF;
			IF prev_ts IS NOT NULL AND ev.created_at < prev_ts THEN
				RAISE EXCEPTION 'event times out of order on path %', path;
			END IF;
			IF ev.created_at < job.created_at THEN
				RAISE EXCEPTION 'event before job creation on path %', path;
			END IF;
			prev_ts := ev.created_at;
			prev_id := ev.id;
		END LOOP;
		IF n <> array_length(path, 1) THEN
			RAISE EXCEPTION 'path %: want % events, got %',
			    path, array_length(path, 1), n;
		END IF;
		IF prev_ts < job.updated_at THEN
			RAISE EXCEPTION 'last event older than the job''s last update (path %)',
			    path;
		END IF;

		-- Timestamps.
		IF ('processing' = ANY (path)) <> (job.started_at IS NOT NULL) THEN
			RAISE EXCEPTION 'path %: started_at is %', path, job.started_at;
		END IF;
		IF job.started_at < job.created_at THEN
			RAISE EXCEPTION 'path %: started_at before created_at', path;
		END IF;
		IF e.t IN ('completed', 'failed', 'canceled') THEN
			IF job.completed_at IS NULL
			   OR job.completed_at < coalesce(job.started_at, job.created_at)
			   OR job.completed_at <> job.updated_at THEN
				RAISE EXCEPTION 'path %: completed_at % (started %, updated %)',
				    path, job.completed_at, job.started_at, job.updated_at;
			END IF;
		ELSIF job.completed_at IS NOT NULL THEN
			RAISE EXCEPTION 'path %: completed_at set on a live job', path;
		END IF;

		IF e.t = 'failed' THEN
			SELECT * INTO ev FROM public.image_generation_job_events
			    WHERE id = prev_id;
			IF job.failure_stage IS NULL OR job.error_code <> 'TEMPORARY'
			   OR ev.detail ->> 'error_code' IS DISTINCT FROM 'TEMPORARY'
			   OR ev.detail ->> 'failure_stage' IS DISTINCT FROM job.failure_stage
			   OR (ev.detail ->> 'attempts')::int IS DISTINCT FROM job.attempts THEN
				RAISE EXCEPTION 'path %: failed job/event detail wrong: % / %',
				    path, row_to_json(job), ev.detail;
			END IF;
		END IF;

		IF e.t = 'queued' THEN
			-- Requeue: finished/failure fields clear, first start kept,
			-- and the job can be claimed again.
			IF job.failure_stage IS NOT NULL OR job.error_code IS NOT NULL
			   OR job.deadline_at IS NOT NULL THEN
				RAISE EXCEPTION 'path %: requeued job kept failure fields', path;
			END IF;
			started := job.started_at;
			UPDATE public.image_generation_jobs
			    SET status = 'processing', attempts = attempts + 1
			    WHERE id = j RETURNING * INTO job;
			IF job.status <> 'processing' OR job.started_at <> started
			   OR job.attempts <> 2 THEN
				RAISE EXCEPTION 'path %: re-claim after requeue: %',
				    path, row_to_json(job);
			END IF;
			IF (SELECT count(*) FROM public.image_generation_job_events
			    WHERE job_id = j) <> n + 1 THEN
				RAISE EXCEPTION 'path %: re-claim wrote no event', path;
			END IF;
		END IF;
	END LOOP;

	-- A requeued job carries no error, not even one the requeue itself set
	-- (GET would show it on a queued job): the executor and the sweeper
	-- record why as a 'requeued' event; earlier errors stay in the log.
	INSERT INTO public.image_generation_jobs
	    (user_id, project_id, branch_id, job_type, prompt)
	VALUES (u, p, b, 'master_asset', 'requeue reason') RETURNING id INTO j;
	UPDATE public.image_generation_jobs SET status = 'processing',
	    deadline_at = now() + interval '1 minute', error_code = 'OLD',
	    error_message = 'old' WHERE id = j;
	UPDATE public.image_generation_jobs SET status = 'queued',
	    error_code = 'EXECUTOR_LOST', error_message = 'lost'
	    WHERE id = j RETURNING * INTO job;
	IF job.error_code IS NOT NULL OR job.error_message IS NOT NULL
	   OR job.deadline_at IS NOT NULL THEN
		RAISE EXCEPTION 'requeue kept an error or deadline: %', row_to_json(job);
	END IF;

	-- Updates that keep the status: updated_at moves, no event.
	SELECT updated_at INTO prev_up FROM public.image_generation_jobs
	    WHERE id = j;
	PERFORM pg_sleep(0.001);
	UPDATE public.image_generation_jobs SET final_prompt = 'x',
	    cancel_requested = true WHERE id = j RETURNING * INTO job;
	IF job.updated_at <= prev_up THEN
		RAISE EXCEPTION 'updated_at not advanced by a plain update';
	END IF;
	IF (SELECT count(*) FROM public.image_generation_job_events
	    WHERE job_id = j) <> 3 THEN
		RAISE EXCEPTION 'a non-status update wrote an event';
	END IF;
END
$t$;

ROLLBACK;
