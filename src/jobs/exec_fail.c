/* exec_fail.c - the executor's failure codes: the one table. */
#include <stddef.h>

#include "exec_fail.h"

static const struct {
	const char *code;	/* written to the database, byte for byte */
	const char *stage;	/* its failure_stage, when always the same */
	const char *message;	/* its message, when always the same */
} exec_fails[EXEC_FAIL_COUNT] = {
	[EXEC_FAIL_STORAGE_ERROR] = { "STORAGE_ERROR", NULL, NULL },
	[EXEC_FAIL_WORKER_LOST] = { "WORKER_LOST", NULL, NULL },
	[EXEC_FAIL_JOB_TIMEOUT] = { "JOB_TIMEOUT", NULL, NULL },
	[EXEC_FAIL_EXECUTOR_STOPPED] = { "EXECUTOR_STOPPED", NULL,
	    "the executor was told to stop" },
	[EXEC_FAIL_PERSIST_ERROR] = { "PERSIST_ERROR", "persisting",
	    "the completed job could not be recorded" },
};

static int
known(enum exec_fail f)
{
	return (int)f >= 0 && f < EXEC_FAIL_COUNT;
}

const char *
exec_fail_code(enum exec_fail f)
{
	return exec_fails[known(f) ? f : EXEC_FAIL_WORKER_LOST].code;
}

const char *
exec_fail_stage(enum exec_fail f)
{
	return known(f) ? exec_fails[f].stage : NULL;
}

const char *
exec_fail_message(enum exec_fail f)
{
	return known(f) ? exec_fails[f].message : NULL;
}
