/* job_json.c - a job row as the JSON the API answers with (SPEC §3). */
#include <string.h>

#include "job_json.h"
#include "jsonw.h"

/* One entry per column of JOB_JSON_COLUMNS, in order, with the groups it
 * nests in: '{' opens "key":{ without a column, '?' the same but only
 * when the next column is not NULL (else the group is left out), '}'
 * closes. Kinds: s string, i integer, n number, b boolean, t timestamp. */
static const struct job_field {
	const char *key;
	char kind;
} job_fields[] = {
	{ "jobId", 's' }, { "status", 's' }, { "jobType", 's' },
	{ "projectId", 's' }, { "branchId", 's' }, { "assetId", 's' },
	{ "sceneId", 's' }, { "shotId", 's' }, { "visualStyleCapsuleId", 's' },
	{ "prompt", 's' }, { "finalPrompt", 's' }, { "width", 'i' },
	{ "height", 'i' }, { "provider", 's' }, { "model", 's' },
	{ "publicUrl", 's' }, { "storagePath", 's' }, { "mimeType", 's' },
	{ "cost", '{' }, { "estimated", 'n' }, { "actual", 'n' },
	{ "currency", 's' }, { NULL, '}' },
	{ "attempts", 'i' }, { "retryOf", 's' }, { "cancelRequested", 'b' },
	{ "createdAt", 't' }, { "startedAt", 't' }, { "completedAt", 't' },
	{ "updatedAt", 't' },
	{ "error", '?' }, { "code", 's' }, { "message", 's' },
	{ "failureStage", 's' }, { NULL, '}' },
};

#define NFIELDS (sizeof(job_fields) / sizeof(job_fields[0]))

