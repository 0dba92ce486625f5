"""The man pages (man/): each renders without a warning, and each agrees
with the --help of its program.

  Render      `groff -ww -z -man` and `groff -ww -z -mandoc` print nothing
              on stderr (any warning fails) and exit 0, for every page
  ImagegenPage   every long option in `imagegen --help` appears in
                 imagegen(1) and every long option there is in --help;
                 so do the commands (SYNOPSIS `imagegen CMD` lines)
  FcgiPage    the same for `imagegen-fcgi --help` and imagegen-fcgi(8)

  EnvPage     every variable a source file reads with getenv() itself
              (not through the settings rows) is in imagegen.env(5)

The settings section of imagegen.env(5) is checked against the settings
rows by the unit suite test_settings (it is generated).
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402

PAGES = ("imagegen.1", "imagegen-fcgi.8", "imagegen.env.5")
LONG_OPT = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")


def page_path(name):
    return os.path.join(harness.SRCDIR, "man", name)


def page_text(name):
    """The page's source as plain text: comment lines dropped, \\- made
    -, font escapes removed, so options read as they are typed."""
    with open(page_path(name), encoding="ascii") as f:
        lines = [ln for ln in f.read().split("\n") if not ln.startswith('.\\"')]
    text = "\n".join(lines)
    text = re.sub(r"\\f(\[[A-Z]*\]|\(..|.)", "", text)
    text = text.replace("\\-", "-").replace("\\&", "").replace("\\e", "\\")
    return text


def help_usage(exe):
    """--help's usage part (before the settings list): the options and
    commands a program names."""
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError("%s --help exited %d: %s" % (exe, r.returncode, r.stderr))
    out = r.stdout
    cut = out.find("\nsettings:\n")
    if cut < 0:
        raise AssertionError("%s --help has no settings list to cut at" % exe)
    return out[:cut]


class Render(unittest.TestCase):
    def test_groff_no_warning(self):
        groff = shutil.which("groff")
        self.assertIsNotNone(groff, "groff is not installed (scripts/lib.sh installs groff-base)")
        for name in PAGES:
            for macros in ("-man", "-mandoc"):
                with self.subTest(page=name, macros=macros):
                    r = subprocess.run([groff, "-ww", "-z", macros, page_path(name)],
                                       capture_output=True, text=True, timeout=60)
                    self.assertEqual(r.stderr, "", "groff %s %s warned" % (macros, name))
                    self.assertEqual(r.returncode, 0)

    def test_a_warning_is_seen(self):
        # The check above can fail: a page with an unknown macro warns.
        r = subprocess.run(["groff", "-ww", "-z", "-man"], input=".TH X 1\n.XX y\n",
                           capture_output=True, text=True, timeout=60)
        self.assertIn("warning", r.stderr)


class _PageAgrees:
    exe = None
    page = None

    def options(self):
        usage = help_usage(self.exe())
        return set(LONG_OPT.findall(usage)), set(LONG_OPT.findall(page_text(self.page)))

    def test_every_help_option_in_page(self):
        in_help, in_page = self.options()
        self.assertTrue(in_help, "no option found in --help")
        self.assertEqual(sorted(in_help - in_page), [],
                         "options of --help missing from man/%s" % self.page)

    def test_every_page_option_in_help(self):
        in_help, in_page = self.options()
        self.assertEqual(sorted(in_page - in_help), [],
                         "options in man/%s that --help does not have" % self.page)


class ImagegenPage(_PageAgrees, unittest.TestCase):
    exe = staticmethod(harness.imagegen_bin)
    page = "imagegen.1"

    def test_commands(self):
        usage = help_usage(harness.imagegen_bin())
        cmds = usage.split("\ncommands:\n", 1)[1]
        in_help = set(re.findall(r"^  ([a-z][a-z-]*)", cmds, re.M))
        text = page_text(self.page)
        synopsis = text.split(".SH SYNOPSIS", 1)[1].split(".SH ", 1)[0]
        in_page = set(re.findall(r"^\.B imagegen ([a-z][a-z-]*)", synopsis, re.M))
        self.assertGreaterEqual(len(in_help), 7, in_help)
        self.assertEqual(in_help, in_page)
        commands = text.split(".SH COMMANDS", 1)[1].split("\n.SH ", 1)[0]
        for c in in_help:
            with self.subTest(command=c):
                self.assertRegex(commands, r"\n\.(B|BR) %s(\s|$)" % re.escape(c),
                                 "command %s has no paragraph in COMMANDS" % c)


class FcgiPage(_PageAgrees, unittest.TestCase):
    exe = staticmethod(harness.imagegen_fcgi_bin)
    page = "imagegen-fcgi.8"

    def test_sections(self):
        text = page_text(self.page)
        for sec in ("SYNOPSIS", "DESCRIPTION", "OPTIONS", "SIGNALS", "SETTINGS", "FILES"):
            with self.subTest(section=sec):
                self.assertIn("\n.SH %s\n" % sec, text)
        for sig in ("SIGHUP", "SIGTERM", "SIGINT", "SIGQUIT"):
            self.assertIn(sig, text)


class EnvPage(unittest.TestCase):
    def test_getenv_variables_documented(self):
        names = set()
        for path in glob.glob(os.path.join(harness.SRCDIR, "src", "**", "*.c"), recursive=True):
            with open(path, encoding="utf-8") as f:
                names.update(re.findall(r'getenv\("([A-Z0-9_]+)"\)', f.read()))
        self.assertIn("IMAGEGEN_ENV_FILE", names)
        text = page_text("imagegen.env.5")
        env = text.split("\n.SH ENVIRONMENT\n", 1)[1].split("\n.SH ", 1)[0]
        for n in sorted(names):
            with self.subTest(variable=n):
                self.assertIn("\n.B %s\n" % n, env)


if __name__ == "__main__":
    unittest.main()
