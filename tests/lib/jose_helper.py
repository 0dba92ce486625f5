"""jose_helper.py - JWTs and keys from jose (Node.js), independent of our C code.

    import jose_helper
    keys = jose_helper.genkey("ES256", kid="k1")   # {"privateJwk", "publicJwk"}
    tok = jose_helper.mint("ES256", keys["privateJwk"], claims, kid="k1")
    tok = jose_helper.mint("HS256", secret, claims)

The first call installs tests/node's locked dependencies (`npm ci`) into a
temp dir of this process (the source tree may be read-only, e.g. under
`make distcheck`), once per run, together with tests/node/mint.mjs, which
runs from there (and tests/node/browser.mjs, test_browser.py's, which
needs playwright-core from the same node_modules).  Node.js and npm are required: their absence or a failed
install is a HarnessError (a loud failure, never a skip).
"""

import atexit
import json
import os
import shutil
import subprocess
import tempfile
import threading

import harness

NODE_SRC = os.path.join(harness.SRCDIR, "tests", "node")
_FILES = ("package.json", "package-lock.json", "mint.mjs", "browser.mjs")

_lock = threading.Lock()
_dir = None          # the installed copy, once installed
_node = None


def _tool(name):
    p = shutil.which(name)
    if p is None:
        raise harness.HarnessError(
            "%s not found in PATH: the auth tests need Node.js and npm "
            "(Debian: apt-get install nodejs npm)" % name)
    return p


def _run(argv, cwd, timeout, what):
    try:
        r = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise harness.HarnessError("%s timed out after %ss:\n%s" % (
            what, timeout, (e.output or b"").decode(errors="replace")))
    if r.returncode != 0:
        raise harness.HarnessError("%s failed (exit %d):\n%s" % (
            what, r.returncode, r.stdout.decode(errors="replace")))
    return r.stdout.decode(errors="replace")


def _cleanup():
    global _dir
    d, _dir = _dir, None
    if d:
        shutil.rmtree(os.path.dirname(d), ignore_errors=True)


def install():
    """Installs the locked node deps (once per process); returns the dir
    holding node_modules and mint.mjs."""
    global _dir, _node
    with _lock:
        if _dir is not None:
            return _dir
        node = _tool("node")
        npm = _tool("npm")
        for f in _FILES:
            if not os.path.isfile(os.path.join(NODE_SRC, f)):
                raise harness.HarnessError("%s is missing" % os.path.join(NODE_SRC, f))
        top = tempfile.mkdtemp(prefix="imagegen-jose-")
        d = os.path.join(top, "node")
        os.mkdir(d)
        try:
            for f in _FILES:
                shutil.copyfile(os.path.join(NODE_SRC, f), os.path.join(d, f))
            version = _run([node, "--version"], d, 30, "node --version").strip()
            _run([npm, "ci", "--no-audit", "--no-fund"], d, 300,
                 "npm ci in %s (node %s)" % (d, version))
            if not os.path.isfile(os.path.join(d, "node_modules", "jose", "package.json")):
                raise harness.HarnessError("npm ci in %s did not install jose" % d)
        except BaseException:
            shutil.rmtree(top, ignore_errors=True)
            raise
        _dir, _node = d, node
        atexit.register(_cleanup)
        return d


def _mint_js(args, stdin=None, what="mint.mjs"):
    d = install()
    try:
        r = subprocess.run([_node, os.path.join(d, "mint.mjs")] + list(args), cwd=d,
                           input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
    except subprocess.TimeoutExpired:
        raise harness.HarnessError("%s timed out" % what)
    if r.returncode != 0:
        raise harness.HarnessError("%s failed (exit %d): %s" % (
            what, r.returncode, r.stderr.decode(errors="replace")))
    return r.stdout.decode().strip()


def genkey(alg, kid=None):
    """A fresh key pair from jose's generateKeyPair(alg, {extractable:true})
    and exportJWK: {"privateJwk": {...}, "publicJwk": {...}}.  With kid,
    both JWKs get "kid", and the public one "alg" and "use": "sig", as a
    JWKS serves them."""
    out = json.loads(_mint_js(["genkey", alg], what="mint.mjs genkey %s" % alg))
    if not isinstance(out.get("privateJwk"), dict) or not isinstance(out.get("publicJwk"), dict):
        raise harness.HarnessError("mint.mjs genkey %s: unexpected output %r" % (alg, out))
    if kid is not None:
        out["privateJwk"]["kid"] = kid
        out["publicJwk"].update(kid=kid, alg=alg, use="sig")
    return out


def mint(alg, key_or_secret, claims, kid=None, header_extra=None):
    """A compact JWS signed by jose: HS256 with key_or_secret as the secret
    (str, used as its UTF-8 bytes), ES256/RS256 with it as the private JWK
    (dict).  claims is a dict (jose's SignJWT) or a str signed verbatim
    (CompactSign).  The protected header is {alg, typ: "JWT", kid} updated
    with header_extra."""
    req = {"alg": alg}
    if alg == "HS256":
        if isinstance(key_or_secret, bytes):
            key_or_secret = key_or_secret.decode("utf-8")
        if not isinstance(key_or_secret, str):
            raise TypeError("HS256 needs the secret as a str")
        req["secret"] = key_or_secret
    else:
        if not isinstance(key_or_secret, dict):
            raise TypeError("%s needs the private JWK as a dict" % alg)
        req["privateJwk"] = key_or_secret
    if isinstance(claims, str):
        req["payload"] = claims
    else:
        req["claims"] = claims
    if kid is not None:
        req["kid"] = kid
    if header_extra:
        req["header"] = dict(header_extra)
    tok = _mint_js([], stdin=json.dumps(req).encode(), what="mint.mjs %s" % alg)
    if tok.count(".") != 2:
        raise harness.HarnessError("mint.mjs %s printed no compact JWS: %r" % (alg, tok))
    return tok
