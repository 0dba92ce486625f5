"""harness.py - start a real PostgreSQL, imagegen pool and nginx for a test.

    with Stack(pool="master", workers=2) as s:
        r = s.http("GET", "/api/health")
        assert r.status == 200, r

Each Stack lives in its own temp dir (mkdtemp, 0755) on free ports, so tests
run beside a developer's running stack and beside each other.  Anything a
Stack cannot start is an exception (a loud failure, never a skip).  When run
as root, Postgres runs as `postgres`, the pool's children and nginx's workers
as `www-data`, exactly as docs/RUNNING.md prescribes.

Paths: IMAGEGEN_SRCDIR / abs_top_srcdir and IMAGEGEN_BUILDDIR /
abs_top_builddir (automake's test environment), default the repo root.
"""

import glob
import atexit
import base64
import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

import fcgi_client
import openapi_check

_REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _env_dir(*names):
    for n in names:
        v = os.environ.get(n)
        if v:
            return os.path.abspath(v)
    return _REPO


SRCDIR = _env_dir("IMAGEGEN_SRCDIR", "abs_top_srcdir")
BUILDDIR = _env_dir("IMAGEGEN_BUILDDIR", "abs_top_builddir")
IS_ROOT = os.geteuid() == 0
POOL_USER = "www-data"          # the unprivileged user when run as root
PG_USER = "postgres"            # the OS user Postgres runs as when root
DB_NAME = "imagegen"
APP_ROLE = "imagegen_app"        # the responders' login role: authenticated only
WORKER_ROLE = "imagegen_worker"  # executors, sweeper, worker, /metrics: service_role
MODES = ("master", "spawn-master", "spawn-plain")


def _pg_bindir():
    d = os.environ.get("PG_BINDIR")
    if d:
        return d
    for v in ("15", "16", "17"):
        d = "/usr/lib/postgresql/%s/bin" % v
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(found)
    raise HarnessError("PostgreSQL server binaries (initdb) not found; set PG_BINDIR")


def _which(prog, extra_dirs=("/usr/sbin", "/sbin", "/usr/bin")):
    p = shutil.which(prog)
    if p:
        return p
    for d in extra_dirs:
        c = os.path.join(d, prog)
        if os.access(c, os.X_OK):
            return c
    raise HarnessError("%s not found in PATH" % prog)


class HarnessError(RuntimeError):
    """The stack could not be started, stopped, or asked something."""


# Stacks not yet stopped: stopped at exit, also when the test process is
# ended by SIGTERM/SIGHUP/SIGINT (e.g. a CI timeout), so nothing leaks.
_LIVE = set()


def _stop_all():
    for st in list(_LIVE):
        try:
            st.stop()
        except Exception as e:
            try:
                sys.stderr.write("harness: stopping %s at exit: %s\n" % (st.name, e))
            except Exception:
                pass


atexit.register(_stop_all)


def _exit_on_signal(signo, frame):
    raise SystemExit(128 + signo)


def _install_exit_handlers():
    import threading
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, _exit_on_signal)


# Ports for the servers a test starts.  A port that bind(("", 0)) found
# free and closed again can be taken before the server binds it: by an
# outgoing connection (its local port) or by another test process's
# bind(0) (tests/integration/run -j, or two suites at once).  So tests take
# their ports below the kernel's ephemeral range (which connect() and
# bind(0) draw from), and each port is reserved for the life of this
# process by a lock on its byte of PORT_LOCK (fcntl record locks: other
# processes skip it; released when the process ends, however it ends).
PORT_LOCK = "/tmp/imagegen-test-ports.lock"
_ports_lock = __import__("threading").Lock()
_ports_fd = None
_ports_taken = set()
_ports_next = None


def _port_range():
    """(first, last) port tests take: IMAGEGEN_TEST_PORTS=FIRST-LAST, or
    the 10,000 below the ephemeral range (or above it, if that is too
    low); None when neither fits (then bind(0), unreserved)."""
    v = os.environ.get("IMAGEGEN_TEST_PORTS")
    if v:
        lo, hi = (int(x) for x in v.split("-"))
        return lo, hi
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            elo, ehi = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        elo, ehi = 32768, 60999
    if elo - 1 - 1024 >= 2000:
        return max(1024, elo - 10000), elo - 1
    if 65535 - ehi >= 2000:
        return ehi + 1, min(65535, ehi + 10000)
    return None


def _ports_file():
    global _ports_fd
    if _ports_fd is None:
        try:
            # not O_CREAT on a file someone else made: fs.protected_regular
            # refuses that in a sticky /tmp, even to root
            _ports_fd = os.open(PORT_LOCK, os.O_RDWR)
        except FileNotFoundError:
            try:
                _ports_fd = os.open(PORT_LOCK, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
                os.fchmod(_ports_fd, 0o666)     # for every user's test runs
            except FileExistsError:
                _ports_fd = os.open(PORT_LOCK, os.O_RDWR)
    return _ports_fd


def _probe(port):
    """True when 127.0.0.1:port can be bound (nothing listens on it, no
    connection uses it) right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port():
    """A TCP port on 127.0.0.1 nobody listens on right now, reserved for
    this process (no other test process picks it; see PORT_LOCK)."""
    import fcntl
    import random
    global _ports_next
    rng = _port_range()
    if rng is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    lo, hi = rng
    with _ports_lock:
        fd = _ports_file()
        if _ports_next is None:
            _ports_next = random.randint(lo, hi)
        for _ in range(hi - lo + 1):
            port = _ports_next
            _ports_next = lo if port >= hi else port + 1
            if port in _ports_taken:
                continue
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port)
            except OSError:
                continue            # another process has it
            if _probe(port):
                _ports_taken.add(port)
                return port
            fcntl.lockf(fd, fcntl.LOCK_UN, 1, port)
    raise HarnessError("no free port in %d-%d (%s)" % (lo, hi, PORT_LOCK))


def imagegen_fcgi_bin():
    return os.path.join(BUILDDIR, "src", "imagegen-fcgi")


def imagegen_bin():
    return os.path.join(BUILDDIR, "src", "imagegen")


def sql_files():
    """sql/NNN_*.sql of the source tree, in name order."""
    return sorted(glob.glob(os.path.join(SRCDIR, "sql", "[0-9][0-9][0-9]_*.sql")))


# ---------------------------------------------------------------- processes

def proc_stat(pid):
    """(state, ppid) from /proc/PID/stat, or None when the pid is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[1])


