// imageService.js - the browser (and Node >= 20) client of imagegen's HTTP API.
//
// A dependency-free ES module, served as it is by nginx at /imageService.js
// (no build step). It does what the implementation guide's frontend
// imageService does: creates a job with an idempotency key, polls its status
// every second for at most 60 seconds, returns the public URL when the job
// completes, and logs the applied style capsule for the audit trail.
//
//   import { imageService } from '/imageService.js';
//   const { imageUrl } = await imageService.generateAssetImageKey(
//       projectId, 'A medieval castle on a hill', visualStyleCapsuleId);
//
//   import { createImageService } from '/imageService.js';
//   const svc = createImageService({ baseUrl: 'https://imagegen.example.com',
//                                    getAccessToken: () => myToken });
//
// Types: imageService.d.ts beside this file (and the JSDoc below).

/**
 * @typedef {'queued'|'processing'|'generating'|'uploading'|'completed'|'failed'|'canceled'} JobStatus
 * @typedef {'master_asset'|'start_frame'|'end_frame'|'inpaint'} JobType
 */

/**
 * A job as `GET /api/images/jobs/{jobId}` answers it.
 * @typedef {object} Job
 * @property {string} jobId
 * @property {JobStatus} status
 * @property {JobType} [jobType]
 * @property {string} [projectId]
 * @property {string} [branchId]
 * @property {string|null} [assetId]
 * @property {string|null} [sceneId]
 * @property {string|null} [shotId]
 * @property {string|null} [visualStyleCapsuleId]
 * @property {string} [prompt]
 * @property {number} [width]
 * @property {number} [height]
 * @property {string|null} [publicUrl]
 * @property {string|null} [storagePath]
 * @property {{estimated: number|null, actual: number|null, currency: string}} [cost]
 * @property {number} [attempts]
 * @property {string|null} [retryOf]
 * @property {string} [createdAt]
 * @property {string|null} [startedAt]
 * @property {string|null} [completedAt]
 * @property {string} [updatedAt]
 * @property {{code: string, message: string, failureStage: string|null}} [error]
 */

/**
 * One row of a job's history (`GET /api/images/jobs/{jobId}/events`).
 * @typedef {object} JobEvent
 * @property {number} id
 * @property {string} event            'status', 'style_capsule_applied', ...
 * @property {string|null} fromStatus
 * @property {string|null} toStatus
 * @property {object|null} detail
 * @property {string} createdAt
 */

/**
 * A project of the caller with its branches (`GET /api/projects`).
 * @typedef {object} Project
 * @property {string} id
 * @property {string} name
 * @property {string} createdAt
 * @property {{id: string, name: string, isMain: boolean}[]} branches
 */

/**
 * What `onAudit` receives when a job applied a visual style capsule.
 * @typedef {object} AuditRecord
 * @property {'style_capsule_applied'} type
 * @property {string} jobId
 * @property {string|null} capsuleId
 * @property {string|null} name
 * @property {boolean|null} shared
 * @property {string|null} styleText
 * @property {string} createdAt
 * @property {JobEvent} event
 */

/**
 * Options of createImageService().
 * @typedef {object} ImageServiceOptions
 * @property {string} [baseUrl='']            origin (and path prefix) of the API; '' = same origin
 * @property {() => (string|null|undefined|Promise<string|null|undefined>)} [getAccessToken]
 *           the bearer token for each request
 * @property {{auth: {getSession: () => Promise<any>}}} [supabase]
 *           a supabase-js client: its session's access_token is used first
 * @property {boolean} [useGlobalSupabase=false] use `globalThis.supabase` as that client when it
 *           is one (has auth.getSession); true for the default imageService
 * @property {number} [pollIntervalMs=1000]   time between two status polls
 * @property {number} [timeoutMs=60000]       longest wait for a job to end
 * @property {number} [requestTimeoutMs=30000] longest wait for one HTTP answer
 * @property {number} [retries=3]             network retries of one call
 * @property {number} [maxBackoffMs=30000]    cap of the back-off between polls
 * @property {typeof fetch} [fetch]           the fetch to use (default globalThis.fetch)
 * @property {(rec: AuditRecord) => void} [onAudit]  default console.info
 */