static int
digits(const char *s, int n)
{
	int i, v = 0;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* v (0 <= v < 10^n) as n decimal digits at out. */
static void
put_digits(char *out, long v, int n)
{
	while (n-- > 0) {
		out[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

static int
days_in_month(long y, int m)
{
	static const int len[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
		30, 31 };

	if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
		return 29;
	return len[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil), and back. */
static long
days_from_civil(long y, int m, int d)
{
	long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(long z, long *y, int *m, int *d)
{
	long era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

int
job_ts_iso(const char *pg, char out[JOB_TS_ISO_SIZE])
{
	int mo, d, h, mi, s, ms = 0, oh, om = 0, os = 0, sign, n, i;
	long y, days, secs;
	const char *p;

	/* YYYY-MM-DD HH:MM:SS */
	if (strlen(pg) < 22 || pg[4] != '-' || pg[7] != '-' || pg[10] != ' ' ||
	    pg[13] != ':' || pg[16] != ':')
		return -1;
	y = digits(pg, 4);
	mo = digits(pg + 5, 2);
	d = digits(pg + 8, 2);
	h = digits(pg + 11, 2);
	mi = digits(pg + 14, 2);
	s = digits(pg + 17, 2);
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
	    h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59)
		return -1;
	p = pg + 19;
	/* .f to .ffffff: milliseconds, truncated as to_char's MS does */
	if (*p == '.') {
		for (n = 0, p++; p[n] >= '0' && p[n] <= '9'; n++)
			if (n < 3)
				ms = ms * 10 + (p[n] - '0');
		if (n < 1 || n > 6)
			return -1;
		for (i = n; i < 3; i++)
			ms *= 10;
		p += n;
	}
	/* +HH, +HH:MM or +HH:MM:SS */
	if (*p != '+' && *p != '-')
		return -1;
	sign = *p++ == '-' ? -1 : 1;
	oh = digits(p, 2);
	if (oh < 0 || oh > 15)
		return -1;
	p += 2;
	if (*p == ':') {
		om = digits(p + 1, 2);
		if (om < 0 || om > 59)
			return -1;
		p += 3;
		if (*p == ':') {
			os = digits(p + 1, 2);
			if (os < 0 || os > 59)
				return -1;
			p += 3;
		}
	}
	if (*p != '\0')
		return -1;
	/* to UTC: the offset moves the time by less than a day either way */
	days = days_from_civil(y, mo, d);
	secs = h * 3600L + mi * 60L + s - sign * (oh * 3600L + om * 60L + os);
	if (secs < 0) {
		secs += 86400;
		days--;
	} else if (secs >= 86400) {
		secs -= 86400;
		days++;
	}
	civil_from_days(days, &y, &mo, &d);
	if (y < 1 || y > 9999)
		return -1;
	memcpy(out, "0000-00-00T00:00:00.000Z", JOB_TS_ISO_SIZE);
	put_digits(out, y, 4);
	put_digits(out + 5, mo, 2);
	put_digits(out + 8, d, 2);
	put_digits(out + 11, secs / 3600, 2);
	put_digits(out + 14, secs / 60 % 60, 2);
	put_digits(out + 17, secs % 60, 2);
	put_digits(out + 20, ms, 3);
	return 0;
}

int
job_json_layout_columns(void)
{
	size_t i;
	int n = 0;

	for (i = 0; i < NFIELDS; i++)
		if (strchr("{?}", job_fields[i].kind) == NULL)
			n++;
	return n;
}

/* -?[0-9]+ */
static int
is_int(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

/* -?[0-9]+(.[0-9]+)?, the subset of JSON numbers numeric_out writes. */
static int
is_number(const char *s)
{
	const char *dot;

	if (*s == '-')
		s++;
	dot = strchr(s, '.');
	if (dot == NULL)
		return is_int(s);
	if (dot == s || dot[1] == '\0')
		return 0;
	for (; s < dot; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return is_int(dot + 1) && dot[1] != '-';
}

char *
job_json_row(struct arena *a, const PGresult *r, int row, int col)
{
	char ts[JOB_TS_ISO_SIZE];
	const struct job_field *f;
	struct jsonw w;
	const char *v;
	size_t i;
	int len;

	if (col < 0 || PQnfields(r) < col + JOB_JSON_NCOLS ||
	    job_json_layout_columns() != JOB_JSON_NCOLS)
		return NULL;
	jw_init(&w, a, 1024);
	jw_raw(&w, "{", 1);
	for (i = 0; i < NFIELDS; i++) {
		f = &job_fields[i];
		if (f->kind == '}') {
			jw_raw(&w, "}", 1);
			continue;
		}
		if (f->kind == '?' && PQgetisnull(r, row, col)) {
			while (job_fields[i].kind != '}')	/* skip the group */
				if (job_fields[++i].kind != '}')
					col++;
			continue;
		}
		jw_key(&w, f->key);
		if (f->kind == '{' || f->kind == '?') {
			jw_raw(&w, "{", 1);
			continue;
		}
		if (PQgetisnull(r, row, col)) {
			jw_raw(&w, "null", 4);
			col++;
			continue;
		}
		v = PQgetvalue(r, row, col);
		len = PQgetlength(r, row, col);
		col++;
		switch (f->kind) {
		case 's':
			jw_str(&w, v, (size_t)len);
			break;
		case 'i':
			if (!is_int(v))
				return NULL;
			jw_raw(&w, v, (size_t)len);
			break;
		case 'n':
			/* NaN and infinities have no JSON number: null (SQL's
			 * image_job_json() would write the string "NaN"; the API
			 * keeps a number field a number or null) */
			jw_lit(&w, is_number(v) ? v : "null");
			break;
		case 'b':
			if (strcmp(v, "t") != 0 && strcmp(v, "f") != 0)
				return NULL;
			jw_lit(&w, *v == 't' ? "true" : "false");
			break;
		case 't':
			/* to_char() of an infinite timestamp is NULL too */
			if (strcmp(v, "infinity") == 0 || strcmp(v, "-infinity") == 0) {
				jw_raw(&w, "null", 4);
				break;
			}
			if (job_ts_iso(v, ts) != 0)
				return NULL;
			jw_str(&w, ts, strlen(ts));
			break;
		default:
			return NULL;
		}
	}
	jw_raw(&w, "}", 1);
	return jw_finish(&w, NULL);
}
