-- test: webhook_secret_sealed - sql/018: webhook_secrets takes sealed text (v1:) only: plain text is refused on every insert and on every update that writes it, by the owner too, while a legacy plain row from before is kept as it is (other columns still update); a caller reads their legacy secret, and a rotation drops a plain secret (and the previous one with it: the service seals a usable one first, so one still plain is no key) rather than keep it as previous; a caller seals it with image_webhook_secret_reseal() only by naming its exact value (secret or previous), never another user's; service_role may seal a row itself; anon runs none of the functions
BEGIN;

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

CREATE FUNCTION pg_temp.id(k text) RETURNS uuid
LANGUAGE sql STABLE AS $f$ SELECT current_setting('t.' || k)::uuid $f$;

CREATE FUNCTION pg_temp.as_user(k text) RETURNS void
LANGUAGE sql AS $f$
	SELECT set_config('request.jwt.claims',
	    json_build_object('sub', pg_temp.id(k), 'role', 'authenticated',
	        'aud', 'authenticated')::text, true)
$f$;

-- sealed-looking text (the database cannot tell it from a real seal)
CREATE FUNCTION pg_temp.sealed() RETURNS text
LANGUAGE sql VOLATILE AS $f$
	SELECT 'v1:' || encode(sha256(gen_random_uuid()::text::bytea), 'base64')
$f$;

GRANT EXECUTE ON FUNCTION pg_temp.expect_error(text, text, text),
	pg_temp.id(text), pg_temp.as_user(text), pg_temp.sealed()
	TO authenticated, anon, service_role;

-- L: a user from before sql/018, with a plain secret and previous one;
-- M: another user.  The legacy row is written with the trigger off, as
-- no statement can write one any more.
DO $t$
DECLARE
	l uuid := gen_random_uuid();
	m uuid := gen_random_uuid();
BEGIN
	PERFORM set_config('t.l', l::text, true);
	PERFORM set_config('t.m', m::text, true);
	PERFORM set_config('t.lp', 'whsec_TEdMR0xHTEdMR0xHTEdMR0xHTEdMR0xHTEdMR0w=', true);
	PERFORM set_config('t.lq', 'whsec_UVFRUVFRUVFRUVFRUVFRUVFRUVFRUVFRUVFRUVE=', true);
	INSERT INTO auth.users (id, email) VALUES
	    (l, l || '@test.invalid'), (m, m || '@test.invalid');
	ALTER TABLE public.webhook_secrets DISABLE TRIGGER webhook_secrets_sealed_only;
	INSERT INTO public.webhook_secrets (user_id, secret, previous, previous_until)
	VALUES (l, current_setting('t.lp'), current_setting('t.lq'),
	    now() + interval '2 hours');
	ALTER TABLE public.webhook_secrets ENABLE TRIGGER webhook_secrets_sealed_only;

	-- the owner writes no plain text either
	PERFORM pg_temp.expect_error(format(
	    'INSERT INTO public.webhook_secrets (user_id, secret) VALUES (%L, %L)',
	    m, current_setting('t.lp')), '23514', 'inserting plain text');
	PERFORM pg_temp.expect_error(format(
	    'INSERT INTO public.webhook_secrets (user_id, secret, previous)'
	    ' VALUES (%L, %L, %L)', m, pg_temp.sealed(), current_setting('t.lq')),
	    '23514', 'inserting a plain previous');
	PERFORM pg_temp.expect_error(format(
	    'UPDATE public.webhook_secrets SET previous = secret WHERE user_id = %L',
	    l), '23514', 'moving a plain secret to previous');
	PERFORM pg_temp.expect_error(format(
	    'UPDATE public.webhook_secrets SET secret = %L WHERE user_id = %L',
	    'whsec_TUFNTUFNTUFNTUFNTUFNTUFNTUFNTUFNTUFNTUFNTUE=', l), '23514',
	    'writing another plain secret');
	PERFORM pg_temp.expect_error(format(
	    'INSERT INTO public.webhook_secrets (user_id, secret) VALUES (%L, %L)',
	    m, 'v1:short'), '23514', 'text that is no seal');
	-- the legacy row itself stays writable where it does not change
	UPDATE public.webhook_secrets SET previous_until = now() + interval '3 hours'
	WHERE user_id = l;
