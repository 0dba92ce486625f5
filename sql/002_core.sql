-- 002_core.sql - projects, their branches, and visual style capsules.
--
-- Applied by `imagegen migrate` inside one transaction, as the owner of the
-- tables.  Privileges and row-level security are in 004_access.sql.

-- Shared BEFORE UPDATE trigger: keeps updated_at honest.  clock_timestamp()
-- so that several updates in one transaction get distinct, ordered times.
CREATE OR REPLACE FUNCTION public.set_updated_at() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
	NEW.updated_at := clock_timestamp();
	RETURN NEW;
END
$fn$;

CREATE TABLE public.projects (
	id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	owner_id     uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
	title        text NOT NULL,
	project_type text NOT NULL DEFAULT 'standard',
	created_at   timestamptz NOT NULL DEFAULT now(),
	updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX projects_owner_id_idx ON public.projects (owner_id);
CREATE TRIGGER projects_set_updated_at
	BEFORE UPDATE ON public.projects
	FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

CREATE TABLE public.branches (
	id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	project_id uuid NOT NULL REFERENCES public.projects (id) ON DELETE CASCADE,
	name       text NOT NULL,
	is_main    boolean NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT branches_project_id_name_key UNIQUE (project_id, name)
);
-- At most one main branch per project.
CREATE UNIQUE INDEX branches_one_main_per_project
	ON public.branches (project_id) WHERE is_main;

-- user_id NULL means a shared (global) capsule, readable by everyone.
CREATE TABLE public.visual_style_capsules (
	id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	user_id    uuid REFERENCES auth.users (id) ON DELETE CASCADE,
	name       text NOT NULL,
	style_text text NOT NULL,
	is_public  boolean NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX visual_style_capsules_user_id_idx
	ON public.visual_style_capsules (user_id);
CREATE TRIGGER visual_style_capsules_set_updated_at
	BEFORE UPDATE ON public.visual_style_capsules
	FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
