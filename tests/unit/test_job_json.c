/* test_job_json.c - a job row as API JSON, and timestamps as ISO 8601 UTC. */
#include <string.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "arena.h"
#include "cu_main.h"
#include "job_json.h"

static void
test_job_ts_iso_conversions(void)
{
	static const char *const cases[][2] = {
		{ "2026-11-24 08:11:23.516789+00", "2026-11-24T08:11:23.516Z" },
		{ "2026-11-24 08:11:23+00", "2026-11-24T08:11:23.000Z" },
		{ "2026-11-24 08:11:23.5+00", "2026-11-24T08:11:23.500Z" },
		{ "2026-11-24 08:11:23.05+00", "2026-11-24T08:11:23.050Z" },
		{ "2026-11-24 08:11:23.999999+00", "2026-11-24T08:11:23.999Z" },
		{ "2026-01-01 00:30:00.25+01", "2025-12-31T23:30:00.250Z" },
		{ "2024-02-28 23:00:00-05:30", "2024-02-29T04:30:00.000Z" },
		{ "2023-02-28 23:00:00-05:30", "2023-03-01T04:30:00.000Z" },
		{ "1900-03-01 00:00:00+00:00:36", "1900-02-28T23:59:24.000Z" },
		{ "0001-01-01 12:00:00+11", "0001-01-01T01:00:00.000Z" },
	};
	char out[JOB_TS_ISO_SIZE];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(out, 0, sizeof(out));
		CU_ASSERT_EQUAL(job_ts_iso(cases[i][0], out), 0);
		CU_ASSERT_STRING_EQUAL(out, cases[i][1]);
	}
}

static void
test_job_ts_iso_refuses_other_forms(void)
{
	static const char *const bad[] = {
		"", "2026-11-24", "2026-11-24T08:11:23Z", "2026-11-24 08:11:23",
		"24/11/2026 08:11:23.516 UTC", "Tue Nov 24 08:11:23.516 2026 UTC",
		"2026-11-24 08:11:23.1234567+00", "2026-11-24 08:11:23.+00",
		"2026-11-24 08:11:23+00 BC", "12026-01-01 00:00:00+00",
		"2026-13-01 00:00:00+00", "2026-11-24 24:00:00+00",
		"2026-11-24 08:11:23+0", "2026-11-24 08:11:23+00:", "2026-11-24 08:11:23+00x",
		"9999-12-31 23:00:00-02", "0001-01-01 00:30:00+01", "infinity",
		"2023-02-29 00:00:00+00", "2026-04-31 00:00:00+00",
		"1900-02-29 00:00:00+00",
	};
	char out[JOB_TS_ISO_SIZE];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (job_ts_iso(bad[i], out) != -1)
			CU_FAIL(bad[i]);
	}
}

/* A one-row result of JOB_JSON_COLUMNS after `lead` extra columns; NULL
 * values are NULL pointers. */
static PGresult *
job_result(int lead, const char *const vals[JOB_JSON_NCOLS])
{
	PGresAttDesc attrs[JOB_JSON_NCOLS + 2];
	PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	int i, n = lead + JOB_JSON_NCOLS;

	if (r == NULL)
		return NULL;
	memset(attrs, 0, sizeof(attrs));
	for (i = 0; i < n; i++) {
		attrs[i].name = (char *)"c";
		attrs[i].format = 0;
		attrs[i].typlen = -1;
		attrs[i].atttypmod = -1;
	}
	if (!PQsetResultAttrs(r, n, attrs))
		goto fail;
	for (i = 0; i < lead; i++)
		if (!PQsetvalue(r, 0, i, (char *)"lead", 4))
			goto fail;
	for (i = 0; i < JOB_JSON_NCOLS; i++)
		if (!PQsetvalue(r, 0, lead + i, (char *)vals[i],
		    vals[i] != NULL ? (int)strlen(vals[i]) : -1))
			goto fail;
	return r;
fail:
	PQclear(r);
	return NULL;
}

