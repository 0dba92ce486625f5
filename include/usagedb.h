/* usagedb.h - what the caller's budgets and rate limit stand at, for
 * GET /api/usage (usage_db.c; the budgets are sql/011_budgets.sql's). */
#ifndef IG_USAGEDB_H
#define IG_USAGEDB_H

#include <libpq-fe.h>

#include "arena.h"
#include "err.h"

/*
 * The usage JSON (arena) of the caller whose claims these are, read as
 * that user in one round trip: {"currency":"USD","budgets":[{"scope",
 * "period","windowStart","resetsAt","limitUsd","spentUsd","reservedUsd",
 * "remainingUsd"[,"projectId"]}…],"rateLimit":{…}|null}, one budget per
 * window with a limit (user day and month; with project_id, that
 * project's; the deployment's day), the rate limit when per_minute > 0.
 * project_id NULL or a UUID (the caller checked its form). NULL with *e:
 * IG_EFORBIDDEN with *msg when project_id is not the caller's,
 * IG_EUNAVAILABLE/IG_EINTERNAL.
 */
const char *usagedb_json(PGconn *conn, struct arena *a, const char *claims,
    const char *project_id, long per_minute, long burst, enum ig_err *e,
    const char **msg);

#endif
