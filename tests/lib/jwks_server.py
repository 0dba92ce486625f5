"""jwks_server.py - a JWKS endpoint on loopback, as Supabase's auth serves one.

    srv = JwksServer([public_jwk, ...])       # started, on a free port
    env["SUPABASE_JWKS_URL"] = srv.url        # …/auth/v1/.well-known/jwks.json
    srv.set_keys([...])                       # rotate while the pool runs
    srv.stop(); srv.start()                   # the endpoint down, then back
    srv.requests                              # JWKS documents served so far

A threaded http.server; stop() closes the listening socket, so a client
gets "connection refused", and start() listens again on the same port
(reserved for this process by harness.free_port, so still free).
"""

import http.server
import json
import threading

import harness

JWKS_PATH = "/auth/v1/.well-known/jwks.json"


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class JwksServer:
    def __init__(self, keys=(), port=None, start=True):
        self._lock = threading.Lock()
        self._keys = [dict(k) for k in keys]
        self._requests = 0
        self._other = 0
        self.port = port
        self._httpd = None
        self._thread = None
        if start:
            self.start()

    # ------------------------------------------------------------ keys

    def set_keys(self, keys):
        """Serves exactly these public JWKs from now on."""
        with self._lock:
            self._keys = [dict(k) for k in keys]

    def keys(self):
        with self._lock:
            return [dict(k) for k in self._keys]

    def document(self):
        """The JWKS text served now (compact JSON)."""
        with self._lock:
            return json.dumps({"keys": self._keys}, separators=(",", ":"))

    @property
    def requests(self):
        """How many JWKS documents were served (200s on JWKS_PATH)."""
        with self._lock:
            return self._requests

    @property
    def other_requests(self):
        """Requests for anything else (answered 404)."""
        with self._lock:
            return self._other

    @property
    def url(self):
        return "http://127.0.0.1:%d%s" % (self.port, JWKS_PATH)

    # ------------------------------------------------------------ lifecycle

    def running(self):
        return self._httpd is not None

    def start(self):
        """Listens (again) on 127.0.0.1:port (a free port the first time)."""
        if self._httpd is not None:
            raise harness.HarnessError("JWKS server already running")
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            # HTTP/1.0 and "Connection: close": no kept-alive connection
            # outlives stop(), so "down" really is down for every client.
            protocol_version = "HTTP/1.0"

            def do_GET(self):
                if self.path.split("?", 1)[0] != JWKS_PATH:
                    with owner._lock:
                        owner._other += 1
                    body = b'{"error":"not found"}'
                    self.send_response(404)
                else:
                    body = owner.document().encode()
                    with owner._lock:
                        owner._requests += 1
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "public, max-age=600")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        # a reserved port (harness.free_port), not bind(0)'s: while the
        # endpoint is down nobody else may take it
        if not self.port:
            self.port = harness.free_port()
        self._httpd = _Server(("127.0.0.1", self.port), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="jwks-server-%d" % self.port, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stops serving and closes the listening socket (refused from now
        on).  Idempotent."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        self._thread.join(5)
        self._thread = None

    def __enter__(self):
        if not self.running():
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False
