// imageService.test.mjs - node --test of nginx/www/imageService.js.
//
// The first part drives the module with a fake fetch (no server): the
// Idempotency-Key is reused when a connection drops, a wait times out and
// leaves the job alone, an AbortSignal stops the wait (and cancels the job
// with cancelOnAbort), 429/503 slow the polling down as Retry-After says.
//
// The second part runs against a real stack when these are set (the
// Python test tests/integration/test_image_service.py sets them):
//   IMAGEGEN_TEST_BASE_URL    e.g. http://127.0.0.1:PORT
//   IMAGEGEN_TEST_TOKEN       a user's bearer token
//   IMAGEGEN_TEST_PROJECT     a project of that user, with a main branch
//   IMAGEGEN_TEST_CAPSULE     a style capsule the user may use
//   IMAGEGEN_TEST_MODULE      the module's path (default: the source tree's)
// Without them those tests are skipped (and the Python test fails on a skip).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const modPath = process.env.IMAGEGEN_TEST_MODULE || path.join(here, '..', '..', 'nginx', 'www', 'imageService.js');
const { createImageService, ImageServiceError, parseRetryAfter, imageService } =
  await import(pathToFileURL(modPath).href);

const JOB = '11111111-2222-4333-8444-555555555555';
const PROJECT = '99999999-8888-4777-8666-555555555555';

function json(status, body, headers = {}) {
  return new Response(body === undefined ? '' : JSON.stringify(body), {
    status, headers: { 'Content-Type': 'application/json', ...headers },
  });
}

/** A fake fetch: answers with handler(call, n) and records every call. */
function fakeFetch(handler) {
  const calls = [];
  const f = async (url, init = {}) => {
    const call = { url: String(url), method: init.method || 'GET', headers: { ...(init.headers || {}) },
      body: init.body ? JSON.parse(init.body) : undefined, at: Date.now(), signal: init.signal };
    calls.push(call);
    return handler(call, calls.length);
  };
  f.calls = calls;
  return f;
}

function job(status, extra = {}) {
  return { jobId: JOB, status, updatedAt: `t-${status}`, attempts: 1, ...extra };
}

