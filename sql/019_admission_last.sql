-- 019_admission_last.sql - a new job's rate-limit token and budget
-- reservations taken last in its INSERT, just before the COMMIT that the
-- responder pipelines after it (src/db/db.c db_exec_commit).
--
-- Every POST of a user updates the same rows: the user's rate bucket and
-- the usage row of each budget window (the deployment's day row is shared
-- by every user).  Until now the token was taken in the INSERT's
-- RETURNING list and the reservation at the start of the status trigger,
-- so those rows stayed locked through the rest of the statement: the
-- first event's INSERT, the NOTIFY trigger, the index updates.  A second
-- POST of the same user waited on them all that while, and re-checked
-- the row when it got it.  Now one trigger, the last AFTER INSERT one
-- (image_generation_jobs_zz_admit, in place of 003's
-- image_generation_jobs_log_insert), does, in this order:
--
--   1. the plan: which windows have a limit (settings' defaults,
--      operators' rows in public.budgets), without locking anything;
--   2. the job's first event, the windows in its detail as before;
--   3. the token from the user's bucket (IG429 when empty), then each
--      window's reservation (IG402 when it does not fit).
--
-- The shared rows are thus locked for step 3, the end of the statement
-- and the COMMIT only.  The behaviour is that of 011/013: the same
-- refusals in the same order (rate before budget), the same event detail,
-- the same alerts; an idempotent replay inserts nothing, so no trigger
-- runs and it takes nothing.
--
-- What the take left ('REMAINING;RESET', for the RateLimit header fields)
-- is the transaction's imagegen.rate_state (set_config(..., true)), which
-- the responder reads in the same round trip, between the INSERT and the
-- COMMIT (src/db/jobs_db.c sql_rate_state): a RETURNING list is computed
-- before AFTER triggers run.  image_job_rate_take(), which RETURNING
-- called, and image_budget_reserve(), which the status trigger called,
-- are dropped; the status trigger keeps only the UPDATE side (settling).

-- The INSERT trigger: steps 1-3 above.
CREATE FUNCTION public.image_generation_jobs_admit()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
	amt numeric := coalesce(NEW.estimated_cost, 0);
	conf text;
	per_minute double precision;
	burst double precision;
	per_s double precision;
	t timestamptz;
	left_ double precision;
	took boolean := false;
	d text;
	ud numeric;
	um numeric;
	pd numeric;
	pm numeric;
	dd numeric;
	od numeric;
	om numeric;
	wins text[] := '{}';
	lims numeric[] := '{}';
	budget jsonb;
	day date;
	i int;
	sc text;
	per text;
	sid uuid;
	ws date;
	s numeric;
	res numeric;
	al smallint;
	lim numeric;
	msgs text[] := '{}';
BEGIN
	-- 1. the windows a paid job reserves in, with their limits: the
	-- settings' defaults, then operators' rows (NULL: the default;
	-- 'Infinity': none); two primary-key lookups, no lock taken
	IF amt > 0 THEN
		d := coalesce(current_setting('imagegen.budget_defaults', true), '');
		ud := nullif(split_part(d, '|', 1), '')::numeric;
		um := nullif(split_part(d, '|', 2), '')::numeric;
		dd := nullif(split_part(d, '|', 3), '')::numeric;
		SELECT b.daily_usd, b.monthly_usd INTO od, om FROM public.budgets b
		WHERE b.scope = 'user' AND b.scope_id = NEW.user_id;
		ud := coalesce(od, ud);
		um := coalesce(om, um);
		SELECT b.daily_usd, b.monthly_usd INTO pd, pm FROM public.budgets b
		WHERE b.scope = 'project' AND b.scope_id = NEW.project_id;
		IF ud < 'Infinity' THEN wins := wins || 'user:day'::text; lims := lims || ud; END IF;
		IF um < 'Infinity' THEN wins := wins || 'user:month'::text; lims := lims || um; END IF;
		IF pd < 'Infinity' THEN wins := wins || 'project:day'::text; lims := lims || pd; END IF;
		IF pm < 'Infinity' THEN wins := wins || 'project:month'::text; lims := lims || pm; END IF;
		IF dd < 'Infinity' THEN wins := wins || 'deployment:day'::text; lims := lims || dd; END IF;
		IF cardinality(wins) > 0 THEN
			budget := jsonb_build_object('reservedUsd', amt, 'windows', to_jsonb(wins));
		END IF;
	END IF;
	-- 2. the job's first event (the windows in its detail, for the
	-- settling when the job ends, image_budget_settle)
	INSERT INTO public.image_generation_job_events
	    (job_id, from_status, to_status, event, detail)
	VALUES (NEW.id, NULL, NEW.status, 'status',
	    jsonb_strip_nulls(jsonb_build_object(
		'attempts', NEW.attempts,
		'error_code', CASE WHEN NEW.status IN ('failed', 'queued',
		    'canceled') THEN NEW.error_code END,
		'failure_stage', CASE WHEN NEW.status = 'failed'
		    THEN NEW.failure_stage END,
		'retry_of', NEW.retry_of,
		'request_id', nullif(current_setting('imagegen.request_id', true), ''),
		'budget', budget)));
	-- 3. the rows every POST of the user shares, last: the token (a
	-- rate refusal before a budget one), then each window
	conf := current_setting('imagegen.rate_limit', true);
	IF conf <> '' THEN
		per_minute := nullif(split_part(conf, '|', 1), '');
		burst := nullif(split_part(conf, '|', 2), '');
	END IF;
	IF per_minute > 0 AND burst >= 1 THEN
		per_s := per_minute / 60;
		-- t is read before the row's lock is had: a take that read a
		-- later clock may have stored it meanwhile; never count time
		-- backwards
		t := clock_timestamp();
		FOR attempt IN 1..2 LOOP
			UPDATE public.rate_buckets b
			SET tokens = least(burst, b.tokens
			        + extract(epoch FROM greatest(t, b.at) - b.at) * per_s) - 1,
			    at = greatest(t, b.at)
			WHERE b.user_id = NEW.user_id
			  AND least(burst, b.tokens
			        + extract(epoch FROM greatest(t, b.at) - b.at) * per_s) >= 1
			RETURNING b.tokens INTO left_;
			took := FOUND;
			EXIT WHEN took;
			-- no token (refused below), or no row yet
			SELECT least(burst, b.tokens
			    + extract(epoch FROM greatest(t, b.at) - b.at) * per_s)
			INTO left_ FROM public.rate_buckets b WHERE b.user_id = NEW.user_id;
			EXIT WHEN FOUND;
			-- the user's first job: a full bucket, less this one (or,
			-- when a concurrent first job made the row meanwhile,
			-- take from it)
			INSERT INTO public.rate_buckets (user_id, tokens, at)
			VALUES (NEW.user_id, burst - 1, t)
			ON CONFLICT (user_id) DO NOTHING;
			IF FOUND THEN
				left_ := burst - 1;
				took := true;
				EXIT;
			END IF;
		END LOOP;
		-- no token taken, whatever the reason: refused, as by 011
		IF NOT took THEN
			RAISE EXCEPTION USING ERRCODE = 'IG429',
			    MESSAGE = format('more than %s job creations in a row; %s a minute'
				' after that', burst, per_minute),
			    DETAIL = json_build_object(
				'retryAfter', greatest(1, ceil((1 - coalesce(left_, 0)) / per_s)::bigint),
				'limit', burst::bigint, 'remaining', 0,
				'reset', ceil((burst - coalesce(left_, 0)) / per_s)::bigint)::text;
		END IF;
		PERFORM set_config('imagegen.rate_state', format('%s;%s', floor(left_)::bigint,
		    ceil((burst - left_) / per_s)::bigint), true);
	END IF;
	IF budget IS NULL THEN
		RETURN NULL;
	END IF;
	day := (NEW.created_at AT TIME ZONE 'UTC')::date;
	FOR i IN 1 .. cardinality(wins) LOOP
		sc := split_part(wins[i], ':', 1);
		per := split_part(wins[i], ':', 2);
		sid := CASE sc WHEN 'user' THEN NEW.user_id
		    WHEN 'project' THEN NEW.project_id
		    ELSE '00000000-0000-0000-0000-000000000000'::uuid END;
		ws := CASE per WHEN 'month' THEN date_trunc('month', day)::date
		    ELSE day END;
		lim := lims[i];
		UPDATE public.budget_usage u
		SET reserved_usd = u.reserved_usd + amt, limit_usd = lim
		WHERE u.scope = sc AND u.scope_id = sid AND u.period = per
		  AND u.window_start = ws
		  AND u.spent_usd + u.reserved_usd + amt <= lim
		RETURNING u.spent_usd, u.reserved_usd, u.alerted INTO s, res, al;
		IF NOT FOUND THEN
			-- no row yet, or no room: made (from what ended jobs
			-- cost) and taken, or refused (IG402)
			msgs := msgs || public.image_budget_take(sc, sid, per, ws,
			    lim, amt, NEW.id);
		ELSIF lim > 0 AND (CASE WHEN s + res >= lim THEN 100
		    WHEN s + res >= lim * 0.8 THEN 80
		    WHEN s + res >= lim * 0.5 THEN 50 ELSE 0 END) > al THEN
			-- a threshold newly reached: recorded once, its line
			-- raised below
			msgs := msgs || public.image_budget_alert(sc, sid, per, ws,
			    s, res, lim, al, NEW.id);
		END IF;
	END LOOP;
	-- every window took the job: nothing refuses it any more
	IF cardinality(msgs) > 0 THEN
		PERFORM public.image_budget_announce(msgs);
	END IF;
	RETURN NULL;
