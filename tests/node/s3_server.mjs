// s3_server.mjs - test-only: an S3 server for the storage tests
// (tests/integration/test_storage_backends.py).
//
//   node s3_server.mjs --dir DIR --access-key K --secret S [--region R]
//        [--session-token T] [--log FILE]
//
// s3rver stores the objects; s3rver 3.7 accepts any well-formed Signature
// Version 4 without checking it, so a middleware in front of it checks
// every signed request as S3 does, with aws4 (an implementation
// independent of imagegen's C code) recomputing the signature over the
// request as received: the credential scope (key, date, region, "s3"),
// x-amz-date within 15 minutes, host, x-amz-date and x-amz-content-sha256
// signed, the x-amz-content-sha256 equal to the SHA-256 of the body
// received, the session token when one is configured, and then the
// signature itself (SignatureDoesNotMatch, 403, as S3 answers). Requests
// without Authorization may only read (public GETs, served by s3rver).
// PUT with If-None-Match: * onto an existing key is 412 PreconditionFailed,
// as S3 has it since 2024. Bucket policies (which s3rver lacks) are kept
// here: PUT/GET ?policy (Content-MD5 checked), and an anonymous read is
// served only when the bucket's policy allows s3:GetObject to everyone,
// as on S3 with Block Public Access off.
//
// Prints {"port": N} on stdout once listening on 127.0.0.1; with --log,
// one JSON line per request: method, url, status, error code, content
// type, signed headers.
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { PassThrough } from 'node:stream';

const require = createRequire(import.meta.url);
const S3rver = require('s3rver');
const S3Error = require('s3rver/lib/models/error');
const aws4 = require('aws4');
const { DUMMY_ACCOUNT } = require('s3rver/lib/models/account');

const MAX_BODY = 64 << 20;

function parseArgs(argv) {
  const out = { region: 'us-east-1', port: 0 };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    out[k] = argv[i + 1];
  }
  for (const need of ['dir', 'accessKey', 'secret']) {
    if (!out[need]) {
      process.stderr.write(`s3_server.mjs: --${need} is required\n`);
      process.exit(2);
    }
  }
  return out;
}

const opts = parseArgs(process.argv.slice(2));
// s3rver looks the key up too (and then lets any V4 signature by).
DUMMY_ACCOUNT.createKeyPair(opts.accessKey, opts.secret);

function s3error(code, message, status) {
  const e = new S3Error(code, message);
  if (status) {
    e.status = status;
    e.expose = status < 500;
  }
  return e;
}

