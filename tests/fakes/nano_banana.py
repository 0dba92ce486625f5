#!/usr/bin/env python3
"""nano_banana.py - a fault-injecting stand-in for the paid image APIs.

Speaks both wire formats imagegen's remote providers use:

  POST {prefix}/models/{model}:generateContent   Gemini (x-goog-api-key)
  POST {prefix}/images/generations               OpenAI-compatible (Bearer)
  GET  /files/{token}                            an image (or not) for url results
  GET  /redirect/{n}/{token}[?to=BASE]           n redirects in all, then /files/{token}
                                                 (on BASE, e.g. https://127.0.0.2:PORT)

Successful replies are real-format: a Gemini reply carries a thought text, a
thought image, a text part and then the image, with usageMetadata (prompt,
candidate tokens by modality, thoughts); an OpenAI reply carries data[0]
(b64_json or url) and usage.  Images are real PNGs whose size follows the
request (Gemini: the aspectRatio/imageSize table of the Flash and Pro image
models; OpenAI: the "size" field).

Each request takes the next scenario from a queue (the default, "ok", when
it is empty; the default may also be a function returning a scenario, for a
fault mix).  A scenario is a name or a dict {"name": …, params}; any
scenario takes `latency` (seconds to wait before answering, as a slow model
does):

  ok                 the image (Gemini: thoughts + text + image + usage)
  ok_no_usage        the image without usage
  ok_url             OpenAI: data[0].url to /files/… on `base` (default
                     http://127.0.0.1:{port}; {port} is the fake's)
  url_redirect       … via `redirects` (default 2) redirects, the last one
                     to `to` (a base like `base`; default this server)
  url_not_image      … to an HTML page
  url_404            … to a missing file
  400                400 INVALID_ARGUMENT (OpenAI: invalid_request_error)
  400_key            the key is rejected and echoed back in the message
  401, 403           UNAUTHENTICATED / PERMISSION_DENIED
  429_retry_after    429 with a Retry-After header (`seconds`, default 1)
  429_retry_info     429 with google.rpc.RetryInfo retryDelay (`delay`, "1s")
  500, 503, 504      INTERNAL / UNAVAILABLE / DEADLINE_EXCEEDED
  hang               sleeps `seconds` (default 30) before answering ok
  malformed          a 200 whose JSON is cut short
  truncated_b64      the image's base64 cut short
  oversized          a 200 of `bytes` (default 4 MiB)
  not_image          base64 of text where the image should be
  safety             finishReason SAFETY
  image_safety       finishReason IMAGE_SAFETY
  prohibited         finishReason PROHIBITED_CONTENT
  no_image           finishReason NO_IMAGE
  text_only          STOP with a text part only
  prompt_block       promptFeedback.blockReason SAFETY, no candidates
  content_policy     OpenAI: 400 content_policy_violation

Every request is recorded (method, path, query, headers, raw body, JSON,
arrival and answer times on the wall clock, the scenario and the status
answered).

In a test:

    fake = FakeNanoBanana().start()
    fake.push("429_retry_after", "ok")
    …  fake.requests_to("generateContent")  …
    fake.stop()

Standalone (for a manual scripts/up run against it):

    tests/fakes/nano_banana.py --port 8099
    curl -X POST localhost:8099/_fake/queue -d '{"queue":["503","ok"]}'
    curl localhost:8099/_fake/requests
    curl -X POST localhost:8099/_fake/reset
"""

import argparse
import base64
import hashlib
import http.server
import json
import struct
import threading
import time
import urllib.parse
import zlib

# Gemini 2.5 Flash Image's sizes per aspect ratio (1K); 2K and 4K double
# and quadruple them (Gemini 3 Pro Image).
GEMINI_SIZES = {
    "1:1": (1024, 1024), "2:3": (832, 1248), "3:2": (1248, 832),
    "3:4": (864, 1184), "4:3": (1184, 864), "4:5": (896, 1152),
    "5:4": (1152, 896), "9:16": (768, 1344), "16:9": (1344, 768),
    "21:9": (1536, 672),
}
SIZE_SCALE = {"1K": 1, "2K": 2, "4K": 4}
IMAGE_TOKENS = {None: 1290, "1K": 1120, "2K": 1120, "4K": 2000}


