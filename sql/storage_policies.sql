-- storage_policies.sql - row-level security for the `asset-images` bucket on
-- Supabase Storage (the product guide's four storage.objects policies).
--
-- NOT a migration: `imagegen migrate` only applies NNN_*.sql files, and
-- plain PostgreSQL has no `storage` schema.  `imagegen setup-bucket` creates
-- the bucket (public) and prints this file.  Apply it once per Supabase
-- project, after the bucket exists, as the `postgres` role, either
--   * Dashboard -> SQL Editor: paste the whole file and run it, or
--   * psql "postgresql://postgres:PASSWORD@db.PROJECT.supabase.co:5432/postgres" \
--         -v ON_ERROR_STOP=1 -f sql/storage_policies.sql
-- It is safe to run again (each policy is dropped and recreated).
--
-- Written for the default bucket name; if IMAGEGEN_BUCKET is something other
-- than asset-images, replace every 'asset-images' below with it.
-- The `local` storage backend needs none of this (nginx serves var/storage).
--
-- Uploads, overwrites and deletes: the backend's service role only (the
-- service role key also bypasses RLS; the policies keep every other role
-- out).  Reads: anyone, as the bucket is public.

BEGIN;

DROP POLICY IF EXISTS "Service role can upload asset images" ON storage.objects;
CREATE POLICY "Service role can upload asset images"
ON storage.objects FOR INSERT
WITH CHECK (bucket_id = 'asset-images' AND auth.role() = 'service_role');

DROP POLICY IF EXISTS "Public read access to asset images" ON storage.objects;
CREATE POLICY "Public read access to asset images"
ON storage.objects FOR SELECT
USING (bucket_id = 'asset-images');

DROP POLICY IF EXISTS "Service role can update asset images" ON storage.objects;
CREATE POLICY "Service role can update asset images"
ON storage.objects FOR UPDATE
USING (bucket_id = 'asset-images' AND auth.role() = 'service_role');

DROP POLICY IF EXISTS "Service role can delete asset images" ON storage.objects;
CREATE POLICY "Service role can delete asset images"
ON storage.objects FOR DELETE
USING (bucket_id = 'asset-images' AND auth.role() = 'service_role');

COMMIT;
