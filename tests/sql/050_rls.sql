-- test: rls_isolation - as authenticated with request.jwt.claims, user A sees and writes only A's projects/branches/capsules/jobs/events (no job into B's project, with user_id B, on B's branch or with B's private capsule; B's job unchanged: 0 rows), A's own writes still log events; anon sees nothing; service_role sees all
BEGIN;

-- expect_error(sql, sqlstate, what): fails unless sql raises sqlstate.
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

-- The ids of this run, readable by every role.
CREATE FUNCTION pg_temp.id(k text) RETURNS uuid
LANGUAGE sql STABLE AS $f$ SELECT current_setting('t.' || k)::uuid $f$;

-- What the service does per request: claims of a verified token.
CREATE FUNCTION pg_temp.claims(k text) RETURNS void
LANGUAGE sql AS $f$
	SELECT set_config('request.jwt.claims', CASE WHEN k IS NULL THEN ''
	    ELSE json_build_object('sub', pg_temp.id(k), 'role', 'authenticated',
	        'aud', 'authenticated')::text END, true)
$f$;

DO $t$
DECLARE
	a uuid := gen_random_uuid();
	b uuid := gen_random_uuid();
	r record;
BEGIN
	PERFORM set_config('t.a', a::text, true);
	PERFORM set_config('t.b', b::text, true);
	INSERT INTO auth.users (id, email) VALUES
	    (a, a || '@test.invalid'), (b, b || '@test.invalid');
	FOR r IN SELECT * FROM (VALUES ('a', a), ('b', b)) AS v(k, uid) LOOP
		PERFORM set_config('t.p' || r.k, gen_random_uuid()::text, true);
		PERFORM set_config('t.br' || r.k, gen_random_uuid()::text, true);
		PERFORM set_config('t.j' || r.k, gen_random_uuid()::text, true);
		PERFORM set_config('t.c' || r.k, gen_random_uuid()::text, true);
		INSERT INTO public.projects (id, owner_id, title)
		    VALUES (pg_temp.id('p' || r.k), r.uid, 'rls ' || r.k);
		INSERT INTO public.branches (id, project_id, name, is_main)
		    VALUES (pg_temp.id('br' || r.k), pg_temp.id('p' || r.k), 'main',
		    true);
		INSERT INTO public.visual_style_capsules (id, user_id, name,
		    style_text)
		    VALUES (pg_temp.id('c' || r.k), r.uid, 'private ' || r.k, 'ink');
		INSERT INTO public.image_generation_jobs (id, user_id, project_id,
		    branch_id, job_type, prompt)
		    VALUES (pg_temp.id('j' || r.k), r.uid, pg_temp.id('p' || r.k),
		    pg_temp.id('br' || r.k), 'master_asset', 'job of ' || r.k);
	END LOOP;
	PERFORM set_config('t.cbpub', gen_random_uuid()::text, true);
	PERFORM set_config('t.cshared', gen_random_uuid()::text, true);
	INSERT INTO public.visual_style_capsules (id, user_id, name, style_text,
	    is_public) VALUES
	    (pg_temp.id('cbpub'), b, 'public of b', 'oil', true),
	    (pg_temp.id('cshared'), NULL, 'shared', 'watercolor', false);
END
$t$;

------------------------------------------------------------------ user A
SET LOCAL ROLE authenticated;
SELECT pg_temp.claims('a') \g /dev/null
-- Without the responder's settings no job can be inserted (sql/017): a
-- Supabase user's own INSERT through PostgREST.
DO $t$
BEGIN
	PERFORM pg_temp.expect_error(format('INSERT INTO public.image_generation_jobs'
	    ' (user_id, project_id, branch_id, job_type, prompt) VALUES (%L, %L, %L,'
	    ' ''master_asset'', ''around the API'')', pg_temp.id('a'), pg_temp.id('pa'),
	    pg_temp.id('bra')), '42501', 'a job inserted around the API');
END
$t$;
-- What the responder sets for every request (src/db/db.c), so that the
-- inserts below meet row-level security itself.
SELECT set_config('imagegen.budget_defaults', '||', true) \g /dev/null

