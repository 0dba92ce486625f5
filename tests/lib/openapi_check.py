"""openapi_check.py - every answer the integration tests receive under
/api/ is checked against docs/openapi.json, so the document cannot drift
from the code.

    openapi_check.check(method, target, status, headers, body)

harness.http_request, jobs_helper.KeepAlive and fcgi_client.request call
it on each answer.  The answer must be one the document describes for
its path template, method and status: its media type one of the
response's, its JSON body valid against the response's schema (JSON
Schema 2020-12, python3-jsonschema), its required headers there and every
documented header it carries valid.  An /api/ path no template matches
must be an error answer (404, or 400/405/413/500/503) in the Error shape;
a method a path does not take, 405 (or those) likewise.  Answers outside
/api/ (static files, /metrics, /storage/...) are not checked, nor the
production config's redirect of plain HTTP to https:// (a 3xx).  HEAD is
checked as GET without a body.

A mismatch raises Violation (an AssertionError: the test fails where the
request was made) and is also recorded, so that a test which swallows
exceptions (a thread, a load loop) still fails: tests/integration/run
fails every test during which a violation was recorded.
"""

import json
import os
import re
import threading
import urllib.parse

try:
    import jsonschema
except ImportError as e:  # a loud failure, never a silent pass
    raise ImportError(
        "tests/lib/openapi_check.py needs jsonschema (Debian: apt-get install "
        "python3-jsonschema): %s" % e)

_REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SRCDIR = os.path.abspath(os.environ.get("IMAGEGEN_SRCDIR") or
                         os.environ.get("abs_top_srcdir") or _REPO)
DOC_PATH = os.path.join(SRCDIR, "docs", "openapi.json")
DIALECT = "https://json-schema.org/draft/2020-12/schema"
# What any request may be answered, whatever its path and method (the
# pool reads the body before routing; nginx answers these itself too).
ANY_REQUEST = ("400", "413", "429", "500", "502", "503", "504")
# The component response of each error status (components/responses).
ERROR_RESPONSES = {"400": "BadRequest", "401": "Unauthorized", "402": "BudgetExceeded",
                   "403": "Forbidden", "404": "NotFound", "405": "MethodNotAllowed",
                   "409": "IdempotencyInFlight", "413": "PayloadTooLarge",
                   "415": "UnsupportedMediaType", "422": "IdempotencyKeyReused",
                   "429": "RateLimited", "500": "Internal", "503": "ServiceUnavailable",
                   "502": "BadGateway", "504": "GatewayTimeout"}     # nginx's own
# Other components an operation may give for a status: the provider
# webhook's 401 (a bad signature) has no bearer challenge (WWW-Authenticate).
ERROR_ALTERNATIVES = {"401": ("SignatureRefused",)}
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class Violation(AssertionError):
    """An answer the OpenAPI document does not describe."""


_lock = threading.Lock()
_doc = None
_templates = None
_validators = {}
violations = []            # every Violation raised so far, in order


def doc():
    """docs/openapi.json, parsed once."""
    global _doc, _templates
    with _lock:
        if _doc is None:
            with open(DOC_PATH, encoding="utf-8") as f:
                d = json.load(f)
            tpl = []
            for p in d["paths"]:
                parts = p.strip("/").split("/")
                tpl.append((p, parts))
            # literal segments before templated ones: /api/health/live
            # before any /api/{x}/live
            tpl.sort(key=lambda t: sum(1 for s in t[1] if s.startswith("{")))
            _doc, _templates = d, tpl
        return _doc


def resolve(node):
    """node with a local $ref followed (components/responses, headers...)."""
    d = doc()
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 10:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise Violation("openapi: non-local $ref %r" % ref)
        node = d
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        seen += 1
    return node


def _validator(key, schema):
    """A Draft 2020-12 validator of schema, whose $refs into #/components
    resolve against the document (the wrapper carries its components)."""
    with _lock:
        v = _validators.get(key)
    if v is None:
        wrapper = {"$schema": DIALECT, "components": doc()["components"], "allOf": [schema]}
        cls = jsonschema.Draft202012Validator
        v = cls(wrapper, format_checker=jsonschema.FormatChecker())
        with _lock:
            _validators[key] = v
    return v