static const char *const completed_job[JOB_JSON_NCOLS] = {
	"a489e733-80ca-4f19-8b8d-cad083ec9aa3", "completed", "master_asset",
	"9fb99873-6a5a-4ee3-8735-8cd54a54ff13", "7537fd85-24d3-4473-b5a9-9fe37dceecee",
	NULL, NULL, NULL, NULL,
	"a \"castle\"\non a hill", "Master asset: a castle", "1024", "768",
	"gemini", "gemini-2.5-flash-image",
	"https://x.supabase.co/storage/v1/object/public/asset-images/p.png",
	"p.png", "image/png", "0.039000", "0.039000", "USD", "1", NULL, "f",
	"2026-11-24 08:11:23.516789+00", "2026-11-24 08:11:23.539+00",
	"2026-11-24 08:11:23.566+00", "2026-11-24 08:11:23.566+00",
	NULL, NULL, NULL,
};

static const char *
str_at(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* The text job_json_row() writes, reading from column col, for vals after
 * lead other columns: in a, or NULL when it writes none. */
static const char *
row_text(struct arena *a, int lead, int col, const char *const vals[JOB_JSON_NCOLS])
{
	PGresult *r = job_result(lead, vals);
	const char *s = r != NULL ? job_json_row(a, r, 0, col) : NULL;

	PQclear(r);
	return s;
}

/* The same, parsed (caller puts it); NULL when there is none. */
static struct json_object *
row_object(struct arena *a, int lead, const char *const vals[JOB_JSON_NCOLS])
{
	const char *s = row_text(a, lead, lead, vals);

	return s != NULL ? json_tokener_parse(s) : NULL;
}

static void
test_job_json_completed_job(void)
{
	struct arena *a = arena_new(4096);
	struct json_object *o, *v, *cost;

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	o = row_object(a, 0, completed_job);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_EQUAL(json_object_object_length(o), 26);
	CU_ASSERT_STRING_EQUAL(str_at(o, "jobId"), completed_job[0]);
	CU_ASSERT_STRING_EQUAL(str_at(o, "status"), "completed");
	CU_ASSERT_STRING_EQUAL(str_at(o, "prompt"), "a \"castle\"\non a hill");
	CU_ASSERT_STRING_EQUAL(str_at(o, "createdAt"), "2026-11-24T08:11:23.516Z");
	CU_ASSERT_STRING_EQUAL(str_at(o, "completedAt"), "2026-11-24T08:11:23.566Z");
	CU_ASSERT(json_object_object_get_ex(o, "assetId", &v) && v == NULL);
	CU_ASSERT(json_object_object_get_ex(o, "retryOf", &v) && v == NULL);
	CU_ASSERT(json_object_object_get_ex(o, "width", &v) &&
	    json_object_is_type(v, json_type_int) && json_object_get_int(v) == 1024);
	CU_ASSERT(json_object_object_get_ex(o, "height", &v) &&
	    json_object_get_int(v) == 768);
	CU_ASSERT(json_object_object_get_ex(o, "cancelRequested", &v) &&
	    json_object_is_type(v, json_type_boolean) && !json_object_get_boolean(v));
	CU_ASSERT_FATAL(json_object_object_get_ex(o, "cost", &cost));
	CU_ASSERT(json_object_object_get_ex(cost, "estimated", &v) &&
	    json_object_is_type(v, json_type_double) &&
	    json_object_get_double(v) == 0.039);
	CU_ASSERT_STRING_EQUAL(str_at(cost, "currency"), "USD");
	CU_ASSERT_FALSE(json_object_object_get_ex(o, "error", NULL));
	json_object_put(o);
	arena_free(a);
}

static void
test_job_json_failed_job_has_error_object(void)
{
	const char *vals[JOB_JSON_NCOLS];
	struct arena *a = arena_new(4096);
	struct json_object *o, *err, *v;
	const char *s;

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	memcpy(vals, completed_job, sizeof(vals));
	vals[1] = "failed";
	vals[15] = vals[16] = vals[17] = NULL;
	vals[19] = NULL;		/* no actual cost */
	vals[23] = "t";
	vals[26] = NULL;		/* completed_at */
	vals[28] = "PROVIDER_BLOCKED";
	vals[29] = "the model refused: SAFETY";
	vals[30] = "generating";
	s = row_text(a, 2, 2, vals);	/* after two other columns, as a listing */
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	o = json_tokener_parse(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_EQUAL(json_object_object_length(o), 27);
	CU_ASSERT_STRING_EQUAL(str_at(o, "status"), "failed");
	CU_ASSERT(json_object_object_get_ex(o, "publicUrl", &v) && v == NULL);
	CU_ASSERT(json_object_object_get_ex(o, "completedAt", &v) && v == NULL);
	CU_ASSERT(json_object_object_get_ex(o, "cancelRequested", &v) &&
	    json_object_get_boolean(v));
	CU_ASSERT_FATAL(json_object_object_get_ex(o, "error", &err));
	CU_ASSERT_EQUAL(json_object_object_length(err), 3);
	CU_ASSERT_STRING_EQUAL(str_at(err, "code"), "PROVIDER_BLOCKED");
	CU_ASSERT_STRING_EQUAL(str_at(err, "message"), "the model refused: SAFETY");
	CU_ASSERT_STRING_EQUAL(str_at(err, "failureStage"), "generating");
	/* the columns before the job's are not part of it */
	CU_ASSERT_PTR_NULL(strstr(s, "lead"));
	json_object_put(o);
	arena_free(a);
}

static void
test_job_json_refuses_unexpected_values(void)
{
	const char *vals[JOB_JSON_NCOLS];
	struct arena *a = arena_new(4096);

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	/* the unchanged row is written: what follows fails for its change */
	CU_ASSERT_PTR_NOT_NULL(row_text(a, 0, 0, completed_job));
	/* an integer column that is not one */
	memcpy(vals, completed_job, sizeof(vals));
	vals[11] = "1024x";
	CU_ASSERT_PTR_NULL(row_text(a, 0, 0, vals));
	/* a timestamp in another DateStyle */
	memcpy(vals, completed_job, sizeof(vals));
	vals[24] = "Tue Nov 24 08:11:23.516 2026 UTC";
	CU_ASSERT_PTR_NULL(row_text(a, 0, 0, vals));
	/* too few columns for the offset */
	CU_ASSERT_PTR_NULL(row_text(a, 0, 1, completed_job));
	arena_free(a);
}

static void
test_job_json_layout_reads_the_listed_columns(void)
{
	const char *p;
	int commas = 0;

	for (p = JOB_JSON_COLUMNS; *p != '\0'; p++)
		commas += *p == ',';
	CU_ASSERT_EQUAL(commas + 1, JOB_JSON_NCOLS);
	CU_ASSERT_EQUAL(job_json_layout_columns(), JOB_JSON_NCOLS);
}

static void
test_job_json_infinite_timestamps_are_null(void)
{
	const char *vals[JOB_JSON_NCOLS];
	struct arena *a = arena_new(4096);
	struct json_object *o, *v;

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	memcpy(vals, completed_job, sizeof(vals));
	vals[25] = "-infinity";
	vals[26] = "infinity";
	o = row_object(a, 0, vals);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT(json_object_object_get_ex(o, "startedAt", &v) && v == NULL);
	CU_ASSERT(json_object_object_get_ex(o, "completedAt", &v) && v == NULL);
	CU_ASSERT_STRING_EQUAL(str_at(o, "createdAt"), "2026-11-24T08:11:23.516Z");
	json_object_put(o);
	arena_free(a);
}

static void
test_job_json_numbers_without_json_form_are_null(void)
{
	const char *vals[JOB_JSON_NCOLS];
	struct arena *a = arena_new(4096);
	struct json_object *o, *cost, *v;

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	memcpy(vals, completed_job, sizeof(vals));
	vals[18] = "NaN";
	vals[19] = "-0.5";
	o = row_object(a, 0, vals);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_FATAL(json_object_object_get_ex(o, "cost", &cost));
	CU_ASSERT(json_object_object_get_ex(cost, "estimated", &v) && v == NULL);
	CU_ASSERT(json_object_object_get_ex(cost, "actual", &v) &&
	    json_object_get_double(v) == -0.5);
	json_object_put(o);
	arena_free(a);
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "ts_iso_conversions", test_job_ts_iso_conversions },
		{ "ts_iso_refuses_other_forms", test_job_ts_iso_refuses_other_forms },
		{ "completed_job", test_job_json_completed_job },
		{ "failed_job_has_error_object", test_job_json_failed_job_has_error_object },
		{ "refuses_unexpected_values", test_job_json_refuses_unexpected_values },
		{ "layout_reads_the_listed_columns",
		    test_job_json_layout_reads_the_listed_columns },
		{ "infinite_timestamps_are_null", test_job_json_infinite_timestamps_are_null },
		{ "numbers_without_json_form_are_null",
		    test_job_json_numbers_without_json_form_are_null },
		CU_TEST_INFO_NULL
	};

	return cu_run("job_json", tests);
}
