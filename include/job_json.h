/* job_json.h - a job row as the API's JSON (job_json.c). */
#ifndef IG_JOB_JSON_H
#define IG_JOB_JSON_H

#include <libpq-fe.h>

#include "arena.h"

/*
 * The columns of image_generation_jobs j that job_json_row() reads, in
 * its order, for a SELECT list: JOB_JSON_NCOLS of them.
 */
#define JOB_JSON_COLUMNS \
	"j.id, j.status, j.job_type, j.project_id, j.branch_id, j.asset_id," \
	" j.scene_id, j.shot_id, j.visual_style_capsule_id, j.prompt," \
	" j.final_prompt, j.width, j.height, j.provider, j.model," \
	" j.public_url, j.storage_path, j.mime_type, j.estimated_cost," \
	" j.actual_cost, j.currency, j.attempts, j.retry_of," \
	" j.cancel_requested, j.created_at, j.started_at, j.completed_at," \
	" j.updated_at, j.error_code, j.error_message, j.failure_stage"
#define JOB_JSON_NCOLS 31

/*
 * The JSON of the job in row of r, whose JOB_JSON_COLUMNS start at column
 * col (text format): the shape of SPEC §3 and of SQL's image_job_json().
 * Arena text, or NULL when memory ran out or a value is not what its
 * column holds.
 */
char *job_json_row(struct arena *a, const PGresult *r, int row, int col);
/* How many columns job_json_row()'s layout reads: JOB_JSON_NCOLS, or the
 * layout and the column list have drifted apart (it then refuses). */
int job_json_layout_columns(void);

/* "2026-11-24T08:11:23.516Z" and its NUL */
#define JOB_TS_ISO_SIZE 25
/* A timestamptz in PostgreSQL's ISO output ("2026-11-24 09:11:23.516789+01")
 * as UTC with milliseconds (truncated, as to_char's MS) into out. 0, or
 * -1 when pg is not such a timestamp of years 1 to 9999. */
int job_ts_iso(const char *pg, char out[JOB_TS_ISO_SIZE]);

#endif
