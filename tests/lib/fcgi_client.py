"""fcgi_client.py - a minimal raw FastCGI client for tests.

Talks straight to a responder socket (unix path or (host, port)), so a test
can send what nginx never would: a CONTENT_LENGTH larger or smaller than the
body, a body split across pauses, a request left half-sent while a signal
arrives.  Standard library only.

    resp = fcgi_client.request(sock, "GET", "/api/health/live")
    resp.status, resp.headers, resp.body, resp.json()

or, step by step:

    c = fcgi_client.Connection(sock)
    c.begin()
    c.params(fcgi_client.cgi_params("POST", "/api/x", content_length=10))
    c.stdin(b"12345")            # more later, or never
    c.stdin(b"", end=True)       # the empty STDIN record ends the body
    resp = c.read_response()
"""

import json
import socket
import struct

import openapi_check

VERSION = 1
BEGIN_REQUEST = 1
ABORT_REQUEST = 2
END_REQUEST = 3
PARAMS = 4
STDIN = 5
STDOUT = 6
STDERR = 7
DATA = 8
GET_VALUES = 9
GET_VALUES_RESULT = 10
UNKNOWN_TYPE = 11

RESPONDER = 1
KEEP_CONN = 1

REQUEST_COMPLETE = 0

_HEADER = struct.Struct(">BBHHBx")
_MAX_CONTENT = 65535


class FcgiError(Exception):
    """The peer broke the protocol or closed before END_REQUEST."""


def encode_pair(name, value):
    """One FastCGI name-value pair (lengths as 1 or 4 bytes)."""
    if isinstance(name, str):
        name = name.encode()
    if isinstance(value, str):
        value = value.encode()

    def enc_len(n):
        if n < 128:
            return bytes([n])
        return struct.pack(">I", n | 0x80000000)

    return enc_len(len(name)) + enc_len(len(value)) + name + value


def encode_record(rtype, req_id, content=b""):
    """One record; content longer than 65535 bytes is the caller's bug."""
    if len(content) > _MAX_CONTENT:
        raise ValueError("record content too long")
    pad = (8 - len(content) % 8) % 8
    return _HEADER.pack(VERSION, rtype, req_id, len(content), pad) + content + b"\0" * pad


def encode_stream(rtype, req_id, data):
    """data split into records of at most 65535 bytes (no terminator)."""
    out = []
    for i in range(0, len(data), 32768):
        out.append(encode_record(rtype, req_id, data[i:i + 32768]))
    return b"".join(out)


def cgi_params(method="GET", uri="/api/health/live", *, content_length=None,
               content_type=None, headers=None, request_id=None, extra=None):
    """The CGI parameters nginx would send (see /etc/nginx/fastcgi_params).

    content_length: None leaves CONTENT_LENGTH empty, as nginx does for a
    request without a body; any int or str is sent as is.
    headers: {"Authorization": "..."} become HTTP_AUTHORIZATION, ...
    request_id: sent as REQUEST_ID and HTTP_X_REQUEST_ID.
    """
    path, _, query = uri.partition("?")
    p = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_SOFTWARE": "fcgi_client.py",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REQUEST_SCHEME": "http",
        "REQUEST_METHOD": method,
        "REQUEST_URI": uri,
        "DOCUMENT_URI": path,
        "SCRIPT_NAME": path,
        "QUERY_STRING": query,
        "CONTENT_TYPE": content_type or "",
        "CONTENT_LENGTH": "" if content_length is None else str(content_length),
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000",
        "SERVER_ADDR": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_NAME": "localhost",
        "HTTP_HOST": "localhost",
    }
    if request_id is not None:
        p["REQUEST_ID"] = request_id
        p["HTTP_X_REQUEST_ID"] = request_id
    for k, v in (headers or {}).items():
        key = k.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            p[key] = v
        else:
            p["HTTP_" + key] = v
    p.update(extra or {})
    return p


