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
