/* main_cli.c - imagegen: the operator's command line. */
#include <getopt.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cfg.h"
#include "db.h"
#include "jwt.h"
#include "migrate.h"

#ifndef IMAGEGEN_SQL_DIR
#define IMAGEGEN_SQL_DIR "/usr/local/share/imagegen/sql"
#endif

static void
usage(FILE *f)
{
	fprintf(f,
"usage: imagegen COMMAND [options]\n"
"\n"
"commands:\n"
"  migrate [--dir DIR] [--status]\n"
"      apply the pending sql/NNN_*.sql migrations in order, each once, as the\n"
"      table owner in DATABASE_URL (DIR: IMAGEGEN_SQL_DIR, else %s);\n"
"      --status lists each file as applied or pending\n"
"  token --sub UUID [--email EMAIL] [--ttl SECONDS] [--role ROLE]\n"
"        [--alg HS256|ES256|RS256] [--key FILE] [--kid KID]\n"
"      print a development access token: HS256 with SUPABASE_JWT_SECRET, or\n"
"      ES256/RS256 with the PEM private key in FILE (issuer\n"
"      SUPABASE_JWT_ISSUER, or derived from SUPABASE_URL when set)\n"
"\n"
"  --help, --version\n"
"\n"
"Settings come from the environment, or a file named by IMAGEGEN_ENV_FILE.\n",
	    IMAGEGEN_SQL_DIR);
}

static int
load_cfg(struct cfg *c, int need)
{
	char err[512];

	if (cfg_load(c, NULL, need, err, sizeof(err)) != 0) {
		fprintf(stderr, "imagegen: %s\n", err);
		return -1;
	}
	return 0;
}

static int
cmd_migrate(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "status", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct cfg c = { 0 };
	PGconn *conn = NULL;
	const char *dir = getenv("IMAGEGEN_SQL_DIR");
	char err[1024];
	int ch, status = 0, rc = 2;

	if (dir == NULL || *dir == '\0')
		dir = IMAGEGEN_SQL_DIR;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'd': dir = optarg; break;
		case 's': status = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (load_cfg(&c, CFG_NEED_DB) != 0)
		goto out;
	conn = db_connect(&c, "imagegen-migrate", err, sizeof(err));
	if (conn == NULL) {
		fprintf(stderr, "imagegen: migrate: cannot connect: %s\n", err);
		rc = 1;
		goto out;
	}
	if (migrate_run(conn, dir, status, stdout, err, sizeof(err)) != 0) {
		fprintf(stderr, "imagegen: migrate: %s\n", err);
		rc = 1;
		goto out;
	}
	rc = 0;
out:
	PQfinish(conn);
	cfg_free(&c);
	return rc;
}

/* The whole of a small file, NUL-terminated; caller frees. NULL on error. */
static char *
read_small_file(const char *path, size_t *len)
{
	char *buf = NULL;
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL)
		return NULL;
	buf = malloc(65537);
	if (buf != NULL) {
		n = fread(buf, 1, 65536, f);
		if (ferror(f) || !feof(f)) {
			free(buf);
			buf = NULL;
		} else {
			buf[n] = '\0';
			*len = n;
		}
	}
	fclose(f);
	return buf;
}

static int
cmd_token(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "sub", required_argument, NULL, 's' },
		{ "email", required_argument, NULL, 'e' },
		{ "ttl", required_argument, NULL, 't' },
		{ "role", required_argument, NULL, 'r' },
		{ "alg", required_argument, NULL, 'a' },
		{ "key", required_argument, NULL, 'k' },
		{ "kid", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct jwt_mint m = { .ttl = 3600 };
	struct jwt_key key = { 0 };
	struct cfg c = { 0 };
	const char *alg_s = NULL, *key_file = NULL, *kid = NULL, *why = "";
	enum jwt_alg alg = JWT_HS256;
	char *tok = NULL, *pem = NULL;
	size_t pem_len = 0;
	int ch, rc = 2;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 's': m.sub = optarg; break;
		case 'e': m.email = optarg; break;
		case 'r': m.role = optarg; break;
		case 'a': alg_s = optarg; break;
		case 'k': key_file = optarg; break;
		case 'i': kid = optarg; break;
		case 't':
			if (cfg_parse_long(optarg, 1, 31L * 86400, &m.ttl) != 0) {
				fprintf(stderr, "imagegen: token: --ttl: expected seconds from 1 to 2678400, got '%s'\n",
				    optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (m.sub == NULL) {
		fprintf(stderr, "imagegen: token: --sub UUID is required\n");
		return 2;
	}
	if (alg_s != NULL) {
		alg = jwt_alg_parse(alg_s);
		if (alg == JWT_ALG_UNKNOWN) {
			fprintf(stderr, "imagegen: token: --alg: expected HS256, ES256 or RS256, got '%s'\n",
			    alg_s);
			return 2;
		}
	}
	if (alg != JWT_HS256 && key_file == NULL) {
		fprintf(stderr, "imagegen: token: --alg %s needs --key FILE (a PEM private key)\n",
		    alg_s);
		return 2;
	}
	if (load_cfg(&c, 0) != 0)
		goto out;
	m.issuer = c.jwt_issuer;
	if (key_file != NULL) {
		pem = read_small_file(key_file, &pem_len);
		if (pem == NULL) {
			fprintf(stderr, "imagegen: token: --key: cannot read %s\n", key_file);
			goto out;
		}
		if (jwt_key_from_pem(&key, kid, pem, pem_len, &why) != 0 ||
		    key.pkey == NULL) {
			fprintf(stderr, "imagegen: token: --key %s: %s\n", key_file, why);
			goto out;
		}
		if (alg_s != NULL && key.alg != alg) {
			fprintf(stderr, "imagegen: token: --key %s is an %s key, not %s\n",
			    key_file, jwt_alg_name(key.alg), alg_s);
			goto out;
		}
	} else {
		if (c.jwt_secret == NULL) {
			fprintf(stderr, "imagegen: token: SUPABASE_JWT_SECRET is not set\n");
			goto out;
		}
		if (jwt_key_hs256(&key, kid, (const unsigned char *)c.jwt_secret,
		    strlen(c.jwt_secret)) != 0) {
			fprintf(stderr, "imagegen: token: out of memory\n");
			goto out;
		}
	}
	tok = jwt_sign(&m, &key);
	if (tok == NULL) {
		fprintf(stderr, "imagegen: token: cannot sign\n");
		rc = 1;
		goto out;
	}
	printf("%s\n", tok);
	rc = 0;
out:
	free(tok);
	free(pem);
	jwt_key_clear(&key);
	cfg_free(&c);
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("imagegen %s\n", VERSION);
		return 0;
	}
	if (strcmp(argv[1], "migrate") == 0)
		return cmd_migrate(argc - 1, argv + 1);
	if (strcmp(argv[1], "token") == 0)
		return cmd_token(argc - 1, argv + 1);
	fprintf(stderr, "imagegen: unknown command '%s' (try imagegen --help)\n",
	    argv[1]);
	return 2;
}