END
$fn$;
-- AFTER triggers of a row fire in the order of their names: "zz", after
-- image_generation_jobs_notify (006), so that the NOTIFY too is queued
-- before the shared rows are locked.  A later AFTER INSERT trigger must
-- sort before it.
DROP TRIGGER image_generation_jobs_log_insert ON public.image_generation_jobs;
CREATE TRIGGER image_generation_jobs_zz_admit
	AFTER INSERT ON public.image_generation_jobs
	FOR EACH ROW EXECUTE FUNCTION public.image_generation_jobs_admit();
REVOKE ALL ON FUNCTION public.image_generation_jobs_admit()
	FROM PUBLIC, anon, authenticated, service_role;

-- The status trigger, now for status changes only (its trigger is
-- image_generation_jobs_log_update): the event, and the settling of the
-- job's budget on entry to a terminal status.
CREATE OR REPLACE FUNCTION public.image_generation_jobs_log_status()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
	budget jsonb;
BEGIN
	IF NEW.status IN ('completed', 'failed', 'canceled')
	    AND OLD.status NOT IN ('completed', 'failed', 'canceled') THEN
		budget := public.image_budget_settle(NEW);
	END IF;
	INSERT INTO public.image_generation_job_events
	    (job_id, from_status, to_status, event, detail)
	VALUES (NEW.id, OLD.status, NEW.status, 'status',
	    jsonb_strip_nulls(jsonb_build_object(
		'attempts', NEW.attempts,
		'error_code', CASE WHEN NEW.status IN ('failed', 'queued',
		    'canceled') THEN NEW.error_code END,
		'failure_stage', CASE WHEN NEW.status = 'failed'
		    THEN NEW.failure_stage END,
		'budget', budget)));
	RETURN NULL;
END
$fn$;

DROP FUNCTION public.image_job_rate_take();
DROP FUNCTION public.image_budget_reserve(public.image_generation_jobs);