def png(width, height, rgb=(200, 120, 40)):
    """A real, whole PNG of width x height in one colour (8-bit RGB)."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    row = b"\x00" + bytes(rgb) * width
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def png_size(data):
    """(width, height) of a PNG."""
    return struct.unpack(">II", data[16:24])


def truncated(b64):
    """b64 cut about in half, to a length no base64 can have (4n + 2)."""
    n = len(b64) // 2
    return b64[:n - n % 4 + 2]


def colour_of(text):
    h = hashlib.sha256(text.encode()).digest()
    return (h[0], h[1], h[2])


class Recorded:
    """One request the fake received."""

    def __init__(self, method, path, query, headers, body):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers          # lower-case names
        self.body = body
        self.time = time.monotonic()
        self.wall = time.time()         # arrival, comparable with Postgres' now()
        self.answered = None            # wall time the answer was written
        self.status = None              # the status answered
        self.scenario = None            # the scenario's name
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def as_dict(self):
        return {"method": self.method, "path": self.path, "query": self.query,
                "headers": self.headers, "json": self.json, "time": self.time,
                "wall": self.wall, "answered": self.answered, "status": self.status,
                "scenario": self.scenario, "bodyBytes": len(self.body)}


class FakeNanoBanana:
    """The server; thread-safe queue and record."""

    def __init__(self, host="127.0.0.1", port=0):
        self.lock = threading.Lock()
        self.queue = []
        self.default = "ok"
        self.requests = []
        self.files = {}                 # token -> (status, content type, bytes)
        self.last_usage = None          # the usage of the last success
        self.last_image = None          # the bytes of the last image served
        self.stopping = threading.Event()
        fake = self

        class Handler(Handler_):
            owner = fake
        self.httpd = http.server.ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.thread = None

    # ------------------------------------------------------------ control

    @property
    def port(self):
        return self.httpd.server_address[1]

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

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
            self.files = {}
            self.last_usage = None
            self.last_image = None

    def push(self, *scenarios):
        with self.lock:
            self.queue.extend(scenarios)

    def next_scenario(self):
        with self.lock:
            s = self.queue.pop(0) if self.queue else self.default
        if callable(s):
            s = s()
        if isinstance(s, str):
            s = {"name": s}
        return s

    def record(self, rec):
        with self.lock:
            self.requests.append(rec)

    def requests_to(self, word):
        """The recorded requests whose path contains word, in order."""
        with self.lock:
            return [r for r in self.requests if word in r.path]

    def add_file(self, data, ctype="image/png", status=200):
        token = hashlib.sha256(data + str(time.monotonic()).encode()).hexdigest()[:16]
        with self.lock:
            self.files[token] = (status, ctype, data)
        return token


class Handler_(http.server.BaseHTTPRequestHandler):
    owner = None                        # the FakeNanoBanana, set per server
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the tests print what matters
        pass

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True   # the client gave up (a timeout)

    # ------------------------------------------------------------ plumbing

    def _read(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _record(self, body):
        u = urllib.parse.urlsplit(self.path)
        rec = Recorded(self.command, u.path, u.query,
                       {k.lower(): v for k, v in self.headers.items()}, body)
        self.owner.record(rec)
        self._rec = rec
        return rec

    def _send(self, status, body, ctype="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
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

    # ------------------------------------------------------------ routes

    def do_GET(self):
        rec = self._record(b"")
        parts = rec.path.strip("/").split("/")
        if rec.path == "/_fake/requests":
            with self.owner.lock:
                out = [r.as_dict() for r in self.owner.requests]
            return self._send(200, out)
        if len(parts) == 2 and parts[0] == "files":
            with self.owner.lock:
                f = self.owner.files.get(parts[1])
            if f is None:
                return self._send(404, "no such file", "text/plain")
            return self._send(f[0], f[2], f[1])
        if len(parts) == 3 and parts[0] == "redirect":
            n = int(parts[1])
            to = urllib.parse.parse_qs(rec.query).get("to", [""])[0]
            q = "?" + rec.query if rec.query else ""
            loc = (to + "/files/%s" % parts[2] if n <= 1
                   else "/redirect/%d/%s%s" % (n - 1, parts[2], q))
            return self._send(302, "", "text/plain", {"Location": loc})
        return self._send(404, {"error": {"code": 404, "message": "no route",
                                          "status": "NOT_FOUND"}})

    def do_POST(self):
        body = self._read()
        rec = self._record(body)
        if rec.path == "/_fake/queue":
            d = json.loads(body or b"{}")
            self.owner.push(*d.get("queue", []))
            if "default" in d:
                self.owner.default = d["default"]
            return self._send(200, {"ok": True})
        if rec.path == "/_fake/reset":
            self.owner.reset()
            return self._send(200, {"ok": True})
        if rec.path.endswith(":generateContent") and "/models/" in rec.path:
            return self.gemini(rec, self._delayed(rec, self.owner.next_scenario()))
        if rec.path.endswith("/images/generations"):
            return self.openai(rec, self._delayed(rec, self.owner.next_scenario()))
        return self._send(404, {"error": {"code": 404, "message": "no route",
                                          "status": "NOT_FOUND"}})

    # ------------------------------------------------------------ common faults

    def _delayed(self, rec, sc):
        """Waits the scenario's `latency` first; returns the scenario."""
        rec.scenario = sc["name"]
        if sc.get("latency"):
            self._hang({"seconds": sc["latency"]})
        return sc

    def _hang(self, sc):
        """Sleeps (in small steps, so the server can stop) before answering."""
        end = time.monotonic() + float(sc.get("seconds", 30))
        while time.monotonic() < end and not self.owner.stopping.is_set():
            time.sleep(0.05)

    def _oversized(self, sc):
        n = int(sc.get("bytes", 4 << 20))
        pad = "x" * n
        return self._send(200, '{"candidates":[{"content":{"parts":[{"text":"%s"}]}}]}' % pad)

    # ------------------------------------------------------------ gemini

    def _gerr(self, status, gstatus, message, details=None, headers=None):
        err = {"code": status, "message": message, "status": gstatus}
        if details:
            err["details"] = details
        return self._send(status, {"error": err}, headers=headers)

    def gemini(self, rec, sc):
        name = sc["name"]
        key = rec.headers.get("x-goog-api-key", "")
        req = rec.json or {}
        if name == "hang":
            self._hang(sc)
            name = "ok"
            sc = dict(sc, stale=True)   # the client is gone: leave no trace
        if name == "400":
            return self._gerr(400, "INVALID_ARGUMENT",
                              "Request contains an invalid argument.")
        if name == "400_key":
            return self._gerr(400, "INVALID_ARGUMENT",
                              "API key not valid. Please pass a valid API key. (%s)" % key,
                              [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                                "metadata": {"service": "generativelanguage.googleapis.com"}}])
        if name == "401":
            return self._gerr(401, "UNAUTHENTICATED",
                              "Request had invalid authentication credentials.")
        if name == "403":
            return self._gerr(403, "PERMISSION_DENIED",
                              "Method doesn't allow unregistered callers.")
        if name == "429_retry_after":
            return self._gerr(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted "
                              "(e.g. check quota).",
                              headers={"Retry-After": str(sc.get("seconds", 1))})
        if name == "429_retry_info":
            return self._gerr(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, "
                              "please check your plan and billing details.",
                              [{"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                                "violations": [{"quotaMetric": "generativelanguage."
                                                "googleapis.com/generate_content_requests",
                                                "quotaId": "GenerateRequestsPerMinute"}]},
                               {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                "retryDelay": sc.get("delay", "1s")}])
        if name == "500":
            return self._gerr(500, "INTERNAL", "An internal error has occurred.")
        if name == "503":
            return self._gerr(503, "UNAVAILABLE", "The model is overloaded. "
                              "Please try again later.")
        if name == "504":
            return self._gerr(504, "DEADLINE_EXCEEDED", "Deadline expired before "
                              "operation could complete.")
        if name == "malformed":
            return self._send(200, '{"candidates": [{"content": {"parts": [{"inlineData": ')
        if name == "oversized":
            return self._oversized(sc)
        if name == "prompt_block":
            return self._send(200, {"promptFeedback": {"blockReason": "SAFETY",
                                                       "safetyRatings": []},
                                    "usageMetadata": {"promptTokenCount": 9,
                                                      "totalTokenCount": 9}})
        reason = {"safety": "SAFETY", "image_safety": "IMAGE_SAFETY",
                  "prohibited": "PROHIBITED_CONTENT", "no_image": "NO_IMAGE"}.get(name)
        if reason is not None:
            cand = {"finishReason": reason, "index": 0}
            if reason == "IMAGE_SAFETY":
                cand["finishMessage"] = "Unable to show the generated image."
            if reason == "SAFETY":
                cand["safetyRatings"] = [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                                          "probability": "HIGH", "blocked": True}]
            return self._send(200, {"candidates": [cand],
                                    "usageMetadata": {"promptTokenCount": 9,
                                                      "totalTokenCount": 9}})
        if name == "text_only":
            return self._send(200, {"candidates": [{"content": {"role": "model", "parts": [
                {"text": "I can't draw that, but here is a description."}]},
                "finishReason": "STOP", "index": 0}]})
        # the image replies
        gc = req.get("generationConfig") or {}
        ic = gc.get("imageConfig") or {}
        ratio = ic.get("aspectRatio", "1:1")
        size = ic.get("imageSize")
        w, h = GEMINI_SIZES.get(ratio, (1024, 1024))
        w, h = w * SIZE_SCALE.get(size, 1), h * SIZE_SCALE.get(size, 1)
        text = ""
        for c in req.get("contents") or []:
            for p in c.get("parts") or []:
                text += p.get("text", "")
        img = png(w, h, colour_of(text))
        data = base64.b64encode(img).decode()
        if name == "truncated_b64":
            data = truncated(data)
        elif name == "not_image":
            data = base64.b64encode(b"<html>this is not an image</html>").decode()
        parts = [
            {"text": "**Composing the scene**\n\nI am placing the subject first.",
             "thought": True},
            {"inlineData": {"mimeType": "image/png",
                            "data": base64.b64encode(png(16, 16, (1, 2, 3))).decode()},
             "thought": True},
            {"text": "Here is the image you asked for."},
            {"inlineData": {"mimeType": "image/png", "data": data}},
        ]
        image_tokens = IMAGE_TOKENS.get(size, 1290)
        usage = {"promptTokenCount": max(1, len(text) // 4),
                 "candidatesTokenCount": image_tokens + 8,
                 "thoughtsTokenCount": 40,
                 "promptTokensDetails": [{"modality": "TEXT",
                                          "tokenCount": max(1, len(text) // 4)}],
                 "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": 8},
                                             {"modality": "IMAGE",
                                              "tokenCount": image_tokens}]}
        usage["totalTokenCount"] = (usage["promptTokenCount"]
                                    + usage["candidatesTokenCount"] + 40)
        reply = {"candidates": [{"content": {"role": "model", "parts": parts},
                                 "finishReason": "STOP", "index": 0}],
                 "modelVersion": rec.path.rsplit("/", 1)[-1].split(":")[0],
                 "responseId": hashlib.sha256(rec.body).hexdigest()[:22]}
        if name != "ok_no_usage":
            reply["usageMetadata"] = usage
        if not sc.get("stale"):
            with self.owner.lock:
                self.owner.last_usage = reply.get("usageMetadata")
                self.owner.last_image = img
        return self._send(200, reply)

    # ------------------------------------------------------------ openai

    def _oerr(self, status, message, etype, code=None, headers=None):
        return self._send(status, {"error": {"message": message, "type": etype,
                                             "param": None, "code": code}},
                          headers=headers)

    def openai(self, rec, sc):
        name = sc["name"]
        auth = rec.headers.get("authorization", "")
        req = rec.json or {}
        if name == "hang":
            self._hang(sc)
            name = "ok"
            sc = dict(sc, stale=True)   # the client is gone: leave no trace
        if name == "400":
            return self._oerr(400, "Invalid value for 'size'.", "invalid_request_error")
        if name in ("400_key", "401"):
            key = auth[7:] if auth.startswith("Bearer ") else auth
            return self._oerr(401, "Incorrect API key provided: %s. You can find your "
                              "API key at https://platform.openai.com/account/api-keys."
                              % key, "invalid_request_error", "invalid_api_key")
        if name == "403":
            return self._oerr(403, "You are not allowed to sample from this model",
                              "invalid_request_error")
        if name in ("429_retry_after", "429_retry_info"):
            return self._oerr(429, "Rate limit reached for images per minute.",
                              "requests", "rate_limit_exceeded",
                              headers={"Retry-After": str(sc.get("seconds", 1))})
        if name in ("500", "503", "504"):
            return self._oerr(int(name), "The server had an error while processing "
                              "your request.", "server_error")
        if name == "content_policy":
            return self._oerr(400, "Your request was rejected as a result of our "
                              "safety system.", "image_generation_user_error",
                              "content_policy_violation")
        if name == "malformed":
            return self._send(200, '{"created": 1700000000, "data": [{"b64_json": "iVBO')
        if name == "oversized":
            return self._oversized(sc)
        size = str(req.get("size", "1024x1024"))
        try:
            w, h = (int(x) for x in size.split("x"))
        except ValueError:
            w, h = 1024, 1024
        img = png(w, h, colour_of(str(req.get("prompt", ""))))
        item = {}
        if name in ("ok", "ok_no_usage", "truncated_b64", "not_image"):
            data = base64.b64encode(img).decode()
            if name == "truncated_b64":
                data = truncated(data)
            elif name == "not_image":
                data = base64.b64encode(b"<html>this is not an image</html>").decode()
            item["b64_json"] = data
        elif name in ("ok_url", "url_redirect", "url_not_image", "url_404"):
            if name == "url_not_image":
                token = self.owner.add_file(b"<html><body>hi</body></html>", "text/html")
            elif name == "url_404":
                token = "0000000000000000"
            else:
                token = self.owner.add_file(img)
            port = str(self.owner.port)
            base = str(sc.get("base", "http://127.0.0.1:{port}")).replace("{port}", port)
            if name == "url_redirect":
                item["url"] = "%s/redirect/%d/%s" % (base, int(sc.get("redirects", 2)), token)
                if "to" in sc:
                    item["url"] += "?" + urllib.parse.urlencode(
                        {"to": str(sc["to"]).replace("{port}", port)})
            else:
                item["url"] = "%s/files/%s" % (base, token)
        else:
            return self._oerr(500, "unknown fake scenario %r" % name, "server_error")
        item["revised_prompt"] = req.get("prompt")
        reply = {"created": int(time.time()), "data": [item]}
        usage = {"total_tokens": 0, "input_tokens": max(1, len(str(req.get("prompt", ""))) // 4),
                 "output_tokens": 1290,
                 "input_tokens_details": {"text_tokens": 0, "image_tokens": 0}}
        usage["input_tokens_details"]["text_tokens"] = usage["input_tokens"]
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        if name != "ok_no_usage":
            reply["usage"] = usage
        if not sc.get("stale"):
            with self.owner.lock:
                self.owner.last_usage = reply.get("usage")
                self.owner.last_image = img
        return self._send(200, reply)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8099)
    a = ap.parse_args()
    fake = FakeNanoBanana(a.host, a.port).start()
    print("fake Nano Banana on %s (Gemini: NANO_BANANA_API_URL=%s/v1beta; "
          "OpenAI: NANO_BANANA_API_URL=%s)" % (fake.url, fake.url, fake.url), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
