"""`imagegen migrate` against a real PostgreSQL: idempotent, --status
truthful, and each migration applied exactly once even when two migrate
processes race on a fresh database (the advisory lock)."""

import difflib
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402


def version_of(path):
    return os.path.basename(path).split("_", 1)[0]


class Migrate(harness.StackTestCase):
    """A cluster with database `imagegen` migrated once by the harness."""
    stack_args = dict(pool=None, nginx=False)

    def setUp(self):
        super().setUp()
        self.files = harness.sql_files()
        self.assertTrue(self.files, "no sql/NNN_*.sql files in %s" % harness.SRCDIR)

    def schema_dump(self, db=harness.DB_NAME):
        r = subprocess.run(["pg_dump", "--schema-only", "--no-owner", db],
                           env=self.stack.pg_env(db=db), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        # pg_dump >= 15.14 brackets its output with \restrict KEY /
        # \unrestrict KEY, a random key per run: not part of the schema.
        return "\n".join(ln for ln in r.stdout.splitlines()
                         if not ln.startswith(("\\restrict ", "\\unrestrict ")))

    def assertSameText(self, a, b, msg):
        if a != b:
            diff = "".join(difflib.unified_diff(a.splitlines(True), b.splitlines(True),
                                                "before", "after", n=2))
            self.fail("%s:\n%s" % (msg, diff[:6000]))

    def migrations_rows(self, db=harness.DB_NAME):
        return self.stack.psql("SELECT version, name, checksum, applied_at "
                               "FROM public.schema_migrations ORDER BY version", db=db)

    def test_migrate_twice_changes_nothing(self):
        s = self.stack
        schema1 = self.schema_dump()
        rows1 = self.migrations_rows()
        self.assertEqual(len(rows1.splitlines()), len(self.files), rows1)
        r = s.migrate()
        self.assertEqual(r.returncode, 0)
        schema2 = self.schema_dump()
        rows2 = self.migrations_rows()
        self.assertEqual(rows2, rows1, "schema_migrations changed on the second run")
        self.assertSameText(schema1, schema2, "schema changed on the second run")
        self.assertNotRegex(r.stdout, r"(?m)^applied \S+ \(", "second run applied something:\n" + r.stdout)

    def test_status_lists_every_file_as_applied(self):
        r = self.stack.migrate("--status")
        lines = r.stdout.splitlines()
        for f in self.files:
            name = os.path.basename(f)
            mine = [ln for ln in lines if name in ln.split()]
            self.assertEqual(len(mine), 1, "%s in --status output:\n%s" % (name, r.stdout))
            words = mine[0].split()
            self.assertIn("applied", words, mine[0])
            self.assertNotIn("pending", words, mine[0])

    def test_status_on_fresh_database_lists_pending_and_applies_nothing(self):
        s = self.stack
        s.createdb("imagegen_status")
        r = s.migrate("--status", db="imagegen_status")
        lines = r.stdout.splitlines()
        for f in self.files:
            name = os.path.basename(f)
            mine = [ln for ln in lines if name in ln.split()]
            self.assertEqual(len(mine), 1, "%s in --status output:\n%s" % (name, r.stdout))
            self.assertIn("pending", mine[0].split(), mine[0])
        applied = s.psql("SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = 'public' "
                         "AND tablename = 'schema_migrations'", db="imagegen_status").strip()
        if applied == "1":
            self.assertEqual(s.psql("SELECT count(*) FROM public.schema_migrations",
                                    db="imagegen_status").strip(), "0")

    def test_concurrent_migrate_applies_each_once(self):
        s = self.stack
        db = "imagegen_race"
        s.createdb(db)
        argv, env = s.migrate_cmd(db=db)
        procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, cwd=s.tmp) for _ in range(2)]
        outs = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            outs.append((p.returncode, out, err))
        for rc, out, err in outs:
            self.assertEqual(rc, 0, "a concurrent migrate failed:\nstdout: %s\nstderr: %s" % (out, err))
        rows = s.psql("SELECT version, count(*) FROM public.schema_migrations GROUP BY version "
                      "ORDER BY version", db=db)
        got = dict(line.split("|") for line in rows.splitlines())
        want = {version_of(f): "1" for f in self.files}
        self.assertEqual(got, want, "schema_migrations after two concurrent runs")
        # Each file was applied by exactly one of the two processes.
        applied = []
        for _, out, _ in outs:
            applied += re.findall(r"(?m)^applied (\S+)", out)
        self.assertEqual(sorted(applied), sorted(os.path.basename(f) for f in self.files),
                         "files applied across both runs:\n%s" % "\n---\n".join(o for _, o, _ in outs))
        # and the result is the same schema as a single run gives
        self.assertSameText(self.schema_dump(), self.schema_dump(db),
                            "two racing runs give another schema than one run")

    def test_018_keeps_the_plain_secrets_of_before_and_drops_expired_previous_ones(self):
        """sql/018 cannot seal (the key is not in the database): a row of
        before keeps its plain secret, which the service seals when it
        first reads it (test_webhooks); no new plain text is accepted."""
        s = self.stack
        db = "imagegen_upgrade"
        s.createdb(db)
        old = os.path.join(s.tmp, "sql-before-018")
        os.makedirs(old, exist_ok=True)
        for f in self.files:
            if version_of(f) < "018":
                shutil.copy(f, old)
        argv, env = s.migrate_cmd(db=db)
        argv[argv.index("--dir") + 1] = old
        r = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, cwd=s.tmp, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        a, b, c = ("00000000-0000-4000-8000-0000000018%02d" % i for i in (1, 2, 3))
        s.psql("INSERT INTO auth.users (id, email) VALUES ('%s', 'a@x.invalid'),"
               " ('%s', 'b@x.invalid'), ('%s', 'c@x.invalid');"
               "INSERT INTO public.webhook_secrets (user_id, secret, previous, previous_until)"
               " VALUES ('%s', 'whsec_QUFB', NULL, NULL),"
               " ('%s', 'whsec_QkJC', 'whsec_YmJi', now() + interval '2 hours'),"
               " ('%s', 'whsec_Q0ND', 'whsec_Y2Nj', now() - interval '1 hour')"
               % (a, b, c, a, b, c), db=db)
        s.migrate(db=db)
        got = s.psql("SELECT secret, coalesce(previous, '-'), previous_until IS NOT NULL"
                     " FROM public.webhook_secrets ORDER BY user_id", db=db).split()
        self.assertEqual(got, ["whsec_QUFB|-|f", "whsec_QkJC|whsec_YmJi|t", "whsec_Q0ND|-|f"])
        r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c",
                            "UPDATE public.webhook_secrets SET secret = 'whsec_ZGRk'"
                            " WHERE user_id = '%s'" % a],
                           env=s.pg_env(False, db), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("never in plain text", r.stderr)


if __name__ == "__main__":
    unittest.main()
