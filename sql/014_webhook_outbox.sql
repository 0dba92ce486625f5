-- 014_webhook_outbox.sql - outbound events through a transactional outbox.
--
-- A job created with a `webhook` records it here (webhook_url, and which
-- events: webhook_events, a subset of {start, completed}).  A trigger on
-- the job's status writes one public.webhook_deliveries row per event in
-- the transaction of the status change itself, so an event exists exactly
-- when its change committed (none for a change that rolled back, never one
-- lost):
--
--   queued -> processing                 image_job.started   ('start')
--   -> completed | failed | canceled     image_job.<status>  ('completed')
--
-- The body is fixed when the row is written: {"type", "timestamp", "data":
-- image_job_json(j)} (sql/005, the job as GET returns it).  Budget alerts
-- (public.cost_alerts, sql/011) each add a `budget.threshold` row with no
-- URL: the operator's IMAGEGEN_ALERT_WEBHOOK_URL, read by the deliverer.
--
-- Delivery (src/jobs/webhooks.c): executors, `imagegen worker` and the
-- sweeper claim due rows with FOR UPDATE SKIP LOCKED, taking a lease
-- (next_attempt_at moved ahead, attempts + 1) before the POST; a row is
-- not claimed while an earlier row of the same job is still pending, so a
-- job's events arrive in order.  `msg_id` is the webhook-id, the same on
-- every attempt.
--
-- Signing secrets (public.webhook_secrets): one `whsec_` secret per user,
-- made on first use, kept in plain text under row-level security with no
-- policy at all, so no request role reads the table; the caller's own
-- secret comes out only through the SECURITY DEFINER functions below, and
-- service_role (the deliverer) reads it to sign.  A one-way hash would
-- not do (HMAC needs the key itself), and encrypting it with a key held
-- by the same processes that sign would protect only a database dump
-- without the service's configuration; the database's own access rules
-- (and its backups' encryption) are the protection.  A rotation keeps the
-- old secret for 24 hours, and deliveries are signed with both.

ALTER TABLE public.image_generation_jobs
	ADD COLUMN webhook_url text
		CONSTRAINT image_generation_jobs_webhook_url_check
		CHECK (char_length(webhook_url) BETWEEN 1 AND 2048),
	ADD COLUMN webhook_events text[]
		CONSTRAINT image_generation_jobs_webhook_events_check
		CHECK (webhook_events <@ ARRAY['start', 'completed']::text[]);

CREATE TABLE public.webhook_secrets (
	user_id         uuid PRIMARY KEY
	                REFERENCES auth.users (id) ON DELETE CASCADE,
	secret          text NOT NULL CHECK (secret LIKE 'whsec\_%'),
	previous        text CHECK (previous LIKE 'whsec\_%'),
	previous_until  timestamptz,
	created_at      timestamptz NOT NULL DEFAULT now(),
	rotated_at      timestamptz
);

CREATE TABLE public.webhook_deliveries (
	id               bigserial PRIMARY KEY,
	msg_id           text NOT NULL,
	job_id           uuid REFERENCES public.image_generation_jobs (id)
	                 ON DELETE CASCADE,
	user_id          uuid REFERENCES auth.users (id) ON DELETE CASCADE,
	alert_id         bigint,
	event            text NOT NULL,
	-- NULL: the operator's alert URL (IMAGEGEN_ALERT_WEBHOOK_URL)
	url              text,
	body             text NOT NULL,
	-- pending: to be (re)tried; delivered: a 2xx came; gone: 410;
	-- failed: retries ran out; dropped: nowhere to send it
	state            text NOT NULL DEFAULT 'pending'
	                 CHECK (state IN ('pending', 'delivered', 'gone',
	                     'failed', 'dropped')),
	attempts         integer NOT NULL DEFAULT 0,
	next_attempt_at  timestamptz NOT NULL DEFAULT now(),
	last_status_code integer,
	last_error       text,
	last_attempt_at  timestamptz,
	delivered_at     timestamptz,
	created_at       timestamptz NOT NULL DEFAULT now()
);
-- The deliverers' scan: due pending rows, oldest first.
CREATE INDEX webhook_deliveries_due ON public.webhook_deliveries
	(next_attempt_at, id) WHERE state = 'pending';
-- A job's deliveries (listing, order, redeliver).
CREATE INDEX webhook_deliveries_job ON public.webhook_deliveries (job_id, id)
	WHERE job_id IS NOT NULL;
-- Deleting a user (ON DELETE CASCADE) finds their rows.
CREATE INDEX webhook_deliveries_user ON public.webhook_deliveries (user_id)
	WHERE user_id IS NOT NULL;

REVOKE ALL ON TABLE public.webhook_secrets, public.webhook_deliveries
	FROM PUBLIC, anon, authenticated, service_role;
REVOKE ALL ON SEQUENCE public.webhook_deliveries_id_seq
	FROM PUBLIC, anon, authenticated, service_role;
GRANT SELECT, INSERT ON TABLE public.webhook_secrets TO service_role;
GRANT SELECT, INSERT, UPDATE ON TABLE public.webhook_deliveries TO service_role;
GRANT USAGE ON SEQUENCE public.webhook_deliveries_id_seq TO service_role;
-- A user reads the deliveries of their own jobs (never the secrets).
GRANT SELECT ON TABLE public.webhook_deliveries TO authenticated;
ALTER TABLE public.webhook_secrets ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.webhook_deliveries ENABLE ROW LEVEL SECURITY;
CREATE POLICY webhook_deliveries_select_own ON public.webhook_deliveries
	FOR SELECT TO authenticated
	USING (user_id = (SELECT auth.uid()));

CREATE FUNCTION public.image_webhook_msg_id() RETURNS text
LANGUAGE sql VOLATILE
AS $fn$
	SELECT 'msg_' || replace(gen_random_uuid()::text, '-', '')
$fn$;

-- The status trigger's outbox row.
CREATE FUNCTION public.image_job_webhook_enqueue() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	ev text;
	want text;
BEGIN
	IF NEW.webhook_url IS NULL THEN
		RETURN NULL;
	END IF;
	IF OLD.status = 'queued' AND NEW.status = 'processing' THEN
		ev := 'image_job.started';
		want := 'start';
	ELSIF NEW.status IN ('completed', 'failed', 'canceled') THEN
		ev := 'image_job.' || NEW.status;
		want := 'completed';
	ELSE
		RETURN NULL;
	END IF;
	IF NOT (coalesce(NEW.webhook_events, ARRAY['completed']) @> ARRAY[want])
	THEN
		RETURN NULL;
	END IF;
	INSERT INTO public.webhook_deliveries (msg_id, job_id, user_id, event,
	    url, body)
	VALUES (public.image_webhook_msg_id(), NEW.id, NEW.user_id, ev,
	    NEW.webhook_url,
	    jsonb_build_object('type', ev,
	        'timestamp', public.image_job_ts(clock_timestamp()),
	        'data', public.image_job_json(NEW))::text);
	RETURN NULL;
END
$fn$;

CREATE TRIGGER image_generation_jobs_webhook
	AFTER UPDATE OF status ON public.image_generation_jobs
	FOR EACH ROW
	WHEN (OLD.status IS DISTINCT FROM NEW.status)
	EXECUTE FUNCTION public.image_job_webhook_enqueue();

-- A budget alert's outbox row, for the operator's URL.
CREATE FUNCTION public.image_budget_alert_enqueue() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
	INSERT INTO public.webhook_deliveries (msg_id, alert_id, event, body)
	VALUES (public.image_webhook_msg_id(), NEW.id, 'budget.threshold',
	    jsonb_build_object('type', 'budget.threshold',
	        'timestamp', public.image_job_ts(clock_timestamp()),
	        'data', jsonb_build_object(
	            'alertId', NEW.id,
	            'scope', NEW.scope,
	            'scopeId', NEW.scope_id,
	            'period', NEW.period,
	            'windowStart', NEW.window_start,
	            'threshold', NEW.threshold,
	            'spentUsd', NEW.spent_usd,
	            'reservedUsd', NEW.reserved_usd,
	            'limitUsd', NEW.limit_usd,
	            'jobId', NEW.job_id,
	            'createdAt', public.image_job_ts(NEW.created_at)))::text);
	RETURN NULL;
END
$fn$;

CREATE TRIGGER cost_alerts_webhook
	AFTER INSERT ON public.cost_alerts
	FOR EACH ROW
	EXECUTE FUNCTION public.image_budget_alert_enqueue();

-- The caller's signing secret, made from fresh (a new whsec_ secret the
-- service generated) when the caller has none yet.  Returns the secret.
CREATE FUNCTION public.image_webhook_secret(fresh text) RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	uid uuid := auth.uid();
	s text;
