-- Reservation and rate limit, cheaper per POST (same behaviour as 011).
--
-- image_budget_reserve: one primary-key UPDATE per window (usually one:
-- the user's day) instead of one UPDATE joined to an unnest() of every
-- window: the join's plan cost more to start and run than the rows it
-- changed. The windows are still taken in one order (user, project,
-- deployment; day, month), so two transactions lock them alike.
--
-- image_job_rate_take: an UPDATE of the caller's bucket first; the
-- INSERT … ON CONFLICT (a speculative insertion, dearer) only for a
-- user's first job since the bucket row was made.

CREATE OR REPLACE FUNCTION public.image_budget_reserve(j public.image_generation_jobs)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
	amt numeric := coalesce(j.estimated_cost, 0);
	day date;
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
	IF amt <= 0 THEN
		RETURN NULL;
	END IF;
	-- the limits: the settings' defaults, then operators' rows
	-- (NULL: the default; 'Infinity': none)
	d := coalesce(current_setting('imagegen.budget_defaults', true), '');
	ud := nullif(split_part(d, '|', 1), '')::numeric;
	um := nullif(split_part(d, '|', 2), '')::numeric;
	dd := nullif(split_part(d, '|', 3), '')::numeric;
	-- two primary-key lookups (cheaper than one query with an OR, or a
	-- FOR loop's cursor); no row: NULLs, the defaults
	SELECT b.daily_usd, b.monthly_usd INTO od, om FROM public.budgets b
	WHERE b.scope = 'user' AND b.scope_id = j.user_id;
	ud := coalesce(od, ud);
	um := coalesce(om, um);
	SELECT b.daily_usd, b.monthly_usd INTO pd, pm FROM public.budgets b
	WHERE b.scope = 'project' AND b.scope_id = j.project_id;
	IF ud < 'Infinity' THEN wins := wins || 'user:day'::text; lims := lims || ud; END IF;
	IF um < 'Infinity' THEN wins := wins || 'user:month'::text; lims := lims || um; END IF;
	IF pd < 'Infinity' THEN wins := wins || 'project:day'::text; lims := lims || pd; END IF;
	IF pm < 'Infinity' THEN wins := wins || 'project:month'::text; lims := lims || pm; END IF;
	IF dd < 'Infinity' THEN wins := wins || 'deployment:day'::text; lims := lims || dd; END IF;
	IF cardinality(wins) = 0 THEN
		RETURN NULL;
	END IF;
	day := (j.created_at AT TIME ZONE 'UTC')::date;
	FOR i IN 1 .. cardinality(wins) LOOP
		sc := split_part(wins[i], ':', 1);
		per := split_part(wins[i], ':', 2);
		sid := CASE sc WHEN 'user' THEN j.user_id
		    WHEN 'project' THEN j.project_id
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
			    lim, amt, j.id);
		ELSIF lim > 0 AND (CASE WHEN s + res >= lim THEN 100
		    WHEN s + res >= lim * 0.8 THEN 80
		    WHEN s + res >= lim * 0.5 THEN 50 ELSE 0 END) > al THEN
			-- a threshold newly reached (image_budget_level(),
			-- written out): recorded once, its line raised below
			msgs := msgs || public.image_budget_alert(sc, sid, per, ws,
			    s, res, lim, al, j.id);
		END IF;
	END LOOP;
	-- every window took the job: nothing refuses it any more
	IF cardinality(msgs) > 0 THEN
		PERFORM public.image_budget_announce(msgs);
	END IF;
	RETURN jsonb_build_object('reservedUsd', amt, 'windows', to_jsonb(wins));
END
$fn$;

CREATE OR REPLACE FUNCTION public.image_job_rate_take()
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
	conf text := coalesce(current_setting('imagegen.rate_limit', true), '');
	per_minute double precision := nullif(split_part(conf, '|', 1), '');
	burst double precision := nullif(split_part(conf, '|', 2), '');
	per_s double precision := per_minute / 60;
	uid uuid;
	t timestamptz := clock_timestamp();
	left_ double precision;
BEGIN
	IF per_minute IS NULL OR per_minute <= 0 OR burst IS NULL
	    OR burst < 1 THEN
		RETURN NULL;
	END IF;
	-- in a query, so that the SQL function is inlined and its plan kept
	SELECT auth.uid() INTO uid;
	IF uid IS NULL THEN
		RETURN NULL;
	END IF;
	-- t was read before the row's lock was had: a take that read a later
	-- clock may have stored it meanwhile; never count time backwards
	FOR attempt IN 1..2 LOOP
		UPDATE public.rate_buckets b
		SET tokens = least(burst, b.tokens
		        + extract(epoch FROM greatest(t, b.at) - b.at) * per_s) - 1,
		    at = greatest(t, b.at)
		WHERE b.user_id = uid
		  AND least(burst, b.tokens
		        + extract(epoch FROM greatest(t, b.at) - b.at) * per_s) >= 1
		RETURNING b.tokens INTO left_;
		IF FOUND THEN
			RETURN format('%s;%s', floor(left_)::bigint,
			    ceil((burst - left_) / per_s)::bigint);
		END IF;
		SELECT least(burst, b.tokens
		    + extract(epoch FROM greatest(t, b.at) - b.at) * per_s)
		INTO left_ FROM public.rate_buckets b WHERE b.user_id = uid;
		EXIT WHEN FOUND;	-- empty: refused below
		-- the user's first job: a full bucket, less this one (or, when
		-- a concurrent first job made the row meanwhile, take from it)
		INSERT INTO public.rate_buckets (user_id, tokens, at)
		VALUES (uid, burst - 1, t)
		ON CONFLICT (user_id) DO NOTHING;
		IF FOUND THEN
			RETURN format('%s;%s', floor(burst - 1)::bigint,
			    ceil(1 / per_s)::bigint);
		END IF;
	END LOOP;
	RAISE EXCEPTION USING ERRCODE = 'IG429',
	    MESSAGE = format('more than %s job creations in a row; %s a minute'
		' after that', burst, per_minute),
	    DETAIL = json_build_object(
		'retryAfter', greatest(1, ceil((1 - coalesce(left_, 0)) / per_s)::bigint),
		'limit', burst::bigint, 'remaining', 0,
		'reset', ceil((burst - coalesce(left_, 0)) / per_s)::bigint)::text;
END
$fn$;

