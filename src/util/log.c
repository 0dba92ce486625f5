/* log.c - one line per event, written with a single write(2). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "text.h"

static enum ig_log_level log_level = IG_LOG_INFO;
static char log_rid[65];
static char log_job[37];

static const char *const level_names[] = { "DEBUG", "INFO", "WARN", "ERROR" };

void
log_set_level(enum ig_log_level level)
{
	log_level = level;
}

int
log_parse_level(const char *s, enum ig_log_level *out)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum ig_log_level)i;
			return 0;
		}
	}
	return -1;
}

void
log_set_request_id(const char *rid)
{
	if (rid == NULL)
		log_rid[0] = '\0';
	else
		snprintf(log_rid, sizeof(log_rid), "%s", rid);
}

const char *
log_request_id(void)
{
	return log_rid;
}

void
log_set_job_id(const char *job)
{
	if (job == NULL)
		log_job[0] = '\0';
	else
		snprintf(log_job, sizeof(log_job), "%s", job);
}

void
log_msg(enum ig_log_level level, const char *func, const char *fmt, ...)
{
	char line[2048];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	size_t n;
	int saved = errno, k;

	if (level < log_level)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	k = snprintf(line + n, sizeof(line) - n, ".%03ldZ %-5s %d %s: ",
	    (long)tv.tv_usec / 1000, level_names[level], (int)getpid(), func);
	if (k > 0)
		n += (size_t)k < sizeof(line) - n ? (size_t)k : sizeof(line) - n - 1;
	va_start(ap, fmt);
	k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (k > 0)
		n += (size_t)k < sizeof(line) - n ? (size_t)k : sizeof(line) - n - 1;
	if (log_job[0] != '\0' && n < sizeof(line) - 1) {
		k = snprintf(line + n, sizeof(line) - n, " job=%s", log_job);
		if (k > 0)
			n += (size_t)k < sizeof(line) - n ? (size_t)k : sizeof(line) - n - 1;
	}
	if (log_rid[0] != '\0' && n < sizeof(line) - 1) {
		k = snprintf(line + n, sizeof(line) - n, " rid=%s", log_rid);
		if (k > 0)
			n += (size_t)k < sizeof(line) - n ? (size_t)k : sizeof(line) - n - 1;
	}
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	/* One event, one line: control characters from messages are folded. */
	n = text_clean(line, n + 1, line, n);
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0) {
		/* Nowhere left to report it. */
	}
	errno = saved;
}
