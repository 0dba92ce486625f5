"""webhook_rx.py - tests/fakes/webhook_receiver.mjs as a Python object: a
webhook receiver on a free port of 127.0.0.1 that verifies every delivery
with the `standardwebhooks` npm package (an implementation independent of
src/util/stdwh.c) and answers a scripted status.

    rx = webhook_rx.Receiver()           # rx.base: http://127.0.0.1:PORT
    rx.config(secret="whsec_...", script=[500], default=200)
    rx.log("/hook/a")                    # deliveries so far, checked against
                                         # docs/openapi.json's webhooks
    rx.stop()

The pool reaches it only with the test-only IMAGEGEN_FETCH_ALLOW=127.0.0.1
(tests/integration/test_webhooks.py, tests/bench/soak).
"""

import json
import os
import shutil
import signal
import subprocess
import threading
import urllib.request

import harness
import jose_helper
import openapi_check

RECEIVER = os.path.join(harness.SRCDIR, "tests", "fakes", "webhook_receiver.mjs")


class Receiver:
    """tests/fakes/webhook_receiver.mjs on a free port of 127.0.0.1."""

    def __init__(self):
        d = jose_helper.install()           # tests/node's locked deps
        if not os.path.isfile(os.path.join(d, "node_modules", "standardwebhooks",
                                           "package.json")):
            raise harness.HarnessError("npm ci in %s did not install standardwebhooks" % d)
        self.proc = subprocess.Popen([shutil.which("node"), RECEIVER, d], cwd=d,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        line = [None]
        t = threading.Thread(target=lambda: line.__setitem__(0, self.proc.stdout.readline()),
                             daemon=True)
        t.start()
        t.join(30)
        try:
            self.port = int(line[0].decode().split()[1])
        except (AttributeError, IndexError, ValueError):
            self.stop()
            raise harness.HarnessError("webhook_receiver.mjs did not start: %r" % (line[0],))
        self.base = "http://127.0.0.1:%d" % self.port
        self.checked = 0        # log entries checked against the document

    def _req(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def config(self, **kw):
        self._req("POST", "/_config", kw)

    def log(self, path=None):
        got = self._req("GET", "/_log")
        # every event received is one of docs/openapi.json's webhooks
        for i in range(self.checked, len(got)):
            e = got[i]
            openapi_check.check_webhook(
                [("webhook-id", e["id"]), ("webhook-timestamp", e["timestamp"]),
                 ("webhook-signature", e["signature"]), ("Content-Type", e["contentType"])],
                e["body"])
        self.checked = max(self.checked, len(got))
        return [e for e in got if path is None or e["path"] == path]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
