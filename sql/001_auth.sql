-- 001_auth.sql - a Supabase-compatible `auth` schema for plain PostgreSQL.
--
-- On a real Supabase project everything here already exists and belongs to
-- other roles (supabase_auth_admin, supabase_admin), so each object is
-- created only when it is missing and nothing existing is ever replaced or
-- altered.  The checks are DO blocks rather than IF NOT EXISTS because
-- CREATE ... IF NOT EXISTS still demands CREATE privilege on the schema,
-- which the `postgres` role lacks on Supabase's `auth` schema.
--
-- Applied by `imagegen migrate` inside one transaction: no BEGIN/COMMIT here.

-- Roles as on Supabase: NOLOGIN, NOINHERIT; service_role bypasses row-level
-- security.  The pool's LOGIN role (imagegen_app) is granted these by the
-- scripts and switches with SET LOCAL ROLE.
DO $do$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'anon') THEN
		CREATE ROLE anon NOLOGIN NOINHERIT;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles
	    WHERE rolname = 'authenticated') THEN
		CREATE ROLE authenticated NOLOGIN NOINHERIT;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles
	    WHERE rolname = 'service_role') THEN
		CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
	END IF;
END
$do$;

DO $do$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace
	    WHERE nspname = 'auth') THEN
		CREATE SCHEMA auth;
	END IF;
END
$do$;

-- A compatible subset of Supabase's auth.users: the columns imagegen and its
-- scripts use.  Supabase's own table has these (and many more).
DO $do$
BEGIN
	IF pg_catalog.to_regclass('auth.users') IS NULL THEN
		CREATE TABLE auth.users (
			id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
			email              text UNIQUE,
			role               text DEFAULT 'authenticated',
			raw_user_meta_data jsonb DEFAULT '{}'::jsonb,
			created_at         timestamptz NOT NULL DEFAULT now(),
			updated_at         timestamptz NOT NULL DEFAULT now()
		);
		COMMENT ON TABLE auth.users IS
		    'imagegen: Supabase-compatible subset of auth.users for plain PostgreSQL';
	END IF;
END
$do$;

-- Request context, exactly as Supabase (PostgREST) defines it: the verified
-- JWT's claims are in the GUC request.jwt.claims (JSON text), the older
-- per-claim GUCs request.jwt.claim.* win when set.  nullif(…, '') because a
-- custom GUC set with is_local=true reads back as '' after its transaction.
DO $do$
BEGIN
	IF pg_catalog.to_regprocedure('auth.uid()') IS NULL THEN
		CREATE FUNCTION auth.uid() RETURNS uuid
		LANGUAGE sql STABLE
		AS $fn$
			SELECT coalesce(
				nullif(current_setting('request.jwt.claim.sub', true), ''),
				(nullif(current_setting('request.jwt.claims', true), '')::jsonb
				    ->> 'sub')
			)::uuid
		$fn$;
	END IF;
	IF pg_catalog.to_regprocedure('auth.role()') IS NULL THEN
		CREATE FUNCTION auth.role() RETURNS text
		LANGUAGE sql STABLE
		AS $fn$
			SELECT coalesce(
				nullif(current_setting('request.jwt.claim.role', true), ''),
				(nullif(current_setting('request.jwt.claims', true), '')::jsonb
				    ->> 'role')
			)::text
		$fn$;
	END IF;
	IF pg_catalog.to_regprocedure('auth.jwt()') IS NULL THEN
		CREATE FUNCTION auth.jwt() RETURNS jsonb
		LANGUAGE sql STABLE
		AS $fn$
			SELECT coalesce(
				nullif(current_setting('request.jwt.claim', true), ''),
				nullif(current_setting('request.jwt.claims', true), '')
			)::jsonb
		$fn$;
	END IF;
END
$do$;