describe('imageService with a fake fetch', () => {
  test('a dropped connection is retried with the same Idempotency-Key', async () => {
    const f = fakeFetch((c, n) => {
      if (c.method === 'POST' && n === 1) throw new TypeError('fetch failed: socket hang up');
      if (c.method === 'POST') return json(202, { jobId: JOB, status: 'queued' });
      return json(200, job('completed', { publicUrl: 'https://x.test/a.png' }));
    });
    const svc = createImageService({ fetch: f, getAccessToken: () => 'tok', pollIntervalMs: 5 });
    const r = await svc.generateAssetImageKey(PROJECT, 'a castle');
    const posts = f.calls.filter((c) => c.method === 'POST');
    assert.equal(posts.length, 2);
    const k = posts[0].headers['Idempotency-Key'];
    assert.match(k, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(posts[1].headers['Idempotency-Key'], k);
    assert.equal(posts[0].headers.Authorization, 'Bearer tok');
    assert.deepEqual(posts[0].body, { projectId: PROJECT, jobType: 'master_asset', prompt: 'a castle' });
    assert.equal(r.jobId, JOB);
    assert.equal(r.imageUrl, 'https://x.test/a.png');
    assert.equal(r.job.status, 'completed');
  });

  test('two calls get two different keys; a given key is sent as it is', async () => {
    const f = fakeFetch(() => json(202, { jobId: JOB, status: 'queued' }));
    const svc = createImageService({ fetch: f });
    const a = await svc.createJob({ projectId: PROJECT, jobType: 'master_asset', prompt: 'p' });
    const b = await svc.createJob({ projectId: PROJECT, jobType: 'master_asset', prompt: 'p' });
    const c = await svc.createJob({ projectId: PROJECT, jobType: 'master_asset', prompt: 'p' }, { idempotencyKey: 'mine-1' });
    assert.notEqual(a.idempotencyKey, b.idempotencyKey);
    assert.equal(c.idempotencyKey, 'mine-1');
    assert.equal(f.calls[2].headers['Idempotency-Key'], 'mine-1');
    assert.equal(f.calls[0].headers.Authorization, undefined);
  });

  test('preferWait sends Prefer: wait=N; a job that ended is not polled', async () => {
    const f = fakeFetch(() => json(201, job('completed', { publicUrl: '/storage/v1/object/public/asset-images/a.png' })));
    const svc = createImageService({ fetch: f, baseUrl: 'https://api.test' });
    const r = await svc.generateAssetImageKey(PROJECT, 'p', null, { preferWait: 5 });
    assert.equal(f.calls.length, 1);
    assert.equal(f.calls[0].headers.Prefer, 'wait=5');
    assert.equal(r.imageUrl, 'https://api.test/storage/v1/object/public/asset-images/a.png');
  });

  test('a 4xx answer is not retried and becomes an ImageServiceError', async () => {
    const f = fakeFetch(() => json(400, { error: { code: 'VALIDATION_ERROR', message: 'prompt: must not be empty' } }));
    const svc = createImageService({ fetch: f });
    await assert.rejects(svc.generateAssetImageKey(PROJECT, ''), (e) => {
      assert.ok(e instanceof ImageServiceError);
      assert.equal(e.code, 'VALIDATION_ERROR');
      assert.equal(e.status, 400);
      assert.equal(e.message, 'prompt: must not be empty');
      return true;
    });
    assert.equal(f.calls.length, 1);
  });

  test('a wait past timeoutMs rejects with TIMEOUT and leaves the job running', async () => {
    const f = fakeFetch(() => json(200, job('generating')));
    const svc = createImageService({ fetch: f, pollIntervalMs: 20, timeoutMs: 150 });
    const t0 = Date.now();
    await assert.rejects(svc.waitForJob(JOB), (e) => {
      assert.equal(e.code, 'TIMEOUT');
      assert.equal(e.jobId, JOB);
      assert.equal(e.job.status, 'generating');
      return true;
    });
    const took = Date.now() - t0;
    assert.ok(took >= 140 && took < 1000, `took ${took} ms`);
    assert.ok(f.calls.every((c) => c.method === 'GET'), 'no cancel was sent');
    assert.ok(f.calls.length >= 3);
  });

  test('a poll that never answers still rejects with TIMEOUT at timeoutMs', async () => {
    // a fetch that never answers (until its signal aborts it)
    const f = fakeFetch((c) => new Promise((resolve, reject) => {
      c.signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')), { once: true });
    }));
    const svc = createImageService({ fetch: f, pollIntervalMs: 20, timeoutMs: 300, requestTimeoutMs: 30000 });
    const t0 = Date.now();
    await assert.rejects(svc.waitForJob(JOB), (e) => {
      assert.equal(e.code, 'TIMEOUT');
      assert.equal(e.jobId, JOB);
      return true;
    });
    const took = Date.now() - t0;
    assert.ok(took >= 290 && took < 1500, `took ${took} ms, timeoutMs 300`);
    assert.ok(f.calls.every((c) => c.method === 'GET'), 'no cancel was sent');
  });

  test('an abort stops the wait; cancelOnAbort also cancels the job', async () => {
    for (const cancelOnAbort of [false, true]) {
      const f = fakeFetch((c) => (c.method === 'POST' ? json(200, job('canceled')) : json(200, job('queued'))));
      const svc = createImageService({ fetch: f, pollIntervalMs: 20 });
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 80);
      const t0 = Date.now();
      await assert.rejects(svc.waitForJob(JOB, { signal: ac.signal, cancelOnAbort }), (e) => {
        assert.equal(e.code, 'ABORTED');
        assert.equal(e.jobId, JOB);
        return true;
      });
      assert.ok(Date.now() - t0 < 1000);
      const cancels = f.calls.filter((c) => c.method === 'POST');
      assert.equal(cancels.length, cancelOnAbort ? 1 : 0);
      if (cancelOnAbort) assert.ok(cancels[0].url.endsWith(`/api/images/jobs/${JOB}/cancel`));
    }
  });

  test('an abort while the create is under way: with cancelOnAbort the job it made is canceled', async () => {
    for (const cancelOnAbort of [false, true]) {
      // the server makes the job at once; its answer takes 150 ms to come
      const f = fakeFetch((c) => new Promise((resolve, reject) => {
        if (c.method === 'POST' && c.url.endsWith('/cancel')) return resolve(json(200, job('canceled')));
        const t = setTimeout(() => resolve(c.method === 'POST' ? json(202, { jobId: JOB, status: 'queued' })
          : json(200, job('queued'))), 150);
        c.signal.addEventListener('abort', () => { clearTimeout(t); reject(new DOMException('aborted', 'AbortError')); }, { once: true });
      }));
      const svc = createImageService({ fetch: f, pollIntervalMs: 20 });
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 30);
      await assert.rejects(svc.generateAssetImageKey(PROJECT, 'x', null, { signal: ac.signal, cancelOnAbort }), (e) => {
        assert.equal(e.code, 'ABORTED');
        if (cancelOnAbort) assert.equal(e.jobId, JOB);
        return true;
      });
      const cancels = f.calls.filter((c) => c.url.endsWith('/cancel'));
      assert.equal(cancels.length, cancelOnAbort ? 1 : 0, `cancelOnAbort ${cancelOnAbort}`);
      if (cancelOnAbort) assert.ok(cancels[0].url.endsWith(`/api/images/jobs/${JOB}/cancel`));
      assert.equal(f.calls.filter((c) => c.url.endsWith('/api/images/generate')).length, 1, 'one create');
      assert.equal(f.calls.filter((c) => c.method === 'GET').length, 0, 'no polling after the abort');
    }
  });

  test('an already aborted signal sends nothing', async () => {
    const f = fakeFetch(() => json(202, { jobId: JOB, status: 'queued' }));
    const svc = createImageService({ fetch: f });
    await assert.rejects(svc.generateAssetImageKey(PROJECT, 'x', null, { signal: AbortSignal.abort() }),
      (e) => e.code === 'ABORTED');
    assert.equal(f.calls.length, 0);
  });

  test('429 and 503 while polling back off as Retry-After says', async () => {
    let n = 0;
    const f = fakeFetch(() => {
      n++;
      if (n === 1) return json(429, { error: { code: 'RATE_LIMITED', message: 'slow down' } }, { 'Retry-After': '1' });
      if (n === 2) return json(503, { error: { code: 'SERVICE_UNAVAILABLE', message: 'busy' } }, { 'Retry-After': '1' });
      return json(200, job('completed', { publicUrl: 'https://x.test/b.png' }));
    });
    const updates = [];
    const svc = createImageService({ fetch: f, pollIntervalMs: 10, timeoutMs: 10000 });
    const done = await svc.waitForJob(JOB, { onUpdate: (j) => updates.push(j.status) });
    assert.equal(done.status, 'completed');
    assert.equal(f.calls.length, 3);
    const gap1 = f.calls[1].at - f.calls[0].at;
    const gap2 = f.calls[2].at - f.calls[1].at;
    assert.ok(gap1 >= 950, `first back-off ${gap1} ms`);
    assert.ok(gap2 >= 950, `second back-off ${gap2} ms`);
    assert.deepEqual(updates, ['completed']);
  });

  test('without Retry-After the back-off doubles from pollIntervalMs', async () => {
    let n = 0;
    const f = fakeFetch(() => (++n <= 3 ? json(503, { error: { code: 'SERVICE_UNAVAILABLE', message: 'x' } })
      : json(200, job('completed'))));
    const svc = createImageService({ fetch: f, pollIntervalMs: 40 });
    await svc.waitForJob(JOB);
    const gaps = f.calls.slice(1).map((c, i) => c.at - f.calls[i].at);
    assert.ok(gaps[0] >= 35 && gaps[1] >= 75 && gaps[2] >= 155, `gaps ${gaps}`);
  });

  test('a 429 on the create is retried with the same key after Retry-After', async () => {
    const f = fakeFetch((c, n) => (n === 1
      ? json(429, { error: { code: 'RATE_LIMITED', message: 'x' } }, { 'Retry-After': '1' })
      : json(202, { jobId: JOB, status: 'queued' })));
    const svc = createImageService({ fetch: f, pollIntervalMs: 10 });
    await svc.createJob({ projectId: PROJECT, jobType: 'master_asset', prompt: 'p' });
    assert.equal(f.calls.length, 2);
    assert.equal(f.calls[0].headers['Idempotency-Key'], f.calls[1].headers['Idempotency-Key']);
    assert.ok(f.calls[1].at - f.calls[0].at >= 950);
  });

  test('a failed job rejects with JOB_FAILED, its code in jobErrorCode, and failureStage', async () => {
    const f = fakeFetch(() => json(200, job('failed', { error: { code: 'CONTENT_POLICY', message: 'refused', failureStage: 'generating' } })));
    const svc = createImageService({ fetch: f });
    await assert.rejects(svc.waitForJob(JOB), (e) => {
      assert.ok(e instanceof ImageServiceError);
      assert.equal(e.code, 'JOB_FAILED');
      assert.equal(e.jobErrorCode, 'CONTENT_POLICY');
      assert.equal(e.failureStage, 'generating');
      assert.equal(e.jobId, JOB);
      assert.equal(e.message, 'refused');
      return true;
    });
  });

  test('a job failed with a provider TIMEOUT is JOB_FAILED, never the wait\'s TIMEOUT', async () => {
    const f = fakeFetch(() => json(200, job('failed', { error: { code: 'TIMEOUT', message: 'provider timed out', failureStage: 'generating' } })));
    const svc = createImageService({ fetch: f, timeoutMs: 10000 });
    await assert.rejects(svc.waitForJob(JOB), (e) => {
      assert.ok(e instanceof ImageServiceError);
      assert.equal(e.code, 'JOB_FAILED');
      assert.equal(e.jobErrorCode, 'TIMEOUT');
      assert.equal(e.failureStage, 'generating');
      assert.equal(e.job.status, 'failed');
      return true;
    });
  });

  test('onUpdate sees each state once; the capsule audit goes to onAudit', async () => {
    const states = ['queued', 'queued', 'generating', 'uploading', 'completed'];
    let i = 0;
    const capsule = '77777777-6666-4555-8444-333333333333';
    const f = fakeFetch((c) => {
      if (c.method === 'POST') return json(202, { jobId: JOB, status: 'queued' });
      if (c.url.endsWith('/events')) {
        return json(200, { jobId: JOB, events: [
          { id: 1, event: 'status', fromStatus: null, toStatus: 'queued', detail: null, createdAt: 'a' },
          { id: 2, event: 'style_capsule_applied', fromStatus: null, toStatus: null,
            detail: { capsuleId: capsule, name: 'Noir', shared: false, styleText: 'ink' }, createdAt: 'b' },
        ] });
      }
      const s = states[Math.min(i++, states.length - 1)];
      return json(200, job(s, { publicUrl: s === 'completed' ? 'https://x.test/c.png' : null }));
    });
    const audits = [];
    const updates = [];
    const svc = createImageService({ fetch: f, pollIntervalMs: 5, onAudit: (r) => audits.push(r) });
    const r = await svc.generateAssetImageKey(PROJECT, 'p', capsule, { onUpdate: (j) => updates.push(j.status) });
    assert.equal(r.imageUrl, 'https://x.test/c.png');
    assert.deepEqual(updates, ['queued', 'generating', 'uploading', 'completed']);
    assert.equal(audits.length, 1);
    assert.equal(audits[0].type, 'style_capsule_applied');
    assert.equal(audits[0].capsuleId, capsule);
    assert.equal(audits[0].name, 'Noir');
    assert.equal(audits[0].jobId, JOB);
    assert.equal(f.calls[0].body.visualStyleCapsuleId, capsule);
  });

  test('the default imageService takes the token of a supabase-js session on globalThis', async () => {
    const f = fakeFetch(() => json(200, { projects: [] }));
    globalThis.supabase = { auth: { getSession: async () => ({ data: { session: { access_token: 'sb-token' } } }) } };
    try {
      imageService.configure({ fetch: f, baseUrl: 'https://api.test/' });
      assert.deepEqual(await imageService.listProjects(), []);
      assert.equal(f.calls[0].headers.Authorization, 'Bearer sb-token');
      assert.equal(f.calls[0].url, 'https://api.test/api/projects');
      delete globalThis.supabase;
      imageService.configure({ getAccessToken: async () => 'given' });
      await imageService.listProjects();
      assert.equal(f.calls[1].headers.Authorization, 'Bearer given');
    } finally {
      delete globalThis.supabase;
      imageService.configure({ fetch: undefined, baseUrl: '', getAccessToken: undefined });
    }
  });

  test('generateFrame and inpaint send the bodies SPEC section 3 asks for', async () => {
    const f = fakeFetch((c) => (c.method === 'POST' ? json(202, { jobId: JOB, status: 'queued' })
      : json(200, job('completed', { publicUrl: 'https://x.test/f.png' }))));
    const svc = createImageService({ fetch: f, pollIntervalMs: 5 });
    const scene = '33333333-3333-4333-8333-333333333333';
    const shot = '44444444-4444-4444-8444-444444444444';
    await svc.generateFrame({ projectId: PROJECT, sceneId: scene, shotId: shot, prompt: 'dawn', frame: 'end', width: 640, height: 360 });
    await svc.inpaint({ projectId: PROJECT, prompt: 'fix', sourceImageUrl: '/storage/v1/object/public/asset-images/a.png',
      maskImageUrl: '/storage/v1/object/public/asset-images/m.png', branchId: 'b' });
    const posts = f.calls.filter((c) => c.method === 'POST').map((c) => c.body);
    assert.deepEqual(posts[0], { projectId: PROJECT, jobType: 'end_frame', prompt: 'dawn', sceneId: scene, shotId: shot, width: 640, height: 360 });
    assert.deepEqual(posts[1], { projectId: PROJECT, jobType: 'inpaint', prompt: 'fix', branchId: 'b',
      sourceImageUrl: '/storage/v1/object/public/asset-images/a.png', maskImageUrl: '/storage/v1/object/public/asset-images/m.png' });
    await assert.rejects(svc.generateFrame({ projectId: PROJECT, sceneId: scene, shotId: shot, prompt: 'x', frame: 'middle' }),
      (e) => e.code === 'VALIDATION_ERROR');
  });

  test('without onAudit the applied capsule goes to console.info', async () => {
    const f = fakeFetch((c) => {
      if (c.method === 'POST') return json(202, { jobId: JOB, status: 'queued' });
      if (c.url.endsWith('/events')) {
        return json(200, { jobId: JOB, events: [{ id: 9, event: 'style_capsule_applied', fromStatus: null, toStatus: null,
          detail: { capsuleId: 'c1', name: 'Noir', shared: true, styleText: 'ink' }, createdAt: 'z' }] });
      }
      return json(200, job('completed', { publicUrl: 'https://x.test/d.png' }));
    });
    const seen = [];
    const info = console.info;
    console.info = (...a) => seen.push(a);
    try {
      await createImageService({ fetch: f, pollIntervalMs: 5 }).generateAssetImageKey(PROJECT, 'p', 'c1');
    } finally {
      console.info = info;
    }
    assert.equal(seen.length, 1);
    assert.equal(seen[0][1].capsuleId, 'c1');
    assert.equal(seen[0][1].name, 'Noir');
  });

  test('parseRetryAfter reads seconds and HTTP dates', () => {
    assert.equal(parseRetryAfter('3'), 3000);
    assert.equal(parseRetryAfter(null), null);
    assert.equal(parseRetryAfter('soon'), null);
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now), 5000);
  });
});

