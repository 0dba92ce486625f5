/* cli.c - what the imagegen commands share: the configuration, the
 * connection, a result printed as a table. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "db.h"

int
cli_load_cfg(struct cfg *c, int need)
{
	char err[512];

	if (cfg_load(c, NULL, need, err, sizeof(err)) != 0) {
		fprintf(stderr, "imagegen: %s\n", err);
		return -1;
	}
	return 0;
}

PGconn *
cli_connect(struct cfg *c, int worker, const char *cmd, int *rc)
{
	char err[512], app[64];
	PGconn *conn;

	*rc = 2;
	if (cli_load_cfg(c, CFG_NEED_DB) != 0)
		return NULL;
	*rc = 1;
	snprintf(app, sizeof(app), "imagegen-%s", cmd);
	conn = worker ? db_connect_worker(c, app, err, sizeof(err)) :
	    db_connect(c, app, err, sizeof(err));
	if (conn == NULL)
		fprintf(stderr, "imagegen: %s: cannot connect: %s\n", cmd, err);
	return conn;
}

int
cli_end(struct cfg *c, PGconn *conn, int rc)
{
	PQfinish(conn);
	cfg_free(c);
	return rc;
}

int
cli_print_query(PGconn *conn, const char *cmd, const char *title,
    PGresult *r)
{
	int *w = NULL;
	int i, j, nf, nt, rc = -1;

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "imagegen: %s: %s", cmd, PQerrorMessage(conn));
		goto out;
	}
	nf = PQnfields(r);
	nt = PQntuples(r);
	w = calloc((size_t)nf + 1, sizeof(*w));
	if (w == NULL) {
		fprintf(stderr, "imagegen: %s: out of memory\n", cmd);
		goto out;
	}
	for (j = 0; j < nf; j++) {
		w[j] = (int)strlen(PQfname(r, j));
		for (i = 0; i < nt; i++)
			if (PQgetlength(r, i, j) > w[j])
				w[j] = PQgetlength(r, i, j);
	}
	printf("%s\n", title);
	/* the last column unpadded: no trailing blanks */
	for (j = 0; j < nf; j++)
		printf("  %-*s", j + 1 < nf ? w[j] : 0, PQfname(r, j));
	printf("\n");
	for (i = 0; i < nt; i++) {
		for (j = 0; j < nf; j++)
			printf("  %-*s", j + 1 < nf ? w[j] : 0, PQgetvalue(r, i, j));
		printf("\n");
	}
	if (nt == 0)
		printf("  (none)\n");
	rc = 0;
out:
	free(w);
	PQclear(r);
	return rc;
}