BEGIN
	IF uid IS NULL THEN
		RAISE EXCEPTION 'no caller' USING ERRCODE = '42501';
	END IF;
	INSERT INTO public.webhook_secrets (user_id, secret)
	VALUES (uid, fresh) ON CONFLICT (user_id) DO NOTHING;
	SELECT secret INTO s FROM public.webhook_secrets WHERE user_id = uid;
	RETURN s;
END
$fn$;

-- Rotation: fresh becomes the secret; the old one signs too for 24 hours.
CREATE FUNCTION public.image_webhook_secret_rotate(fresh text) RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	uid uuid := auth.uid();
BEGIN
	IF uid IS NULL THEN
		RAISE EXCEPTION 'no caller' USING ERRCODE = '42501';
	END IF;
	INSERT INTO public.webhook_secrets AS w (user_id, secret)
	VALUES (uid, fresh)
	ON CONFLICT (user_id) DO UPDATE SET secret = EXCLUDED.secret,
	    previous = w.secret, previous_until = now() + interval '24 hours',
	    rotated_at = now();
	RETURN fresh;
END
$fn$;

-- Queues the caller's job's last event again (the same webhook-id, so a
-- receiver that had it already can tell).  The new row's id, or NULL
-- when the job is not the caller's or has no event yet.
CREATE FUNCTION public.image_job_webhook_redeliver(job uuid) RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	uid uuid := auth.uid();
	nid bigint;
BEGIN
	INSERT INTO public.webhook_deliveries (msg_id, job_id, user_id, event,
	    url, body)
	SELECT d.msg_id, d.job_id, d.user_id, d.event, j.webhook_url, d.body
	FROM public.webhook_deliveries d
	JOIN public.image_generation_jobs j ON j.id = d.job_id
	WHERE d.job_id = job AND j.user_id = uid AND d.user_id = uid
	  AND j.webhook_url IS NOT NULL
	ORDER BY d.id DESC LIMIT 1
	RETURNING id INTO nid;
	RETURN nid;
END
$fn$;

REVOKE ALL ON FUNCTION public.image_job_webhook_enqueue(),
	public.image_budget_alert_enqueue(),
	public.image_webhook_secret(text),
	public.image_webhook_secret_rotate(text),
	public.image_job_webhook_redeliver(uuid),
	public.image_webhook_msg_id()
	FROM PUBLIC, anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.image_webhook_secret(text),
	public.image_webhook_secret_rotate(text),
	public.image_job_webhook_redeliver(uuid)
	TO authenticated;
GRANT EXECUTE ON FUNCTION public.image_webhook_msg_id() TO service_role;