// ------------------------------------------------------------- real stack

const BASE = process.env.IMAGEGEN_TEST_BASE_URL;
const TOKEN = process.env.IMAGEGEN_TEST_TOKEN;
const REAL_PROJECT = process.env.IMAGEGEN_TEST_PROJECT;
const CAPSULE = process.env.IMAGEGEN_TEST_CAPSULE;
const real = BASE && TOKEN && REAL_PROJECT ? {} : { skip: 'IMAGEGEN_TEST_BASE_URL/TOKEN/PROJECT not set' };

function pngSize(buf) {
  assert.equal(Buffer.from(buf.subarray(0, 8)).toString('hex'), '89504e470d0a1a0a', 'a PNG');
  const dv = new DataView(buf.buffer, buf.byteOffset);
  return [dv.getUint32(16), dv.getUint32(20)];
}

describe('imageService against the real stack', real, () => {
  const svc = (more = {}) => createImageService({ baseUrl: BASE, getAccessToken: () => TOKEN, pollIntervalMs: 100, ...more });

  test('generateAssetImageKey(projectId, prompt) gives a URL that serves the PNG', async () => {
    const updates = [];
    const r = await svc().generateAssetImageKey(REAL_PROJECT, 'a medieval castle on a hill', undefined,
      { width: 96, height: 64, onUpdate: (j) => updates.push(j.status) });
    assert.equal(r.job.status, 'completed');
    assert.equal(r.job.width, 96);
    assert.ok(updates.includes('completed'));
    assert.match(r.imageUrl, /^https?:\/\//, 'an absolute URL');
    const res = await fetch(r.imageUrl.replace(/^https:\/\/localhost:\d+/, BASE));
    assert.equal(res.status, 200);
    assert.deepEqual(pngSize(new Uint8Array(await res.arrayBuffer())), [96, 64]);
  });

  test('a connection dropped after the server answered: the retry replays the same job', async () => {
    let first = null;
    const posts = [];
    const dropping = async (url, init) => {
      const res = await fetch(url, init);
      if (init.method === 'POST') {
        posts.push(init.headers['Idempotency-Key']);
        if (first === null) {
          first = await res.json();
          throw new TypeError('fetch failed: connection reset');
        }
      }
      return res;
    };
    const s = svc({ fetch: dropping });
    const created = await s.createJob({ projectId: REAL_PROJECT, jobType: 'master_asset', prompt: 'a lighthouse', width: 64, height: 64 });
    assert.equal(posts.length, 2);
    assert.equal(posts[0], posts[1]);
    assert.equal(created.jobId, first.jobId, 'the same job, not a second one');
    assert.equal(created.replayed, true);
    const done = await s.waitForJob(created.jobId);
    assert.equal(done.status, 'completed');
    const list = await s.listJobs({ projectId: REAL_PROJECT, limit: 100 });
    assert.equal(list.jobs.filter((j) => j.prompt === 'a lighthouse').length, 1);
  });

  test('a timeout leaves the job running; it completes later', async () => {
    const s = svc();
    const created = await s.createJob({ projectId: REAL_PROJECT, jobType: 'master_asset', prompt: 'a slow tower', width: 64, height: 64 });
    await assert.rejects(s.waitForJob(created.jobId, { timeoutMs: 200 }), (e) => e.code === 'TIMEOUT' && e.jobId === created.jobId);
    const done = await s.waitForJob(created.jobId, { timeoutMs: 30000 });
    assert.equal(done.status, 'completed');
  });

  test('an abort with cancelOnAbort cancels the job on the server', async () => {
    const s = svc();
    const ac = new AbortController();
    let jobId = null;
    // aborted while the wait runs: 200 ms after the job was first seen
    await assert.rejects(s.generateAssetImageKey(REAL_PROJECT, 'a canceled bridge', null, {
      signal: ac.signal,
      cancelOnAbort: true,
      onUpdate: (j) => { if (!jobId) setTimeout(() => ac.abort(), 200); jobId = j.jobId; },
    }), (e) => e.code === 'ABORTED' && e.jobId === jobId);
    assert.ok(jobId);
    let j;
    for (let i = 0; i < 100; i++) {
      j = await s.getJob(jobId);
      if (['completed', 'failed', 'canceled'].includes(j.status)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(j.status, 'canceled');
  });

  test('a style capsule applied goes to onAudit; listProjects has the project', { skip: CAPSULE ? false : 'IMAGEGEN_TEST_CAPSULE not set' }, async () => {
    const audits = [];
    const s = svc({ onAudit: (r) => audits.push(r) });
    const r = await s.generateAssetImageKey(REAL_PROJECT, 'a capsule castle', CAPSULE);
    assert.equal(r.job.status, 'completed');
    assert.equal(audits.length, 1);
    assert.equal(audits[0].capsuleId, CAPSULE);
    assert.equal(audits[0].jobId, r.jobId);
    const events = await s.getJobEvents(r.jobId);
    assert.ok(events.some((e) => e.event === 'status' && e.toStatus === 'completed'));
    const projects = await s.listProjects();
    const p = projects.find((x) => x.id === REAL_PROJECT);
    assert.ok(p, 'the project is listed');
    assert.ok(p.branches.some((b) => b.isMain));
  });

  test('preferWait: the server holds the answer until the job ended, one POST and no polling', async () => {
    const calls = [];
    const counting = (url, init) => { calls.push(init.method); return fetch(url, init); };
    const t0 = Date.now();
    const r = await svc({ fetch: counting }).generateAssetImageKey(REAL_PROJECT, 'a held castle', null,
      { preferWait: 20, width: 64, height: 64 });
    assert.equal(r.job.status, 'completed');
    assert.deepEqual(calls, ['POST'], 'the 201 carried the finished job');
    assert.ok(Date.now() - t0 < 15000);
  });

  test('an unknown job is NOT_FOUND; a bad token is UNAUTHORIZED', async () => {
    await assert.rejects(svc().getJob(JOB), (e) => e.code === 'NOT_FOUND' && e.status === 404);
    await assert.rejects(svc({ getAccessToken: () => 'not.a.token' }).listJobs(), (e) => e.code === 'UNAUTHORIZED' && e.status === 401);
  });
});