END
$t$;

SET LOCAL ROLE authenticated;
SELECT pg_temp.as_user('l');
DO $t$
DECLARE
	s1 text := pg_temp.sealed();
	s2 text := pg_temp.sealed();
	s3 text := pg_temp.sealed();
	got record;
BEGIN
	SELECT * INTO got FROM public.image_webhook_secret(pg_temp.sealed());
	IF got.owner <> pg_temp.id('l') OR got.stored <> current_setting('t.lp') THEN
		RAISE EXCEPTION 'the legacy secret is not read back as it is: %', got;
	END IF;
	-- sealing names the exact value, and gives sealed text
	IF public.image_webhook_secret_reseal('whsec_bm9wZW5vcGVub3Blbm9wZQ==', s1)
	    OR public.image_webhook_secret_reseal(current_setting('t.lp'),
	    'whsec_TUFNTUFNTUFNTUFNTUFNTUFNTUFNTUFNTUFNTUE=') THEN
		RAISE EXCEPTION 'reseal of a value the row does not hold';
	END IF;
	IF NOT public.image_webhook_secret_reseal(current_setting('t.lp'), s1)
	    OR (SELECT stored FROM public.image_webhook_secret()) <> s1 THEN
		RAISE EXCEPTION 'reseal did not take';
	END IF;
	IF public.image_webhook_secret_reseal(current_setting('t.lp'), s3) THEN
		RAISE EXCEPTION 'a second reseal of the same value took';
	END IF;
	-- the previous one too
	IF NOT public.image_webhook_secret_reseal(current_setting('t.lq'), s3) THEN
		RAISE EXCEPTION 'reseal of the previous one did not take';
	END IF;
	IF public.image_webhook_secret_rotate(s2) <> s2
	    OR (SELECT stored FROM public.image_webhook_secret()) <> s2 THEN
		RAISE EXCEPTION 'the rotation after sealing did not take';
	END IF;
	PERFORM set_config('t.s1', s1, true);
	PERFORM set_config('t.s2', s2, true);
END
$t$;
RESET ROLE;
DO $t$
BEGIN
	IF (SELECT (secret, previous) FROM public.webhook_secrets
	    WHERE user_id = pg_temp.id('l'))
	    IS DISTINCT FROM (current_setting('t.s2'), current_setting('t.s1')) THEN
		RAISE EXCEPTION 'after sealing and rotating: %', (SELECT (secret,
		    previous) FROM public.webhook_secrets WHERE user_id = pg_temp.id('l'));
	END IF;
	IF EXISTS (SELECT 1 FROM public.webhook_secrets WHERE secret LIKE 'whsec\_%'
	    AND user_id = pg_temp.id('l')) THEN
		RAISE EXCEPTION 'plain text left';
	END IF;
	-- another legacy row, for M's and service_role's turns
	ALTER TABLE public.webhook_secrets DISABLE TRIGGER webhook_secrets_sealed_only;
	UPDATE public.webhook_secrets SET secret = current_setting('t.lp')
	WHERE user_id = pg_temp.id('l');
	ALTER TABLE public.webhook_secrets ENABLE TRIGGER webhook_secrets_sealed_only;
END
$t$;

-- M cannot touch L's row, knowing its value or not
SET LOCAL ROLE authenticated;
SELECT pg_temp.as_user('m');
DO $t$
BEGIN
	IF public.image_webhook_secret_reseal(current_setting('t.lp'),
	    pg_temp.sealed()) THEN
		RAISE EXCEPTION 'M resealed L''s secret';
	END IF;
	IF (SELECT stored FROM public.image_webhook_secret()) IS NOT NULL THEN
		RAISE EXCEPTION 'M reads a secret without having one';
	END IF;
