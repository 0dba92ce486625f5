"""`nginx -t` accepts the nginx configurations in nginx/:

- nginx/imagegen.conf, the production config: a temp copy with a throwaway
  certificate, temp log/pid/temp paths and free ports substituted, wrapped
  in a minimal main config when it is a conf.d-style snippet;
- nginx/dev.conf.in rendered the way the harness (and scripts/up) render it.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402

PROD_CONF = os.path.join(harness.SRCDIR, "nginx", "imagegen.conf")

# Directives whose file argument must point into the temp dir for -t.
_FILE_ARGS = {
    "ssl_certificate": "cert",
    "ssl_certificate_key": "key",
    "ssl_trusted_certificate": "cert",
    "ssl_client_certificate": "cert",
    "access_log": "log",
    "error_log": "log",
    "pid": "pid",
    "client_body_temp_path": "temp",
    "fastcgi_temp_path": "temp",
    "proxy_temp_path": "temp",
    "scgi_temp_path": "temp",
    "uwsgi_temp_path": "temp",
    "fastcgi_cache_path": "temp",
    "proxy_cache_path": "temp",
    "lock_file": "pid",
}


def _ipv6_ok():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def nginx_t(argv):
    r = subprocess.run(argv + ["-t"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=60)
    return r.returncode, r.stdout


class NginxConf(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ig-nginx-t-")
        os.chmod(self.tmp, 0o755)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        for d in ("logs", "temp", "conf"):
            os.makedirs(os.path.join(self.tmp, d))
        self.cert = os.path.join(self.tmp, "cert.pem")
        self.key = os.path.join(self.tmp, "key.pem")
        harness.make_cert(self.cert, self.key)
        self.ports = {}
        self.ipv6 = _ipv6_ok()

    def _port_for(self, port):
        if port not in self.ports:
            self.ports[port] = harness.free_port()
        return self.ports[port]

    def _subst_listen(self, args):
        """listen ARGS: the same address with a free port for each port."""
        first, _, rest = args.partition(" ")
        if first.startswith("unix:"):
            return args
        m = re.match(r"^(\[[^\]]*\]:|[^:\s]+:)?(\d+)$", first)
        if m:
            addr = m.group(1) or ""
            if addr.startswith("[") and not self.ipv6:
                return None          # no IPv6 here: drop this listen
            first = "%s%d" % (addr, self._port_for(m.group(2)))
        elif re.match(r"^[\w.\-]+$", first) and not first.isdigit():
            first = "%s:%d" % (first, self._port_for(first))   # a bare address
        return (first + " " + rest).strip()

    def _subst(self, text):
        """Points file arguments, ports and includes at the temp dir."""
        counter = [0]

        def repl(m):
            indent, name, args, end = m.group(1), m.group(2), m.group(3).strip(), m.group(4)
            if name == "listen":
                new = self._subst_listen(args)
                if new is None:
                    return indent + "# (ipv6 listen dropped for the test)"
                return "%slisten %s%s" % (indent, new, end)
            if name == "include":
                base = os.path.basename(args.strip("'\""))
                ours = os.path.join(harness.SRCDIR, "nginx", base)
                if os.path.exists(ours):
                    return "%sinclude %s%s" % (indent, ours, end)
                if os.path.isabs(args) or "*" in args:
                    return m.group(0)
                sysfile = os.path.join("/etc/nginx", args)
                if os.path.exists(sysfile):
                    return "%sinclude %s%s" % (indent, sysfile, end)
                return m.group(0)
            kind = _FILE_ARGS.get(name)
            if kind is None:
                return m.group(0)
            first, _, rest = args.partition(" ")
            if first in ("off",) or first.startswith(("syslog:", "stderr", "memory:")):
                return m.group(0)
            counter[0] += 1
            if kind == "cert":
                path = self.cert
            elif kind == "key":
                path = self.key
            elif kind == "log":
                path = os.path.join(self.tmp, "logs", "%s.%d.log" % (name, counter[0]))
            elif kind == "pid":
                path = os.path.join(self.tmp, "%s.%d" % (name, counter[0]))
            else:
                path = os.path.join(self.tmp, "temp", "%s.%d" % (name, counter[0]))
            return "%s%s %s%s%s" % (indent, name, path, " " + rest if rest else "", end)

        return re.sub(r"(?m)^(\s*)([a-z_0-9]+)\s+([^;{}#\n]*?)\s*(;)", repl, text)

    def test_production_conf_nginx_t(self):
        """nginx -t accepts nginx/imagegen.conf (temp copy, throwaway cert)."""
        self.assertTrue(os.path.exists(PROD_CONF), "%s is missing" % PROD_CONF)
        with open(PROD_CONF) as f:
            text = self._subst(f.read())
        top = harness._main_directives(text)
        main = os.path.join(self.tmp, "conf", "nginx.conf")
        if "http" in top:
            conf_text = text
            if "events" not in top:
                conf_text = "events { worker_connections 64; }\n" + conf_text
        else:
            snippet = os.path.join(self.tmp, "conf", "imagegen.conf")
            with open(snippet, "w") as f:
                f.write(text)
            t = self.tmp
            conf_text = (
                "pid %s/nginx.pid;\n"
                "error_log %s/logs/error.log;\n"
                "events { worker_connections 64; }\n"
                "http {\n"
                "    include /etc/nginx/mime.types;\n"
                "    access_log %s/logs/access.log;\n"
                "    client_body_temp_path %s/temp/client_body;\n"
                "    fastcgi_temp_path %s/temp/fastcgi;\n"
                "    proxy_temp_path %s/temp/proxy;\n"
                "    scgi_temp_path %s/temp/scgi;\n"
                "    uwsgi_temp_path %s/temp/uwsgi;\n"
                "    include %s;\n"
                "}\n" % (t, t, t, t, t, t, t, t, snippet))
        directives = harness._main_directives(conf_text)
        if "pid" not in directives:
            conf_text = "pid %s/nginx.pid;\n" % self.tmp + conf_text
        with open(main, "w") as f:
            f.write(conf_text)
        argv = [harness._which("nginx"), "-p", self.tmp + "/", "-c", main,
                "-e", os.path.join(self.tmp, "logs", "error.log")]
        rc, out = nginx_t(argv)
        self.assertEqual(rc, 0, "nginx -t rejected imagegen.conf:\n%s\n--- tested config\n%s"
                         % (out, conf_text if "http" in top else text))
        self.assertIn("test is successful", out)

    def test_dev_conf_rendered_nginx_t(self):
        """nginx -t accepts nginx/dev.conf.in rendered as the harness does,
        with and without extra locations."""
        for extra in ("", "location = /__extra { return 204; }"):
            s = harness.Stack(pool=None, pg=False, nginx=False, extra_locations=extra,
                              name="ig-devconf")
            s.start()
            try:
                conf = s.render_nginx()
                with open(conf) as f:
                    text = f.read()
                self.assertNotRegex(text, r"@[A-Z_]+@", "placeholder left in rendered config")
                rc, out = nginx_t(s.nginx_argv(conf))
                self.assertEqual(rc, 0, "nginx -t rejected the rendered dev config (extra=%r):\n%s"
                                 % (extra, out))
                self.assertIn("test is successful", out)
            finally:
                s.stop()


if __name__ == "__main__":
    unittest.main()
