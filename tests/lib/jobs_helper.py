"""jobs_helper.py - shared helpers for the image-job end-to-end tests.

    env = jobs_helper.pool_env(IMAGEGEN_LOCAL_DELAY_MS="3000")
    with harness.Stack(pool="master", extra_env=env) as s:
        u = jobs_helper.seed_user(s)              # user + project + main branch
        r = jobs_helper.post_job(s, u.token, u.body("a red fox"))
        job = jobs_helper.wait_job(s, u.token, r.data["jobId"], timeout=20)
        jobs_helper.events(s, job["jobId"])       # [(from, to, created_at), …]

Users, projects and branches are written by the superuser (the service has
no endpoint for them); tokens come from `imagegen token` (HS256 with SECRET).
Everything that reads the database here runs as the superuser, so it sees
every row whatever the row-level security says.
"""

import datetime
import http.client
import json
import os
import struct
import subprocess
import threading
import time
import uuid

import harness

SECRET = "imagegen-jobs-test-secret-0123456789abcdef"   # >= 32 characters
TERMINAL = ("completed", "failed", "canceled")
RUNNING = ("processing", "generating", "uploading")
ACTIVE = ("queued",) + RUNNING
BUCKET_PREFIX = "/storage/v1/object/public/asset-images/"
GENERATE = "/api/images/generate"


def pool_env(**over):
    """The pool settings every job test starts from, plus over."""
    env = {
        "SUPABASE_JWT_SECRET": SECRET,
        "IMAGEGEN_PROVIDER": "local",
        "IMAGEGEN_STORAGE": "local",
        "IMAGEGEN_SWEEP_INTERVAL": "1",
    }
    env.update({k: str(v) for k, v in over.items()})
    return env


# ---------------------------------------------------------------- users

def mint_token(sub, email=None, ttl=3600):
    """An HS256 access token for sub from `imagegen token`."""
    env = harness._clean_env()
    env["SUPABASE_JWT_SECRET"] = SECRET
    argv = [harness.imagegen_bin(), "token", "--sub", sub, "--ttl", str(ttl)]
    if email:
        argv += ["--email", email]
    p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30, text=True)
    if p.returncode != 0 or p.stdout.strip().count(".") != 2:
        raise harness.HarnessError("imagegen token failed (%d): %s"
                                   % (p.returncode, p.stderr.strip()))
    return p.stdout.strip()


class User:
    """A seeded user: id, email, token, project_id, branch_id (its main
    branch) and, when asked for, more projects/branches."""

    def __init__(self, uid, email, token, project_id, branch_id):
        self.id = uid
        self.email = email
        self.token = token
        self.project_id = project_id
        self.branch_id = branch_id

    def headers(self, extra=None):
        h = {"Authorization": "Bearer " + self.token,
             "Content-Type": "application/json"}
        h.update(extra or {})
        return h

    def body(self, prompt="a lighthouse at dusk", **over):
        """A valid master_asset request body (dict) in this user's project."""
        b = {"projectId": self.project_id, "branchId": self.branch_id,
             "jobType": "master_asset", "prompt": prompt, "width": 64, "height": 64}
        b.update(over)
        return b


def seed_project(stack, owner_id, title="a project"):
    """A new project of owner_id with a main branch; (project_id, branch_id)."""
    pid, bid = str(uuid.uuid4()), str(uuid.uuid4())
    stack.psql("INSERT INTO public.projects (id, owner_id, title) VALUES ('%s', '%s', '%s');"
               "INSERT INTO public.branches (id, project_id, name, is_main)"
               " VALUES ('%s', '%s', 'main', true);"
               % (pid, owner_id, title.replace("'", "''"), bid, pid))
    return pid, bid


def seed_user(stack, label="user"):
    """A user in auth.users with one project and its main branch."""
    uid = str(uuid.uuid4())
    email = "%s-%s@example.test" % (label, uid[:8])
    stack.psql("INSERT INTO auth.users (id, email) VALUES ('%s', '%s');" % (uid, email))
    pid, bid = seed_project(stack, uid, "%s's project" % label)
    return User(uid, email, mint_token(uid, email), pid, bid)


# ---------------------------------------------------------------- HTTP

def post_job(stack, token, body, headers=None, timeout=10.0):
    """POST /api/images/generate through nginx.  body: a dict (sent as
    JSON), or bytes/str sent as they are."""
    h = {"Content-Type": "application/json"}
    if token:
        h["Authorization"] = "Bearer " + token
    h.update(headers or {})
    if isinstance(body, dict) or isinstance(body, list):
        body = json.dumps(body).encode()
    return stack.http("POST", GENERATE, body=body, headers=h, timeout=timeout)


def auth(token):
    return {"Authorization": "Bearer " + token}


def get_job(stack, token, job_id):
    return stack.http("GET", "/api/images/jobs/%s" % job_id, headers=auth(token))


def cancel_job(stack, token, job_id):
    return stack.http("POST", "/api/images/jobs/%s/cancel" % job_id, headers=auth(token))


def retry_job(stack, token, job_id):
    return stack.http("POST", "/api/images/jobs/%s/retry" % job_id, headers=auth(token))


