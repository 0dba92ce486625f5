-- test: auth_compat - auth.uid()/auth.role()/auth.jwt() read request.jwt.claims as Supabase does (NULL without claims); roles anon/authenticated/service_role exist with Supabase's attributes
BEGIN;

DO $t$
DECLARE
	u uuid := gen_random_uuid();
	v uuid := gen_random_uuid();
BEGIN
	-- No claims at all: everything NULL, nothing raises.
	IF auth.uid() IS NOT NULL THEN
		RAISE EXCEPTION 'auth.uid() without claims: want NULL, got %', auth.uid();
	END IF;
	IF auth.role() IS NOT NULL OR auth.jwt() IS NOT NULL THEN
		RAISE EXCEPTION 'auth.role()/auth.jwt() without claims: want NULL';
	END IF;

	-- A custom GUC reads back as '' once set and reset: still NULL.
	PERFORM set_config('request.jwt.claims', '', true);
	IF auth.uid() IS NOT NULL OR auth.jwt() IS NOT NULL THEN
		RAISE EXCEPTION 'auth.uid()/auth.jwt() with empty claims: want NULL';
	END IF;

	PERFORM set_config('request.jwt.claims', json_build_object('sub', u,
	    'role', 'authenticated', 'email', 'a@example.invalid')::text, true);
	IF auth.uid() IS DISTINCT FROM u THEN
		RAISE EXCEPTION 'auth.uid(): want %, got %', u, auth.uid();
	END IF;
	IF auth.role() IS DISTINCT FROM 'authenticated' THEN
		RAISE EXCEPTION 'auth.role(): want authenticated, got %', auth.role();
	END IF;
	IF auth.jwt() ->> 'email' IS DISTINCT FROM 'a@example.invalid' THEN
		RAISE EXCEPTION 'auth.jwt(): want the claims object, got %', auth.jwt();
	END IF;

	-- The legacy per-claim setting wins, as on Supabase.
	PERFORM set_config('request.jwt.claim.sub', v::text, true);
	IF auth.uid() IS DISTINCT FROM v THEN
		RAISE EXCEPTION 'auth.uid() with request.jwt.claim.sub: want %, got %',
		    v, auth.uid();
	END IF;
	PERFORM set_config('request.jwt.claim.sub', '', true);
	IF auth.uid() IS DISTINCT FROM u THEN
		RAISE EXCEPTION 'auth.uid() with empty claim.sub: want %, got %',
		    u, auth.uid();
	END IF;

	IF EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n
	    ON n.oid = p.pronamespace
	    WHERE n.nspname = 'auth' AND p.proname IN ('uid', 'role', 'jwt')
	      AND p.provolatile <> 's') THEN
		RAISE EXCEPTION 'auth.uid/role/jwt must be STABLE';
	END IF;

	IF (SELECT count(*) FROM pg_roles WHERE rolname IN ('anon',
	    'authenticated', 'service_role') AND NOT rolcanlogin) <> 3 THEN
		RAISE EXCEPTION 'roles anon, authenticated, service_role must exist, NOLOGIN';
	END IF;
	IF NOT (SELECT rolbypassrls FROM pg_roles WHERE rolname = 'service_role') THEN
		RAISE EXCEPTION 'service_role must have BYPASSRLS';
	END IF;
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname IN ('anon',
	    'authenticated') AND (rolbypassrls OR rolsuper)) THEN
		RAISE EXCEPTION 'anon/authenticated must not bypass RLS';
	END IF;
END
$t$;

-- The request roles can call the functions (schema usage + EXECUTE).
SELECT set_config('request.jwt.claims',
    '{"sub":"6f1c2a4e-6d8b-4a51-9b3e-1f2d3c4b5a69","role":"authenticated"}',
    true) \g /dev/null
SET LOCAL ROLE authenticated;
DO $t$
BEGIN
	IF auth.uid() IS DISTINCT FROM
	    '6f1c2a4e-6d8b-4a51-9b3e-1f2d3c4b5a69'::uuid THEN
		RAISE EXCEPTION 'auth.uid() as authenticated: got %', auth.uid();
	END IF;
END
$t$;
RESET ROLE;
SELECT set_config('request.jwt.claims', '', true) \g /dev/null
SET LOCAL ROLE anon;
DO $t$
BEGIN
	IF auth.uid() IS NOT NULL OR auth.role() IS NOT NULL THEN
		RAISE EXCEPTION 'auth.uid()/auth.role() as anon without claims: want NULL';
	END IF;
END
$t$;
RESET ROLE;

ROLLBACK;