DO $t$
DECLARE
	a   uuid := pg_temp.id('a');
	n   bigint;
	j   uuid;
	ins text := 'INSERT INTO public.image_generation_jobs (user_id, project_id, '
	    'branch_id, job_type, prompt, visual_style_capsule_id) '
	    'VALUES (%L, %L, %L, ''master_asset'', ''rls'', %L)';
BEGIN
	IF auth.uid() IS DISTINCT FROM a THEN
		RAISE EXCEPTION 'auth.uid() as A: got %', auth.uid();
	END IF;

	-- Reads.
	IF NOT EXISTS (SELECT 1 FROM public.projects WHERE id = pg_temp.id('pa'))
	   OR EXISTS (SELECT 1 FROM public.projects WHERE id = pg_temp.id('pb'))
	   OR EXISTS (SELECT 1 FROM public.projects WHERE owner_id <> a) THEN
		RAISE EXCEPTION 'A sees the wrong projects';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM public.branches WHERE id = pg_temp.id('bra'))
	   OR EXISTS (SELECT 1 FROM public.branches WHERE id = pg_temp.id('brb'))
	   OR EXISTS (SELECT 1 FROM public.branches br WHERE NOT EXISTS
	       (SELECT 1 FROM public.projects p WHERE p.id = br.project_id)) THEN
		RAISE EXCEPTION 'A sees the wrong branches';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM public.image_generation_jobs
	       WHERE id = pg_temp.id('ja'))
	   OR EXISTS (SELECT 1 FROM public.image_generation_jobs
	       WHERE id = pg_temp.id('jb'))
	   OR EXISTS (SELECT 1 FROM public.image_generation_jobs
	       WHERE user_id <> a) THEN
		RAISE EXCEPTION 'A sees the wrong jobs';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM public.image_generation_job_events
	       WHERE job_id = pg_temp.id('ja'))
	   OR EXISTS (SELECT 1 FROM public.image_generation_job_events
	       WHERE job_id = pg_temp.id('jb'))
	   OR EXISTS (SELECT 1 FROM public.image_generation_job_events e
	       WHERE NOT EXISTS (SELECT 1 FROM public.image_generation_jobs j
	           WHERE j.id = e.job_id)) THEN
		RAISE EXCEPTION 'A sees the wrong job events';
	END IF;
	SELECT count(*) INTO n FROM public.visual_style_capsules
	    WHERE id IN (pg_temp.id('ca'), pg_temp.id('cbpub'),
	    pg_temp.id('cshared'));
	IF n <> 3 OR EXISTS (SELECT 1 FROM public.visual_style_capsules
	    WHERE id = pg_temp.id('cb')) THEN
		RAISE EXCEPTION 'A sees the wrong style capsules';
	END IF;

	-- Job inserts that must be refused by policy.
	PERFORM pg_temp.expect_error(format(ins, a, pg_temp.id('pb'),
	    pg_temp.id('brb'), NULL), '42501', 'job into B''s project');
	PERFORM pg_temp.expect_error(format(ins, pg_temp.id('b'),
	    pg_temp.id('pa'), pg_temp.id('bra'), NULL), '42501',
	    'job with user_id B');
	PERFORM pg_temp.expect_error(format(ins, pg_temp.id('b'),
	    pg_temp.id('pb'), pg_temp.id('brb'), NULL), '42501',
	    'job for B in B''s project');
	PERFORM pg_temp.expect_error(format(ins, a, pg_temp.id('pa'),
	    pg_temp.id('brb'), NULL), '42501', 'job on B''s branch');
	PERFORM pg_temp.expect_error(format(ins, a, pg_temp.id('pa'),
	    pg_temp.id('bra'), pg_temp.id('cb')), '42501',
	    'job with B''s private capsule');

	-- Job inserts that are fine, each logging its creation event.
	EXECUTE format(ins || ' RETURNING id', a, pg_temp.id('pa'),
	    pg_temp.id('bra'), pg_temp.id('cbpub')) INTO j;
	EXECUTE format(ins, a, pg_temp.id('pa'), pg_temp.id('bra'),
	    pg_temp.id('cshared'));
	EXECUTE format(ins, a, pg_temp.id('pa'), pg_temp.id('bra'),
	    pg_temp.id('ca'));
	IF NOT EXISTS (SELECT 1 FROM public.image_generation_job_events
	    WHERE job_id = j AND to_status = 'queued' AND event = 'status') THEN
		RAISE EXCEPTION 'A''s new job has no creation event';
	END IF;

	-- B's job can be neither changed nor deleted: zero rows, no error.
	UPDATE public.image_generation_jobs SET cancel_requested = true
	    WHERE id = pg_temp.id('jb');
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n <> 0 THEN
		RAISE EXCEPTION 'A updated B''s job (% rows)', n;
	END IF;
	UPDATE public.image_generation_jobs SET status = 'canceled'
	    WHERE id = pg_temp.id('jb');
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n <> 0 THEN
		RAISE EXCEPTION 'A canceled B''s job (% rows)', n;
	END IF;
	DELETE FROM public.image_generation_jobs WHERE id = pg_temp.id('jb');
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n <> 0 THEN
		RAISE EXCEPTION 'A deleted B''s job (% rows)', n;
	END IF;

	-- A's own job: cancel works and its event is written (by the trigger,
	-- although A may not insert events).
	UPDATE public.image_generation_jobs SET status = 'canceled',
	    cancel_requested = true WHERE id = pg_temp.id('ja');
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n <> 1 THEN
		RAISE EXCEPTION 'A could not cancel own job (% rows)', n;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM public.image_generation_job_events
	    WHERE job_id = pg_temp.id('ja') AND from_status = 'queued'
	      AND to_status = 'canceled') THEN
		RAISE EXCEPTION 'A''s cancel wrote no event';
	END IF;

	-- A can't hand a job, project or branch over to B.
	PERFORM pg_temp.expect_error(format('UPDATE public.image_generation_jobs '
	    'SET user_id = %L WHERE id = %L', pg_temp.id('b'), j), '42501',
	    'moving A''s job to user B');
	PERFORM pg_temp.expect_error(format('UPDATE public.image_generation_jobs '
	    'SET project_id = %L, branch_id = %L WHERE id = %L', pg_temp.id('pb'),
	    pg_temp.id('brb'), j), '42501', 'moving A''s job into B''s project');
	PERFORM pg_temp.expect_error(format('UPDATE public.projects '
	    'SET owner_id = %L WHERE id = %L', pg_temp.id('b'), pg_temp.id('pa')),
	    '42501', 'giving A''s project to B');
	PERFORM pg_temp.expect_error(format('INSERT INTO public.projects '
	    '(owner_id, title) VALUES (%L, ''x'')', pg_temp.id('b')), '42501',
	    'project owned by B');
	PERFORM pg_temp.expect_error(format('INSERT INTO public.branches '
	    '(project_id, name) VALUES (%L, ''x'')', pg_temp.id('pb')), '42501',
	    'branch in B''s project');
	PERFORM pg_temp.expect_error('INSERT INTO public.visual_style_capsules '
	    '(user_id, name, style_text) VALUES (NULL, ''x'', ''y'')', '42501',
	    'shared capsule by a user');
	UPDATE public.visual_style_capsules SET style_text = 'hacked'
	    WHERE id IN (pg_temp.id('cbpub'), pg_temp.id('cshared'));
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n <> 0 THEN
		RAISE EXCEPTION 'A changed a capsule not A''s (% rows)', n;
	END IF;

	-- Privileges: no direct event writes, no TRUNCATE (it ignores RLS).
	PERFORM pg_temp.expect_error(format('INSERT INTO '
	    'public.image_generation_job_events (job_id, event) VALUES (%L, '
	    '''forged'')', j), '42501', 'A inserting an event');
	PERFORM pg_temp.expect_error('TRUNCATE public.image_generation_jobs',
	    '42501', 'A truncating jobs');
	PERFORM pg_temp.expect_error('TRUNCATE public.projects',
	    '42501', 'A truncating projects');
	PERFORM pg_temp.expect_error('SELECT * FROM auth.users', '42501',
	    'A reading auth.users');
END
$t$;

------------------------------------------------------------------ user B
SELECT pg_temp.claims('b') \g /dev/null
DO $t$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM public.image_generation_jobs
	       WHERE id = pg_temp.id('jb'))
	   OR EXISTS (SELECT 1 FROM public.image_generation_jobs
	       WHERE id = pg_temp.id('ja'))
	   OR NOT EXISTS (SELECT 1 FROM public.image_generation_job_events
	       WHERE job_id = pg_temp.id('jb'))
	   OR EXISTS (SELECT 1 FROM public.image_generation_job_events
	       WHERE job_id = pg_temp.id('ja')) THEN
		RAISE EXCEPTION 'B sees the wrong jobs or events';
	END IF;
	IF (SELECT cancel_requested OR status <> 'queued'
	    FROM public.image_generation_jobs WHERE id = pg_temp.id('jb')) THEN
		RAISE EXCEPTION 'B''s job was changed by A';
	END IF;
END
$t$;

------------------------------------------- authenticated, but no claims
SELECT pg_temp.claims(NULL) \g /dev/null
DO $t$
BEGIN
	IF auth.uid() IS NOT NULL THEN
		RAISE EXCEPTION 'auth.uid() without claims: %', auth.uid();
	END IF;
	IF EXISTS (SELECT 1 FROM public.projects)
	   OR EXISTS (SELECT 1 FROM public.branches)
	   OR EXISTS (SELECT 1 FROM public.image_generation_jobs)
	   OR EXISTS (SELECT 1 FROM public.image_generation_job_events)
	   OR EXISTS (SELECT 1 FROM public.visual_style_capsules
	       WHERE user_id IS NOT NULL AND NOT is_public) THEN
		RAISE EXCEPTION 'authenticated without claims sees rows';
	END IF;
END
$t$;
RESET ROLE;

-------------------------------------------------------------------- anon
SET LOCAL ROLE anon;
SELECT pg_temp.claims('a') \g /dev/null
DO $t$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['public.projects', 'public.branches',
	    'public.visual_style_capsules', 'public.image_generation_jobs',
	    'public.image_generation_job_events'] LOOP
		PERFORM pg_temp.expect_error('SELECT 1 FROM ' || t, '42501',
		    'anon reading ' || t);
	END LOOP;
	PERFORM pg_temp.expect_error(format('INSERT INTO '
	    'public.image_generation_jobs (user_id, project_id, branch_id, '
	    'job_type, prompt) VALUES (%L, %L, %L, ''master_asset'', ''x'')',
	    pg_temp.id('a'), pg_temp.id('pa'), pg_temp.id('bra')), '42501',
	    'anon inserting a job');
END
$t$;
RESET ROLE;

------------------------------------------------------------ service_role
SET LOCAL ROLE service_role;
SELECT pg_temp.claims(NULL) \g /dev/null
DO $t$
DECLARE
	n bigint;
BEGIN
	SELECT count(*) INTO n FROM public.image_generation_jobs
	    WHERE id IN (pg_temp.id('ja'), pg_temp.id('jb'));
	IF n <> 2 THEN
		RAISE EXCEPTION 'service_role sees % of the 2 jobs', n;
	END IF;
	SELECT count(*) INTO n FROM public.projects
	    WHERE id IN (pg_temp.id('pa'), pg_temp.id('pb'));
	IF n <> 2 THEN
		RAISE EXCEPTION 'service_role sees % of the 2 projects', n;
	END IF;
	SELECT count(DISTINCT job_id) INTO n FROM public.image_generation_job_events
	    WHERE job_id IN (pg_temp.id('ja'), pg_temp.id('jb'));
	IF n <> 2 THEN
		RAISE EXCEPTION 'service_role sees events of % of the 2 jobs', n;
	END IF;
	SELECT count(*) INTO n FROM public.visual_style_capsules
	    WHERE id IN (pg_temp.id('ca'), pg_temp.id('cb'));
	IF n <> 2 THEN
		RAISE EXCEPTION 'service_role sees % of the 2 private capsules', n;
	END IF;
	-- The executor's writes.
	UPDATE public.image_generation_jobs SET status = 'processing',
	    attempts = attempts + 1 WHERE id = pg_temp.id('jb') AND status = 'queued';
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n <> 1 THEN
		RAISE EXCEPTION 'service_role could not claim B''s job';
	END IF;
	INSERT INTO public.image_generation_job_events (job_id, event, detail)
	VALUES (pg_temp.id('jb'), 'style_capsule_applied',
	    jsonb_build_object('capsule_id', pg_temp.id('cb')));
END
$t$;
RESET ROLE;

ROLLBACK;