def match_path(path):
    """The document's path template of path, or None."""
    doc()
    segs = path.strip("/").split("/") if path.strip("/") else [""]
    for tpl, parts in _templates:
        if len(parts) != len(segs):
            continue
        if all(p == s or (p.startswith("{") and s != "") for p, s in zip(parts, segs)):
            if path.endswith("/") != tpl.endswith("/"):
                continue
            return tpl
    return None


def _header(headers, name):
    for k, v in headers:
        if k.lower() == name.lower():
            return v
    return None


def _check_header(where, name, spec, value, errors):
    spec = resolve(spec)
    schema = spec.get("schema", {})
    if value is None:
        if spec.get("required"):
            errors.append("%s: header %s missing" % (where, name))
        return
    inst = value
    t = resolve(schema).get("type")
    if t == "integer":
        try:
            inst = int(value)
        except ValueError:
            errors.append("%s: header %s: %r is not an integer" % (where, name, value))
            return
    v = _validator(("header", name, json.dumps(schema, sort_keys=True)), schema)
    err = jsonschema.exceptions.best_match(v.iter_errors(inst))
    if err is not None:
        errors.append("%s: header %s: %r: %s" % (where, name, value, err.message))


def _check_response(where, resp_spec, key, headers, body, is_head):
    """Errors of an answer against one response object."""
    errors = []
    spec = resolve(resp_spec)
    for name, h in (spec.get("headers") or {}).items():
        _check_header(where, name, h, _header(headers, name), errors)
    content = spec.get("content") or {}
    ctype = (_header(headers, "Content-Type") or "").split(";")[0].strip().lower()
    if not content:
        if body:
            errors.append("%s: a body where the document describes none" % where)
        return errors
    if is_head:
        if ctype not in content:
            errors.append("%s: Content-Type %r, the document says %s" % (
                where, ctype, " or ".join(content)))
        return errors
    if ctype not in content:
        errors.append("%s: Content-Type %r, the document says %s; body %r" % (
            where, ctype or None, " or ".join(content), body[:300]))
        return errors
    schema = content[ctype].get("schema")
    if schema is None:
        return errors
    if ctype == "application/json" or ctype.endswith("+json"):
        try:
            inst = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            errors.append("%s: not JSON (%s): %r" % (where, e, body[:300]))
            return errors
    else:
        try:
            inst = body.decode("utf-8")
        except UnicodeDecodeError:
            errors.append("%s: not UTF-8 text" % where)
            return errors
    v = _validator(("body",) + key, schema)
    errs = sorted(v.iter_errors(inst), key=lambda e: list(e.absolute_path))
    if errs:
        best = jsonschema.exceptions.best_match(errs)
        loc = "/".join(str(p) for p in best.absolute_path) or "(top)"
        why = best.message
        if best.context:        # anyOf/oneOf: why each alternative failed
            alts = {}
            for c in best.context:
                alts.setdefault(c.relative_schema_path[0], []).append(c)
            why += " [%s]" % "; ".join(
                "alternative %s: %s%s" % (i, jsonschema.exceptions.best_match(cs).message,
                                          " (+%d more)" % (len(cs) - 1) if len(cs) > 1 else "")
                for i, cs in sorted(alts.items()))
        errors.append("%s: body at %s: %s (schema %s); %d error(s); body %s" % (
            where, loc, why, "/".join(str(p) for p in best.absolute_schema_path),
            len(errs), body[:600].decode("utf-8", "replace")))
    return errors