/**
 * Per-call options of the generate* calls and createJob().
 * @typedef {object} CallOptions
 * @property {AbortSignal} [signal]          aborts the call (and the wait)
 * @property {boolean} [cancelOnAbort=false] an abort also cancels the job (even one that
 *           comes while the create is under way: its answer is awaited, then that job canceled)
 * @property {(job: Job) => void} [onUpdate] called with each new state of the job
 * @property {string} [idempotencyKey]       default crypto.randomUUID()
 * @property {number} [timeoutMs]            overrides the service's timeoutMs
 * @property {number} [pollIntervalMs]       overrides the service's pollIntervalMs
 * @property {number} [preferWait]           send `Prefer: wait=N` (seconds) with the create
 */

const RETRY_STATUS = new Set([429, 502, 503, 504]);

/**
 * The one error type of this module.
 *
 * `code` is the API's error code (`VALIDATION_ERROR`, `UNAUTHORIZED`,
 * `RATE_LIMITED`, ...) or one of this client's: `JOB_FAILED` (the job
 * failed: the server's `error.code` is in `jobErrorCode`, its stage in
 * `failureStage`), `TIMEOUT` (the wait ran past timeoutMs; the job keeps
 * running), `ABORTED` (the signal fired), `CANCELED` (the job was
 * canceled), `NETWORK_ERROR`, `BAD_RESPONSE` (an answer that is not the
 * API's JSON).
 */
export class ImageServiceError extends Error {
  /**
   * @param {{code: string, message: string, failureStage?: string|null,
   *          jobErrorCode?: string|null, status?: number, jobId?: string|null, job?: Job|null,
   *          retryAfterMs?: number|null, cause?: unknown}} init
   */
  constructor(init) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'ImageServiceError';
    /** @type {string} */
    this.code = init.code;
    /** @type {string|null} the stage a failed job failed at */
    this.failureStage = init.failureStage ?? null;
    /** @type {string|null} with code JOB_FAILED: the job's own error.code (e.g. CONTENT_POLICY) */
    this.jobErrorCode = init.jobErrorCode ?? null;
    /** @type {number} the HTTP status (0 when none) */
    this.status = init.status ?? 0;
    /** @type {string|null} */
    this.jobId = init.jobId ?? null;
    /** @type {Job|null} the job as last seen, when there is one */
    this.job = init.job ?? null;
    /** @type {number|null} what Retry-After said, in ms */
    this.retryAfterMs = init.retryAfterMs ?? null;
  }
}

/**
 * Retry-After (delay-seconds or an HTTP-date) in milliseconds, or null.
 * @param {string|null|undefined} value
 * @param {number} [now]
 * @returns {number|null}
 */
export function parseRetryAfter(value, now = Date.now()) {
  if (value == null) return null;
  const v = String(value).trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return null;
  return Math.max(0, t - now);
}

function randomKey() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  // crypto.randomUUID needs a secure context in browsers: fall back to
  // getRandomValues, which does not.
  const b = new Uint8Array(16);
  c.getRandomValues(b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function abortError(signal, jobId) {
  const reason = signal && signal.reason;
  return new ImageServiceError({
    code: 'ABORTED',
    message: reason instanceof Error && reason.name !== 'AbortError' ? reason.message : 'aborted',
    jobId: jobId ?? null,
    cause: reason,
  });
}

/** Resolves after ms, or rejects with ABORTED when signal fires first. */
function sleep(ms, signal, jobId) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) return reject(abortError(signal, jobId));
    const t = setTimeout(() => {
      if (signal) signal.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    function onAbort() {
      clearTimeout(t);
      reject(abortError(signal, jobId));
    }
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
  });
}

function encodeId(id) {
  if (typeof id !== 'string' || id === '') {
    throw new ImageServiceError({ code: 'VALIDATION_ERROR', message: 'jobId: must be a non-empty string' });
  }
  return encodeURIComponent(id);
}