def wait_job(stack, token, job_id, statuses=TERMINAL, timeout=30.0, interval=0.05):
    """Polls GET /api/images/jobs/{id} until its status is in statuses;
    returns the job.  Raises AssertionError (with the last answer) on
    timeout or a non-200 answer."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        r = get_job(stack, token, job_id)
        if r.status != 200:
            raise AssertionError("GET job %s: %r" % (job_id, r))
        last = r.data
        if last.get("status") in statuses:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError("job %s not %s after %.0fs; last: %s"
                                 % (job_id, "/".join(statuses), timeout, last))
        time.sleep(interval)


# ---------------------------------------------------------------- database

def psql_json(stack, sql):
    """Runs a query that returns one json value; the parsed value."""
    out = stack.psql(sql).strip()
    return json.loads(out) if out else None


def events(stack, job_id):
    """The job's status events in order: [(from, to, datetime, detail)]."""
    rows = psql_json(stack,
                     "SELECT coalesce(json_agg(json_build_array(from_status, to_status,"
                     " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'),"
                     " detail) ORDER BY id), '[]')"
                     " FROM public.image_generation_job_events"
                     " WHERE job_id = '%s' AND event = 'status'" % job_id)
    return [(f, t, datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%f"), d)
            for f, t, ts, d in rows]


def status_counts(stack, where="true"):
    """{status: count} of the jobs matching where."""
    out = stack.psql("SELECT status, count(*) FROM public.image_generation_jobs"
                     " WHERE %s GROUP BY status" % where)
    counts = {}
    for line in out.splitlines():
        if line.strip():
            st, n = line.split("|")
            counts[st] = int(n)
    return counts


def wait_db_settled(stack, where, timeout, interval=0.5):
    """Waits until no job matching where is queued or running; returns
    (status counts, seconds waited).  Raises AssertionError on timeout."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        c = status_counts(stack, where)
        if not any(c.get(s) for s in ACTIVE):
            return c, time.monotonic() - t0
        if time.monotonic() >= deadline:
            raise AssertionError("jobs still active after %.0fs: %s" % (timeout, c))
        time.sleep(interval)


def parse_ts(s):
    """An API timestamp (ISO 8601 UTC with milliseconds) as a datetime."""
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------- files

def png_size(data):
    """(width, height) from a PNG's IHDR; raises ValueError if not a PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG (starts %r)" % data[:8])
    length, ctype = struct.unpack(">I4s", data[8:16])
    if ctype != b"IHDR" or length != 13:
        raise ValueError("first chunk is %r (%d bytes), not IHDR" % (ctype, length))
    return struct.unpack(">II", data[16:24])


def storage_files(stack):
    """Every file under the stack's storage dir, as paths relative to it."""
    out = []
    for root, _, files in os.walk(stack.storage_dir):
        for f in files:
            out.append(os.path.relpath(os.path.join(root, f), stack.storage_dir))
    return out


# ---------------------------------------------------------------- processes

def proc_table():
    """{pid: (state, ppid, comm)} of every process, zombies included."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                data = f.read()
        except OSError:
            continue
        lp, rp = data.index("("), data.rindex(")")
        rest = data[rp + 2:].split()
        out[int(d)] = (rest[0], int(rest[1]), data[lp + 1:rp])
    return out


def family(root, table=None):
    """{pid: (state, ppid, comm)} of root's descendants (zombies too)."""
    table = proc_table() if table is None else table
    kids = {}
    for pid, (_, ppid, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = {}, [root]
    while todo:
        for c in kids.get(todo.pop(), []):
            out[c] = table[c]
            todo.append(c)
    return out


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def executors(root):
    """Live `ig-executor` pids among root's descendants."""
    return sorted(p for p, (st, _, c) in family(root).items()
                  if st not in ("Z", "X") and comm(p) == "ig-executor")


# ---------------------------------------------------------------- load

class KeepAlive:
    """Sequential requests on one keep-alive HTTP/1.1 connection to nginx
    (a new one when the server closed it)."""

    def __init__(self, port, timeout=30.0, check=True):
        self.port = port
        self.timeout = timeout
        self.check = check      # False: no docs/openapi.json check (load loops)
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        """One request; exceptions are the caller's (never resent: a POST
        that might have reached the server must not be sent twice)."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                   timeout=self.timeout)
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            r = self.conn.getresponse()
            data = r.read()
        except BaseException:
            self.close()
            raise
        resp = harness.Response(r.status, r.reason, r.version, r.getheaders(), data)
        if r.will_close:
            self.close()
        if self.check:
            harness.openapi_check.check(method, path, resp.status, resp.headers, resp.body)
        return resp

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Sampler(threading.Thread):
    """Calls fn() every interval seconds until stop(); keeps the values."""

    def __init__(self, fn, interval):
        super().__init__(daemon=True)
        self.fn = fn
        self.interval = interval
        self.values = []
        self.errors = []
        self._stop_ev = threading.Event()

    def run(self):
        while not self._stop_ev.is_set():
            try:
                self.values.append(self.fn())
            except Exception as e:      # reported by the test, not lost
                self.errors.append(repr(e))
            self._stop_ev.wait(self.interval)

    def stop(self):
        self._stop_ev.set()
        self.join(30)
        return self.values


class PsqlSession:
    """One long-lived `psql -At` as the superuser, for sampling the
    database every few milliseconds (a new psql per sample is ~30 ms).

        with PsqlSession(stack) as db:
            n = int(db.value("SELECT count(*) FROM …"))
    """

    def __init__(self, stack):
        self.proc = subprocess.Popen(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"],
                                     env=stack.pg_env(), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.lock = threading.Lock()

    def value(self, sql):
        """The first line of sql's output (sql must return one row)."""
        with self.lock:
            self.proc.stdin.write(sql.rstrip().rstrip(";") + ";\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise harness.HarnessError("psql session ended: %s" % self.proc.stderr.read())
        return line.rstrip("\n")

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
