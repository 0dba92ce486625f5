/* cmd_stats.c - imagegen stats: the product guide's two monitoring
 * queries, then today's (UTC) spend by user and by project and the cost
 * alerts of the day (admin_db.c has the SQL). */
#include <stdio.h>

#include "admindb.h"
#include "cli.h"

int
cmd_stats(void)
{
	struct cfg c = { 0 };
	PGconn *conn;
	int rc;

	conn = cli_connect(&c, 1, "stats", &rc);
	if (conn == NULL)
		goto out;
	if (cli_print_query(conn, "stats", "Cost per job type (completed jobs):",
	    admindb_cost_per_job_type(conn)) != 0)
		goto out;
	printf("\n");
	if (cli_print_query(conn, "stats", "Jobs by status, last 24 hours:",
	    admindb_jobs_last_day(conn)) != 0)
		goto out;
	printf("\n");
	if (cli_print_query(conn, "stats",
	    "Spend today (UTC) by user, top 20 (reserved: jobs not yet ended):",
	    admindb_spend_today(conn, ADMINDB_BY_USER)) != 0)
		goto out;
	printf("\n");
	if (cli_print_query(conn, "stats",
	    "Spend today (UTC) by project, top 20 (reserved: jobs not yet ended):",
	    admindb_spend_today(conn, ADMINDB_BY_PROJECT)) != 0)
		goto out;
	printf("\n");
	if (cli_print_query(conn, "stats", "Cost alerts today (UTC):",
	    admindb_alerts_today(conn)) != 0)
		goto out;
	rc = 0;
out:
	return cli_end(&c, conn, rc);
}
