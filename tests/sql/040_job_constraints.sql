-- test: job_constraints - failed needs failure_stage+error_code, frames need scene_id+shot_id, inpaint needs source_image_url, prompt/size/key limits, per-user idempotency-key uniqueness, derived cost_credits and the guide's cost/monitoring queries
BEGIN;

-- expect_error(sql, sqlstate, constraint or NULL, what): runs sql in a
-- subtransaction and fails the test unless it raises sqlstate.
CREATE FUNCTION pg_temp.expect_error(q text, want text, want_con text,
    what text) RETURNS void
LANGUAGE plpgsql AS $f$
DECLARE
	state text;
	con   text;
	msg   text;
BEGIN
	BEGIN
		EXECUTE q;
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE,
		    con = CONSTRAINT_NAME, msg = MESSAGE_TEXT;
	END;
	IF state IS NULL THEN
		RAISE EXCEPTION '%: accepted, want SQLSTATE %', what, want;
	END IF;
	IF state <> want OR (want_con IS NOT NULL
	    AND con IS DISTINCT FROM want_con) THEN
		RAISE EXCEPTION '%: got % "%" (constraint %), want % (%)',
		    what, state, msg, con, want, want_con;
	END IF;
END
$f$;

DO $t$
DECLARE
	u   uuid := gen_random_uuid();
	v   uuid := gen_random_uuid();
	p   uuid;
	b   uuid;
	pv  uuid;
	bv  uuid;
	j   uuid;
	ins text;
	job public.image_generation_jobs;
