#!/usr/bin/env python3
"""replicate.py - a fault-injecting stand-in for Replicate's HTTP API.

Speaks the wire format imagegen's `replicate` provider uses:

  POST /v1/models/{owner}/{name}/predictions   create (Authorization: Bearer)
       {"input":{prompt, image_input, aspect_ratio, output_format},
        "webhook", "webhook_events_filter"}
  GET  /v1/predictions/{id}                    the prediction (polling)
  POST /v1/predictions/{id}/cancel             cancel it
  GET  /v1/webhooks/default/secret             {"key": "whsec_…"}
  GET  /files/{token}                          the output file

A prediction is the real object: {id, model, version, input, logs, output,
data_removed, error, status, created_at, started_at, completed_at,
urls:{get, cancel, stream}, metrics:{predict_time}, webhook,
webhook_events_filter}; status starting → processing → succeeded (or
failed, canceled) after the scenario's `runtime` (seconds, default 0.3).
The output of google/nano-banana is one file URL (a string); its base is
`base` (default http://127.0.0.1:{port}).

When the create named a webhook, the fake POSTs the prediction there when
it reaches a terminal state ("completed" in the filter, or no filter),
signed the Standard Webhooks way (webhook-id, webhook-timestamp,
webhook-signature "v1,<base64 HMAC-SHA256 of id.ts.body>" keyed with the
decoded secret) as Replicate signs.

Each create takes the next scenario from a queue (default "ok"); a
scenario is a name or a dict {"name": …, params}:

  ok                the image after `runtime` seconds
  401               401 Unauthenticated (problem details)
  422               422 invalid input (problem details, invalid_fields)
  429               429 throttled with Retry-After (`seconds`, default 1)
  500, 502, 503     a server error
  failed_nsfw       the prediction ends failed with an NSFW message
  failed            the prediction ends failed with another error
  no_output         succeeded with output null
  poll_500          the first `count` (default 1) GETs answer 503
  (any scenario)    `file_fail`: the first n downloads of its output file
                    answer 503; `early_webhook`: the webhook is sent (and
                    answered) before the create is answered, as a quick
                    model's can be
  webhook_never     no webhook is sent for it
  webhook_twice     the completed webhook is sent twice, same webhook-id
  webhook_bad_sig   the webhook is signed with another secret
  webhook_stale     the webhook's timestamp is 10 minutes old

Every request is recorded (method, path, headers, JSON) and so is every
webhook sent (url, headers, status answered).

    fake = FakeReplicate().start()
    fake.push("429", "ok")
    … fake.requests_to("/predictions") … fake.webhooks …
    fake.stop()
"""

import argparse
import base64
import hashlib
import hmac
import http.server
import json
import os
import secrets
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nano_banana import Recorded, colour_of, png  # noqa: E402

# google/nano-banana's aspect ratios and the size it answers each with.
RATIO_SIZES = {
    "1:1": (1024, 1024), "2:3": (832, 1248), "3:2": (1248, 832),
    "3:4": (864, 1184), "4:3": (1184, 864), "4:5": (896, 1152),
    "5:4": (1152, 896), "9:16": (768, 1344), "16:9": (1344, 768),
    "21:9": (1536, 672),
}
NSFW_MESSAGE = ("NSFW content detected. The input or output was flagged as "
                "sensitive; try a different prompt. (E005)")
TERMINAL = ("succeeded", "failed", "canceled")


def now_iso(t=None):
    t = time.time() if t is None else t
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + (
        ".%06dZ" % int((t % 1) * 1e6))