def check(method, target, status, headers, body):
    """Checks one answer; raises Violation (and records it) when the
    document does not describe it.  target is the request target as sent
    (path and query); headers [(name, value)]; body bytes."""
    if status is None:          # no answer to check (a broken one is the test's)
        return
    path = urllib.parse.urlsplit(target).path or "/"
    if not (path == "/api" or path.startswith("/api/")):
        return
    method = (method or "GET").upper()
    is_head = method == "HEAD"
    m = "get" if is_head else method.lower()
    st = str(status)
    body = body or b""
    loc = _header(headers, "Location") or ""
    if 300 <= int(status) < 400 and loc.startswith("https://"):
        return      # the production server's plain-HTTP redirect: transport, not API
    d = doc()
    tpl = match_path(path)
    where = "%s %s" % (method, path)
    if tpl is not None and m in d["paths"][tpl]:
        op = d["paths"][tpl][m]
        where = "%s %s [%s] %s" % (method, path, tpl, st)
        responses = op.get("responses", {})
        if st not in responses:
            errors = ["%s: status %s is not documented (documented: %s); body %r" % (
                where, st, ", ".join(sorted(responses)), body[:300])]
        else:
            errors = _check_response(where, responses[st], (tpl, m, st), headers, body, is_head)
    else:
        allowed = ("404", "405") + ANY_REQUEST if tpl is None else ("405",) + ANY_REQUEST
        what = "no path template" if tpl is None else "a method %s does not take" % tpl
        where = "%s %s (%s) %s" % (method, path, what, st)
        if st not in allowed:
            errors = ["%s: only an error answer (%s) is documented; body %r" % (
                where, ", ".join(allowed), body[:300])]
        else:
            name = ERROR_RESPONSES[st]
            errors = _check_response(where, {"$ref": "#/components/responses/" + name},
                                     ("error", st), headers, body, is_head)
    if errors:
        v = Violation("openapi: answer not as docs/openapi.json says:\n  " + "\n  ".join(errors))
        with _lock:
            violations.append(v)
        raise v


def check_webhook(headers, body):
    """Checks one outbound event as a receiver got it against the
    document's OpenAPI 3.1 `webhooks` entry named by its "type": its
    Content-Type, its header parameters (webhook-id, -timestamp,
    -signature) and its body.  Raises Violation (and records it) as
    check() does.  headers [(name, value)] (a value None: absent); body
    bytes or str."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    d = doc()
    errors = []
    try:
        inst = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        inst, errors = None, ["webhook: not JSON (%s): %r" % (e, body[:300])]
    name = inst.get("type") if isinstance(inst, dict) else None
    entry = (d.get("webhooks") or {}).get(name) if isinstance(name, str) else None
    if inst is not None and entry is None:
        errors.append("webhook: type %r is not one of the document's webhooks (%s); body %r" % (
            name, ", ".join(sorted(d.get("webhooks") or {})), body[:300]))
    if entry is not None:
        op = entry["post"]
        where = "webhook %s" % name
        for prm in op.get("parameters", []):
            prm = resolve(prm)
            if prm.get("in") == "header":
                _check_header(where, prm["name"], prm, _header(headers, prm["name"]), errors)
        content = resolve(op["requestBody"])["content"]
        ctype = (_header(headers, "Content-Type") or "").split(";")[0].strip().lower()
        if ctype not in content:
            errors.append("%s: Content-Type %r, the document says %s" % (
                where, ctype or None, " or ".join(content)))
        else:
            v = _validator(("webhook", name, ctype), content[ctype]["schema"])
            best = jsonschema.exceptions.best_match(v.iter_errors(inst))
            if best is not None:
                loc = "/".join(str(p) for p in best.absolute_path) or "(top)"
                errors.append("%s: body at %s: %s (schema %s); body %s" % (
                    where, loc, best.message,
                    "/".join(str(p) for p in best.absolute_schema_path),
                    body[:600].decode("utf-8", "replace")))
    if errors:
        v = Violation("openapi: webhook not as docs/openapi.json says:\n  " + "\n  ".join(errors))
        with _lock:
            violations.append(v)
        raise v


def count():
    with _lock:
        return len(violations)


def since(n):
    """The violations recorded after the first n."""
    with _lock:
        return list(violations[n:])