BEGIN
	INSERT INTO auth.users (id, email) VALUES
	    (u, u || '@test.invalid'), (v, v || '@test.invalid');
	INSERT INTO public.projects (owner_id, title) VALUES (u, 'constraints')
	    RETURNING id INTO p;
	INSERT INTO public.branches (project_id, name, is_main)
	    VALUES (p, 'main', true) RETURNING id INTO b;
	INSERT INTO public.projects (owner_id, title) VALUES (v, 'other')
	    RETURNING id INTO pv;
	INSERT INTO public.branches (project_id, name) VALUES (pv, 'main')
	    RETURNING id INTO bv;
	ins := format('INSERT INTO public.image_generation_jobs (user_id, '
	    'project_id, branch_id, job_type, prompt', u);

	-- failed needs a failure stage and an error code.
	INSERT INTO public.image_generation_jobs
	    (user_id, project_id, branch_id, job_type, prompt)
	VALUES (u, p, b, 'master_asset', 'fail me') RETURNING id INTO j;
	UPDATE public.image_generation_jobs SET status = 'processing' WHERE id = j;
	PERFORM pg_temp.expect_error(format('UPDATE public.image_generation_jobs '
	    'SET status = ''failed'', error_code = ''TEMPORARY'' WHERE id = %L', j),
	    '23514', 'image_generation_jobs_failed_needs_reason',
	    'failed without failure_stage');
	PERFORM pg_temp.expect_error(format('UPDATE public.image_generation_jobs '
	    'SET status = ''failed'', failure_stage = ''generating'' WHERE id = %L',
	    j), '23514', 'image_generation_jobs_failed_needs_reason',
	    'failed without error_code');
	PERFORM pg_temp.expect_error(format('UPDATE public.image_generation_jobs '
	    'SET status = ''failed'', failure_stage = ''thinking'', '
	    'error_code = ''X'' WHERE id = %L', j), '23514',
	    'image_generation_jobs_failure_stage_check', 'unknown failure_stage');
	UPDATE public.image_generation_jobs SET status = 'failed',
	    failure_stage = 'persisting', error_code = 'DB' WHERE id = j;

	-- Frames need scene and shot; inpaint needs its source image.
	PERFORM pg_temp.expect_error(format('INSERT INTO '
	    'public.image_generation_jobs (user_id, project_id, branch_id, '
	    'job_type, prompt) VALUES (%L, %L, %L, ''start_frame'', ''f'')',
	    u, p, b), '23514', 'image_generation_jobs_frame_needs_scene_shot',
	    'start_frame without scene/shot');
	PERFORM pg_temp.expect_error(format('INSERT INTO '
	    'public.image_generation_jobs (user_id, project_id, branch_id, '
	    'job_type, prompt, scene_id) VALUES (%L, %L, %L, ''end_frame'', '
	    '''f'', gen_random_uuid())', u, p, b), '23514',
	    'image_generation_jobs_frame_needs_scene_shot',
	    'end_frame without shot');
	PERFORM pg_temp.expect_error(format('INSERT INTO '
	    'public.image_generation_jobs (user_id, project_id, branch_id, '
	    'job_type, prompt, shot_id) VALUES (%L, %L, %L, ''start_frame'', '
	    '''f'', gen_random_uuid())', u, p, b), '23514',
	    'image_generation_jobs_frame_needs_scene_shot',
	    'start_frame without scene');
	INSERT INTO public.image_generation_jobs (user_id, project_id, branch_id,
	    job_type, prompt, scene_id, shot_id)
	VALUES (u, p, b, 'end_frame', 'ok frame', gen_random_uuid(),
	    gen_random_uuid());
	PERFORM pg_temp.expect_error(format('INSERT INTO '
	    'public.image_generation_jobs (user_id, project_id, branch_id, '
	    'job_type, prompt) VALUES (%L, %L, %L, ''inpaint'', ''i'')', u, p, b),
	    '23514', 'image_generation_jobs_inpaint_needs_source',
	    'inpaint without source_image_url');
	INSERT INTO public.image_generation_jobs (user_id, project_id, branch_id,
	    job_type, prompt, source_image_url)
	VALUES (u, p, b, 'inpaint', 'ok inpaint', 'https://x.invalid/a.png');
	PERFORM pg_temp.expect_error(format('INSERT INTO '
	    'public.image_generation_jobs (user_id, project_id, branch_id, '
	    'job_type, prompt) VALUES (%L, %L, %L, ''thumbnail'', ''t'')', u, p, b),
	    '23514', 'image_generation_jobs_job_type_check', 'unknown job_type');

	-- Limits.
	PERFORM pg_temp.expect_error(format('INSERT INTO '
	    'public.image_generation_jobs (user_id, project_id, branch_id, '
	    'job_type, prompt) VALUES (%L, %L, %L, ''master_asset'', '''')',
	    u, p, b), '23514', 'image_generation_jobs_prompt_check', 'empty prompt');
	PERFORM pg_temp.expect_error(format('INSERT INTO '
	    'public.image_generation_jobs (user_id, project_id, branch_id, '
	    'job_type, prompt) VALUES (%L, %L, %L, ''master_asset'', %L)',
	    u, p, b, repeat('é', 4001)), '23514',
	    'image_generation_jobs_prompt_check', '4001-character prompt');
	INSERT INTO public.image_generation_jobs (user_id, project_id, branch_id,
	    job_type, prompt, width, height)
	VALUES (u, p, b, 'master_asset', repeat('é', 4000), 64, 4096);
	PERFORM pg_temp.expect_error(format('INSERT INTO '
	    'public.image_generation_jobs (user_id, project_id, branch_id, '
	    'job_type, prompt, width) VALUES (%L, %L, %L, ''master_asset'', '
	    '''w'', 63)', u, p, b), '23514', 'image_generation_jobs_width_check',
	    'width 63');
	PERFORM pg_temp.expect_error(format('INSERT INTO '
	    'public.image_generation_jobs (user_id, project_id, branch_id, '
	    'job_type, prompt, height) VALUES (%L, %L, %L, ''master_asset'', '
	    '''h'', 4097)', u, p, b), '23514', 'image_generation_jobs_height_check',
	    'height 4097');
	PERFORM pg_temp.expect_error(format('INSERT INTO '
	    'public.image_generation_jobs (user_id, project_id, branch_id, '
	    'job_type, prompt, idempotency_key) VALUES (%L, %L, %L, '
	    '''master_asset'', ''k'', %L)', u, p, b, repeat('k', 256)), '23514',
	    'image_generation_jobs_idempotency_key_check', '256-character key');

	-- Idempotency keys are unique per user, not globally; NULL is no key.
	INSERT INTO public.image_generation_jobs (user_id, project_id, branch_id,
	    job_type, prompt, idempotency_key)
	VALUES (u, p, b, 'master_asset', 'idem 1', 'key-' || u);
	PERFORM pg_temp.expect_error(format('INSERT INTO '
	    'public.image_generation_jobs (user_id, project_id, branch_id, '
	    'job_type, prompt, idempotency_key) VALUES (%L, %L, %L, '
	    '''master_asset'', ''idem 2'', %L)', u, p, b, 'key-' || u), '23505',
	    'image_generation_jobs_user_idempotency_key',
	    'same user, same idempotency key');
	INSERT INTO public.image_generation_jobs (user_id, project_id, branch_id,
	    job_type, prompt, idempotency_key)
	VALUES (v, pv, bv, 'master_asset', 'idem other user', 'key-' || u);
	INSERT INTO public.image_generation_jobs (user_id, project_id, branch_id,
	    job_type, prompt)
	VALUES (u, p, b, 'master_asset', 'no key 1'),
	       (u, p, b, 'master_asset', 'no key 2');

	-- cost_credits is derived: actual when known, else the estimate.
	INSERT INTO public.image_generation_jobs (user_id, project_id, branch_id,
	    job_type, prompt, estimated_cost)
	VALUES (u, p, b, 'master_asset', 'cost', 0.01) RETURNING * INTO job;
	IF job.cost_credits IS DISTINCT FROM 0.01 OR job.currency <> 'USD'
	   OR job.width <> 1024 OR job.height <> 1024 OR job.attempts <> 0
	   OR job.max_attempts <> 3 OR job.cancel_requested THEN
		RAISE EXCEPTION 'defaults/cost_credits wrong: %', row_to_json(job);
	END IF;
	UPDATE public.image_generation_jobs SET actual_cost = 0.0095
	    WHERE id = job.id RETURNING * INTO job;
	IF job.cost_credits IS DISTINCT FROM 0.0095 THEN
		RAISE EXCEPTION 'cost_credits after actual_cost: %', job.cost_credits;
	END IF;
	PERFORM pg_temp.expect_error(format('UPDATE public.image_generation_jobs '
	    'SET cost_credits = 1 WHERE id = %L', job.id), '428C9', NULL,
	    'writing the generated cost_credits');

	-- The guide's queries run verbatim.
	PERFORM job_type, AVG(cost_credits) as avg_cost,
	    SUM(cost_credits) as total_cost, COUNT(*) as job_count
	FROM image_generation_jobs WHERE status = 'completed' GROUP BY job_type;
	PERFORM status, COUNT(*) as count,
	    AVG(EXTRACT(EPOCH FROM (completed_at - created_at))) as avg_duration_sec
	FROM image_generation_jobs
	WHERE created_at > NOW() - INTERVAL '24 hours' GROUP BY status;

	-- One main branch per project; branch names unique per project.
	PERFORM pg_temp.expect_error(format('INSERT INTO public.branches '
	    '(project_id, name, is_main) VALUES (%L, ''second'', true)', p),
	    '23505', 'branches_one_main_per_project', 'second main branch');
	PERFORM pg_temp.expect_error(format('INSERT INTO public.branches '
	    '(project_id, name) VALUES (%L, ''main'')', p), '23505',
	    'branches_project_id_name_key', 'duplicate branch name');

	-- retry_of links a new job to the one it retries.
	INSERT INTO public.image_generation_jobs (user_id, project_id, branch_id,
	    job_type, prompt, retry_of)
	VALUES (u, p, b, 'master_asset', 'retry', j) RETURNING * INTO job;
	IF (SELECT detail ->> 'retry_of' FROM public.image_generation_job_events
	    WHERE job_id = job.id) IS DISTINCT FROM j::text THEN
		RAISE EXCEPTION 'creation event of a retry lacks retry_of';
	END IF;

	-- Deleting a user takes their projects, branches, jobs and events along.
	DELETE FROM auth.users WHERE id = u;
	IF EXISTS (SELECT 1 FROM public.image_generation_jobs WHERE user_id = u)
	   OR EXISTS (SELECT 1 FROM public.image_generation_job_events WHERE job_id = j)
	   OR EXISTS (SELECT 1 FROM public.projects WHERE owner_id = u) THEN
		RAISE EXCEPTION 'user deletion left rows behind';
	END IF;
END
$t$;

ROLLBACK;
