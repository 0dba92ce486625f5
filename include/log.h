/* log.h - one line per event on stderr, with the function and request id. */
#ifndef IG_LOG_H
#define IG_LOG_H

enum ig_log_level { IG_LOG_DEBUG, IG_LOG_INFO, IG_LOG_WARN, IG_LOG_ERROR };

void log_set_level(enum ig_log_level level);
/* Parses "debug|info|warn|error"; 0 on success, -1 otherwise. */
int log_parse_level(const char *s, enum ig_log_level *out);
/* The request id appended to every line until cleared with NULL. The string
 * is copied (truncated to 64 bytes). */
void log_set_request_id(const char *rid);
/* The request id set with log_set_request_id(), "" when none. Can't fail;
 * the string is the module's, valid until the next set. */
const char *log_request_id(void);
/* The job appended to every line (" job=ID", before the request id) until
 * cleared with NULL: an executor's lines name the job they are about. The
 * string is copied (truncated to 36 bytes). */
void log_set_job_id(const char *job);
/* Writes one line with a single write(2). Never pass a secret. */
void log_msg(enum ig_log_level level, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_msg(IG_LOG_DEBUG, __func__, __VA_ARGS__)
#define log_info(...) log_msg(IG_LOG_INFO, __func__, __VA_ARGS__)
#define log_warn(...) log_msg(IG_LOG_WARN, __func__, __VA_ARGS__)
#define log_error(...) log_msg(IG_LOG_ERROR, __func__, __VA_ARGS__)

#endif
