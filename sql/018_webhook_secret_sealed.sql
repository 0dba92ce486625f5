-- 018_webhook_secret_sealed.sql - webhook signing secrets encrypted at
-- rest, with a key the database never sees.
--
-- Until now (sql/014, sql/016) public.webhook_secrets held each user's
-- `whsec_` secret in plain text, made in SQL by image_webhook_secret_new(),
-- protected by row-level security alone: anyone with a dump, a backup, a
-- replica or the table owner's role read every user's signing secret.  From
-- here on the service makes the secret in C (OpenSSL's RAND_bytes) and the
-- table holds it sealed: AES-256-GCM under IMAGEGEN_WEBHOOK_SECRET_KEY, a
-- setting of the service that never reaches the database, with a random
-- 12-byte nonce per seal and the owner's user id as associated data (a
-- sealed value copied to another user's row does not open):
--
--   v1:<base64 of nonce[12] | ciphertext | tag[16]>      (src/util/seal.c)
--
-- The database stores and returns only that text; it cannot open it.  The
-- secret functions take the sealed value the service made:
--
--   image_webhook_secret(fresh)  -> (owner, stored): the caller's id (the
--       associated data, as the database spells it) and their stored
--       secret, made from fresh when they have none (fresh NULL: read only)
--   image_webhook_secret_rotate(fresh): fresh becomes the secret; the one
--       it replaces signs too for 24 hours
--   image_webhook_secret_reseal(plain, sealed): a legacy plain-text value
--       of the caller's row replaced by its sealed form
--
-- A caller (granted to authenticated, so any of them can call these as an
-- RPC with any argument) cannot choose its secret: without the key no
-- value of theirs opens, so the worst they can store is a secret that
-- signs nothing of their own (and a rotation mends that).
--
-- Rows written before this migration keep their plain `whsec_` values
-- (no secret is lost, none can be sealed here: the key is not in the
-- database).  The service seals such a value the first time it reads it:
-- the deliverer (service_role) before signing with it, the responder on
-- GET /api/webhooks/secret and before a rotation (which would move it to
-- `previous`).  A trigger makes sure no plain text is written from now on:
-- a value is sealed text, or the legacy value the row already held.
-- And the sweeper seals the rest (64 rows a pass, found through the
-- partial index below, empty once every row is sealed; read from a random
-- point so rows it cannot seal hold up no others), so a secret its user
-- never uses does not stay in plain text either.  A plain value that is
-- no usable key cannot be sealed and signs nothing: a rotation drops it.  Previous secrets
-- whose 24 hours have passed sign nothing any more and are dropped here
-- instead of being kept in plain text.
-- image_webhook_secret_new() (plain text made in SQL) is dropped.

UPDATE public.webhook_secrets SET previous = NULL, previous_until = NULL
WHERE previous IS NOT NULL
    AND (previous_until IS NULL OR previous_until <= now());

ALTER TABLE public.webhook_secrets
	DROP CONSTRAINT webhook_secrets_secret_check,
	DROP CONSTRAINT webhook_secrets_previous_check,
	ADD CONSTRAINT webhook_secrets_secret_check CHECK (
	    (secret ~ '^v1:[A-Za-z0-9+/]+={0,2}$'
	    AND char_length(secret) BETWEEN 40 AND 256)
	    OR secret LIKE 'whsec\_%'),
	ADD CONSTRAINT webhook_secrets_previous_check CHECK (
	    (previous ~ '^v1:[A-Za-z0-9+/]+={0,2}$'
	    AND char_length(previous) BETWEEN 40 AND 256)
	    OR previous LIKE 'whsec\_%');

-- The rows still holding plain text, for the sweeper.
CREATE INDEX webhook_secrets_legacy ON public.webhook_secrets (user_id)
	WHERE secret LIKE 'whsec\_%' OR previous LIKE 'whsec\_%';

