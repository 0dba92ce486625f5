"""`make install` as an ops team packages it: the source tree copied (its
build products left out, so configure sees an unconfigured tree), then in a
separate build directory

    $COPY/configure --prefix=/usr --sysconfdir=/etc && make -j2 &&
    make install DESTDIR=$DEST

  Tree        the installed tree holds exactly the expected files (every
              migration of sql/ included), binaries executable, the rest
              mode 0644, data files equal to their sources
  Binaries    the installed imagegen and imagegen-fcgi print the build's
              version with --version; imagegen looks for its SQL in
              /usr/share/imagegen/sql
  EnvExample  the installed example env file loads (imagegen token reads
              it and mints a token)

A file a change adds to `make install` goes into EXPECTED below.
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402

# Installed path -> its source under the source tree (None: built).
EXPECTED = {
    "usr/bin/imagegen": None,
    "usr/sbin/imagegen-fcgi": None,
    "usr/share/imagegen/nginx/imagegen.conf": "nginx/imagegen.conf",
    "usr/share/imagegen/nginx/fastcgi_params": "nginx/fastcgi_params",
    "usr/share/imagegen/www/index.html": "nginx/www/index.html",
    "usr/share/imagegen/www/app.js": "nginx/www/app.js",
    "usr/share/imagegen/www/imageService.js": "nginx/www/imageService.js",
    "usr/share/imagegen/www/imageService.d.ts": "nginx/www/imageService.d.ts",
    "usr/share/imagegen/www/vendor/supabase.js": "nginx/www/vendor/supabase.js",
    "usr/share/imagegen/www/vendor/supabase.LICENSE": "nginx/www/vendor/supabase.LICENSE",
    "usr/share/imagegen/apache/imagegen.conf": "contrib/apache/imagegen.conf",
    "usr/share/imagegen/apache/imagegen-fcgid.conf": "contrib/apache/imagegen-fcgid.conf",
    "usr/share/imagegen/apache/imagegen-cgi.conf": "contrib/apache/imagegen-cgi.conf",
    "usr/share/imagegen/apache/imagegen.cgi": "contrib/apache/imagegen.cgi",
    "usr/share/man/man1/imagegen.1": "man/imagegen.1",
    "usr/share/man/man8/imagegen-fcgi.8": "man/imagegen-fcgi.8",
    "usr/share/man/man5/imagegen.env.5": "man/imagegen.env.5",
    "etc/imagegen/imagegen.env.example": "contrib/imagegen.env.example",
    "usr/share/imagegen/lighttpd/imagegen.conf": "contrib/lighttpd/imagegen.conf",
    "usr/share/imagegen/lighttpd/imagegen-spawn.conf": "contrib/lighttpd/imagegen-spawn.conf",
    "usr/lib/systemd/system/imagegen-fcgi.socket": "contrib/systemd/imagegen-fcgi.socket",
    "usr/lib/systemd/system/imagegen-sweep.timer": "contrib/systemd/imagegen-sweep.timer",
    # Built from contrib/systemd/NAME.in with the installed paths.
    "usr/lib/systemd/system/imagegen-fcgi.service": "built",
    "usr/lib/systemd/system/imagegen-worker.service": "built",
    "usr/lib/systemd/system/imagegen-sweep.service": "built",
}

# What a configured, built tree holds besides its sources.
SKIP_DIRS = {".git", "autom4te.cache", ".deps", "__pycache__", "var", "asan-build"}
SKIP_FILES = {"config.status", "config.log", "config.h", "stamp-h1", "libimagegen.a"}
SKIP_SUFFIXES = (".o", ".a", ".log", ".trs", ".tar.gz", "~")


def expected():
    exp = dict(EXPECTED)
    sqls = glob.glob(os.path.join(harness.SRCDIR, "sql", "[0-9][0-9][0-9]_*.sql"))
    sqls.append(os.path.join(harness.SRCDIR, "sql", "storage_policies.sql"))
    for p in sqls:
        exp["usr/share/imagegen/sql/" + os.path.basename(p)] = "sql/" + os.path.basename(p)
    return exp


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def ignore(src, names):
    out = set()
    for n in names:
        p = os.path.join(src, n)
        if os.path.isdir(p):
            if n in SKIP_DIRS or n.startswith("imagegen-"):
                out.add(n)
        elif (n in SKIP_FILES or n.endswith(SKIP_SUFFIXES) or is_elf(p) or
              (n == "Makefile" and os.path.exists(p + ".in"))):
            out.add(n)
    return out


def remove_tree(top):
    """rmtree that also removes what `make distcheck` left read-only (the
    copy keeps the source tree's modes)."""
    for root, dirs, _ in os.walk(top):
        for d in dirs:
            p = os.path.join(root, d)
            if not os.path.islink(p):
                os.chmod(p, 0o755)
    shutil.rmtree(top, ignore_errors=True)


def run(argv, cwd, timeout):
    r = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError("%s exited %d:\n%s\n%s" % (" ".join(argv), r.returncode,
                                                        r.stdout[-3000:], r.stderr[-3000:]))
    return r


class InstallTree(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="imagegen-install-")
        cls.addClassCleanup(remove_tree, cls.tmp)
        src = os.path.join(cls.tmp, "src")
        build = os.path.join(cls.tmp, "build")
        cls.dest = os.path.join(cls.tmp, "dest")
        t0 = time.monotonic()
        shutil.copytree(harness.SRCDIR, src, ignore=ignore, symlinks=True)
        if not os.access(os.path.join(src, "configure"), os.X_OK):
            raise AssertionError("the source tree has no configure (run autoreconf -fi)")
        os.mkdir(build)
        run([os.path.join(src, "configure"), "-q", "--prefix=/usr", "--sysconfdir=/etc",
             "--with-systemdsystemunitdir=/usr/lib/systemd/system"], build, 300)
        cls.build = build
        run(["make", "-s", "-j2"], build, 600)
        run(["make", "-s", "install", "DESTDIR=" + cls.dest], build, 300)
        sys.stderr.write("  (configure, make, make install: %.0f s) " % (time.monotonic() - t0))

    def installed(self):
        found = {}
        for root, dirs, files in os.walk(self.dest):
            for n in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
                p = os.path.join(root, n)
                found[os.path.relpath(p, self.dest)] = p
        return found

    def test_tree_file_by_file(self):
        self.assertEqual(sorted(self.installed()), sorted(expected()))

    def test_modes_and_contents(self):
        for rel, src in sorted(expected().items()):
            p = os.path.join(self.dest, rel)
            with self.subTest(path=rel):
                st = os.lstat(p)
                self.assertFalse(os.path.islink(p))
                if src is None:
                    self.assertEqual(st.st_mode & 0o777, 0o755)
                    self.assertTrue(is_elf(p))
                elif src == "built":
                    self.assertEqual(st.st_mode & 0o777, 0o644)
                    with open(p) as a, open(os.path.join(
                            harness.SRCDIR, "contrib/systemd", os.path.basename(p) + ".in")) as b:
                        text, tmpl = a.read(), b.read()
                    self.assertNotIn("@sbindir@", text, rel)
                    self.assertEqual(text, tmpl.replace("@sbindir@", "/usr/sbin")
                                     .replace("@bindir@", "/usr/bin"), rel)
                else:
                    self.assertEqual(st.st_mode & 0o777, 0o644)
                    with open(p, "rb") as a, open(os.path.join(harness.SRCDIR, src), "rb") as b:
                        self.assertEqual(a.read(), b.read(), "%s differs from %s" % (rel, src))

    def version(self, exe):
        r = run([exe, "--version"], self.tmp, 30)
        return r.stdout.strip()

    def test_binaries_version(self):
        want = self.version(harness.imagegen_bin()).split()[-1]
        self.assertRegex(want, r"^\d+\.\d+")
        self.assertEqual(self.version(os.path.join(self.dest, "usr/bin/imagegen")),
                         "imagegen " + want)
        self.assertEqual(self.version(os.path.join(self.dest, "usr/sbin/imagegen-fcgi")),
                         "imagegen-fcgi " + want)

    def test_sql_dir_is_the_installed_one(self):
        r = run([os.path.join(self.dest, "usr/bin/imagegen"), "--help"], self.tmp, 30)
        self.assertIn("else /usr/share/imagegen/sql)", r.stdout)

    def test_env_example_loads(self):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "IMAGEGEN_ENV_FILE": os.path.join(self.dest, "etc/imagegen/imagegen.env.example"),
               "SUPABASE_JWT_SECRET": "x" * 40}
        r = subprocess.run([os.path.join(self.dest, "usr/bin/imagegen"), "token",
                            "--sub", "00000000-0000-4000-8000-000000000001"],
                           env=env, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.count("."), 2, r.stdout)
        # the same with a malformed line fails: the file is really read
        bad = os.path.join(self.tmp, "bad.env")
        with open(bad, "w") as f:
            f.write("this is not an assignment\n")
        env["IMAGEGEN_ENV_FILE"] = bad
        r = subprocess.run([os.path.join(self.dest, "usr/bin/imagegen"), "token",
                            "--sub", "00000000-0000-4000-8000-000000000001"],
                           env=env, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stdout)


if __name__ == "__main__":
    unittest.main()
