"""`IMAGEGEN_WEB=apache scripts/up` and `IMAGEGEN_WEB=lighttpd scripts/up`
for real: the tree (with its build) is copied to a short temp dir, whose
var/ is then the stack's, and scripts/up runs there on free ports with
IMAGEGEN_SKIP_DEPS=1. The README's curl lines ("Running it locally") are
then run as written, through HTTPS (and /metrics over HTTP), with only the
JOB_ID placeholder and the documented default HTTP port replaced; a second
scripts/up is harmless; scripts/down leaves no process of the copy running.
"""

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def readme_curl_lines():
    """The shell block of README "Running it locally" that loads
    var/stack.env: its curl commands (continuation lines joined)."""
    with open(os.path.join(harness.SRCDIR, "README.md")) as f:
        text = f.read()
    section = text.split("## Running it locally", 1)[1].split("\n## ", 1)[0]
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        if ". var/stack.env" in block:
            joined = block.replace("\\\n", " ")
            return [ln.split("  #", 1)[0].strip() for ln in joined.splitlines()
                    if ln.strip().startswith("curl ")]
    raise AssertionError("README has no curl block after '. var/stack.env'")


def tree_processes(root):
    """(pid, user, cmdline) of every process naming ROOT in its command
    line or environment (the pool's DATABASE_URL names var/pg/run)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                cmd = f.read().replace(b"\0", b" ")
            try:
                with open("/proc/%s/environ" % name, "rb") as f:
                    env = f.read()
            except OSError:
                env = b""
            st = os.stat("/proc/%s" % name)
        except OSError:
            continue
        if root.encode() in cmd or root.encode() in env:
            if harness.proc_stat(int(name)) and harness.alive(int(name)):
                out.append((int(name), pwd.getpwuid(st.st_uid).pw_name,
                            cmd.decode(errors="replace")))
    return out


class ScriptsUpWeb(unittest.TestCase):
    """scripts/up with IMAGEGEN_WEB=apache and =lighttpd in a copy of the tree."""

    @classmethod
    def setUpClass(cls):
        for f in ("src/imagegen-fcgi", "src/imagegen"):
            if not os.access(os.path.join(harness.SRCDIR, f), os.X_OK):
                raise AssertionError("%s not built: scripts/build first" % f)
        # short: var/run/imagegen.sock and var/pg/run must fit sun_path
        cls.tmp = tempfile.mkdtemp(prefix="igw", dir="/tmp")
        os.chmod(cls.tmp, 0o755)     # postgres and www-data traverse it
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.root = os.path.join(cls.tmp, "t")
        os.mkdir(cls.root, 0o755)
        # tar keeps the mtimes, so scripts/build finds the build up to date;
        # not the test logs, which make check (other tests, run -j's other
        # workers) writes meanwhile: tar fails on a file that changed as read
        subprocess.run("tar --exclude=./.git --exclude=./var --exclude='./tests/*.log'"
                       " --exclude='./tests/*.trs' --exclude=./test-suite.log"
                       " -cf - . | tar -xf - -C %s"
                       % cls.root, shell=True, cwd=harness.SRCDIR, check=True, timeout=120)
        cls.http_port = harness.free_port()
        cls.https_port = harness.free_port()
        cls.pg_port = harness.free_port()
        cls.env = harness._clean_env()
        for k in list(cls.env):
            if k.startswith(("IMAGEGEN_", "SUPABASE_", "NANO_BANANA_", "S3_", "DATABASE_URL")):
                del cls.env[k]
        cls.env.update(IMAGEGEN_SKIP_DEPS="1", IMAGEGEN_HTTP_PORT=str(cls.http_port),
                       IMAGEGEN_HTTPS_PORT=str(cls.https_port),
                       IMAGEGEN_PG_PORT=str(cls.pg_port))
        cls.addClassCleanup(cls.down_quietly)

    @classmethod
    def down_quietly(cls):
        subprocess.run([os.path.join(cls.root, "scripts", "down")], env=cls.env,
                       cwd=cls.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=120)

    def script(self, name, web=None, check=True, timeout=300):
        env = dict(self.env)
        if web is not None:
            env["IMAGEGEN_WEB"] = web
        r = subprocess.run([os.path.join(self.root, "scripts", name)], env=env,
                           cwd=self.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=timeout)
        if check and r.returncode != 0:
            self.fail("scripts/%s (IMAGEGEN_WEB=%s) exited %d:\n%s\n%s"
                      % (name, web, r.returncode, r.stdout[-4000:], self.logs()))
        return r

    def logs(self):
        out = []
        for rel in ("var/log/imagegen-fcgi.log", "var/apache/logs/error.log",
                    "var/apache/logs/imagegen-error.log", "var/lighttpd/logs/error.log"):
            p = os.path.join(self.root, rel)
            if os.path.exists(p):
                out.append("---- %s\n%s" % (rel, harness.tail(p, 30)))
        return "\n".join(out)

    def readme_line(self, line, job_id=None):
        """One README curl line, as written, in a shell that loaded
        var/stack.env. Returns its stdout."""
        if "JOB_ID" in line:
            line = line.replace("JOB_ID", job_id)
        line = line.replace("http://localhost:8080", "http://localhost:%d" % self.http_port)
        r = subprocess.run(["bash", "-c", "set -a; . var/stack.env; set +a\n" + line],
                           cwd=self.root, env=harness._clean_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(r.returncode, 0, "%s: %s" % (line, r.stderr))
        return r.stdout

    def check_readme_curls(self, web):
        lines = readme_curl_lines()
        kinds = {"health": None, "live": None, "me": None, "generate": None,
                 "job": None, "metrics": None}
        for ln in lines:
            key = ("metrics" if "/metrics" in ln else "generate" if "/generate" in ln
                   else "job" if "JOB_ID" in ln else "live" if "/health/live" in ln
                   else "health" if "/api/health" in ln else "me" if "/api/me" in ln else None)
            self.assertIsNotNone(key, "README curl line of unknown kind: %s" % ln)
            kinds[key] = ln
        self.assertNotIn(None, kinds.values(), kinds)
        for k in ("health", "me", "generate", "job"):
            self.assertIn("$IMAGEGEN_URL", kinds[k])      # the HTTPS URL of stack.env
        env = self.stack_env()
        self.assertEqual(env["IMAGEGEN_URL"], "https://localhost:%d" % self.https_port)

        health = json.loads(self.readme_line(kinds["health"]))
        self.assertEqual(health.get("status"), "ok", health)
        self.assertEqual(health.get("database"), "ok", health)
        self.assertTrue(self.readme_line(kinds["live"]).strip())
        me = json.loads(self.readme_line(kinds["me"]))
        self.assertEqual(me.get("userId"), env["DEMO_USER_ID"], me)
        self.assertEqual(me.get("email"), "demo@imagegen.local", me)
        gen = json.loads(self.readme_line(kinds["generate"]))
        self.assertIn(gen.get("status"), ("queued", "running"), gen)
        job = {}

        def completed():
            job.update(json.loads(self.readme_line(kinds["job"], gen["jobId"])))
            return job.get("status") in ("completed", "failed", "canceled")
        self.assertTrue(harness.wait_until(completed, 60, 0.5), job)
        self.assertEqual(job.get("status"), "completed", job)
        metrics = self.readme_line(kinds["metrics"]).decode()
        self.assertIn("# TYPE imagegen_jobs", metrics)
        # the job's publicUrl (local storage) and the demo page, through it
        self.assertTrue(job["publicUrl"].startswith(
            "https://localhost:%d/storage/v1/object/public/" % self.https_port), job)
        png = subprocess.run(["curl", "-fsk", "--max-time", "10", job["publicUrl"]],
                             stdout=subprocess.PIPE, timeout=30).stdout
        self.assertTrue(png.startswith(PNG_MAGIC), png[:16])
        page = subprocess.run(["curl", "-fsk", "--max-time", "10",
                               "https://localhost:%d/" % self.https_port],
                              stdout=subprocess.PIPE, timeout=30).stdout
        self.assertIn(b"<html", page.lower())
        # HTTP/2 on HTTPS as with nginx
        v = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_version}",
                            "--http2", "https://localhost:%d/api/health/live" % self.https_port],
                           stdout=subprocess.PIPE, text=True, timeout=30).stdout
        self.assertEqual(v, "2", "%s over HTTPS: HTTP/%s" % (web, v))

    def stack_env(self):
        out = {}
        with open(os.path.join(self.root, "var", "stack.env")) as f:
            for line in f:
                if "=" in line and not line.startswith("#"):
                    k, v = line.rstrip("\n").split("=", 1)
                    out[k] = v.strip("'")
        return out

    def web_processes(self, conf):
        return [p for p in tree_processes(self.root) if conf in p[2]]

    def check_down(self):
        r = self.script("down")
        self.assertIn("nothing of the stack is running", r.stdout)
        gone = harness.wait_until(lambda: not tree_processes(self.root), 5)
        self.assertTrue(gone, "left running after scripts/down: %r" % (tree_processes(self.root),))
        self.assertFalse(os.path.exists(os.path.join(self.root, "var", "web")))
        for port in (self.http_port, self.https_port):
            with self.assertRaises(OSError, msg="port %d still answers" % port):
                harness.http_request("127.0.0.1", port, "GET", "/", timeout=2)

    def run_web(self, web, conf):
        r = self.script("up", web)
        self.assertIn("web server %s" % web, r.stdout)
        with open(os.path.join(self.root, "var", "web")) as f:
            self.assertEqual(f.read().strip(), web)
        procs = self.web_processes(conf)
        self.assertTrue(procs, "no %s process: %s" % (web, tree_processes(self.root)))
        if harness.IS_ROOT:
            # the processes that serve requests are www-data's
            self.assertIn(harness.POOL_USER, [u for _, u, _ in procs], procs)
        self.check_readme_curls(web)
        # again: harmless, the same server keeps (or takes back) the ports
        r = self.script("up", web)
        self.check_readme_curls(web)
        return r

    def test_up_web_apache(self):
        conf = os.path.join(self.root, "var", "apache", "httpd.conf")
        self.addCleanup(self.down_quietly)
        r = self.run_web("apache", conf)
        self.assertIn("apache: running", r.stdout)
        # another web server while Apache runs: refused, Apache untouched
        other = self.script("up", "lighttpd", check=False)
        self.assertNotEqual(other.returncode, 0, other.stdout)
        self.assertIn("apache is running", other.stdout)
        self.assertTrue(self.web_processes(conf))
        self.check_down()

    def test_up_web_lighttpd(self):
        conf = os.path.join(self.root, "var", "lighttpd", "lighttpd.conf")
        self.addCleanup(self.down_quietly)
        r = self.run_web("lighttpd", conf)
        self.assertIn("lighttpd: running", r.stdout)
        self.check_down()

    def test_up_nginx_cli_generate_wait_prints_a_url_that_serves_a_png(self):
        """Issue 13's line, as a user would type it: on a fresh scripts/up
        (nginx, the default), `src/imagegen generate "a castle" --wait`
        with nothing set takes URL, token and project from var/stack.env and
        prints the job's public URL, which serves a PNG."""
        self.addCleanup(self.down_quietly)
        r = self.script("up")
        self.assertIn("web server nginx", r.stdout)
        env = harness._clean_env()
        for k in list(env):
            if k.startswith(("IMAGEGEN_", "SUPABASE_", "DATABASE_URL")):
                del env[k]
        g = subprocess.run([os.path.join(self.root, "src", "imagegen"), "generate", "a castle",
                            "--wait", "--timeout", "60"], cwd=self.root, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=90)
        self.assertEqual(g.returncode, 0, "stdout %r stderr %r\n%s" % (g.stdout, g.stderr, self.logs()))
        url = g.stdout.strip()
        self.assertTrue(url.startswith("https://localhost:%d/" % self.https_port), g.stdout)
        png = subprocess.run(["curl", "-fsk", "--max-time", "10", url],
                             stdout=subprocess.PIPE, timeout=30).stdout
        self.assertTrue(png.startswith(PNG_MAGIC), png[:16])
        self.check_down()

    def test_up_web_unknown(self):
        r = self.script("up", "caddy", check=False)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("IMAGEGEN_WEB must be nginx, apache or lighttpd, not 'caddy'", r.stdout)
        self.assertFalse(os.path.exists(os.path.join(self.root, "var", "web")))


if __name__ == "__main__":
    unittest.main()
