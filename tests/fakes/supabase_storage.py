#!/usr/bin/env python3
"""supabase_storage.py - a fake of Supabase Storage's object and bucket API.

Standard library only.  Speaks the real request and error format of
supabase/storage (storage-api) behind Supabase's API gateway:

  POST   /storage/v1/object/{bucket}/{path}        upload (x-upsert, content-type,
                                                   cache-control)
  PUT    /storage/v1/object/{bucket}/{path}        replace (upsert)
  GET    /storage/v1/object/{bucket}/{path}        download (authenticated)
  GET    /storage/v1/object/authenticated/{bucket}/{path}
  GET    /storage/v1/object/public/{bucket}/{path} public download (no key needed)
  DELETE /storage/v1/object/{bucket}/{path}        delete one object
  DELETE /storage/v1/object/{bucket}               delete {"prefixes": [...]}
  POST   /storage/v1/bucket                        {"id","name","public",
                                                   "allowed_mime_types","file_size_limit"}
  GET    /storage/v1/bucket[/{id}]                 list / one bucket
  PUT    /storage/v1/bucket/{id}                   update public, types, limit
  DELETE /storage/v1/bucket/{id}                   delete an empty bucket

Keys: the gateway wants `apikey` (401 {"message": "Invalid API key", ...}
without it or with a wrong one), Storage wants `Authorization: Bearer KEY`
(a wrong one: 400 {"statusCode":"403","error":"Unauthorized","message":
"invalid signature"}).  Public downloads need neither.

Errors come as Storage renders them: HTTP 400 (HTTP 500 only for a 500)
with the real status in the body,

  {"statusCode":"409","code":"KeyAlreadyExists","error":"Duplicate",
   "message":"The resource already exists"}

(`legacy_errors=True`: without "code", as older Storage versions answer).
Uploads are checked as Storage checks them: the bucket exists (404
NoSuchBucket), the type is one of the bucket's allowed_mime_types (415
InvalidMimeType), the size is within the bucket's file_size_limit or the
global limit (413 EntityTooLarge), the object does not exist unless
x-upsert is true (409 Duplicate).

Failures can be injected, each for the next `count` requests of an
operation (upload, download, public, delete, create_bucket,
update_bucket, or any): a status (409, 413, 415, 404, 403, 401, 400, 429,
500, 503, 544: each in Storage's own words) and/or a delay in seconds
before the answer.

Every request is recorded (method, path, headers without the key's value,
body length, answer status and statusCode).

In a test:

    fake = FakeSupabaseStorage(key="service-role-key").start()
    fake.inject("upload", status=409)
    ...  fake.url, fake.objects, fake.requests_for("upload")  ...
    fake.stop()

Standalone:

    tests/fakes/supabase_storage.py --port 54321 --key KEY
    curl -X POST localhost:54321/_fake/inject -d '{"op":"upload","status":413}'
    curl localhost:54321/_fake/state
    curl -X POST localhost:54321/_fake/reset
"""

import argparse
import datetime
import http.server
import json
import re
import signal
import sys
import threading
import time
import urllib.parse
import uuid

GLOBAL_FILE_SIZE_LIMIT = 50 * 1024 * 1024      # Supabase's default
BUCKET_NAME_RE = re.compile(r"^(\w|!|-|\.|\*|'|\(|\)| |&|\$|@|=|;|:|\+|,|\?)*$")

