/* exec_fail.h - the codes the executor and the sweeper write to a job
 * (error_code, a 'requeued' event's code), besides the provider's. */
#ifndef IG_EXEC_FAIL_H
#define IG_EXEC_FAIL_H

enum exec_fail {
	EXEC_FAIL_STORAGE_ERROR,	/* storage refused, or stayed away */
	EXEC_FAIL_WORKER_LOST,		/* the executor died */
	EXEC_FAIL_JOB_TIMEOUT,		/* past IMAGEGEN_JOB_TIMEOUT */
	EXEC_FAIL_EXECUTOR_STOPPED,	/* a stop signal (requeued only) */
	EXEC_FAIL_PERSIST_ERROR,	/* the completed row could not be written */
	EXEC_FAIL_COUNT
};

/* "STORAGE_ERROR", …: the string written to the database. An out-of-range
 * value gives "WORKER_LOST". Can't fail. */
const char *exec_fail_code(enum exec_fail f);
/* The failure stage the code always comes with, or NULL when that depends
 * on where the job was. */
const char *exec_fail_stage(enum exec_fail f);
/* The message the code always comes with, or NULL when it varies. */
const char *exec_fail_message(enum exec_fail f);

#endif
