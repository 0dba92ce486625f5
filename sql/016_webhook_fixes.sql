-- 016_webhook_fixes.sql - corrections to the outbound webhooks of sql/014.
--
-- Signing secrets are made here, in the database, never taken from the
-- caller: image_webhook_secret() and image_webhook_secret_rotate() (granted
-- to authenticated, so callable as an RPC with any argument) no longer
-- accept one.  image_webhook_secret_new() is 32 bytes from the server's
-- strong random source: SHA-256 of three gen_random_uuid() values (366
-- random bits; core PostgreSQL 13+, so no pgcrypto extension is needed),
-- base64 after "whsec_".

CREATE FUNCTION public.image_webhook_secret_new() RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
	SELECT 'whsec_' || encode(sha256(decode(replace(
	    gen_random_uuid()::text || gen_random_uuid()::text
	    || gen_random_uuid()::text, '-', ''), 'hex')), 'base64')
$fn$;

DROP FUNCTION public.image_webhook_secret(text);
DROP FUNCTION public.image_webhook_secret_rotate(text);

-- The caller's signing secret, made when the caller has none yet.
CREATE FUNCTION public.image_webhook_secret() RETURNS text
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
	VALUES (uid, public.image_webhook_secret_new())
	ON CONFLICT (user_id) DO NOTHING;
	SELECT secret INTO s FROM public.webhook_secrets WHERE user_id = uid;
	RETURN s;
END
$fn$;

-- Rotation: a new secret; the one it replaces signs too for 24 hours.
CREATE FUNCTION public.image_webhook_secret_rotate() RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	uid uuid := auth.uid();
	s text := public.image_webhook_secret_new();
BEGIN
	IF uid IS NULL THEN
		RAISE EXCEPTION 'no caller' USING ERRCODE = '42501';
	END IF;
	INSERT INTO public.webhook_secrets AS w (user_id, secret)
	VALUES (uid, s)
	ON CONFLICT (user_id) DO UPDATE SET secret = EXCLUDED.secret,
	    previous = w.secret, previous_until = now() + interval '24 hours',
	    rotated_at = now();
	RETURN s;
END
$fn$;

REVOKE ALL ON FUNCTION public.image_webhook_secret_new(),
	public.image_webhook_secret(),
	public.image_webhook_secret_rotate()
	FROM PUBLIC, anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.image_webhook_secret(),
	public.image_webhook_secret_rotate()
	TO authenticated;
GRANT EXECUTE ON FUNCTION public.image_webhook_secret_new() TO service_role;

-- Redeliver, bounded: while the job has a pending delivery (one queued by
-- an earlier redeliver, or an event still being retried), that one is
-- returned (queued = false) and nothing is added, so calling it in a loop
-- cannot grow the outbox.  Otherwise the job's last event is queued again
-- with its webhook-id (queued = true).  No row when the job is not the
-- caller's, has no webhook or no event yet.  The job row is locked so two
-- concurrent calls queue one row.
DROP FUNCTION public.image_job_webhook_redeliver(uuid);
CREATE FUNCTION public.image_job_webhook_redeliver(job uuid,
    OUT delivery_id bigint, OUT queued boolean)
RETURNS SETOF record
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	uid uuid := auth.uid();
BEGIN
	PERFORM 1 FROM public.image_generation_jobs j
	WHERE j.id = job AND j.user_id = uid AND j.webhook_url IS NOT NULL
	FOR UPDATE;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	SELECT d.id INTO delivery_id FROM public.webhook_deliveries d
	WHERE d.job_id = job AND d.user_id = uid AND d.state = 'pending'
	ORDER BY d.id DESC LIMIT 1;
	IF FOUND THEN
		queued := false;
		RETURN NEXT;
		RETURN;
	END IF;
	INSERT INTO public.webhook_deliveries (msg_id, job_id, user_id, event,
	    url, body)
	SELECT d.msg_id, d.job_id, d.user_id, d.event, j.webhook_url, d.body
	FROM public.webhook_deliveries d
	JOIN public.image_generation_jobs j ON j.id = d.job_id
	WHERE d.job_id = job AND j.user_id = uid AND d.user_id = uid
	ORDER BY d.id DESC LIMIT 1
	RETURNING id INTO delivery_id;
	IF delivery_id IS NOT NULL THEN
		queued := true;
		RETURN NEXT;
	END IF;
END
$fn$;
REVOKE ALL ON FUNCTION public.image_job_webhook_redeliver(uuid)
	FROM PUBLIC, anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.image_job_webhook_redeliver(uuid)
	TO authenticated;

-- The status trigger fires only for jobs with a webhook: the WHEN clause
-- is checked without calling the function, so jobs without one (most)
-- cost nothing more on their status changes.
DROP TRIGGER image_generation_jobs_webhook ON public.image_generation_jobs;
CREATE TRIGGER image_generation_jobs_webhook
	AFTER UPDATE OF status ON public.image_generation_jobs
	FOR EACH ROW
	WHEN (OLD.status IS DISTINCT FROM NEW.status
	    AND NEW.webhook_url IS NOT NULL)
	EXECUTE FUNCTION public.image_job_webhook_enqueue();