/**
 * Makes a client of the API.
 * @param {ImageServiceOptions} [options]
 * @returns {ImageService}
 */
export function createImageService(options = {}) {
  /** @type {Required<Pick<ImageServiceOptions,'pollIntervalMs'|'timeoutMs'|'requestTimeoutMs'|'retries'|'maxBackoffMs'>> & ImageServiceOptions} */
  const opt = {
    baseUrl: '',
    pollIntervalMs: 1000,
    timeoutMs: 60000,
    requestTimeoutMs: 30000,
    retries: 3,
    maxBackoffMs: 30000,
    ...options,
  };

  function fetchFn(url, init) {
    const f = opt.fetch || globalThis.fetch;
    if (typeof f !== 'function') throw new Error('imageService: no fetch available');
    return f.call(globalThis, url, init);
  }

  async function token() {
    let sb = opt.supabase;
    if (!sb && opt.useGlobalSupabase) {
      const g = globalThis.supabase;
      if (g && g.auth && typeof g.auth.getSession === 'function') sb = g;
    }
    if (sb && sb.auth && typeof sb.auth.getSession === 'function') {
      const r = await sb.auth.getSession();
      const t = r && r.data && r.data.session && r.data.session.access_token;
      if (t) return t;
    }
    if (typeof opt.getAccessToken === 'function') {
      const t = await opt.getAccessToken();
      if (t) return String(t);
    }
    return null;
  }

  // A public URL relative to the API's origin (local storage's default
  // IMAGEGEN_PUBLIC_BASE_URL) made absolute when baseUrl names one.
  function absolute(u) {
    if (typeof u !== 'string' || !u.startsWith('/') || !opt.baseUrl) return u;
    try { return new URL(u, opt.baseUrl).href; } catch (e) { return u; }
  }

  function url(path) {
    return String(opt.baseUrl || '').replace(/\/+$/, '') + path;
  }

  /**
   * One HTTP exchange: the parsed JSON on 2xx, else an ImageServiceError.
   * Network errors are NETWORK_ERROR; 429/502/503/504 carry retryAfterMs.
   */
  async function once(method, path, { body, headers, signal, timeoutMs } = {}) {
    const limit = timeoutMs ?? opt.requestTimeoutMs;
    const h = { Accept: 'application/json', ...(headers || {}) };
    const t = await token();
    if (t) h.Authorization = `Bearer ${t}`;
    if (body !== undefined) h['Content-Type'] = 'application/json';
    // One request: the caller's signal, or the request timeout.
    const ctl = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; ctl.abort(); }, limit);
    const onAbort = () => ctl.abort();
    if (signal) {
      if (signal.aborted) { clearTimeout(timer); throw abortError(signal); }
      signal.addEventListener('abort', onAbort, { once: true });
    }
    let res;
    let text;
    try {
      res = await fetchFn(url(path), {
        method,
        headers: h,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: ctl.signal,
        cache: 'no-store',
      });
      text = await res.text();
    } catch (e) {
      if (signal && signal.aborted) throw abortError(signal);
      throw new ImageServiceError({
        code: 'NETWORK_ERROR',
        message: timedOut ? `${method} ${path}: no answer within ${limit} ms`
          : `${method} ${path}: ${e && e.message ? e.message : e}`,
        cause: e,
      });
    } finally {
      clearTimeout(timer);
      if (signal) signal.removeEventListener('abort', onAbort);
    }
    let data = null;
    if (text !== '') {
      try {
        data = JSON.parse(text);
      } catch (e) {
        data = undefined;
      }
    }
    const retryAfterMs = parseRetryAfter(res.headers.get('Retry-After'));
    if (res.ok) {
      if (data === undefined || data === null || typeof data !== 'object') {
        throw new ImageServiceError({ code: 'BAD_RESPONSE', status: res.status,
          message: `${method} ${path}: answer ${res.status} is not JSON` });
      }
      return { data, status: res.status, headers: res.headers };
    }
    const err = data && typeof data === 'object' && data.error && typeof data.error === 'object' ? data.error : null;
    throw new ImageServiceError({
      code: err && err.code ? String(err.code) : (res.status === 429 ? 'RATE_LIMITED' : `HTTP_${res.status}`),
      message: err && err.message ? String(err.message) : `${method} ${path}: HTTP ${res.status}`,
      failureStage: err ? err.failureStage : null,
      status: res.status,
      retryAfterMs,
    });
  }

  function retryable(e) {
    return e instanceof ImageServiceError &&
      (e.code === 'NETWORK_ERROR' || RETRY_STATUS.has(e.status) || e.code === 'IDEMPOTENCY_IN_FLIGHT');
  }

  function backoff(attempt, e) {
    const base = Math.min(opt.maxBackoffMs, opt.pollIntervalMs * 2 ** attempt);
    return Math.min(opt.maxBackoffMs, Math.max(base, e && e.retryAfterMs != null ? e.retryAfterMs : 0));
  }

  /**
   * A call retried on network errors, 429/502/503/504 and 409
   * IDEMPOTENCY_IN_FLIGHT, with the same request (so the same
   * Idempotency-Key) each time.
   */
  async function call(method, path, init = {}) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await once(method, path, init);
      } catch (e) {
        if (!retryable(e) || attempt >= opt.retries) throw e;
        // stopSignal: stops the retries, not a request under way
        await sleep(backoff(attempt, e), init.signal || init.stopSignal);
      }
    }
  }

  /**
   * POST /api/images/generate. Sends an Idempotency-Key (the given one, or
   * a new crypto.randomUUID()) and sends the same key again on each retry.
   * @param {object} body  the request body (SPEC section 3); branchId may be left out
   * @param {CallOptions} [o]
   * @returns {Promise<Job & {idempotencyKey: string, replayed: boolean}>}
   *          the answer: {jobId, status} (or the whole job with preferWait)
   */
  async function createJob(body, o = {}) {
    if (!body || typeof body !== 'object') {
      throw new ImageServiceError({ code: 'VALIDATION_ERROR', message: 'body: must be an object' });
    }
    const idempotencyKey = o.idempotencyKey || body.idempotencyKey || randomKey();
    const headers = { 'Idempotency-Key': idempotencyKey };
    let timeoutMs;
    if (o.preferWait != null) {
      const n = Math.max(0, Math.floor(o.preferWait));
      headers.Prefer = `wait=${n}`;
      // the server holds the answer up to n s: wait for it that long and more
      timeoutMs = Math.max(opt.requestTimeoutMs, (n + 15) * 1000);
    }
    const b = { ...body };
    delete b.idempotencyKey;
    const signal = o.signal;
    let r;
    if (signal && o.cancelOnAbort) {
      // An abort once the POST is on its way may come after the server
      // made the job: the answer is read to its end all the same (bounded
      // by the request timeout), and the job it names is canceled.
      if (signal.aborted) throw abortError(signal);
      try {
        r = await call('POST', '/api/images/generate', { body: b, headers, stopSignal: signal, timeoutMs });
      } catch (e) {
        if (signal.aborted) throw abortError(signal);
        throw e;
      }
      if (signal.aborted) {
        const id = typeof r.data.jobId === 'string' ? r.data.jobId : null;
        if (id) {
          try { await cancelJob(id); } catch (ce) { /* the abort is what the caller sees */ }
        }
        throw abortError(signal, id);
      }
    } else {
      r = await call('POST', '/api/images/generate', { body: b, headers, signal, timeoutMs });
    }
    if (typeof r.data.jobId !== 'string') {
      throw new ImageServiceError({ code: 'BAD_RESPONSE', status: r.status, message: 'generate: answer has no jobId' });
    }
    return { ...r.data, idempotencyKey, replayed: r.headers.get('Idempotent-Replayed') === 'true' };
  }

  /**
   * GET /api/images/jobs/{jobId}.
   * @param {string} jobId
   * @param {{signal?: AbortSignal}} [o]
   * @returns {Promise<Job>}
   */
  async function getJob(jobId, o = {}) {
    return (await call('GET', `/api/images/jobs/${encodeId(jobId)}`, { signal: o.signal })).data;
  }

  /**
   * POST /api/images/jobs/{jobId}/cancel: a queued job is canceled at
   * once, a running one at its next stage boundary.
   * @param {string} jobId
   * @returns {Promise<Job>}
   */
  async function cancelJob(jobId, o = {}) {
    return (await call('POST', `/api/images/jobs/${encodeId(jobId)}/cancel`, { signal: o.signal })).data;
  }

  /**
   * POST /api/images/jobs/{jobId}/retry: a failed or canceled job again,
   * as a new job (its retryOf names the old one).
   * @param {string} jobId
   * @returns {Promise<{jobId: string, status: JobStatus}>}
   */
  async function retryJob(jobId, o = {}) {
    return (await once('POST', `/api/images/jobs/${encodeId(jobId)}/retry`, { signal: o.signal })).data;
  }

  /**
   * GET /api/images/jobs: the caller's jobs, newest first.
   * @param {{projectId?: string, status?: JobStatus, limit?: number, cursor?: string, signal?: AbortSignal}} [params]
   * @returns {Promise<{jobs: Job[], nextCursor: string|null}>}
   */
  async function listJobs(params = {}) {
    const q = new URLSearchParams();
    for (const k of ['projectId', 'status', 'limit', 'cursor']) {
      if (params[k] != null && params[k] !== '') q.set(k, String(params[k]));
    }
    const s = q.toString();
    return (await call('GET', `/api/images/jobs${s ? `?${s}` : ''}`, { signal: params.signal })).data;
  }

  /**
   * GET /api/projects: the caller's projects (newest first), each with
   * its branches (main first).
   * @returns {Promise<Project[]>}
   */
  async function listProjects(o = {}) {
    const d = (await call('GET', '/api/projects', { signal: o.signal })).data;
    return Array.isArray(d.projects) ? d.projects : [];
  }

  /**
   * GET /api/images/jobs/{jobId}/events: the job's history, oldest first.
   * @param {string} jobId
   * @returns {Promise<JobEvent[]>}
   */
  async function getJobEvents(jobId, o = {}) {
    const d = (await call('GET', `/api/images/jobs/${encodeId(jobId)}/events`, { signal: o.signal })).data;
    return Array.isArray(d.events) ? d.events : [];
  }

  /**
   * Polls the job every pollIntervalMs until it ends. Resolves with the
   * completed job; rejects with an ImageServiceError: JOB_FAILED when it
   * failed (the job's error code in jobErrorCode, and failureStage), CANCELED, TIMEOUT after timeoutMs
   * (the job keeps running), ABORTED when signal fires (with cancelOnAbort
   * the job is canceled too). 429 and 503 answers slow the polling down,
   * honouring Retry-After.
   * @param {string} jobId
   * @param {{signal?: AbortSignal, onUpdate?: (job: Job) => void, timeoutMs?: number,
   *          pollIntervalMs?: number, cancelOnAbort?: boolean}} [o]
   * @returns {Promise<Job>}
   */
  async function waitForJob(jobId, o = {}) {
    encodeId(jobId);
    const timeoutMs = o.timeoutMs ?? opt.timeoutMs;
    const interval = o.pollIntervalMs ?? opt.pollIntervalMs;
    const deadline = Date.now() + timeoutMs;
    const signal = o.signal;
    let last = null;
    let seen = '';
    let slow = 0;
    const timeout = () => new ImageServiceError({
      code: 'TIMEOUT', jobId, job: last, status: 0,
      message: `job ${jobId} did not end within ${timeoutMs} ms (it keeps running; status ${last ? last.status : 'unknown'})`,
    });
    try {
      for (;;) {
        if (signal && signal.aborted) throw abortError(signal, jobId);
        let wait = interval;
        try {
          // one poll never runs past the deadline: an answer that does not
          // come before it is the wait's TIMEOUT, not a request's
          const pollMs = Math.max(1, Math.min(opt.requestTimeoutMs, deadline - Date.now()));
          const job = (await once('GET', `/api/images/jobs/${encodeId(jobId)}`, { signal, timeoutMs: pollMs })).data;
          slow = 0;
          last = job;
          const mark = `${job.status}|${job.updatedAt}|${job.attempts}`;
          if (mark !== seen) {
            seen = mark;
            if (o.onUpdate) o.onUpdate(job);
          }
          if (job.status === 'completed') return job;
          if (job.status === 'failed') {
            // one code for every failed job: the server's own (a
            // provider's TIMEOUT, say) never passes for one of this client's
            const je = job.error || {};
            throw new ImageServiceError({
              code: 'JOB_FAILED', jobErrorCode: je.code ? String(je.code) : null,
              message: je.message || `job ${jobId} failed`,
              failureStage: je.failureStage ?? null, status: 200, jobId, job,
            });
          }
          if (job.status === 'canceled') {
            throw new ImageServiceError({ code: 'CANCELED', message: `job ${jobId} was canceled`, status: 200, jobId, job });
          }
        } catch (e) {
          if (!retryable(e)) throw e;
          // 429/503/network: back off, doubling, at least Retry-After.
          wait = backoff(slow++, e);
        }
        const left = deadline - Date.now();
        if (left <= 0) throw timeout();
        await sleep(Math.min(wait, left), signal, jobId);
        if (Date.now() >= deadline) throw timeout();
      }
    } catch (e) {
      if (e instanceof ImageServiceError) {
        if (e.jobId == null) e.jobId = jobId;
        if (e.code === 'ABORTED' && o.cancelOnAbort) {
          try { await cancelJob(jobId); } catch (ce) { /* the abort is what the caller sees */ }
        }
      }
      throw e;
    }
  }

  function audit(rec) {
    const f = opt.onAudit || ((r) => console.info('imageService: style capsule applied', r));
    try { f(rec); } catch (e) { /* an audit sink's error does not fail the job */ }
  }

  /** Reads the job's events and reports each style_capsule_applied one. */
  async function auditJob(job) {
    let events;
    try {
      events = await getJobEvents(job.jobId);
    } catch (e) {
      return [];
    }
    const out = [];
    for (const ev of events) {
      if (ev.event !== 'style_capsule_applied') continue;
      const d = ev.detail || {};
      const rec = {
        type: 'style_capsule_applied', jobId: job.jobId,
        capsuleId: d.capsuleId ?? job.visualStyleCapsuleId ?? null,
        name: d.name ?? null, shared: d.shared ?? null, styleText: d.styleText ?? null,
        createdAt: ev.createdAt, event: ev,
      };
      out.push(rec);
      audit(rec);
    }
    return out;
  }

  /**
   * Creates a job and waits for it: {jobId, imageUrl, job} (imageUrl is
   * the job's publicUrl, made absolute against baseUrl). The applied
   * style capsule (when the body names one) goes to onAudit.
   * @param {object} body
   * @param {CallOptions} [o]
   * @returns {Promise<{jobId: string, imageUrl: string, job: Job}>}
   */
  async function generate(body, o = {}) {
    const created = await createJob(body, o);
    let job = created;
    if (!(created.status === 'completed' && created.publicUrl)) {
      job = await waitForJob(created.jobId, o);
    }
    if (body.visualStyleCapsuleId) await auditJob(job);
    return { jobId: job.jobId, imageUrl: absolute(job.publicUrl), job };
  }

  function sized(o) {
    const b = {};
    for (const k of ['branchId', 'width', 'height', 'webhook', 'webhookEventsFilter']) {
      if (o[k] != null) b[k] = o[k];
    }
    return b;
  }

  /**
   * The guide's call: a master asset image of prompt, in the project's
   * main branch unless opts.branchId says otherwise.
   * @param {string} projectId
   * @param {string} prompt
   * @param {string|null} [visualStyleCapsuleId]
   * @param {CallOptions & {branchId?: string, assetId?: string, width?: number, height?: number}} [opts]
   * @returns {Promise<{jobId: string, imageUrl: string, job: Job}>}
   */
  function generateAssetImageKey(projectId, prompt, visualStyleCapsuleId, opts = {}) {
    const body = { projectId, jobType: 'master_asset', prompt, ...sized(opts) };
    if (visualStyleCapsuleId) body.visualStyleCapsuleId = visualStyleCapsuleId;
    if (opts.assetId) body.assetId = opts.assetId;
    return generate(body, opts);
  }

  /**
   * A start or end frame of a shot.
   * @param {{projectId: string, sceneId: string, shotId: string, prompt: string,
   *          frame?: 'start'|'end', branchId?: string, visualStyleCapsuleId?: string,
   *          width?: number, height?: number}} params
   * @param {CallOptions} [opts]
   * @returns {Promise<{jobId: string, imageUrl: string, job: Job}>}
   */
  function generateFrame(params, opts = {}) {
    const frame = params.frame || 'start';
    if (frame !== 'start' && frame !== 'end') {
      return Promise.reject(new ImageServiceError({ code: 'VALIDATION_ERROR', message: "frame: must be 'start' or 'end'" }));
    }
    const body = { projectId: params.projectId, jobType: `${frame}_frame`, prompt: params.prompt,
      sceneId: params.sceneId, shotId: params.shotId, ...sized(params) };
    if (params.visualStyleCapsuleId) body.visualStyleCapsuleId = params.visualStyleCapsuleId;
    return generate(body, opts);
  }

  /**
   * Inpaints sourceImageUrl (an image of this service's bucket) where
   * maskImageUrl says.
   * @param {{projectId: string, prompt: string, sourceImageUrl: string, maskImageUrl?: string,
   *          branchId?: string, assetId?: string, visualStyleCapsuleId?: string,
   *          width?: number, height?: number}} params
   * @param {CallOptions} [opts]
   * @returns {Promise<{jobId: string, imageUrl: string, job: Job}>}
   */
  function inpaint(params, opts = {}) {
    const body = { projectId: params.projectId, jobType: 'inpaint', prompt: params.prompt,
      sourceImageUrl: params.sourceImageUrl, ...sized(params) };
    for (const k of ['maskImageUrl', 'assetId', 'visualStyleCapsuleId']) {
      if (params[k]) body[k] = params[k];
    }
    return generate(body, opts);
  }

  /**
   * Changes the options of this service (baseUrl, getAccessToken,
   * supabase, timeouts, fetch, onAudit) for the calls that follow.
   * @param {ImageServiceOptions} more
   */
  function configure(more) {
    Object.assign(opt, more || {});
    return service;
  }

  /**
   * @typedef {object} ImageService
   * @property {typeof generateAssetImageKey} generateAssetImageKey
   * @property {typeof generateFrame} generateFrame
   * @property {typeof inpaint} inpaint
   * @property {typeof generate} generate
   * @property {typeof createJob} createJob
   * @property {typeof getJob} getJob
   * @property {typeof waitForJob} waitForJob
   * @property {typeof cancelJob} cancelJob
   * @property {typeof retryJob} retryJob
   * @property {typeof listJobs} listJobs
   * @property {typeof listProjects} listProjects
   * @property {typeof getJobEvents} getJobEvents
   * @property {typeof configure} configure
   */
  const service = {
    generateAssetImageKey, generateFrame, inpaint, generate, createJob, getJob,
    waitForJob, cancelJob, retryJob, listJobs, listProjects, getJobEvents, configure,
  };
  return service;
}

/**
 * The default service: same-origin API; the token comes from a supabase-js
 * client on the page (`globalThis.supabase` when it has `auth.getSession`,
 * or one given with `imageService.configure({ supabase })`), else from
 * `getAccessToken` set with `imageService.configure({ getAccessToken })`.
 * @type {ImageService}
 */
export const imageService = createImageService({ useGlobalSupabase: true });

export default imageService;