def alive(pid):
    """True while pid exists and is not a zombie (a zombie serves nothing)."""
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def children_of(ppid):
    """Live pids whose parent is ppid (from /proc/*/stat), sorted."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = proc_stat(int(d))
        if st and st[1] == ppid and st[0] not in ("Z", "X"):
            out.append(int(d))
    return sorted(out)


def descendants_of(pid):
    out, todo = [], [pid]
    while todo:
        for c in children_of(todo.pop()):
            out.append(c)
            todo.append(c)
    return out


def proc_uids(pid):
    """[real, effective, saved, fs] uids of pid from /proc/PID/status."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:5]]
    raise HarnessError("no Uid line for pid %d" % pid)


def proc_status_field(pid, field):
    """A /proc/PID/status field's value (e.g. VmHWM -> '1234 kB') or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return line.split(":", 1)[1].strip()
    except FileNotFoundError:
        return None
    return None


def kill_quiet(pid, sig):
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def wait_gone(pids, timeout):
    """Waits until none of pids is alive; returns those still alive."""
    deadline = time.monotonic() + timeout
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if alive(p)]
    return left


def wait_until(pred, timeout, interval=0.05):
    """Polls pred() until truthy or timeout; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def tail(path, lines=60):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)
    text = data.decode("utf-8", "replace").splitlines()
    return "\n".join(text[-lines:])


# ---------------------------------------------------------------- HTTP

class Response:
    """An HTTP answer: status, version (11), headers [(name, value)] with
    duplicates kept, body bytes, data (parsed JSON or None), tls_version."""

    def __init__(self, status, reason, version, headers, body, tls_version=None):
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers
        self.body = body
        self.tls_version = tls_version
        self.elapsed = None
        try:
            self.data = json.loads(body.decode("utf-8")) if body else None
        except (ValueError, UnicodeDecodeError):
            self.data = None

    def header(self, name):
        v = self.header_all(name)
        return v[0] if v else None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def content_type(self):
        return (self.header("Content-Type") or "").split(";")[0].strip().lower()

    def error_code(self):
        """data["error"]["code"] or None."""
        try:
            return self.data["error"]["code"]
        except (TypeError, KeyError):
            return None

    def __repr__(self):
        return "<HTTP %s %s headers=%r body=%r>" % (
            self.status, self.reason, self.headers, self.body[:300])


def http_request(host, port, method, path, body=None, headers=None, tls=False,
                 timeout=10.0):
    """One request on a fresh connection (http.client); returns Response,
    checked against docs/openapi.json (tests/lib/openapi_check.py)."""
    if isinstance(body, str):
        body = body.encode()
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    t0 = time.monotonic()
    try:
        try:
            conn.request(method, path, body=body, headers=headers or {})
        except (BrokenPipeError, ConnectionResetError):
            # The server answered (e.g. 413) and closed before the whole
            # body went out; the answer is still there to read.
            pass
        r = conn.getresponse()
        data = r.read()
        tls_version = conn.sock.version() if tls and conn.sock else None
        resp = Response(r.status, r.reason, r.version, r.getheaders(), data, tls_version)
        resp.elapsed = time.monotonic() - t0
    finally:
        conn.close()
    # docs/openapi.json must describe it (raises openapi_check.Violation)
    openapi_check.check(method, path, resp.status, resp.headers, resp.body)
    return resp


# ---------------------------------------------------------------- the stack