def sign(secret, msg_id, ts, body):
    """The Standard Webhooks signature header value of body."""
    key = base64.b64decode(secret[len("whsec_"):] if secret.startswith("whsec_")
                           else secret)
    mac = hmac.new(key, b"%s.%s.%s" % (msg_id.encode(), str(ts).encode(), body),
                   hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class FakeReplicate:
    """The server; thread-safe queue, predictions and record."""

    def __init__(self, host="127.0.0.1", port=0, secret=None):
        self.lock = threading.Lock()
        self.secret = secret or "whsec_" + base64.b64encode(
            secrets.token_bytes(24)).decode()
        self.stopping = threading.Event()
        self.secret_fetches = 0         # GET /webhooks/default/secret, ever
        self.reset()
        fake = self

        class Handler(Handler_):
            owner = fake
        self.httpd = http.server.ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.thread = None

    @property
    def port(self):
        return self.httpd.server_address[1]

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def api_url(self):
        return self.url + "/v1"

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        if self.thread is not None:
            self.thread.join(10)

    def reset(self):
        with self.lock:
            self.queue = []
            self.default = "ok"
            self.requests = []
            self.predictions = {}       # id -> dict (the wire object + "_sc")
            self.files = {}             # token -> bytes
            self.file_fail = {}         # token -> 503s still to answer
            self.webhooks = []          # dicts: url, headers, body, status
            self.last_image = None
            self.hold = False           # True: predictions never finish

    def push(self, *scenarios):
        with self.lock:
            self.queue.extend(scenarios)

    def next_scenario(self):
        with self.lock:
            s = self.queue.pop(0) if self.queue else self.default
        if isinstance(s, str):
            s = {"name": s}
        return s

    def requests_to(self, word, method=None):
        with self.lock:
            return [r for r in self.requests if word in r.path
                    and (method is None or r.method == method)]

    def creates(self):
        return [r for r in self.requests_to("/predictions", "POST")
                if r.path.startswith("/v1/models/")]

    def prediction(self, pid):
        with self.lock:
            p = self.predictions.get(pid)
            return public(p) if p is not None else None

    def release(self):
        """Lets held predictions finish (see hold)."""
        with self.lock:
            self.hold = False
            for p in self.predictions.values():
                p["_due"] = time.time()

    # ------------------------------------------------------------ lifecycle

    def create(self, body, sc):
        pid = secrets.token_hex(13)[:26]
        base = "%s/v1/predictions/%s" % (self.url, pid)
        t = time.time()
        p = {"id": pid, "model": None, "version": "hidden",
             "input": body.get("input"), "logs": "", "output": None,
             "data_removed": False, "error": None, "status": "starting",
             "created_at": now_iso(t), "started_at": None, "completed_at": None,
             "urls": {"get": base, "cancel": base + "/cancel",
                      "stream": "%s/stream/%s" % (self.url, pid)},
             "metrics": {},
             "_sc": sc, "_t0": t, "_due": t + float(sc.get("runtime", 0.3)),
             "_webhook": body.get("webhook"),
             "_filter": body.get("webhook_events_filter"),
             "_polls": 0}
        if body.get("webhook"):
            p["webhook"] = body["webhook"]
            p["webhook_events_filter"] = body.get("webhook_events_filter")
        with self.lock:
            self.predictions[pid] = p
        threading.Thread(target=self._run, args=(pid,), daemon=True).start()
        return public(p)

    def _run(self, pid):
        """Moves the prediction along; sends its webhook when it ends."""
        time.sleep(0.05)
        with self.lock:
            p = self.predictions.get(pid)
            if p is None:
                return                  # reset meanwhile
            if p["status"] == "starting":
                p["status"] = "processing"
                p["started_at"] = now_iso()
                p["logs"] = "Running google/nano-banana\n"
        while not self.stopping.is_set():
            with self.lock:
                p = self.predictions.get(pid)
                if p is None:
                    return
                if p["status"] in TERMINAL:
                    break
                if not self.hold and time.time() >= p["_due"]:
                    self._finish(p)
                    break
            time.sleep(0.02)
        self._webhook(pid)

    def _finish(self, p):
        """Ends p by its scenario (the lock held)."""
        sc, name = p["_sc"], p["_sc"]["name"]
        t = time.time()
        p["completed_at"] = now_iso(t)
        p["metrics"] = {"predict_time": round(t - p["_t0"], 3)}
        if name == "failed_nsfw":
            p["status"], p["error"] = "failed", NSFW_MESSAGE
            return
        if name == "failed":
            p["status"] = "failed"
            p["error"] = "Prediction failed: CUDA out of memory."
            return
        p["status"] = "succeeded"
        if name == "no_output":
            return
        ratio = (p["input"] or {}).get("aspect_ratio", "1:1")
        w, h = RATIO_SIZES.get(ratio, (1024, 1024))
        img = png(w, h, colour_of(str((p["input"] or {}).get("prompt", ""))))
        token = secrets.token_hex(8)
        self.files[token] = img
        self.file_fail[token] = int(sc.get("file_fail", 0))
        self.last_image = img
        base = str(sc.get("base", "http://127.0.0.1:{port}")).replace(
            "{port}", str(self.port))
        p["output"] = "%s/files/%s" % (base, token)

    def cancel(self, pid):
        with self.lock:
            p = self.predictions.get(pid)
            if p is None:
                return None
            if p["status"] not in TERMINAL:
                p["status"] = "canceled"
                p["completed_at"] = now_iso()
            return public(p)

    def _webhook(self, pid):
        with self.lock:
            p = self.predictions.get(pid)
            if p is None:
                return
            url, flt, sc = p["_webhook"], p["_filter"], p["_sc"]
            body = json.dumps(public(p)).encode()
        if not url or (flt and "completed" not in flt):
            return
        name = sc["name"]
        if name == "webhook_never":
            return
        msg_id = "msg_" + secrets.token_hex(12)
        ts = int(time.time()) - (600 if name == "webhook_stale" else 0)
        key = self.secret
        if name == "webhook_bad_sig":
            key = "whsec_" + base64.b64encode(b"not the secret at all!!!").decode()
        for _ in range(2 if name == "webhook_twice" else 1):
            self.send_webhook(url, body, msg_id, ts, key)

    def send_webhook(self, url, body, msg_id, ts, key=None):
        """POSTs one signed webhook; records and returns its status."""
        headers = {"Content-Type": "application/json", "webhook-id": msg_id,
                   "webhook-timestamp": str(ts),
                   "webhook-signature": sign(key or self.secret, msg_id, ts, body),
                   "User-Agent": "Replicate-Webhooks/2.0"}
        status = None
        try:
            req = urllib.request.Request(url, data=body, headers=headers,
                                         method="POST")
            with urllib.request.urlopen(req, timeout=10) as r:
                status = r.status
        except urllib.error.HTTPError as e:
            status = e.code
        except OSError as e:
            status = "error: %s" % e
        with self.lock:
            self.webhooks.append({"url": url, "headers": headers, "body": body,
                                  "status": status})
        return status


def public(p):
    return {k: v for k, v in p.items() if not k.startswith("_")}


def problem(status, title, detail, **extra):
    d = {"title": title, "detail": detail, "status": status}
    d.update(extra)
    return d


class Handler_(http.server.BaseHTTPRequestHandler):
    owner = None
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _read(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _record(self, body):
        u = urllib.parse.urlsplit(self.path)
        rec = Recorded(self.command, u.path, u.query,
                       {k.lower(): v for k, v in self.headers.items()}, body)
        with self.owner.lock:
            self.owner.requests.append(rec)
        self._rec = rec
        return rec

    def _send(self, status, body, ctype="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            if status >= 400 and ctype == "application/json":
                ctype = "application/problem+json"
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        rec = getattr(self, "_rec", None)
        if rec is not None and rec.status is None:
            rec.status = status
            rec.answered = time.time()

    def _authed(self, rec):
        if rec.headers.get("authorization", "").startswith("Bearer r8_"):
            return True
        self._send(401, problem(401, "Unauthenticated",
                                "You did not pass a valid authentication token"))
        return False

    def do_GET(self):
        rec = self._record(b"")
        parts = rec.path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "files":
            with self.owner.lock:
                f = self.owner.files.get(parts[1])
                fail = self.owner.file_fail.get(parts[1], 0)
                if fail:
                    self.owner.file_fail[parts[1]] = fail - 1
            if f is None:
                return self._send(404, "no such file", "text/plain")
            if fail:
                return self._send(503, "try again", "text/plain")
            return self._send(200, f, "image/png")
        if not self._authed(rec):
            return None
        if rec.path == "/v1/webhooks/default/secret":
            with self.owner.lock:
                self.owner.secret_fetches += 1
            return self._send(200, {"key": self.owner.secret})
        if len(parts) == 3 and parts[:2] == ["v1", "predictions"]:
            with self.owner.lock:
                p = self.owner.predictions.get(parts[2])
                if p is not None:
                    p["_polls"] += 1
                    sc = p["_sc"]
                    fail = (sc["name"] == "poll_500"
                            and p["_polls"] <= int(sc.get("count", 1)))
                    out = public(p)
            if p is None:
                return self._send(404, problem(404, "Not found",
                                               "The requested resource could not "
                                               "be found."))
            if fail:
                return self._send(503, problem(503, "Service Unavailable",
                                               "Try again later."))
            return self._send(200, out)
        return self._send(404, problem(404, "Not found", "no route"))

    def do_POST(self):
        body = self._read()
        rec = self._record(body)
        parts = rec.path.strip("/").split("/")
        if rec.path == "/_fake/queue":
            d = json.loads(body or b"{}")
            self.owner.push(*d.get("queue", []))
            return self._send(200, {"ok": True})
        if not self._authed(rec):
            return None
        if (len(parts) == 5 and parts[0] == "v1" and parts[1] == "models"
                and parts[4] == "predictions"):
            sc = self.owner.next_scenario()
            rec.scenario = sc["name"]
            name = sc["name"]
            if name == "401":
                return self._send(401, problem(401, "Unauthenticated",
                                               "You did not pass a valid "
                                               "authentication token"))
            if name == "422":
                return self._send(422, problem(
                    422, "Input validation failed",
                    "- input.aspect_ratio: aspect_ratio must be one of the "
                    "following: \"match_input_image\", \"1:1\", …",
                    invalid_fields=[{"type": "enum", "field": "input.aspect_ratio",
                                     "description": "aspect_ratio must be one of "
                                     "the allowed values"}]))
            if name == "429":
                s = int(sc.get("seconds", 1))
                return self._send(429, problem(
                    429, "Request was throttled.",
                    "Request was throttled. Expected available in %d second." % s),
                    headers={"Retry-After": str(s)})
            if name in ("500", "502", "503"):
                return self._send(int(name), problem(int(name), "Internal Server "
                                                     "Error", "Something went "
                                                     "wrong."))
            if not isinstance(rec.json, dict) or not isinstance(
                    rec.json.get("input"), dict):
                return self._send(422, problem(422, "Input validation failed",
                                               "input is required"))
            p = self.owner.create(rec.json, sc)
            p["model"] = "%s/%s" % (parts[2], parts[3])
            if sc.get("early_webhook"):
                end = time.monotonic() + 10
                while time.monotonic() < end and not any(
                        json.loads(w["body"])["id"] == p["id"]
                        for w in list(self.owner.webhooks)):
                    time.sleep(0.01)
            with self.owner.lock:
                self.owner.predictions[p["id"]]["model"] = p["model"]
            return self._send(201, p)
        if (len(parts) == 4 and parts[:2] == ["v1", "predictions"]
                and parts[3] == "cancel"):
            p = self.owner.cancel(parts[2])
            if p is None:
                return self._send(404, problem(404, "Not found", "no prediction"))
            return self._send(200, p)
        return self._send(404, problem(404, "Not found", "no route"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8098)
    a = ap.parse_args()
    fake = FakeReplicate(a.host, a.port).start()
    print("fake Replicate on %s (REPLICATE_API_URL=%s, REPLICATE_API_TOKEN=r8_…, "
          "webhook secret %s)" % (fake.url, fake.api_url, fake.secret), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
