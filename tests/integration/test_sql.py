"""Runs every tests/sql/*.sql file against the migrated database, one test
per file: a file passes iff `psql -X -q -v ON_ERROR_STOP=1 -f FILE` as the
cluster superuser exits 0.  On failure the test shows psql's stderr."""

import glob
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402

SQL_TEST_DIR = os.path.join(harness.SRCDIR, "tests", "sql")
SQL_TESTS = sorted(glob.glob(os.path.join(SQL_TEST_DIR, "*.sql")))


class SqlFiles(harness.StackTestCase):
    """tests/sql/*.sql against a cluster migrated with sql/ (as the superuser)."""
    stack_args = dict(pool=None, nginx=False)

    def test_sql_files_present(self):
        self.assertTrue(SQL_TESTS, "no tests/sql/*.sql in %s" % SQL_TEST_DIR)

    def run_sql_file(self, path):
        r = self.stack.psql_file(path)
        if r.returncode != 0:
            self.fail("psql -f %s exited %d\n--- stderr\n%s\n--- stdout (tail)\n%s"
                      % (os.path.relpath(path, harness.SRCDIR), r.returncode,
                         r.stderr.strip(), "\n".join(r.stdout.splitlines()[-20:])))


def _method_for(path):
    def test(self):
        self.run_sql_file(path)
    test.__doc__ = "psql -f tests/sql/%s exits 0" % os.path.basename(path)
    return test


for _path in SQL_TESTS:
    _name = "test_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(_path))[0])
    while hasattr(SqlFiles, _name):
        _name += "_"
    setattr(SqlFiles, _name, _method_for(_path))


if __name__ == "__main__":
    unittest.main()
