/* db.h - the per-process PostgreSQL connection. */
#ifndef IG_DB_H
#define IG_DB_H

#include <libpq-fe.h>

#include "cfg.h"
#include "err.h"

/*
 * Opens a connection with the configured connect_timeout, keepalives and
 * statement_timeout. NULL on failure with a one-line reason in err (no
 * password in it). Caller frees with PQfinish().
 */
PGconn *db_connect(const struct cfg *c, const char *appname, char *err,
    size_t errlen);

/* Made after fork: remembers the configuration; connects lazily. */
void db_init_child(const struct cfg *c, const char *appname);
/*
 * The process's live connection, reconnecting when it broke. NULL with
 * IG_EUNAVAILABLE in *e when the database can't be reached; reconnects are
 * tried at most every 500 ms so a dead database answers at once.
 */
PGconn *db_get(enum ig_err *e);
/* Call after a failed query: drops the connection if it is broken. */
void db_check(PGconn *conn);
/* Round trip; IG_OK or IG_EUNAVAILABLE. */
enum ig_err db_ping(void);
/* Closes the process's connection (safe when none). */
void db_close(void);

#endif