# statusCode -> (code, error, message) as storage-api's ERRORS render them
ERRORS = {
    "400": ("InvalidRequest", "Bad Request", "Invalid request"),
    "401": ("InvalidJWT", "Unauthorized", "invalid JWT"),
    "403": ("AccessDenied", "Unauthorized", "new row violates row-level security policy"),
    "404": ("NoSuchBucket", "Bucket not found", "Bucket not found"),
    "409": ("KeyAlreadyExists", "Duplicate", "The resource already exists"),
    "413": ("EntityTooLarge", "Payload too large", "The object exceeded the maximum allowed size"),
    "415": ("InvalidMimeType", "invalid_mime_type", "mime type {mime} is not supported"),
    "423": ("ResourceLocked", "ResourceLocked", "The resource is locked"),
    "429": ("SlowDown", "too_many_connections", "Too many connections issued to the database"),
    "500": ("InternalError", "internal", "Internal Server Error"),
    "503": ("DatabaseConnectionLimit", "DatabaseConnectionLimit",
            "The database has reached its maximum number of connections. Please try again later."),
    "544": ("DatabaseTimeout", "DatabaseTimeout", "The connection to the database timed out"),
}
OPS = ("upload", "download", "public", "delete", "create_bucket", "update_bucket", "any")


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class StorageError(Exception):
    """An error answer: statusCode (str), code, error, message."""

    def __init__(self, status_code, code=None, error=None, message=None, **fmt):
        d = ERRORS.get(str(status_code), ("InternalError", "Error", "Error"))
        self.status_code = str(status_code)
        self.code = code or d[0]
        self.error = error or d[1]
        self.message = (message or d[2]).format(**fmt) if fmt else (message or d[2])
        super().__init__(self.message)


def no_such_key():
    return StorageError(404, "NoSuchKey", "not_found", "Object not found")


def no_such_bucket():
    return StorageError(404, "NoSuchBucket", "Bucket not found", "Bucket not found")


