-- 007_job_ts_stable.sql - image_job_ts is STABLE, not IMMUTABLE.
--
-- to_char() depends on settings (lc_time), so an IMMUTABLE wrapper was a
-- false promise, and one PostgreSQL would not inline: every job JSON paid
-- for planning its body again. STABLE is what it is, and inlinable.

ALTER FUNCTION public.image_job_ts(timestamptz) STABLE;