-- No plain text written from now on: a whsec_ value only where the row
-- held that very value already (a legacy row not sealed yet).
CREATE FUNCTION public.webhook_secrets_sealed_only() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
	IF (NEW.secret LIKE 'whsec\_%' AND (TG_OP = 'INSERT'
	    OR NEW.secret IS DISTINCT FROM OLD.secret))
	    OR (NEW.previous LIKE 'whsec\_%' AND (TG_OP = 'INSERT'
	    OR NEW.previous IS DISTINCT FROM OLD.previous)) THEN
		RAISE EXCEPTION 'webhook secrets are stored sealed (v1:), never in plain text'
		    USING ERRCODE = '23514',
		    CONSTRAINT = 'webhook_secrets_sealed_only',
		    TABLE = 'webhook_secrets', SCHEMA = 'public';
	END IF;
	RETURN NEW;
END
$fn$;
CREATE TRIGGER webhook_secrets_sealed_only
	BEFORE INSERT OR UPDATE OF secret, previous ON public.webhook_secrets
	FOR EACH ROW EXECUTE FUNCTION public.webhook_secrets_sealed_only();

DROP FUNCTION public.image_webhook_secret();
DROP FUNCTION public.image_webhook_secret_rotate();
DROP FUNCTION public.image_webhook_secret_new();

-- The caller's id and stored secret (sealed, or a legacy plain value the
-- service then seals), the row made from fresh when there is none; stored
-- is NULL when there is none and fresh is NULL.
CREATE FUNCTION public.image_webhook_secret(fresh text DEFAULT NULL,
    OUT owner uuid, OUT stored text)
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
	owner := uid;
	IF fresh IS NOT NULL THEN
		INSERT INTO public.webhook_secrets AS w (user_id, secret)
		VALUES (uid, fresh)
		ON CONFLICT (user_id) DO NOTHING;
	END IF;
	SELECT w.secret INTO stored FROM public.webhook_secrets w
	WHERE w.user_id = uid;
END
$fn$;

-- Rotation: fresh (sealed) becomes the secret; the one it replaces signs
-- too for 24 hours.  A usable legacy plain secret is sealed by the service
-- first (the trigger refuses to move plain text to previous); one still
-- plain here is no usable key (it signs nothing) and is dropped, so a
-- rotation always mends a secret that cannot be read.  Returns fresh.
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
	    previous = CASE WHEN w.secret LIKE 'whsec\_%' THEN NULL
	        ELSE w.secret END,
	    previous_until = CASE WHEN w.secret LIKE 'whsec\_%' THEN NULL
	        ELSE now() + interval '24 hours' END,
	    rotated_at = now();
	RETURN fresh;
END
$fn$;

-- A legacy plain value of the caller's row (secret or previous) replaced
-- by its sealed form.  Only a value the row holds is replaced, so the
-- caller must know it (it is their own secret).  Whether one was.
CREATE FUNCTION public.image_webhook_secret_reseal(plain text, sealed text)
RETURNS boolean
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
	UPDATE public.webhook_secrets w SET
	    secret = CASE WHEN w.secret = plain THEN sealed ELSE w.secret END,
	    previous = CASE WHEN w.previous = plain THEN sealed
	        ELSE w.previous END
	WHERE w.user_id = uid AND plain LIKE 'whsec\_%'
	    AND sealed NOT LIKE 'whsec\_%'
	    AND (w.secret = plain OR w.previous = plain);
	RETURN FOUND;
END
$fn$;

REVOKE ALL ON FUNCTION public.image_webhook_secret(text),
	public.image_webhook_secret_rotate(text),
	public.image_webhook_secret_reseal(text, text),
	public.webhook_secrets_sealed_only()
	FROM PUBLIC, anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.image_webhook_secret(text),
	public.image_webhook_secret_rotate(text),
	public.image_webhook_secret_reseal(text, text)
	TO authenticated;
-- The deliverer seals legacy rows it reads, and makes a user's first one.
GRANT UPDATE (secret, previous) ON TABLE public.webhook_secrets
	TO service_role;
