-- 011_budgets.sql - spending control: budgets that cannot be overspent,
-- per-user rate limits, cost alerts (SPEC §3, BUDGET_EXCEEDED and
-- RATE_LIMITED).
--
-- Budgets, in USD, over UTC windows: per user (day, month), per project
-- (day, month) and for the whole deployment (day).  A limit comes from an
-- operator's row in public.budgets (`imagegen budget set`) or else from the
-- responder's settings, which it passes to its transaction as
-- imagegen.budget_defaults = 'USER_DAY|USER_MONTH|DEPLOYMENT_DAY' (each
-- empty for none; set_config(..., true), like the token's claims).  In
-- public.budgets a NULL limit means "the default", 'Infinity' means "none".
--
-- Reservation: when a job row is inserted (create or retry), its
-- estimated_cost is added to reserved_usd of the usage row of every window
-- that has a limit, in the INSERT's own statement (the status trigger), and
-- only while spent + reserved + cost <= limit; otherwise the INSERT fails
-- with SQLSTATE IG402, the JSON of the refusing budget as the error's
-- DETAIL, and nothing is created.  One UPDATE takes every window's row,
-- each under its row lock: concurrent POSTs queue on the rows and each sees
-- the last one's sum, so the limit holds exactly.  Which rows were reserved, and how much,
-- is kept in the detail of the job's first event ('budget'); when the job
-- ends the same rows give the reservation back and are charged what the
-- job cost: completed, the actual cost (the estimate when none was
-- reported); failed or canceled, the actual cost if the provider reported
-- one (it billed), else nothing.  Free jobs (cost 0) reserve nothing.
--
-- A usage row is made by the first paid job of its window.  When a limit
-- appears mid-window (an operator's `budget set`, a new default) the row
-- starts from what ended jobs of the window already cost; jobs still
-- running then were not reserved against it and are not charged to it.
--
-- Alerts: when a window's spent + reserved reaches 50, 80 and 100 % of its
-- limit, a row in public.cost_alerts (once per threshold and window: the
-- usage row's `alerted` under its lock, and a unique key) and a WARNING
-- (SQLSTATE 01IGA, raised once every window took the job) the responder or
-- executor logs.
--
-- Rate limits: public.image_job_rate_take(), called in the RETURNING list
-- of the job INSERT (so an idempotent replay, which inserts nothing, takes
-- nothing): a token bucket per user in public.rate_buckets, SQLSTATE IG429
-- when empty, with the JSON of the limit as DETAIL.  The rate and the
-- bucket's size are the transaction's imagegen.rate_limit =
-- 'PER_MINUTE|BURST' (the responder's settings; unset: no limit).

CREATE TABLE public.budgets (
	scope       text NOT NULL CHECK (scope IN ('user', 'project')),
	scope_id    uuid NOT NULL,
	daily_usd   numeric CHECK (daily_usd >= 0),
	monthly_usd numeric CHECK (monthly_usd >= 0),
	updated_at  timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (scope, scope_id)
);

CREATE TABLE public.budget_usage (
	scope        text NOT NULL
	             CHECK (scope IN ('user', 'project', 'deployment')),
	-- the user's or project's id; the nil UUID for the deployment
	scope_id     uuid NOT NULL,
	period       text NOT NULL CHECK (period IN ('day', 'month')),
	window_start date NOT NULL,
	spent_usd    numeric(14, 6) NOT NULL DEFAULT 0,
	reserved_usd numeric(14, 6) NOT NULL DEFAULT 0,
	-- the limit of the last reservation, for alerts and /metrics
	limit_usd    numeric,
	-- the highest threshold (percent) alerted in this window
	alerted      smallint NOT NULL DEFAULT 0,
	PRIMARY KEY (scope, scope_id, period, window_start)
);
CREATE INDEX budget_usage_window ON public.budget_usage (window_start);

CREATE TABLE public.cost_alerts (
	id           bigserial PRIMARY KEY,
	scope        text NOT NULL,
	scope_id     uuid NOT NULL,
	period       text NOT NULL,
	window_start date NOT NULL,
	threshold    smallint NOT NULL CHECK (threshold IN (50, 80, 100)),
	spent_usd    numeric(14, 6) NOT NULL,
	reserved_usd numeric(14, 6) NOT NULL,
	limit_usd    numeric NOT NULL,
	job_id       uuid,
	created_at   timestamptz NOT NULL DEFAULT now(),
	UNIQUE (scope, scope_id, period, window_start, threshold)
);
CREATE INDEX cost_alerts_created ON public.cost_alerts (created_at);

CREATE TABLE public.rate_buckets (
	user_id uuid PRIMARY KEY,
	tokens  double precision NOT NULL,
	at      timestamptz NOT NULL
);

REVOKE ALL ON TABLE public.budgets, public.budget_usage, public.cost_alerts,
	public.rate_buckets FROM PUBLIC, anon, authenticated, service_role;
REVOKE ALL ON SEQUENCE public.cost_alerts_id_seq
	FROM PUBLIC, anon, authenticated, service_role;
GRANT ALL ON TABLE public.budgets, public.budget_usage, public.cost_alerts,
	public.rate_buckets TO service_role;
GRANT ALL ON SEQUENCE public.cost_alerts_id_seq TO service_role;
ALTER TABLE public.budgets ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.budget_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.cost_alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.rate_buckets ENABLE ROW LEVEL SECURITY;

-- The UTC window of period containing day.
CREATE FUNCTION public.image_budget_window(period text, day date)
RETURNS date
LANGUAGE sql IMMUTABLE
AS $fn$
	SELECT CASE period WHEN 'month'
		THEN date_trunc('month', day)::date ELSE day END
$fn$;

-- The UTC day a job's cost counts in.
CREATE FUNCTION public.image_job_budget_day(created_at timestamptz)
RETURNS date
LANGUAGE sql IMMUTABLE
AS $fn$
	SELECT (created_at AT TIME ZONE 'UTC')::date
$fn$;

-- What an ended job cost: completed, its actual cost or else its estimate;
-- failed or canceled, its actual cost when the provider reported one.
CREATE FUNCTION public.image_job_charge(status text, actual numeric,
	estimated numeric)
RETURNS numeric
LANGUAGE sql IMMUTABLE
AS $fn$
	SELECT CASE status
		WHEN 'completed' THEN coalesce(actual, estimated, 0)
		WHEN 'failed' THEN coalesce(actual, 0)
		WHEN 'canceled' THEN coalesce(actual, 0)
		ELSE 0 END
$fn$;

-- The limits that apply to a job of user uid in project pid (NULL: none),
-- from public.budgets over the defaults in imagegen.budget_defaults.
CREATE FUNCTION public.image_budget_limits(uid uuid, pid uuid,
	OUT user_day numeric, OUT user_month numeric,
	OUT project_day numeric, OUT project_month numeric,
	OUT deployment_day numeric)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	d text := coalesce(current_setting('imagegen.budget_defaults', true), '');
	r record;
BEGIN
	user_day := nullif(split_part(d, '|', 1), '')::numeric;
	user_month := nullif(split_part(d, '|', 2), '')::numeric;
	deployment_day := nullif(split_part(d, '|', 3), '')::numeric;
	FOR r IN SELECT b.scope, b.daily_usd, b.monthly_usd
	    FROM public.budgets b
	    WHERE (b.scope = 'user' AND b.scope_id = uid)
	       OR (b.scope = 'project' AND b.scope_id = pid) LOOP
		IF r.scope = 'user' THEN
			user_day := coalesce(r.daily_usd, user_day);
			user_month := coalesce(r.monthly_usd, user_month);
		ELSE
			project_day := r.daily_usd;
			project_month := r.monthly_usd;
		END IF;
	END LOOP;
	-- 'Infinity': no limit
	IF user_day = 'Infinity' THEN user_day := NULL; END IF;
	IF user_month = 'Infinity' THEN user_month := NULL; END IF;
	IF project_day = 'Infinity' THEN project_day := NULL; END IF;
	IF project_month = 'Infinity' THEN project_month := NULL; END IF;
END
$fn$;

-- What ended jobs of a window already cost (a usage row's start).
CREATE FUNCTION public.image_budget_backfill(sc text, sid uuid, per text,
	ws date)
RETURNS numeric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	t0 timestamptz := ws::timestamp AT TIME ZONE 'UTC';
	t1 timestamptz := (CASE per WHEN 'month' THEN ws + interval '1 month'
	    ELSE ws + 1 END)::timestamp AT TIME ZONE 'UTC';
	total numeric;
BEGIN
	-- one query per scope, so that each uses its (owner, created_at)
	-- index; the deployment's reads the day's jobs (once a day)
	IF sc = 'user' THEN
		SELECT sum(public.image_job_charge(j.status, j.actual_cost,
		    j.estimated_cost)) INTO total
		FROM public.image_generation_jobs j
		WHERE j.user_id = sid AND j.created_at >= t0 AND j.created_at < t1
		  AND j.status IN ('completed', 'failed', 'canceled');
	ELSIF sc = 'project' THEN
		SELECT sum(public.image_job_charge(j.status, j.actual_cost,
		    j.estimated_cost)) INTO total
		FROM public.image_generation_jobs j
		WHERE j.project_id = sid AND j.created_at >= t0
		  AND j.created_at < t1
		  AND j.status IN ('completed', 'failed', 'canceled');
	ELSE
		SELECT sum(public.image_job_charge(j.status, j.actual_cost,
		    j.estimated_cost)) INTO total
		FROM public.image_generation_jobs j
		WHERE j.created_at >= t0 AND j.created_at < t1
		  AND j.status IN ('completed', 'failed', 'canceled');
	END IF;
	RETURN coalesce(total, 0);
END
$fn$;

-- The threshold (percent) spend has reached: 0, 50, 80 or 100.
CREATE FUNCTION public.image_budget_level(used numeric, lim numeric)
RETURNS smallint
LANGUAGE sql IMMUTABLE
AS $fn$
	SELECT (CASE WHEN lim IS NULL OR lim <= 0 THEN 0
		WHEN used >= lim THEN 100
		WHEN used >= lim * 0.8 THEN 80
		WHEN used >= lim * 0.5 THEN 50
		ELSE 0 END)::smallint
$fn$;

-- After a change of a usage row (locked by the caller's UPDATE): records
-- each threshold newly reached; the alerts' log lines, which the caller
-- raises as WARNINGs (SQLSTATE 01IGA) once nothing can refuse the job any
-- more (a WARNING sent cannot be taken back with a rollback).
CREATE FUNCTION public.image_budget_alert(sc text, sid uuid, per text,
	ws date, s numeric, r numeric, lim numeric, already smallint, job uuid)
RETURNS text[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	-- public.image_budget_level(), written out (see image_budget_reserve)
	lvl smallint := CASE WHEN lim IS NULL OR lim <= 0 THEN 0
		WHEN s + r >= lim THEN 100 WHEN s + r >= lim * 0.8 THEN 80
		WHEN s + r >= lim * 0.5 THEN 50 ELSE 0 END;
	t smallint;
	msgs text[] := '{}';
BEGIN
	IF lvl <= already THEN
		RETURN msgs;
	END IF;
	UPDATE public.budget_usage SET alerted = lvl
	WHERE scope = sc AND scope_id = sid AND period = per
	  AND window_start = ws;
	FOREACH t IN ARRAY ARRAY[50, 80, 100]::smallint[] LOOP
		IF t > already AND t <= lvl THEN
			INSERT INTO public.cost_alerts (scope, scope_id, period,
			    window_start, threshold, spent_usd, reserved_usd,
			    limit_usd, job_id)
			VALUES (sc, sid, per, ws, t, s, r, lim, job)
			ON CONFLICT DO NOTHING;
			msgs := msgs || format(
			    'budget alert: %s %s budget (window %s) reached %s%%:'
			    ' spent %s, reserved %s of %s USD',
			    CASE WHEN sc = 'deployment' THEN sc
			    ELSE sc || ' ' || sid END, CASE per WHEN 'day' THEN 'daily'
			    ELSE 'monthly' END, ws, t, round(s, 6)::float8,
			    round(r, 6)::float8, lim::float8);
		END IF;
	END LOOP;
	RETURN msgs;
END
$fn$;

-- Raises the alerts' lines as WARNINGs.
CREATE FUNCTION public.image_budget_announce(msgs text[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	m text;
BEGIN
	FOREACH m IN ARRAY coalesce(msgs, '{}') LOOP
		RAISE WARNING USING ERRCODE = '01IGA', MESSAGE = m;
	END LOOP;
END
$fn$;

-- Reserves amt in one window, or refuses with IG402; the alerts' lines.
CREATE FUNCTION public.image_budget_take(sc text, sid uuid, per text,
	ws date, lim numeric, amt numeric, job uuid)
RETURNS text[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	s numeric;
	r numeric;
	al smallint;
BEGIN
	-- at most: the row is missing, made, then taken; or the UPDATE missed
	-- a row another transaction was making, which the SELECT then sees
	FOR attempt IN 1..3 LOOP
		UPDATE public.budget_usage u
		SET reserved_usd = u.reserved_usd + amt, limit_usd = lim
		WHERE u.scope = sc AND u.scope_id = sid AND u.period = per
		  AND u.window_start = ws
		  AND u.spent_usd + u.reserved_usd + amt <= lim
		RETURNING u.spent_usd, u.reserved_usd, u.alerted INTO s, r, al;
		IF FOUND THEN
			RETURN public.image_budget_alert(sc, sid, per, ws, s, r,
			    lim, al, job);
		END IF;
		SELECT u.spent_usd, u.reserved_usd INTO s, r
		FROM public.budget_usage u
		WHERE u.scope = sc AND u.scope_id = sid AND u.period = per
		  AND u.window_start = ws;
		IF FOUND THEN
			-- no room: refused; room: the row was committed after our
			-- UPDATE looked, so take it again
			EXIT WHEN s + r + amt > lim;
			CONTINUE;
		END IF;
		-- the window's first paid job: start from what ended jobs cost
		INSERT INTO public.budget_usage (scope, scope_id, period,
		    window_start, spent_usd, limit_usd)
		VALUES (sc, sid, per, ws,
		    public.image_budget_backfill(sc, sid, per, ws), lim)
		ON CONFLICT DO NOTHING;
	END LOOP;
	RAISE EXCEPTION USING ERRCODE = 'IG402',
	    MESSAGE = format('the %s %s budget of %s USD is used up (spent %s,'
		' reserved %s; this job needs %s)', sc,
		CASE per WHEN 'day' THEN 'daily' ELSE 'monthly' END,
		lim::float8, round(coalesce(s, 0), 6)::float8,
		round(coalesce(r, 0), 6)::float8, amt::float8),
	    DETAIL = json_build_object('scope', sc, 'period', per,
		'limitUsd', lim::float8, 'spentUsd', coalesce(s, 0)::float8,
		'reservedUsd', coalesce(r, 0)::float8,
		'windowStart', ws)::text;
END
$fn$;

-- The usage row key of window w ('user:day', 'project:month',
-- 'deployment:day', …) of job j, and its window start.
CREATE FUNCTION public.image_budget_key(w text, j public.image_generation_jobs,
	OUT sc text, OUT sid uuid, OUT per text, OUT ws date)
LANGUAGE sql IMMUTABLE
AS $fn$
	SELECT split_part(w, ':', 1),
	    CASE split_part(w, ':', 1) WHEN 'user' THEN j.user_id
		WHEN 'project' THEN j.project_id
		ELSE '00000000-0000-0000-0000-000000000000'::uuid END,
	    split_part(w, ':', 2),
	    public.image_budget_window(split_part(w, ':', 2),
		(j.created_at AT TIME ZONE 'UTC')::date)
$fn$;

-- Gives a job's reservation back and charges its cost, in the rows its
-- first event names ({"reservedUsd": …, "windows": ["user:day", …]}): one
-- UPDATE for all of them.
CREATE FUNCTION public.image_budget_settle(j public.image_generation_jobs)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- planned once per session, not per call (a custom plan every time costs
-- more than the statement: the arrays and rows as parameters look cheap)
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
	res jsonb;
	amt numeric;
	charge numeric;
	r record;
	day date := (j.created_at AT TIME ZONE 'UTC')::date;
	msgs text[] := '{}';
BEGIN
	IF coalesce(j.estimated_cost, 0) <= 0 THEN
		RETURN NULL;		-- a free job reserved nothing
	END IF;
	SELECT e.detail -> 'budget' INTO res
	FROM public.image_generation_job_events e
	WHERE e.job_id = j.id AND e.event = 'status' AND e.from_status IS NULL
	ORDER BY e.id LIMIT 1;
	IF res IS NULL THEN
		RETURN NULL;
	END IF;
	amt := (res ->> 'reservedUsd')::numeric;
	-- public.image_job_charge(), written out (see image_budget_reserve)
	charge := CASE j.status
		WHEN 'completed' THEN coalesce(j.actual_cost, j.estimated_cost, 0)
		ELSE coalesce(j.actual_cost, 0) END;
	FOR r IN
		WITH w AS (
			SELECT split_part(x.w, ':', 1) AS sc,
			    CASE split_part(x.w, ':', 1) WHEN 'user' THEN j.user_id
				WHEN 'project' THEN j.project_id
				ELSE '00000000-0000-0000-0000-000000000000'::uuid
				END AS sid,
			    split_part(x.w, ':', 2) AS per,
			    CASE split_part(x.w, ':', 2) WHEN 'month'
				THEN date_trunc('month', day)::date ELSE day END AS ws
			FROM jsonb_array_elements_text(res -> 'windows') AS x(w))
		UPDATE public.budget_usage u
		SET reserved_usd = greatest(u.reserved_usd - amt, 0),
		    spent_usd = u.spent_usd + charge
		FROM w
		WHERE u.scope = w.sc AND u.scope_id = w.sid AND u.period = w.per
		  AND u.window_start = w.ws
		RETURNING u.scope, u.scope_id, u.period, u.window_start,
		    u.spent_usd, u.reserved_usd, u.alerted, u.limit_usd
	LOOP
		-- charged more than reserved: a threshold may be crossed now
		IF charge > amt AND r.alerted < 100 THEN
			msgs := msgs || public.image_budget_alert(r.scope,
			    r.scope_id, r.period, r.window_start, r.spent_usd,
			    r.reserved_usd, r.limit_usd, r.alerted, j.id);
		END IF;
	END LOOP;
	PERFORM public.image_budget_announce(msgs);
	RETURN jsonb_build_object('reservedUsd', amt, 'chargedUsd', charge);
END
$fn$;

-- Reserves a new job's estimate in every window with a limit; the
-- reservation, for the job's first event, or NULL when none was made.
-- One UPDATE takes every window whose usage row exists and has room (the
-- hot path: a POST pays one statement for its budgets); a window without a
-- row yet, or without room, goes through image_budget_take(), which makes
-- the row or refuses the job.
CREATE FUNCTION public.image_budget_reserve(j public.image_generation_jobs)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- planned once per session, not per call (a custom plan every time costs
-- more than the statement: the arrays and rows as parameters look cheap)
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
	amt numeric := coalesce(j.estimated_cost, 0);
	day date := (j.created_at AT TIME ZONE 'UTC')::date;
	mon date := date_trunc('month', day)::date;
	nil uuid := '00000000-0000-0000-0000-000000000000';
	d text;
	ud numeric;
	um numeric;
	pd numeric;
	pm numeric;
	dd numeric;
	wins text[] := '{}';
	lims numeric[] := '{}';
	got text[];
	alert boolean;
	k record;
	r record;
	i int;
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
	FOR r IN SELECT b.scope, b.daily_usd, b.monthly_usd
	    FROM public.budgets b
	    WHERE (b.scope = 'user' AND b.scope_id = j.user_id)
	       OR (b.scope = 'project' AND b.scope_id = j.project_id) LOOP
		IF r.scope = 'user' THEN
			ud := coalesce(r.daily_usd, ud);
			um := coalesce(r.monthly_usd, um);
		ELSE
			pd := r.daily_usd;
			pm := r.monthly_usd;
		END IF;
	END LOOP;
	-- always in this order (user, project, deployment; day, month), so
	-- that two transactions take the rows in one order
	IF ud < 'Infinity' THEN wins := wins || 'user:day'::text; lims := lims || ud; END IF;
	IF um < 'Infinity' THEN wins := wins || 'user:month'::text; lims := lims || um; END IF;
	IF pd < 'Infinity' THEN wins := wins || 'project:day'::text; lims := lims || pd; END IF;
	IF pm < 'Infinity' THEN wins := wins || 'project:month'::text; lims := lims || pm; END IF;
	IF dd < 'Infinity' THEN wins := wins || 'deployment:day'::text; lims := lims || dd; END IF;
	IF cardinality(wins) = 0 THEN
		RETURN NULL;
	END IF;
	-- (no SQL-language function here: one called outside a query's
	-- inlining is parsed again in every transaction, and this is every
	-- paid POST)
	WITH w AS (
		SELECT x.w, x.lim, split_part(x.w, ':', 1) AS sc,
		    CASE split_part(x.w, ':', 1) WHEN 'user' THEN j.user_id
			WHEN 'project' THEN j.project_id ELSE nil END AS sid,
		    split_part(x.w, ':', 2) AS per,
		    CASE split_part(x.w, ':', 2) WHEN 'month' THEN mon
			ELSE day END AS ws
		FROM unnest(wins, lims) AS x(w, lim)),
	upd AS (
		UPDATE public.budget_usage u
		SET reserved_usd = u.reserved_usd + amt, limit_usd = w.lim
		FROM w
		WHERE u.scope = w.sc AND u.scope_id = w.sid AND u.period = w.per
		  AND u.window_start = w.ws
		  AND u.spent_usd + u.reserved_usd + amt <= w.lim
		RETURNING w.w, public.image_budget_level(u.spent_usd
		    + u.reserved_usd, w.lim) > u.alerted AS alert)
	SELECT coalesce(array_agg(upd.w), '{}'), coalesce(bool_or(upd.alert), false)
	INTO got, alert FROM upd;
	IF cardinality(got) < cardinality(wins) THEN
		FOR i IN 1 .. cardinality(wins) LOOP
			CONTINUE WHEN wins[i] = ANY (got);
			k := public.image_budget_key(wins[i], j);
			msgs := msgs || public.image_budget_take(k.sc, k.sid, k.per,
			    k.ws, lims[i], amt, j.id);
		END LOOP;
	END IF;
	IF alert THEN
		FOR i IN 1 .. cardinality(wins) LOOP
			CONTINUE WHEN NOT wins[i] = ANY (got);
			k := public.image_budget_key(wins[i], j);
			SELECT u.spent_usd, u.reserved_usd, u.alerted INTO r
			FROM public.budget_usage u
			WHERE u.scope = k.sc AND u.scope_id = k.sid
			  AND u.period = k.per AND u.window_start = k.ws;
			msgs := msgs || public.image_budget_alert(k.sc, k.sid, k.per,
			    k.ws, r.spent_usd, r.reserved_usd, lims[i], r.alerted,
			    j.id);
		END LOOP;
	END IF;
	-- every window took the job: nothing refuses it any more
	PERFORM public.image_budget_announce(msgs);
	RETURN jsonb_build_object('reservedUsd', amt, 'windows', to_jsonb(wins));
END
$fn$;

-- The status trigger of 010, now also reserving (insert) and settling
-- (entry to a terminal status) the job's budget, kept in the event.
CREATE OR REPLACE FUNCTION public.image_generation_jobs_log_status()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- planned once per session, not per call (a custom plan every time costs
-- more than the statement: the arrays and rows as parameters look cheap)
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
	prev text;
	budget jsonb;
BEGIN
	IF TG_OP = 'UPDATE' THEN
		prev := OLD.status;
		IF NEW.status IN ('completed', 'failed', 'canceled')
		    AND OLD.status NOT IN ('completed', 'failed', 'canceled') THEN
			budget := public.image_budget_settle(NEW);
		END IF;
	ELSE
		budget := public.image_budget_reserve(NEW);
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
		'retry_of', CASE WHEN TG_OP = 'INSERT' THEN NEW.retry_of END,
		'request_id', CASE WHEN TG_OP = 'INSERT' THEN
		    nullif(current_setting('imagegen.request_id', true), '') END,
		'budget', budget)));
	RETURN NULL;
END
$fn$;

-- A job deleted before it ended (its row, or its project's or user's, by
-- cascade) gives its reservation back as a cancel would, charging what the
-- provider billed if it answered: BEFORE DELETE, while its first event,
-- which names the reserved windows, is still there.
CREATE FUNCTION public.image_generation_jobs_budget_delete()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	j public.image_generation_jobs := OLD;
BEGIN
	IF OLD.status NOT IN ('completed', 'failed', 'canceled') THEN
		j.status := 'canceled';
		PERFORM public.image_budget_settle(j);
	END IF;
	RETURN OLD;
END
$fn$;

CREATE TRIGGER image_generation_jobs_budget_delete
	BEFORE DELETE ON public.image_generation_jobs
	FOR EACH ROW EXECUTE FUNCTION public.image_generation_jobs_budget_delete();

-- A token from the caller's bucket (auth.uid()'s): 'REMAINING;RESET' (whole
-- tokens left; seconds until the bucket is full), or IG429 with
-- {"retryAfter","limit","remaining","reset"} as DETAIL; NULL when no rate
-- limit is set for the transaction: imagegen.rate_limit = 'PER_MINUTE|BURST',
-- set by the responder (set_config(..., true)) from its settings, like the
-- budget defaults.  The limit is the transaction's, never an argument:
-- called on its own (Supabase exposes public functions to `authenticated`
-- as RPC) it does nothing.
CREATE FUNCTION public.image_job_rate_take()
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- planned once per session, not per call (a custom plan every time costs
-- more than the statement: the arrays and rows as parameters look cheap)
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
	-- (as an expression it would be parsed again in every transaction)
	SELECT auth.uid() INTO uid;
	IF uid IS NULL THEN
		RETURN NULL;
	END IF;
	-- t was read before the row's lock was had: a take that read a later
	-- clock may have stored it meanwhile; never count time backwards
	INSERT INTO public.rate_buckets AS b (user_id, tokens, at)
	VALUES (uid, burst - 1, t)
	ON CONFLICT (user_id) DO UPDATE
	SET tokens = least(burst, b.tokens
	        + extract(epoch FROM greatest(t, b.at) - b.at) * per_s) - 1,
	    at = greatest(t, b.at)
	WHERE least(burst, b.tokens
	        + extract(epoch FROM greatest(t, b.at) - b.at) * per_s) >= 1
	RETURNING b.tokens INTO left_;
	IF FOUND THEN
		RETURN format('%s;%s', floor(left_)::bigint,
		    ceil((burst - left_) / per_s)::bigint);
	END IF;
	SELECT least(burst, b.tokens
	    + extract(epoch FROM greatest(t, b.at) - b.at) * per_s)
	INTO left_ FROM public.rate_buckets b WHERE b.user_id = uid;
	RAISE EXCEPTION USING ERRCODE = 'IG429',
	    MESSAGE = format('more than %s job creations in a row; %s a minute'
		' after that', burst, per_minute),
	    DETAIL = json_build_object(
		'retryAfter', greatest(1, ceil((1 - left_) / per_s)::bigint),
		'limit', burst::bigint, 'remaining', 0,
		'reset', ceil((burst - left_) / per_s)::bigint)::text;
END
$fn$;

-- The caller's bucket without taking from it, for an idempotent replay's
-- answer and GET /api/usage: 'REMAINING;RESET' as above, or NULL.
CREATE FUNCTION public.image_job_rate_peek()
RETURNS text
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	conf text := coalesce(current_setting('imagegen.rate_limit', true), '');
	per_minute double precision := nullif(split_part(conf, '|', 1), '');
	burst double precision := nullif(split_part(conf, '|', 2), '');
	per_s double precision := per_minute / 60;
	left_ double precision;
BEGIN
	IF per_minute IS NULL OR per_minute <= 0 OR burst IS NULL
	    OR burst < 1 THEN
		RETURN NULL;
	END IF;
	SELECT least(burst, b.tokens + extract(epoch FROM
	    greatest(clock_timestamp(), b.at) - b.at) * per_s)
	INTO left_ FROM public.rate_buckets b WHERE b.user_id = auth.uid();
	left_ := coalesce(left_, burst);
	RETURN format('%s;%s', floor(left_)::bigint,
	    ceil((burst - left_) / per_s)::bigint);
END
$fn$;

-- The budgets that apply to the caller (and, with project, to that project
-- of the caller's; another's gives no project rows), for GET /api/usage:
-- one row per window with a limit, this day and month (UTC).
CREATE FUNCTION public.image_usage(project uuid)
RETURNS TABLE (scope text, scope_id uuid, period text, window_start date,
	limit_usd numeric, spent_usd numeric, reserved_usd numeric)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	uid uuid := auth.uid();
	pid uuid;
	day date := public.image_job_budget_day(now());
	lim record;
	nil uuid := '00000000-0000-0000-0000-000000000000';
BEGIN
	IF uid IS NULL THEN
		RETURN;
	END IF;
	SELECT p.id INTO pid FROM public.projects p
	WHERE p.id = project AND p.owner_id = uid;
	lim := public.image_budget_limits(uid, pid);
	RETURN QUERY
	SELECT w.sc, w.sid, w.per, w.ws, w.lim,
	    -- no row yet: what ended jobs cost (a user's or project's, by
	    -- index); the deployment's is 0 until its first paid job, so that
	    -- a read never scans the day's jobs
	    coalesce(u.spent_usd, CASE WHEN w.sc = 'deployment' THEN 0 ELSE
		public.image_budget_backfill(w.sc, w.sid, w.per, w.ws) END),
	    coalesce(u.reserved_usd, 0)
	FROM (VALUES
		(1, 'user', uid, 'day', day, lim.user_day),
		(2, 'user', uid, 'month', public.image_budget_window('month', day),
		    lim.user_month),
		(3, 'project', pid, 'day', day, lim.project_day),
		(4, 'project', pid, 'month',
		    public.image_budget_window('month', day), lim.project_month),
		(5, 'deployment', nil, 'day', day, lim.deployment_day))
	    AS w(n, sc, sid, per, ws, lim)
	LEFT JOIN public.budget_usage u ON u.scope = w.sc
	    AND u.scope_id = w.sid AND u.period = w.per AND u.window_start = w.ws
	WHERE w.lim IS NOT NULL AND w.sid IS NOT NULL
	ORDER BY w.n;
END
$fn$;

REVOKE ALL ON FUNCTION
	public.image_generation_jobs_budget_delete(),
	public.image_budget_limits(uuid, uuid),
	public.image_budget_backfill(text, uuid, text, date),
	public.image_budget_alert(text, uuid, text, date, numeric, numeric,
	    numeric, smallint, uuid),
	public.image_budget_announce(text[]),
	public.image_budget_take(text, uuid, text, date, numeric, numeric, uuid),
	public.image_budget_key(text, public.image_generation_jobs),
	public.image_budget_settle(public.image_generation_jobs),
	public.image_budget_reserve(public.image_generation_jobs),
	public.image_job_rate_take(),
	public.image_job_rate_peek(),
	public.image_usage(uuid)
	FROM PUBLIC, anon, authenticated, service_role;
-- A request takes a token and reads its usage as itself (auth.uid()).
GRANT EXECUTE ON FUNCTION
	public.image_job_rate_take(),
	public.image_job_rate_peek(),
	public.image_usage(uuid)
	TO authenticated;
GRANT EXECUTE ON FUNCTION
	public.image_budget_limits(uuid, uuid),
	public.image_budget_backfill(text, uuid, text, date),
	public.image_usage(uuid)
	TO service_role;
