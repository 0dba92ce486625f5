-- 005_job_views.sql - a job as the API shows it (SPEC §3), built in one place.
--
-- image_job_json(j) is the body of GET /api/images/jobs/{id} and each item of
-- the listing: camelCase, timestamps in ISO 8601 UTC with milliseconds,
-- cost as numbers, and an `error` object only on failed (and canceled) jobs.
-- Runs with the caller's rights (SECURITY INVOKER), so row-level security
-- still decides which rows it ever sees.

CREATE OR REPLACE FUNCTION public.image_job_ts(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE
AS $fn$
	SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$fn$;

CREATE OR REPLACE FUNCTION public.image_job_json(j public.image_generation_jobs)
RETURNS jsonb
LANGUAGE sql STABLE
AS $fn$
	SELECT jsonb_build_object(
		'jobId', j.id,
		'status', j.status,
		'jobType', j.job_type,
		'projectId', j.project_id,
		'branchId', j.branch_id,
		'assetId', j.asset_id,
		'sceneId', j.scene_id,
		'shotId', j.shot_id,
		'visualStyleCapsuleId', j.visual_style_capsule_id,
		'prompt', j.prompt,
		'finalPrompt', j.final_prompt,
		'width', j.width,
		'height', j.height,
		'provider', j.provider,
		'model', j.model,
		'publicUrl', j.public_url,
		'storagePath', j.storage_path,
		'mimeType', j.mime_type,
		'cost', jsonb_build_object(
			'estimated', j.estimated_cost,
			'actual', j.actual_cost,
			'currency', j.currency),
		'attempts', j.attempts,
		'retryOf', j.retry_of,
		'cancelRequested', j.cancel_requested,
		'createdAt', public.image_job_ts(j.created_at),
		'startedAt', public.image_job_ts(j.started_at),
		'completedAt', public.image_job_ts(j.completed_at),
		'updatedAt', public.image_job_ts(j.updated_at))
	    || CASE WHEN j.error_code IS NOT NULL THEN jsonb_build_object('error',
		jsonb_build_object(
			'code', j.error_code,
			'message', j.error_message,
			'failureStage', j.failure_stage))
	       ELSE '{}'::jsonb END
$fn$;

REVOKE ALL ON FUNCTION public.image_job_json(public.image_generation_jobs)
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.image_job_json(public.image_generation_jobs)
	TO authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.image_job_ts(timestamptz)
	TO authenticated, service_role;