class Response:
    """A parsed responder answer: CGI headers, body, stderr, END_REQUEST."""

    def __init__(self, stdout, stderr, app_status, protocol_status):
        self.raw = stdout
        self.stderr = stderr
        self.app_status = app_status
        self.protocol_status = protocol_status
        self.status = None
        self.headers = []          # [(name, value)] in order, duplicates kept
        self.body = b""
        self._parse()

    def _parse(self):
        raw = self.raw
        sep = raw.find(b"\r\n\r\n")
        seplen = 4
        lf = raw.find(b"\n\n")
        if sep < 0 or (0 <= lf < sep):
            sep, seplen = lf, 2
        if sep < 0:
            self.body = raw
            return
        head = raw[:sep].decode("latin-1")
        self.body = raw[sep + seplen:]
        for line in head.splitlines():
            if not line.strip():
                continue
            name, _, value = line.partition(":")
            self.headers.append((name.strip(), value.strip()))
        st = self.header("Status")
        if st is not None:
            self.status = int(st.split()[0])
        elif self.headers:
            self.status = 200

    def header(self, name):
        """First value of a header, or None (case-insensitive)."""
        vals = self.header_all(name)
        return vals[0] if vals else None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<fcgi Response status=%r headers=%r body=%r>" % (
            self.status, self.headers, self.body[:200])


class Connection:
    """One FastCGI connection (one request at a time, id 1 by default)."""

    def __init__(self, address, timeout=10.0):
        if isinstance(address, (tuple, list)):
            self.sock = socket.create_connection(tuple(address), timeout=timeout)
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(address)
        self.req_id = 1
        self.checked = None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def begin(self, req_id=1, keep_conn=False, role=RESPONDER):
        self.req_id = req_id
        body = struct.pack(">HB5x", role, KEEP_CONN if keep_conn else 0)
        self.send_raw(encode_record(BEGIN_REQUEST, req_id, body))

    def params(self, params, end=True):
        # what read_response() checks the answer against docs/openapi.json
        # for: the method and the path the pool routes on (DOCUMENT_URI,
        # else REQUEST_URI's)
        if "REQUEST_METHOD" in params or "DOCUMENT_URI" in params or "REQUEST_URI" in params:
            self.checked = (params.get("REQUEST_METHOD", "GET"),
                            params.get("DOCUMENT_URI") or params.get("REQUEST_URI") or "/")
        data = b"".join(encode_pair(k, v) for k, v in params.items())
        out = encode_stream(PARAMS, self.req_id, data)
        if end:
            out += encode_record(PARAMS, self.req_id)
        self.send_raw(out)

    def stdin(self, data=b"", end=False):
        out = encode_stream(STDIN, self.req_id, data) if data else b""
        if end:
            out += encode_record(STDIN, self.req_id)
        if out:
            self.send_raw(out)

    def abort(self):
        self.send_raw(encode_record(ABORT_REQUEST, self.req_id))

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise FcgiError("connection closed after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return buf

    def read_record(self):
        """(type, request id, content)."""
        ver, rtype, rid, clen, plen = _HEADER.unpack(self._recv_exact(8))
        if ver != VERSION:
            raise FcgiError("bad record version %d" % ver)
        content = self._recv_exact(clen) if clen else b""
        if plen:
            self._recv_exact(plen)
        return rtype, rid, content

    def read_response(self):
        """Reads STDOUT/STDERR until END_REQUEST; raises FcgiError when the
        connection ends first."""
        out, err = [], []
        while True:
            rtype, rid, content = self.read_record()
            if rtype == STDOUT:
                out.append(content)
            elif rtype == STDERR:
                err.append(content)
            elif rtype == END_REQUEST:
                app, proto = struct.unpack(">IB3x", content[:8])
                resp = Response(b"".join(out), b"".join(err), app, proto)
                if self.checked is not None:
                    # raises openapi_check.Violation when not as documented
                    openapi_check.check(self.checked[0], self.checked[1], resp.status,
                                        resp.headers, resp.body)
                return resp
            else:
                raise FcgiError("unexpected record type %d" % rtype)


def request(address, method="GET", uri="/api/health/live", body=b"", *,
            content_length="auto", content_type=None, headers=None,
            request_id=None, extra=None, timeout=10.0):
    """Sends one whole request and returns its Response.

    content_length="auto" sends len(body) (or nothing when there is no
    body and the method is GET/HEAD); any other value is sent verbatim, so
    a test can lie about the body's length.
    """
    if isinstance(body, str):
        body = body.encode()
    if content_length == "auto":
        content_length = len(body) if (body or method not in ("GET", "HEAD")) else None
    p = cgi_params(method, uri, content_length=content_length,
                   content_type=content_type, headers=headers,
                   request_id=request_id, extra=extra)
    with Connection(address, timeout=timeout) as c:
        c.begin()
        c.params(p)
        c.stdin(body, end=True)
        return c.read_response()     # checked against docs/openapi.json
