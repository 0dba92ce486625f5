/* migrate.h - applies sql/NNN_*.sql in order, each once. */
#ifndef IG_MIGRATE_H
#define IG_MIGRATE_H

#include <stdio.h>

#include <libpq-fe.h>

/*
 * Applies every pending migration in dir, each in its own transaction,
 * under a session advisory lock; with status_only lists them instead.
 * Progress goes to out. Returns 0, or -1 with a one-line reason in err.
 */
int migrate_run(PGconn *conn, const char *dir, int status_only, FILE *out,
    char *err, size_t errlen);
/* 1 when name looks like a migration file ("001_auth.sql"). */
int migrate_is_migration_name(const char *name);

#endif