async function readBody(req) {
  const chunks = [];
  let n = 0;
  for await (const c of req) {
    n += c.length;
    if (n > MAX_BODY) throw s3error('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size', 400);
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

const AUTH_RE = /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

const policies = new Map();   // bucket -> policy document (parsed)

function publicRead(bucket) {
  const p = policies.get(bucket);
  const arr = v => (Array.isArray(v) ? v : [v]);
  return !!p && arr(p.Statement || []).some(st => st && st.Effect === 'Allow' &&
    (st.Principal === '*' || (st.Principal && arr(st.Principal.AWS).includes('*'))) &&
    arr(st.Action).some(a => a === 's3:GetObject' || a === 's3:*') &&
    arr(st.Resource).includes(`arn:aws:s3:::${bucket}/*`));
}

async function verify(ctx, next) {
  const auth = ctx.get('authorization');
  const seg = ctx.path.split('/').filter(Boolean).map(decodeURIComponent);
  if (!auth) {
    if ((ctx.method === 'GET' || ctx.method === 'HEAD') && seg.length >= 2 &&
        Object.keys(ctx.query).length === 0 && publicRead(seg[0])) return next();
    throw s3error('AccessDenied', 'Access Denied');
  }
  const m = AUTH_RE.exec(auth);
  if (!m) throw s3error('AuthorizationHeaderMalformed', 'The authorization header is malformed');
  const [, akid, date8, region, service, signedList, signature] = m;
  if (akid !== opts.accessKey) {
    throw s3error('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
  }
  if (region !== opts.region || service !== 's3') {
    throw s3error('AuthorizationHeaderMalformed',
      `The authorization header is malformed; the region/service '${region}/${service}' is wrong; expecting '${opts.region}/s3'`);
  }
  const amzDate = ctx.get('x-amz-date');
  if (!/^\d{8}T\d{6}Z$/.test(amzDate) || amzDate.slice(0, 8) !== date8) {
    throw s3error('AccessDenied', 'AWS authentication requires a valid x-amz-date matching the credential scope');
  }
  const t = Date.UTC(+amzDate.slice(0, 4), +amzDate.slice(4, 6) - 1, +amzDate.slice(6, 8),
    +amzDate.slice(9, 11), +amzDate.slice(11, 13), +amzDate.slice(13, 15));
  if (Math.abs(Date.now() - t) > 15 * 60 * 1000) {
    throw s3error('RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.');
  }
  const signed = signedList.split(';');
  for (const h of ['host', 'x-amz-date', 'x-amz-content-sha256']) {
    if (!signed.includes(h)) throw s3error('AccessDenied', `${h} must be signed`);
  }
  if (opts.sessionToken) {
    if (!signed.includes('x-amz-security-token') || ctx.get('x-amz-security-token') !== opts.sessionToken) {
      throw s3error('InvalidToken', 'The provided token is malformed or otherwise invalid.');
    }
  }
  const headers = {};
  for (const h of signed) {
    if (ctx.headers[h] === undefined) throw s3error('AccessDenied', `signed header ${h} is missing`);
    headers[h] = ctx.get(h);
  }
  const expect = aws4.sign({
    method: ctx.method, host: ctx.get('host'), path: ctx.url, headers,
    service: 's3', region: opts.region,
  }, { accessKeyId: opts.accessKey, secretAccessKey: opts.secret });
  const want = /Signature=([0-9a-f]{64})/.exec(expect.headers.Authorization)[1];
  const wantList = /SignedHeaders=([^,]+)/.exec(expect.headers.Authorization)[1];
  if (want !== signature || wantList !== signedList) {
    throw s3error('SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.');
  }
  ctx.state.signedHeaders = signedList;

  const sha = ctx.get('x-amz-content-sha256');
  let body = null;
  if (/^[0-9a-f]{64}$/.test(sha)) {
    body = await readBody(ctx.req);
    if (crypto.createHash('sha256').update(body).digest('hex') !== sha) {
      throw s3error('XAmzContentSHA256Mismatch',
        "The provided 'x-amz-content-sha256' header does not match what was computed.", 400);
    }
    const pt = new PassThrough();
    pt.end(body);
    ctx.req = pt;   // s3rver stores what it reads from ctx.req
  } else if (sha !== 'UNSIGNED-PAYLOAD') {
    throw s3error('NotImplemented', `x-amz-content-sha256 ${sha} is not supported here`);
  }

  if (seg.length === 1 && 'policy' in ctx.query) {
    if (!(await ctx.app.store.getBucket(seg[0]))) {
      throw s3error('NoSuchBucket', 'The specified bucket does not exist');
    }
    if (ctx.method === 'PUT') {
      const md5 = ctx.get('content-md5');
      if (md5 && crypto.createHash('md5').update(body || '').digest('base64') !== md5) {
        throw s3error('BadDigest', 'The Content-MD5 you specified did not match what we received.');
      }
      let doc;
      try {
        doc = JSON.parse((body || '').toString('utf8'));
      } catch (e) {
        throw s3error('MalformedPolicy', 'Policies must be valid JSON', 400);
      }
      policies.set(seg[0], doc);
      ctx.status = 204;
      return;
    }
    if (ctx.method === 'GET') {
      if (!policies.has(seg[0])) throw s3error('NoSuchBucketPolicy', 'The bucket policy does not exist', 404);
      ctx.type = 'application/json';
      ctx.body = JSON.stringify(policies.get(seg[0]));
      return;
    }
  }
  // Conditional writes: If-None-Match: * refuses an existing key.
  if (ctx.method === 'PUT' && seg.length >= 2 && ctx.get('if-none-match') === '*' &&
      Object.keys(ctx.query).length === 0 &&
      await ctx.app.store.existsObject(seg[0], seg.slice(1).join('/'))) {
    throw s3error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', 412);
  }
  return next();
}

const logFd = opts.log ? fs.openSync(opts.log, 'a') : null;

async function logRequests(ctx, next) {
  let code = null;
  let status = null;
  try {
    await next();
    status = ctx.status;
  } catch (e) {
    code = e.code || 'InternalError';
    status = e.status || 500;
    throw e;
  } finally {
    if (logFd !== null) {
      const line = {
        method: ctx.method, url: ctx.url, status, code,
        contentType: ctx.get('content-type') || null,
        cacheControl: ctx.get('cache-control') || null,
        ifNoneMatch: ctx.get('if-none-match') || null,
        signedHeaders: ctx.state.signedHeaders || null,
        authorized: !!ctx.get('authorization'),
      };
      fs.writeSync(logFd, JSON.stringify(line) + '\n');
    }
  }
}

const server = new S3rver({
  address: '127.0.0.1',
  port: Number(opts.port) || 0,
  directory: opts.dir,
  silent: true,
  vhostBuckets: false,
  allowMismatchedSignatures: false,
});
// Ours first: the log sees every answer, the check every request.
server.middleware.unshift(logRequests, verify);

const addr = await server.run();
process.stdout.write(JSON.stringify({ port: addr.port }) + '\n');
const stop = () => server.close().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