class Stack:
    """Postgres + the imagegen-fcgi pool + nginx, each optional.

    pg:        start a cluster, create the database, migrate, create the app role
    pool:      None or "master" | "spawn-master" | "spawn-plain"
    nginx:     render nginx/dev.conf.in and start nginx (default: when pool)
    workers, max_requests, extra_env, extra_args: passed to the pool
    extra_locations: text for @EXTRA_LOCATIONS@ in the nginx config
    migrate:   run `imagegen migrate` at start (default True)
    """

    def __init__(self, pool=None, *, pg=True, nginx=None, workers=2,
                 max_requests=None, extra_env=None, extra_args=(),
                 extra_locations="", migrate=True, name="imagegen-test"):
        if pool is not None and pool not in MODES:
            raise ValueError("pool mode must be one of %s" % (MODES,))
        self.want_pg = pg
        self.pool_mode = pool
        self.want_nginx = (pool is not None) if nginx is None else nginx
        self.workers = workers
        self.max_requests = max_requests
        self.extra_env = dict(extra_env or {})
        self.extra_args = list(extra_args)
        self.extra_locations = extra_locations
        self.want_migrate = migrate
        self.name = name

        self.tmp = None
        self.started = False
        # postgres
        self.pg_port = None
        self.pg_data = self.pg_sockdir = self.pg_log = None
        self.superuser = PG_USER if IS_ROOT else pwd.getpwuid(os.geteuid()).pw_name
        # pool
        self.run_dir = None
        self.pool_socket = None
        self.pool_pidfile = None
        self.pool_log = None
        self.pool_proc = None            # Popen of the master (master modes)
        self.plain_pids = []             # spawn-plain responders
        self.storage_dir = None
        self.slot_dir = None
        self.spool_dir = None            # generated images until stored
        self._extra_spawned = []         # [(name, pids)] from spawn_fcgi_plain
        # nginx
        self.nginx_prefix = None
        self.nginx_proc = None
        self.nginx_pid = None
        self.http_port = self.https_port = None
        self.tls_cert = self.tls_key = None
        self._log_files = []

    # ------------------------------------------------------------ lifecycle

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        try:
            if exc[0] is not None:
                self.dump_logs("stack context left with %s" % exc[0].__name__)
        finally:
            self.stop()
        return False

    def start(self):
        _install_exit_handlers()
        self.tmp = tempfile.mkdtemp(prefix=self.name + "-")
        os.chmod(self.tmp, 0o755)
        _LIVE.add(self)
        try:
            if self.want_pg:
                self._pg_init()
                self.pg_start()
                self._pg_setup()
            if self.pool_mode is not None or self.want_nginx:
                self._pool_dirs()
            if self.pool_mode is not None:
                self.start_pool()
            if self.want_nginx:
                self.start_nginx()
            self.started = True
        except BaseException:
            try:
                self.dump_logs("stack failed to start")
            finally:
                try:
                    self.stop()
                except HarnessError as e:        # keep the original error
                    sys.stderr.write("%s: teardown after failed start: %s\n" % (self.name, e))
            raise
        return self

    def stop(self):
        """Kills everything this stack started, checks nothing is left,
        removes the temp dir.  Raises HarnessError if a process survived."""
        survivors = []
        errors = []
        for fn in (self.stop_nginx, self.stop_pool, self._stop_extra, self._pg_teardown):
            try:
                survivors += fn(force=True) or []
            except Exception as e:          # keep tearing down the rest
                errors.append("%s: %s" % (fn.__name__, e))
        try:
            survivors += self._sweep_strays()
        except Exception as e:
            errors.append("sweep: %s" % e)
        if self.tmp and os.path.isdir(self.tmp):
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp = None
        _LIVE.discard(self)
        self.started = False
        if survivors:
            raise HarnessError("processes left after teardown: %s" % survivors)
        if errors:
            raise HarnessError("teardown errors: %s" % "; ".join(errors))

    def stray_pids(self):
        """Live processes (other than us) whose command line or environment
        names this stack's temp dir: double-forked job executors, orphaned
        responders.  Processes we may not inspect are left out."""
        if not self.tmp:
            return []
        needles = [(self.tmp + "/").encode(), (self.tmp + "\0").encode(),
                   (self.tmp + "&").encode()]
        me = os.getpid()
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == me or not alive(int(d)):
                continue
            data = b""
            for f in ("cmdline", "environ"):
                try:
                    with open("/proc/%s/%s" % (d, f), "rb") as fh:
                        data += fh.read() + b"\0"
                except OSError:
                    pass
            if any(n in data for n in needles):
                out.append(int(d))
        return out

    def _sweep_strays(self):
        """Kills whatever is still running out of the temp dir after the
        orderly teardown; returns what even SIGKILL left alive."""
        strays = self.stray_pids()
        if not strays:
            return []
        for p in strays:
            kill_quiet(p, signal.SIGKILL)
        try:
            sys.stderr.write("%s: killed %d stray process(es) left in %s: %s\n"
                             % (self.name, len(strays), self.tmp, strays))
        except (OSError, ValueError):
            pass
        return wait_gone(strays, 5)

    def _mkdir(self, *parts, owner=None, mode=0o755):
        p = os.path.join(self.tmp, *parts)
        os.makedirs(p, exist_ok=True)
        os.chmod(p, mode)
        if owner and IS_ROOT:
            _chown(p, owner)
        return p

    def _run_as(self, user, argv):
        """argv as `user` when root (runuser), else as ourselves."""
        if IS_ROOT and user:
            return ["runuser", "-u", user, "--"] + argv
        return argv

    # ------------------------------------------------------------ postgres

    def _pg_init(self):
        bindir = _pg_bindir()
        self._pg_bindir = bindir
        owner = PG_USER if IS_ROOT else None
        self.pg_data = self._mkdir("pgdata", owner=owner, mode=0o700)
        self.pg_sockdir = self._mkdir("pgrun", owner=owner, mode=0o755)
        logdir = self._mkdir("pglog", owner=owner, mode=0o755)
        self.pg_log = os.path.join(logdir, "postgres.log")
        self._log_files.append(("postgres", self.pg_log))
        self.pg_port = free_port()
        argv = [os.path.join(bindir, "initdb"), "-D", self.pg_data, "-A", "trust",
                "-U", self.superuser, "-E", "UTF8", "--locale=C", "-N"]
        r = subprocess.run(self._run_as(owner, argv), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, cwd=self.tmp)
        if r.returncode != 0:
            raise HarnessError("initdb failed (%d):\n%s" % (r.returncode, r.stdout.decode(errors="replace")))
        conf = os.path.join(self.pg_data, "postgresql.conf")
        with open(conf, "a") as f:
            f.write("\n# imagegen test harness\n"
                    "port = %d\n"
                    "listen_addresses = '127.0.0.1'\n"
                    "unix_socket_directories = '%s'\n"
                    "max_connections = 200\n"
                    "shared_buffers = 32MB\n"
                    # Fast, not durable: a test cluster never outlives its
                    # test. scripts/up's cluster keeps these on (ig_pg_conf).
                    "fsync = off\n"
                    "synchronous_commit = off\n"
                    "full_page_writes = off\n"
                    "logging_collector = off\n"
                    "log_min_messages = warning\n"
                    "log_line_prefix = '%%m [%%p] %%u@%%d '\n"
                    % (self.pg_port, self.pg_sockdir))

    def _pg_ctl(self, *args, timeout=60):
        argv = [os.path.join(self._pg_bindir, "pg_ctl"), "-D", self.pg_data] + list(args)
        r = subprocess.run(self._run_as(PG_USER if IS_ROOT else None, argv),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           cwd=self.tmp, timeout=timeout)
        return r.returncode, r.stdout.decode(errors="replace")

    def pg_start(self):
        """Starts the cluster and waits until it accepts connections."""
        rc, out = self._pg_ctl("-l", self.pg_log, "-w", "-t", "30", "start")
        if rc != 0:
            raise HarnessError("pg_ctl start failed (%d): %s\n%s" % (rc, out, tail(self.pg_log)))

    # A responder that failed to connect answers 503 for this long before
    # it tries again (DB_RETRY_MS in src/db/db.c).
    POOL_DB_RETRY_S = 0.5

    def wait_db_recovered(self, path="/api/health", timeout=10.0):
        """After Postgres came back: waits until `path` has answered 200
        without a break for longer than a responder's back-off after a
        failed connect, so no responder still answers 503 from an attempt
        made while Postgres was away.  True, or False at the timeout."""
        hold = self.POOL_DB_RETRY_S + 0.3
        deadline = time.monotonic() + timeout
        run_start, run = None, 0
        while time.monotonic() < deadline:
            if self.http("GET", path).status == 200:
                if run_start is None:
                    run_start = time.monotonic()
                run += 1
                if run >= 8 and time.monotonic() - run_start >= hold:
                    return True
            else:
                run_start, run = None, 0
            time.sleep(0.05)
        return False

    def pg_stop(self, mode="fast"):
        """pg_ctl stop -m fast (waits until the server is down)."""
        rc, out = self._pg_ctl("-m", mode, "-w", "-t", "30", "stop")
        if rc != 0:
            raise HarnessError("pg_ctl stop failed (%d): %s" % (rc, out))

    def postmaster_pid(self):
        try:
            with open(os.path.join(self.pg_data, "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (OSError, ValueError):
            return None

    def _pg_teardown(self, force=True):
        if not self.pg_data or not os.path.isdir(self.pg_data):
            return []
        pid = self.postmaster_pid()
        if pid is None or not alive(pid):
            return []
        family = [pid] + descendants_of(pid)
        try:
            self._pg_ctl("-m", "immediate", "-w", "-t", "15", "stop", timeout=30)
        except subprocess.TimeoutExpired:
            pass
        left = wait_gone(family, 5)
        for p in left:
            kill_quiet(p, signal.SIGKILL)
        return wait_gone(left, 5)

    def superuser_url(self, db=DB_NAME):
        return "postgresql://%s@/%s?host=%s&port=%d" % (self.superuser, db, self.pg_sockdir, self.pg_port)

    def app_url(self, db=DB_NAME):
        """DATABASE_URL of the pool: the responders' login role."""
        return "postgresql://%s@/%s?host=%s&port=%d" % (APP_ROLE, db, self.pg_sockdir, self.pg_port)

    def worker_url(self, db=DB_NAME):
        """IMAGEGEN_WORKER_DATABASE_URL of the pool and the CLI tools."""
        return "postgresql://%s@/%s?host=%s&port=%d" % (WORKER_ROLE, db, self.pg_sockdir, self.pg_port)

    def pg_env(self, as_app=False, db=DB_NAME, as_worker=False):
        """Environment for libpq clients (psql, pg_dump) run by the test:
        as the superuser, the responders' role (as_app) or the workers'."""
        env = _clean_env()
        user = APP_ROLE if as_app else WORKER_ROLE if as_worker else self.superuser
        env.update(PGHOST=self.pg_sockdir, PGPORT=str(self.pg_port),
                   PGUSER=user, PGDATABASE=db)
        return env

    def psql(self, sql, as_app=False, db=DB_NAME, check=True, as_worker=False):
        """Runs sql (psql -X -q -At -v ON_ERROR_STOP=1); returns stdout.
        Raises HarnessError with stderr when psql fails and check is set."""
        r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
                           env=self.pg_env(as_app, db, as_worker), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        if check and r.returncode != 0:
            raise HarnessError("psql failed (%d) on %r:\n%s" % (r.returncode, sql, r.stderr.decode(errors="replace")))
        return r.stdout.decode()

    def psql_file(self, path, db=DB_NAME, timeout=120):
        """psql -X -q -v ON_ERROR_STOP=1 -f path as the superuser;
        returns the CompletedProcess (text)."""
        return subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", path],
                              env=self.pg_env(False, db), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout, text=True)

    def createdb(self, name):
        r = subprocess.run(["createdb", name], env=self.pg_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        if r.returncode != 0:
            raise HarnessError("createdb %s failed: %s" % (name, r.stdout.decode(errors="replace")))

    def migrate_cmd(self, *args, db=DB_NAME):
        """(argv, env) of `imagegen migrate --dir SRCDIR/sql ARGS` as the owner."""
        exe = imagegen_bin()
        if not os.access(exe, os.X_OK):
            raise HarnessError("%s not built (run make)" % exe)
        env = _clean_env()
        env["DATABASE_URL"] = self.superuser_url(db)
        return [exe, "migrate", "--dir", os.path.join(SRCDIR, "sql")] + list(args), env

    def migrate(self, *args, db=DB_NAME, check=True, timeout=120):
        """Runs `imagegen migrate`; returns CompletedProcess (text)."""
        argv, env = self.migrate_cmd(*args, db=db)
        r = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout, text=True, cwd=self.tmp)
        if check and r.returncode != 0:
            raise HarnessError("imagegen migrate %s failed (%d):\nstdout: %s\nstderr: %s"
                               % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def _pg_setup(self):
        self.createdb(DB_NAME)
        if self.want_migrate:
            self.migrate()
            # As scripts/up makes them (docs/RUNNING.md, Database roles):
            # NOINHERIT login roles that read nothing until they SET ROLE;
            # the responders' reaches authenticated only, the workers'
            # service_role.
            self.psql("CREATE ROLE %s LOGIN NOINHERIT; GRANT authenticated TO %s;"
                      " CREATE ROLE %s LOGIN NOINHERIT; GRANT service_role TO %s;"
                      % (APP_ROLE, APP_ROLE, WORKER_ROLE, WORKER_ROLE))

    # ------------------------------------------------------------ pool

    def _pool_dirs(self):
        if self.run_dir:
            return
        owner = POOL_USER if IS_ROOT else None
        self.run_dir = self._mkdir("run", owner=owner)
        self.storage_dir = self._mkdir("storage", owner=owner)
        # the bucket, as `imagegen setup-bucket` makes it for local storage
        self._mkdir("storage", "asset-images", owner=owner)
        # executor slots: per stack, so the running-jobs cap is this stack's
        self.slot_dir = self._mkdir("slots", owner=owner, mode=0o700)
        # executors keep each generated image here until it is stored
        self.spool_dir = self._mkdir("spool", owner=owner, mode=0o700)
        self.webhook_secret_key = base64.b64encode(os.urandom(32)).decode()
        self.pool_socket = os.path.join(self.run_dir, "imagegen.sock")
        self.pool_pidfile = os.path.join(self.run_dir, "imagegen-fcgi.pid")
        self.pool_log = os.path.join(self.tmp, "imagegen-fcgi.log")
        self._log_files.insert(0, ("pool", self.pool_log))

    def pool_env(self, extra_env=None):
        env = _clean_env()
        env["DATABASE_URL"] = self.app_url()
        env["IMAGEGEN_WORKER_DATABASE_URL"] = self.worker_url()
        env["IMAGEGEN_STORAGE_DIR"] = self.storage_dir
        env["IMAGEGEN_SLOT_DIR"] = self.slot_dir
        env["IMAGEGEN_SPOOL_DIR"] = self.spool_dir
        # The key users' webhook signing secrets are sealed with, one per
        # stack (a test passes "" in extra_env to run without it).
        env["IMAGEGEN_WEBHOOK_SECRET_KEY"] = self.webhook_secret_key
        # Spending limits off unless a test turns them on (test_budgets,
        # test_rate_limits): the load and recovery tests create more jobs
        # as one user than a default budget or rate limit admits.
        env["IMAGEGEN_RATE_LIMIT_PER_MINUTE"] = "0"
        env["IMAGEGEN_USER_DAILY_BUDGET_USD"] = "none"
        env.update(self.extra_env)
        env.update(extra_env or {})
        return env

    def _user_flags(self):
        if not IS_ROOT:
            return []
        return ["-u", POOL_USER, "-g", POOL_USER, "-U", POOL_USER, "-G", POOL_USER, "-M", "0660"]

    def start_pool(self, mode=None, workers=None, max_requests=None,
                   extra_env=None, extra_args=None, wait=True):
        """Starts the pool (the Stack's settings unless overridden) on
        self.pool_socket and waits until it answers /api/health/live."""
        self._pool_dirs()
        if self.pool_running():
            raise HarnessError("pool already running")
        mode = mode or self.pool_mode
        if mode not in MODES:
            raise ValueError("pool mode must be one of %s" % (MODES,))
        self.pool_mode = mode
        workers = self.workers if workers is None else workers
        max_requests = self.max_requests if max_requests is None else max_requests
        extra_args = self.extra_args if extra_args is None else list(extra_args)
        exe = imagegen_fcgi_bin()
        if not os.access(exe, os.X_OK):
            raise HarnessError("%s not built (run make)" % exe)
        for p in (self.pool_socket, self.pool_pidfile):
            if os.path.lexists(p):
                os.unlink(p)
        env = self.pool_env(extra_env)
        log = open(self.pool_log, "ab")
        try:
            log.write(("---- %s start_pool mode=%s workers=%s max_requests=%s\n"
                       % (time.strftime("%H:%M:%S"), mode, workers, max_requests)).encode())
            log.flush()
            if mode == "master":
                argv = [exe, "--listen", self.pool_socket, "--workers", str(workers),
                        "--pid-file", self.pool_pidfile]
                if max_requests:
                    argv += ["--max-requests", str(max_requests)]
                if IS_ROOT:
                    argv += ["--user", POOL_USER]
                argv += extra_args
                self.pool_proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                                  stdout=log, stderr=log, cwd=self.tmp,
                                                  start_new_session=True)
            elif mode == "spawn-master":
                argv = [_which("spawn-fcgi"), "-s", self.pool_socket, "-n"] + self._user_flags()
                argv += ["--", exe, "--workers", str(workers)]
                if max_requests:
                    argv += ["--max-requests", str(max_requests)]
                argv += extra_args
                self.pool_proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                                  stdout=log, stderr=log, cwd=self.tmp,
                                                  start_new_session=True)
            else:
                argv = [exe]
                if max_requests:
                    argv += ["--max-requests", str(max_requests)]
                self.plain_pids = self.spawn_fcgi_plain(self.pool_socket, argv + extra_args,
                                                        workers, self.pool_pidfile, env, log,
                                                        register=False)
        finally:
            log.close()
        if wait:
            self.wait_pool_ready(workers)

    def spawn_fcgi_plain(self, sock, argv, n, pidfile, env, log, register=True):
        """spawn-fcgi -s sock -F n -P pidfile [user flags] -- argv; returns
        the responders' pids (registered for teardown unless register is
        False)."""
        for p in (sock, pidfile):
            if os.path.lexists(p):
                os.unlink(p)
        full = [_which("spawn-fcgi"), "-s", sock, "-F", str(n), "-P", pidfile] + self._user_flags()
        full += ["--"] + list(argv)
        r = subprocess.run(full, env=env, stdin=subprocess.DEVNULL, stdout=log,
                           stderr=log, cwd=self.tmp, timeout=30)
        pids = []
        try:
            with open(pidfile) as f:
                pids = [int(x) for x in f.read().split()]
        except OSError:
            pass
        if register:
            self._extra_spawned.append((sock, pids))
        if r.returncode != 0 or len(pids) != n:
            for p in pids:
                kill_quiet(p, signal.SIGKILL)
            raise HarnessError("spawn-fcgi %s failed (rc %d, %d of %d pids)"
                               % (" ".join(full), r.returncode, len(pids), n))
        return pids

    def pool_running(self):
        if self.pool_proc is not None and self.pool_proc.poll() is None:
            return True
        return any(alive(p) for p in self.plain_pids)

    def master_pid(self):
        """The pool master's pid (master and spawn-master modes)."""
        if self.pool_proc is None:
            raise HarnessError("no pool master (mode %s)" % self.pool_mode)
        return self.pool_proc.pid

    def children_pids(self, pid=None):
        """The live children of the master (by /proc/*/stat ppid); in
        spawn-plain mode the live responders."""
        if pid is None and self.pool_mode == "spawn-plain":
            return sorted(p for p in self.plain_pids if alive(p))
        return children_of(self.master_pid() if pid is None else pid)

    def pool_pids(self):
        """Every live pool process (master, children, their descendants)."""
        if self.pool_mode == "spawn-plain":
            pids = [p for p in self.plain_pids if alive(p)]
        elif self.pool_proc is not None and alive(self.pool_proc.pid):
            pids = [self.pool_proc.pid]
        else:
            pids = []
        for p in list(pids):
            pids += descendants_of(p)
        return pids

    def wait_for_socket(self, path=None, timeout=10):
        """Waits until a unix socket accepts connections; raises if not."""
        path = path or self.pool_socket

        def ok():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
                return True
            except OSError:
                return False
            finally:
                s.close()
        if not wait_until(ok, timeout):
            raise HarnessError("socket %s not accepting after %ss" % (path, timeout))

    def wait_children(self, n, timeout=10, exclude=()):
        """Waits until the master has n live children, none in exclude;
        returns their pids or raises."""
        exclude = set(exclude)

        def ok():
            if self.pool_proc is not None and self.pool_proc.poll() is not None:
                raise HarnessError("pool master exited with %s" % self.pool_proc.returncode)
            c = self.children_pids()
            return c if (len(c) == n and not exclude.intersection(c)) else None
        got = wait_until(ok, timeout)
        if not got:
            raise HarnessError("wanted %d children (not %s), have %s after %ss"
                               % (n, sorted(exclude), self.children_pids(), timeout))
        return got

    def wait_pool_ready(self, workers, timeout=15):
        deadline = time.monotonic() + timeout
        self.wait_for_socket(timeout=timeout)
        if self.pool_mode != "spawn-plain":
            self.wait_children(workers, timeout=max(1, deadline - time.monotonic()))
        last = None
        while time.monotonic() < deadline:
            if not self.pool_running():
                raise HarnessError("pool exited while starting (mode %s)" % self.pool_mode)
            try:
                r = fcgi_client.request(self.pool_socket, "GET", "/api/health/live", timeout=5)
                if r.status == 200:
                    return
                last = r
            except (OSError, fcgi_client.FcgiError) as e:
                last = e
            time.sleep(0.1)
        raise HarnessError("pool not answering /api/health/live after %ss: %r" % (timeout, last))

    def stop_pool(self, force=True, sig=signal.SIGTERM, timeout=15):
        """Stops the pool (SIGTERM, then SIGKILL after timeout); returns pids
        still alive after that (should be none)."""
        survivors = []
        if self.pool_proc is not None:
            family = self.pool_pids()
            if self.pool_proc.poll() is None:
                kill_quiet(self.pool_proc.pid, sig)
                try:
                    self.pool_proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass
            family = set(family) | set(descendants_of(self.pool_proc.pid))
            left = wait_gone(list(family), 2)
            for p in left:
                kill_quiet(p, signal.SIGKILL)
            if self.pool_proc.poll() is None:
                kill_quiet(self.pool_proc.pid, signal.SIGKILL)
                self.pool_proc.wait(5)
            survivors += wait_gone(left, 5)
            self.pool_proc = None
        if self.plain_pids:
            survivors += self._kill_pids(self.plain_pids, sig, timeout)
            self.plain_pids = []
        return survivors

    def _kill_pids(self, pids, sig, timeout):
        family = set(pids)
        for p in pids:
            family.update(descendants_of(p))
        for p in pids:
            kill_quiet(p, sig)
        left = wait_gone(list(family), timeout)
        for p in left:
            kill_quiet(p, signal.SIGKILL)
        return wait_gone(left, 5)

    def _stop_extra(self, force=True):
        survivors = []
        for _, pids in self._extra_spawned:
            survivors += self._kill_pids(pids, signal.SIGTERM, 5)
        self._extra_spawned = []
        return survivors

    def fcgi(self, method="GET", uri="/api/health/live", body=b"", **kw):
        """A raw FastCGI request straight to the pool socket."""
        return fcgi_client.request(self.pool_socket, method, uri, body, **kw)

    # ------------------------------------------------------------ nginx

    def _make_cert(self):
        tls = self._mkdir("tls", mode=0o755)
        self.tls_cert = os.path.join(tls, "cert.pem")
        self.tls_key = os.path.join(tls, "key.pem")
        make_cert(self.tls_cert, self.tls_key)

    def nginx_conf_text(self, template=None):
        """The rendered dev config (placeholders substituted)."""
        template = template or os.path.join(SRCDIR, "nginx", "dev.conf.in")
        if not os.path.exists(template):
            raise HarnessError("%s does not exist" % template)
        with open(template) as f:
            text = f.read()
        subst = {
            "@NGINX_PREFIX@": self.nginx_prefix,
            "@USER_DIRECTIVE@": ("user %s %s;" % (POOL_USER, POOL_USER)) if IS_ROOT else "",
            "@HTTP_PORT@": str(self.http_port),
            "@HTTPS_PORT@": str(self.https_port),
            "@FCGI_SOCKET@": self.pool_socket,
            "@TLS_CERT@": self.tls_cert,
            "@TLS_KEY@": self.tls_key,
            "@SRCDIR@": SRCDIR,
            "@STORAGE_DIR@": self.storage_dir,
            "@EXTRA_LOCATIONS@": self.extra_locations,
        }
        for k, v in subst.items():
            text = text.replace(k, v)
        leftover = [w for w in text.split() if w.startswith("@") and w.rstrip(";").endswith("@")
                    and len(w.rstrip(";")) > 2]
        if leftover:
            raise HarnessError("unknown placeholders in %s: %s" % (template, leftover))
        return text

    def render_nginx(self):
        """Creates the nginx prefix, cert and nginx.conf; returns its path."""
        if self.nginx_prefix is None:
            self._pool_dirs()
            self.nginx_prefix = self._mkdir("nginx")
            self._mkdir("nginx", "logs")
            self._mkdir("nginx", "temp", owner=POOL_USER if IS_ROOT else None)
            self._make_cert()
            self.http_port = free_port()
            self.https_port = free_port()
            while self.https_port == self.http_port:
                self.https_port = free_port()
            self._log_files.append(("nginx error", os.path.join(self.nginx_prefix, "logs", "error.log")))
            self._log_files.append(("nginx access", os.path.join(self.nginx_prefix, "logs", "access.log")))
        conf = os.path.join(self.nginx_prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write(self.nginx_conf_text())
        return conf

    def nginx_argv(self, conf, test=False):
        with open(conf) as f:
            text = f.read()
        directives = _main_directives(text)
        glob_ = []
        if "daemon" not in directives:
            glob_.append("daemon off;")
        if "pid" not in directives:
            glob_.append("pid %s;" % os.path.join(self.nginx_prefix, "nginx.pid"))
        argv = [_which("nginx"), "-p", self.nginx_prefix + "/", "-c", conf,
                "-e", os.path.join(self.nginx_prefix, "logs", "error.log")]
        if glob_:
            argv += ["-g", " ".join(glob_)]
        if test:
            argv.append("-t")
        return argv

    def start_nginx(self):
        conf = self.render_nginx()
        if IS_ROOT:
            # temp dirs the template may name, writable by the workers
            for root, dirs, files in os.walk(os.path.join(self.nginx_prefix, "temp")):
                for d in dirs:
                    _chown(os.path.join(root, d), POOL_USER)
        log = open(os.path.join(self.nginx_prefix, "logs", "nginx.stderr"), "ab")
        self._log_files.append(("nginx stderr", log.name))
        try:
            self.nginx_proc = subprocess.Popen(self.nginx_argv(conf), stdin=subprocess.DEVNULL,
                                               stdout=log, stderr=log, cwd=self.nginx_prefix,
                                               start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + 15
        last = None
        while time.monotonic() < deadline:
            if self.nginx_proc.poll() is not None and not self._nginx_daemon_pid():
                raise HarnessError("nginx exited with %s" % self.nginx_proc.returncode)
            try:
                r = self.http("GET", "/api/health/live", timeout=3)
                last = r
                self.nginx_pid = self._nginx_daemon_pid() or self.nginx_proc.pid
                return
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise HarnessError("nginx not answering on port %d: %r" % (self.http_port, last))

    def _nginx_daemon_pid(self):
        """The pid from nginx's pid file (whatever the template names)."""
        if self.nginx_proc is not None and self.nginx_proc.poll() is None:
            return self.nginx_proc.pid
        for p in glob.glob(os.path.join(self.nginx_prefix or "/nonexistent", "**", "*.pid"),
                           recursive=True):
            try:
                with open(p) as f:
                    pid = int(f.read().strip())
                if alive(pid):
                    return pid
            except (OSError, ValueError):
                pass
        return None

    def stop_nginx(self, force=True):
        if self.nginx_proc is None:
            return []
        pid = self._nginx_daemon_pid() or self.nginx_pid
        survivors = []
        if pid and alive(pid):
            family = [pid] + descendants_of(pid)
            kill_quiet(pid, signal.SIGTERM)
            left = wait_gone(family, 5)
            for p in left:
                kill_quiet(p, signal.SIGKILL)
            survivors = wait_gone(left, 5)
        if self.nginx_proc.poll() is None:
            self.nginx_proc.kill()
        self.nginx_proc.wait(5)
        self.nginx_proc = None
        return survivors

    def http(self, method, path, body=None, headers=None, tls=False, timeout=10.0):
        """A request through nginx (HTTP port, or HTTPS with tls=True)."""
        port = self.https_port if tls else self.http_port
        return http_request("127.0.0.1", port, method, path, body, headers, tls, timeout)

    def access_log(self):
        p = os.path.join(self.nginx_prefix, "logs", "access.log")
        try:
            with open(p, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def read_pool_log(self):
        try:
            with open(self.pool_log, errors="replace") as f:
                return f.read()
        except (FileNotFoundError, TypeError):
            return ""

    # ------------------------------------------------------------ logs

    def dump_logs(self, why="", lines=60, stream=None):
        """Prints the tails of the pool, nginx and postgres logs."""
        stream = stream or sys.stderr
        try:
            sys.stdout.flush()
        except Exception:
            pass
        out = ["==== %s: %s (tmp %s)" % (self.name, why, self.tmp)]
        seen = set()
        for label, path in self._log_files:
            if path in seen:
                continue
            seen.add(path)
            if os.path.exists(path):
                out.append("---- %s log %s (last %d lines)\n%s" % (label, path, lines, tail(path, lines)))
        out.append("==== end of logs")
        try:
            stream.write("\n".join(out) + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass                # a closed stream must not stop the teardown


# ---------------------------------------------------------------- helpers

def _chown(path, user):
    pw = pwd.getpwnam(user)
    os.chown(path, pw.pw_uid, pw.pw_gid)


def _clean_env():
    """os.environ without settings that would leak a developer's stack
    into a test (DATABASE_URL, IMAGEGEN_*, SUPABASE_*, NANO_BANANA_*, PG*)."""
    env = {}
    for k, v in os.environ.items():
        if k == "DATABASE_URL" or k.startswith(("SUPABASE_", "NANO_BANANA_", "S3_", "PG")):
            continue
        if k.startswith("IMAGEGEN_") and k not in ("IMAGEGEN_SRCDIR", "IMAGEGEN_BUILDDIR"):
            continue
        env[k] = v
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
    return env


def _main_directives(text):
    """Names of the directives at the main (top) level of an nginx config."""
    names, depth, word_start = set(), 0, True
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        for tok in line.replace("{", " { ").replace("}", " } ").replace(";", " ; ").split():
            if tok == "{":
                depth += 1
                word_start = True
            elif tok == "}":
                depth -= 1
                word_start = True
            elif tok == ";":
                word_start = True
            elif word_start:
                if depth == 0:
                    names.add(tok)
                word_start = False
    return names


def make_cert(cert, key, cn="localhost"):
    """A throwaway self-signed certificate (openssl CLI)."""
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                        "-subj", "/CN=%s" % cn, "-addext", "subjectAltName=DNS:%s,IP:127.0.0.1" % cn,
                        "-keyout", key, "-out", cert],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise HarnessError("openssl req failed: %s" % r.stdout.decode(errors="replace"))
    os.chmod(key, 0o600)
    os.chmod(cert, 0o644)


class StackTestCase(unittest.TestCase):
    """A TestCase whose class owns one Stack (cls.stack), started in
    setUpClass from cls.stack_args and stopped in tearDownClass.  When a
    test fails, the tails of the stack's logs are printed."""

    stack_args = {}
    stack = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.stack = Stack(name="ig-" + cls.__name__.lower()[:20], **cls.stack_args)
        # A class cleanup also runs when setUpClass fails, even after this
        # returned (a subclass's own set-up failing): the stack never outlives
        # its class. Servers a subclass starts register their own stop the
        # same way (addClassCleanup), and are stopped after the stack.
        cls.addClassCleanup(cls._stop_stack)
        cls.stack.start()

    @classmethod
    def _stop_stack(cls):
        st, cls.stack = cls.stack, None
        if st is not None:
            st.stop()

    @classmethod
    def tearDownClass(cls):
        cls._stop_stack()
        super().tearDownClass()

    def run(self, result=None):
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        out = super().run(result)
        if len(result.failures) + len(result.errors) > before and self.stack is not None:
            self.stack.dump_logs("%s failed" % self.id())
        return out