class FakeSupabaseStorage:
    """The fake, served by a thread.  State is guarded by self.lock."""

    def __init__(self, key, host="127.0.0.1", port=0, legacy_errors=False,
                 global_limit=GLOBAL_FILE_SIZE_LIMIT):
        self.key = key
        self.host = host
        self.port = port
        self.legacy_errors = legacy_errors
        self.global_limit = global_limit
        self.lock = threading.Lock()
        self.server = None
        self.thread = None
        self.reset()

    # ------------------------------------------------------------ control

    def reset(self):
        with getattr(self, "lock", threading.Lock()):
            self.buckets = {}           # id -> dict
            self.objects = {}           # (bucket, path) -> dict
            self.requests = []
            self.injections = []

    def inject(self, op="any", status=None, delay=0.0, count=1, **fmt):
        """The next `count` requests of op answer `status` (Storage's error
        for it) after `delay` seconds; status None: only the delay."""
        if op not in OPS:
            raise ValueError("op must be one of %s" % (OPS,))
        with self.lock:
            self.injections.append({"op": op, "status": status, "delay": float(delay),
                                    "count": int(count), "fmt": fmt})

    def add_bucket(self, name, public=True, allowed_mime_types=None, file_size_limit=None):
        with self.lock:
            self.buckets[name] = self._bucket(name, name, public, allowed_mime_types,
                                              file_size_limit)

    def object(self, bucket, path):
        with self.lock:
            return self.objects.get((bucket, path))

    def requests_for(self, op):
        with self.lock:
            return [r for r in self.requests if r["op"] == op]

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def start(self):
        fake = self

        class Handler(_Handler):
            pass
        Handler.fake = fake
        self.server = http.server.ThreadingHTTPServer((self.host, self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       name="fake-supabase-storage")
        self.thread.start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # ------------------------------------------------------------ internals

    @staticmethod
    def _bucket(bid, name, public, allowed, limit):
        t = _now()
        return {"id": bid, "name": name, "owner": "", "public": bool(public),
                "allowed_mime_types": allowed, "file_size_limit": limit,
                "type": "STANDARD", "created_at": t, "updated_at": t}

    def _take_injection(self, op):
        with self.lock:
            for inj in self.injections:
                if inj["count"] > 0 and inj["op"] in (op, "any"):
                    inj["count"] -= 1
                    return dict(inj)
        return None


def _mime_allowed(mime, allowed):
    if not allowed:
        return True
    base = (mime or "").split(";")[0].strip().lower()
    for a in allowed:
        a = a.lower()
        if a == base or (a.endswith("/*") and base.startswith(a[:-1])):
            return True
    return False


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-supabase-storage/1"
    fake = None

    def log_message(self, fmt, *args):        # quiet
        pass

    # ------------------------------------------------------------ answers

    def _send(self, status, body=b"", ctype="application/json", extra=None,
              status_code=None):
        self._answer = (status, status_code)
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_error(self, e):
        body = {"statusCode": e.status_code}
        if not self.fake.legacy_errors:
            body["code"] = e.code
        body["error"] = e.error
        body["message"] = e.message
        # storage-api's error handler: 500 as 500, everything else as 400
        # (429 and 544 keep their own status, as the real one sends them)
        http_status = {"500": 500, "429": 429, "544": 544}.get(e.status_code, 400)
        self._send(http_status, body, status_code=e.status_code)

    # ------------------------------------------------------------ routing

    def _route(self):
        """(op, handler, args) for this request, or None."""
        path = urllib.parse.urlsplit(self.path).path
        m = self.command
        if path.startswith("/storage/v1/object/public/") and m in ("GET", "HEAD"):
            rest = urllib.parse.unquote(path[len("/storage/v1/object/public/"):])
            return "public", self._public_get, rest
        if path.startswith("/storage/v1/object/authenticated/") and m in ("GET", "HEAD"):
            rest = urllib.parse.unquote(path[len("/storage/v1/object/authenticated/"):])
            return "download", self._download, rest
        if path.startswith("/storage/v1/object/"):
            rest = urllib.parse.unquote(path[len("/storage/v1/object/"):])
            if m == "POST":
                return "upload", self._upload, rest
            if m == "PUT":
                return "upload", self._upload, rest
            if m in ("GET", "HEAD"):
                return "download", self._download, rest
            if m == "DELETE":
                return "delete", self._delete, rest
        if path == "/storage/v1/bucket" or path == "/storage/v1/bucket/":
            if m == "POST":
                return "create_bucket", self._create_bucket, None
            if m == "GET":
                return "bucket", self._list_buckets, None
        if path.startswith("/storage/v1/bucket/"):
            bid = urllib.parse.unquote(path[len("/storage/v1/bucket/"):])
            if m == "GET":
                return "bucket", self._get_bucket, bid
            if m == "PUT":
                return "update_bucket", self._update_bucket, bid
            if m == "DELETE":
                return "delete_bucket", self._delete_bucket, bid
        return None

    def _handle(self):
        self._answer = (None, None)
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length > 0 else b""
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/_fake/"):
            return self._control(path)
        route = self._route()
        op = route[0] if route else "unknown"
        rec = {"op": op, "method": self.command, "path": path, "time": time.time(),
               "headers": {k.lower(): ("<key>" if k.lower() in ("authorization", "apikey") else v)
                           for k, v in self.headers.items()},
               "apikey_ok": self.headers.get("apikey") == self.fake.key,
               "bearer_ok": self.headers.get("Authorization") == "Bearer " + self.fake.key,
               "body_len": len(self.body), "status": None, "statusCode": None}
        # recorded on arrival: a client that gave up waiting still counts
        with self.fake.lock:
            self.fake.requests.append(rec)
        try:
            try:
                self._dispatch(route, op)
            except StorageError as e:
                self._send_error(e)
            except (BrokenPipeError, ConnectionResetError):
                raise
            except Exception as e:          # a bug of the fake: say so
                self._send_error(StorageError(500, message="fake: %r" % e))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True    # the client is gone
        with self.fake.lock:
            rec["status"], rec["statusCode"] = self._answer

    def _dispatch(self, route, op):
        if route is None:
            self._send(404, {"statusCode": 404, "error": "Not Found",
                             "message": "Route %s:%s not found" % (self.command, self.path)})
            return
        # the gateway (public downloads pass without a key)
        if op != "public":
            if self.headers.get("apikey") != self.fake.key:
                self._send(401, {"message": "Invalid API key",
                                 "hint": "Double check your Supabase `anon` or `service_role` API key."})
                return
            auth = self.headers.get("Authorization")
            if auth is None:
                raise StorageError(400, "InvalidRequest", "Error",
                                   "headers must have required property 'authorization'")
            if auth != "Bearer " + self.fake.key:
                raise StorageError(403, "InvalidJWT", "Unauthorized", "invalid signature")
        inj = self.fake._take_injection(op)
        if inj is not None:
            if inj["delay"] > 0:
                time.sleep(inj["delay"])
            if inj["status"] is not None:
                fmt = {"mime": self.headers.get("Content-Type", "")}
                fmt.update(inj["fmt"])
                st = str(inj["status"])
                if st == "404" and op in ("download", "public", "delete"):
                    raise no_such_key()
                raise StorageError(st, **fmt)
        _, fn, arg = route
        fn(arg) if arg is not None else fn()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

    # ------------------------------------------------------------ objects

    def _split(self, rest):
        if "/" not in rest:
            raise StorageError(400, "InvalidKey", "Invalid Input", "Invalid key: %s" % rest)
        bucket, name = rest.split("/", 1)
        if not name or name.startswith("/") or "//" in name:
            raise StorageError(400, "InvalidKey", "Invalid Input", "Invalid key: %s" % name)
        return bucket, name

    def _upload(self, rest):
        bucket, name = self._split(rest)
        f = self.fake
        upsert = self.command == "PUT" or self.headers.get("x-upsert") == "true"
        mime = self.headers.get("Content-Type") or "application/octet-stream"
        with f.lock:
            b = f.buckets.get(bucket)
            if b is None:
                raise no_such_bucket()
            if not _mime_allowed(mime, b["allowed_mime_types"]):
                raise StorageError(415, mime=mime)
            limit = min(x for x in (b["file_size_limit"], f.global_limit) if x)
            if len(self.body) > limit:
                raise StorageError(413)
            if (bucket, name) in f.objects and not upsert:
                raise StorageError(409)
            if self.command == "PUT" and (bucket, name) not in f.objects:
                raise no_such_key()
            oid = str(uuid.uuid4())
            f.objects[(bucket, name)] = {
                "id": oid, "data": bytes(self.body), "content_type": mime,
                "cache_control": self.headers.get("Cache-Control") or "no-cache",
                "created_at": _now(), "upsert_header": self.headers.get("x-upsert")}
        self._send(200, {"Id": oid, "Key": "%s/%s" % (bucket, name)})

    def _serve_object(self, bucket, name, need_public):
        f = self.fake
        with f.lock:
            b = f.buckets.get(bucket)
            if b is None or (need_public and not b["public"]):
                raise no_such_bucket()
            o = f.objects.get((bucket, name))
        if o is None:
            raise no_such_key()
        self._send(200, o["data"], ctype=o["content_type"],
                   extra={"Cache-Control": o["cache_control"],
                          "ETag": '"%s"' % o["id"]})

    def _download(self, rest):
        self._serve_object(*self._split(rest), need_public=False)

    def _public_get(self, rest):
        self._serve_object(*self._split(rest), need_public=True)

    def _delete(self, rest):
        f = self.fake
        if "/" not in rest:                     # DELETE /object/{bucket} {"prefixes"}
            try:
                prefixes = json.loads(self.body or b"{}").get("prefixes")
            except ValueError:
                prefixes = None
            if not isinstance(prefixes, list):
                raise StorageError(400, "InvalidRequest", "Bad Request",
                                   "body must have required property 'prefixes'")
            out = []
            with f.lock:
                if rest not in f.buckets:
                    raise no_such_bucket()
                for p in prefixes:
                    o = f.objects.pop((rest, p), None)
                    if o is not None:
                        out.append({"name": p, "bucket_id": rest, "id": o["id"]})
            self._send(200, out)
            return
        bucket, name = self._split(rest)
        with f.lock:
            if bucket not in f.buckets:
                raise no_such_bucket()
            if f.objects.pop((bucket, name), None) is None:
                raise no_such_key()
        self._send(200, {"message": "Successfully deleted"})

    # ------------------------------------------------------------ buckets

    def _json_body(self):
        try:
            v = json.loads(self.body or b"null")
        except ValueError:
            raise StorageError(400, "InvalidRequest", "Bad Request", "Body is not valid JSON")
        if not isinstance(v, dict):
            raise StorageError(400, "InvalidRequest", "Bad Request", "body must be object")
        return v

    def _create_bucket(self):
        v = self._json_body()
        name = v.get("name")
        if not isinstance(name, str) or not name:
            raise StorageError(400, "InvalidRequest", "Bad Request",
                               "body must have required property 'name'")
        bid = v.get("id") or name
        if not BUCKET_NAME_RE.match(bid) or len(bid) > 100:
            raise StorageError(400, "InvalidBucketName", "Invalid Input", "Bucket name invalid")
        f = self.fake
        with f.lock:
            if bid in f.buckets:
                raise StorageError(409, "BucketAlreadyExists")
            f.buckets[bid] = f._bucket(bid, name, v.get("public", False),
                                       v.get("allowed_mime_types"), v.get("file_size_limit"))
        self._send(200, {"name": name})

    def _list_buckets(self):
        with self.fake.lock:
            self._send(200, list(self.fake.buckets.values()))

    def _get_bucket(self, bid):
        with self.fake.lock:
            b = self.fake.buckets.get(bid)
        if b is None:
            raise no_such_bucket()
        self._send(200, b)

    def _update_bucket(self, bid):
        v = self._json_body()
        with self.fake.lock:
            b = self.fake.buckets.get(bid)
            if b is None:
                raise no_such_bucket()
            for k in ("public", "allowed_mime_types", "file_size_limit"):
                if k in v:
                    b[k] = v[k]
            b["updated_at"] = _now()
        self._send(200, {"message": "Successfully updated"})

    def _delete_bucket(self, bid):
        f = self.fake
        with f.lock:
            if bid not in f.buckets:
                raise no_such_bucket()
            if any(b == bid for b, _ in f.objects):
                raise StorageError(409, "ResourceNotEmpty", "ResourceNotEmpty",
                                   "The bucket you tried to delete is not empty")
            del f.buckets[bid]
        self._send(200, {"message": "Successfully deleted"})

    # ------------------------------------------------------------ control

    def _control(self, path):
        f = self.fake
        if path == "/_fake/inject" and self.command == "POST":
            v = json.loads(self.body or b"{}")
            f.inject(v.get("op", "any"), v.get("status"), v.get("delay", 0), v.get("count", 1))
            self._send(200, {"ok": True})
        elif path == "/_fake/reset" and self.command == "POST":
            f.reset()
            self._send(200, {"ok": True})
        elif path == "/_fake/state":
            with f.lock:
                self._send(200, {
                    "buckets": list(f.buckets.values()),
                    "objects": [{"bucket": b, "name": n, "size": len(o["data"]),
                                 "content_type": o["content_type"],
                                 "cache_control": o["cache_control"]}
                                for (b, n), o in f.objects.items()],
                    "requests": f.requests[-200:],
                    "injections": f.injections})
        else:
            self._send(404, {"message": "no such control endpoint"})


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--key", required=True, help="the service role key to accept")
    ap.add_argument("--legacy-errors", action="store_true")
    a = ap.parse_args(argv)
    fake = FakeSupabaseStorage(a.key, a.host, a.port, legacy_errors=a.legacy_errors).start()
    print(json.dumps({"port": fake.port}), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