END
$t$;
RESET ROLE;
SET LOCAL ROLE anon;
DO $t$
BEGIN
	PERFORM pg_temp.expect_error('SELECT public.image_webhook_secret()',
	    '42501', 'anon reading a secret');
	PERFORM pg_temp.expect_error(
	    'SELECT public.image_webhook_secret_reseal(''a'', ''b'')',
	    '42501', 'anon sealing');
END
$t$;
RESET ROLE;
-- the deliverer seals what it reads
SET LOCAL ROLE service_role;
DO $t$
DECLARE
	s text := pg_temp.sealed();
BEGIN
	UPDATE public.webhook_secrets SET secret = s
	WHERE user_id = pg_temp.id('l') AND secret = current_setting('t.lp');
	IF NOT FOUND THEN
		RAISE EXCEPTION 'service_role could not seal the legacy row';
	END IF;
	PERFORM pg_temp.expect_error(format(
	    'UPDATE public.webhook_secrets SET secret = %L WHERE user_id = %L',
	    current_setting('t.lq'), pg_temp.id('l')), '23514',
	    'service_role writing plain text');
END
$t$;
RESET ROLE;

-- N: a legacy plain value that is no key (sql/014's functions took any
-- whsec_ text), with a plain previous one: the service cannot seal it,
-- and a rotation still mends the row, dropping both
DO $t$
DECLARE
	n uuid := gen_random_uuid();
BEGIN
	PERFORM set_config('t.n', n::text, true);
	INSERT INTO auth.users (id, email) VALUES (n, n || '@test.invalid');
	ALTER TABLE public.webhook_secrets DISABLE TRIGGER webhook_secrets_sealed_only;
	INSERT INTO public.webhook_secrets (user_id, secret, previous, previous_until)
	VALUES (n, 'whsec_!!!!', current_setting('t.lq'), now() + interval '2 hours');
	ALTER TABLE public.webhook_secrets ENABLE TRIGGER webhook_secrets_sealed_only;
END
$t$;
SET LOCAL ROLE authenticated;
SELECT pg_temp.as_user('n');
DO $t$
DECLARE
	s text := pg_temp.sealed();
BEGIN
	IF public.image_webhook_secret_rotate(s) <> s
	    OR (SELECT stored FROM public.image_webhook_secret()) <> s THEN
		RAISE EXCEPTION 'the rotation of an unusable plain secret did not take';
	END IF;
	PERFORM set_config('t.ns', s, true);
END
$t$;
RESET ROLE;
DO $t$
BEGIN
	IF (SELECT (secret, previous, previous_until) FROM public.webhook_secrets
	    WHERE user_id = pg_temp.id('n'))
	    IS DISTINCT FROM (current_setting('t.ns'), NULL::text, NULL::timestamptz) THEN
		RAISE EXCEPTION 'after rotating an unusable plain secret: %',
		    (SELECT (secret, previous, previous_until) FROM public.webhook_secrets
		    WHERE user_id = pg_temp.id('n'));
	END IF;
END
$t$;
-- a sealed secret rotated away from is kept as previous, as ever
SET LOCAL ROLE authenticated;
SELECT pg_temp.as_user('n');
DO $t$
BEGIN
	PERFORM public.image_webhook_secret_rotate(pg_temp.sealed());
END
$t$;
RESET ROLE;
DO $t$
BEGIN
	IF (SELECT (previous, previous_until > now()) FROM public.webhook_secrets
	    WHERE user_id = pg_temp.id('n'))
	    IS DISTINCT FROM (current_setting('t.ns'), true) THEN
		RAISE EXCEPTION 'a sealed secret rotated away from is not kept as previous';
	END IF;
END
$t$;

ROLLBACK;
