// app.js - the demo page's script (nginx/www/index.html loads it as a
// module): a file of its own, not inline, so the page's
// Content-Security-Policy can say script-src 'self' with no 'unsafe-inline'.
import { createImageService, ImageServiceError } from '/imageService.js';

const $ = (id) => document.getElementById(id);
const ACTIVE = new Set(['queued', 'processing', 'generating', 'uploading']);
const TOKEN_KEY = 'imagegen.token';
let token = sessionStorage.getItem(TOKEN_KEY) || '';
let supabaseClient = null;
let current = null;          // { jobId, abort }
let listTimer = null;
let epoch = 0;               // +1 at each sign-out: older async work is dropped
let listSeq = 0;             // the latest refreshJobs call; only it renders

const svc = createImageService({
  getAccessToken: async () => {
    if (supabaseClient) {
      const { data } = await supabaseClient.auth.getSession();
      if (data && data.session) return data.session.access_token;
    }
    return token;
  },
  onAudit: (rec) => {
    console.info('style capsule applied', rec);
    addEvent({ event: 'audit', createdAt: rec.createdAt, detail: { capsuleId: rec.capsuleId, name: rec.name } });
  },
});
window.imagegenDemo = { svc };

function say(el, text, isError) {
  el.textContent = text;
  el.classList.toggle('error', !!isError);
}

function errText(e) {
  if (e instanceof ImageServiceError) {
    const code = e.code === 'JOB_FAILED' ? `Job failed: ${e.jobErrorCode || 'unknown'}` : e.code;
    return `${code}${e.failureStage ? ` (${e.failureStage})` : ''}: ${e.message}`;
  }
  return String(e && e.message ? e.message : e);
}

function time(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleTimeString();
}

// ---------------------------------------------------------------- sign-in

async function signedIn() {
  const mine = epoch;
  $('signout').hidden = false;
  try {
    await svc.listJobs({ limit: 1 });          // the token works (else 401)
    const r = await fetch('/api/me', { headers: { Authorization: `Bearer ${await tokenNow()}` } });
    const who = r.ok ? await r.json() : null;
    say($('whoami'), who ? `Signed in as ${who.email || who.userId} (${who.role}).` : 'Signed in.');
  } catch (e) {
    say($('whoami'), `Sign-in failed: ${errText(e)}`, true);
    return;
  }
  if (mine !== epoch) return;
  await loadProjects();
  if (mine !== epoch) return;
  $('go').disabled = false;
  $('refresh').disabled = false;
  refreshJobs();
}

async function tokenNow() {
  if (supabaseClient) {
    const { data } = await supabaseClient.auth.getSession();
    if (data && data.session) return data.session.access_token;
  }
  return token;
}

$('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = $('token').value.trim();
  if (!token) { say($('whoami'), 'Paste an access token first.', true); return; }
  sessionStorage.setItem(TOKEN_KEY, token);
  $('token').value = '';
  signedIn();
});

$('signout').addEventListener('click', async () => {
  // Nothing of the previous user's stays: their wait stops (the job
  // itself runs on), timers end, and the picture, history, progress,
  // projects and jobs are cleared.
  epoch++;
  listSeq++;
  clearTimeout(listTimer);
  listTimer = null;
  if (current) current.abort.abort();
  current = null;
  token = '';
  sessionStorage.removeItem(TOKEN_KEY);
  clearScreen();
  if (supabaseClient) {
    try { await supabaseClient.auth.signOut(); } catch (e) { console.warn(e); }
  }
  $('signout').hidden = true;
  $('go').disabled = true;
  $('refresh').disabled = true;
  $('jobs').replaceChildren();
  say($('whoami'), 'Signed out.');
});

function clearScreen() {
  const img = $('result-image');
  img.hidden = true;
  img.removeAttribute('src');
  img.alt = '';
  say($('result-caption'), '');
  say($('progress'), '');
  $('events').replaceChildren();
  $('jobs').replaceChildren();
  $('stop').disabled = true;
  projects = [];
  for (const id of ['project', 'branch']) {
    $(id).replaceChildren();
    $(id).disabled = true;
  }
}

// Supabase email/password: only when the operator put a /config.json
// beside this page, {"supabaseUrl": "https://….supabase.co" (or a path of
// this origin that proxies it), "supabaseAnonKey": "…"}. supabase-js is
// the local copy at /vendor/supabase.js (its UMD build): no CDN.
async function setUpSupabase() {
  let cfg = null;
  try {
    const r = await fetch('/config.json', { cache: 'no-store' });
    if (r.ok) cfg = await r.json();
  } catch (e) { /* none: token sign-in only */ }
  if (!cfg || typeof cfg.supabaseUrl !== 'string' || !cfg.supabaseAnonKey) return;
  const supabaseUrl = new URL(cfg.supabaseUrl, location.href).href.replace(/\/+$/, '');
  await new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = '/vendor/supabase.js';
    s.onload = resolve;
    s.onerror = () => reject(new Error('/vendor/supabase.js not found'));
    document.head.append(s);
  }).catch((e) => { console.warn(e.message); });
  if (!window.supabase || typeof window.supabase.createClient !== 'function') return;
  supabaseClient = window.supabase.createClient(supabaseUrl, cfg.supabaseAnonKey);
  $('supabase-form').hidden = false;
  $('supabase-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const { error } = await supabaseClient.auth.signInWithPassword({ email: $('email').value, password: $('password').value });
    if (error) { say($('whoami'), `Sign-in failed: ${error.message}`, true); return; }
    signedIn();
  });
  const { data } = await supabaseClient.auth.getSession();
  if (data && data.session) signedIn();
}

// ---------------------------------------------------------------- projects

let projects = [];

async function loadProjects() {
  try {
    projects = await svc.listProjects();
  } catch (e) {
    // Without GET /api/projects (an older server): IDs by hand.
    $('pick-lists').hidden = true;
    $('pick-manual').hidden = false;
    say($('progress'), `Projects could not be listed (${errText(e)}): enter the IDs.`, true);
    return;
  }
  const sel = $('project');
  sel.replaceChildren(...projects.map((p) => new Option(p.name || p.id, p.id)));
  sel.disabled = projects.length === 0;
  if (projects.length === 0) say($('progress'), 'You have no projects yet.', true);
  fillBranches();
}

function fillBranches() {
  const p = projects.find((x) => x.id === $('project').value);
  const branches = p ? p.branches || [] : [];
  const sel = $('branch');
  sel.replaceChildren(...branches.map((b) => new Option(b.isMain && b.name !== 'main' ? `${b.name} (main)` : b.name, b.id)));
  const main = branches.find((b) => b.isMain);
  if (main) sel.value = main.id;
  sel.disabled = branches.length === 0;
}

$('project').addEventListener('change', () => { fillBranches(); refreshJobs(); });

function chosen() {
  if (!$('pick-manual').hidden) {
    return { projectId: $('project-id').value.trim(), branchId: $('branch-id').value.trim() || undefined };
  }
  return { projectId: $('project').value, branchId: $('branch').value || undefined };
}

// ---------------------------------------------------------------- generate

$('job-type').addEventListener('change', () => {
  const t = $('job-type').value;
  $('frame-fields').hidden = !t.endsWith('_frame');
  $('inpaint-fields').hidden = t !== 'inpaint';
});

// "Job 1a2b3c4d: generating · 2.4 s · queued +0.0 s → processing +0.1 s →
// generating +0.2 s · created 12:00:01": the status, the time since the
// click, when (after the click) each stage was first seen, and the job's
// own times.
function progressLine(job, t0, stages) {
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  if (stages && job.status && !stages.has(job.status)) stages.set(job.status, Date.now() - t0);
  const parts = [`${job.status}`, `${secs} s`];
  if (stages && stages.size) {
    parts.push([...stages].map(([st, ms]) => `${st} +${(ms / 1000).toFixed(1)} s`).join(' → '));
  }
  if (job.createdAt) parts.push(`created ${time(job.createdAt)}`);
  if (job.startedAt) parts.push(`started ${time(job.startedAt)}`);
  if (job.completedAt) parts.push(`ended ${time(job.completedAt)}`);
  if (job.attempts > 1) parts.push(`attempt ${job.attempts}`);
  return `Job ${job.jobId.slice(0, 8)}: ${parts.join(' · ')}`;
}

$('gen-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const { projectId, branchId } = chosen();
  const [width, height] = $('size').value.split('x').map(Number);
  const body = { projectId, jobType: $('job-type').value, prompt: $('prompt').value, width, height };
  if (branchId) body.branchId = branchId;
  const capsule = $('capsule').value.trim();
  if (capsule) body.visualStyleCapsuleId = capsule;
  if (body.jobType.endsWith('_frame')) { body.sceneId = $('scene-id').value.trim(); body.shotId = $('shot-id').value.trim(); }
  if (body.jobType === 'inpaint') {
    body.sourceImageUrl = $('source-url').value.trim();
    if ($('mask-url').value.trim()) body.maskImageUrl = $('mask-url').value.trim();
  }
  const t0 = Date.now();
  const stages = new Map();
  const ac = new AbortController();
  const mine = epoch;
  $('go').disabled = true;
  say($('progress'), 'Creating the job…');
  let jobId = null;
  try {
    current = { jobId, abort: ac };
    const created = await svc.createJob(body, { signal: ac.signal });
    if (mine !== epoch) return;
    jobId = created.jobId;
    current.jobId = jobId;
    $('stop').disabled = false;
    say($('progress'), progressLine(created, t0, stages));
    refreshJobs();
    const job = await svc.waitForJob(jobId, {
      signal: ac.signal,
      timeoutMs: 120000,
      onUpdate: (j) => { if (mine === epoch) { say($('progress'), progressLine(j, t0, stages)); refreshJobs(); } },
    });
    if (mine !== epoch) return;
    say($('progress'), `${progressLine(job, t0, stages)} · done`);
    showResult(job);
  } catch (e) {
    if (mine !== epoch) return;          // signed out meanwhile
    say($('progress'), `${jobId ? `Job ${jobId.slice(0, 8)}: ` : ''}${errText(e)}`, true);
    if (e instanceof ImageServiceError && e.job) showResult(e.job);
  } finally {
    if (mine === epoch) {
      current = null;
      $('stop').disabled = true;
      $('go').disabled = false;
      refreshJobs();
    }
  }
});

$('stop').addEventListener('click', async () => {
  if (!current || !current.jobId) return;
  const { jobId } = current;
  try { await svc.cancelJob(jobId); } catch (e) { say($('progress'), errText(e), true); }
});

function addEvent(ev) {
  const li = document.createElement('li');
  const change = ev.fromStatus || ev.toStatus ? ` ${ev.fromStatus || '∅'} → ${ev.toStatus || '∅'}` : '';
  const detail = ev.detail ? ` ${JSON.stringify(ev.detail)}` : '';
  li.textContent = `${time(ev.createdAt)} ${ev.event}${change}${detail}`;
  $('events').append(li);
}

async function showResult(job) {
  const mine = epoch;
  const img = $('result-image');
  if (job.status === 'completed' && job.publicUrl) {
    img.alt = `Generated image: ${job.prompt || ''}`.trim();
    img.src = job.publicUrl;
    img.hidden = false;
    const c = job.cost || {};
    const cost = c.actual != null ? c.actual : c.estimated;
    say($('result-caption'), `${job.width} × ${job.height} · cost ${cost != null ? `${Number(cost).toFixed(4)} ${c.currency || 'USD'}` : 'n/a'}`
      + ` (estimated ${c.estimated != null ? Number(c.estimated).toFixed(4) : 'n/a'}) · job ${job.jobId}`);
  } else {
    img.hidden = true;
    img.removeAttribute('src');
    say($('result-caption'), `Job ${job.jobId}: ${job.status}${job.error ? ` — ${job.error.code}: ${job.error.message}` : ''}`, job.status === 'failed');
  }
  $('events').replaceChildren();
  try {
    const events = await svc.getJobEvents(job.jobId);
    if (mine !== epoch) return;
    $('events').replaceChildren();
    for (const ev of events) addEvent(ev);
  } catch (e) {
    if (mine !== epoch) return;
    const li = document.createElement('li');
    li.textContent = `History unavailable: ${errText(e)}`;
    $('events').append(li);
  }
}

// ---------------------------------------------------------------- recent jobs

// Calls may overlap (a click, an update, the timer): only the latest one
// renders and sets the next timer, so there is at most one timer.
async function refreshJobs() {
  const seq = ++listSeq;
  clearTimeout(listTimer);
  listTimer = null;
  if (!(await tokenNow()) || seq !== listSeq) return;
  const { projectId } = chosen();
  let list;
  try {
    list = await svc.listJobs({ projectId: projectId || undefined, limit: 10 });
  } catch (e) {
    return;
  }
  if (seq !== listSeq) return;         // a newer call (or a sign-out) came meanwhile
  const ul = $('jobs');
  ul.replaceChildren(...list.jobs.map(jobItem));
  clearTimeout(listTimer);
  listTimer = list.jobs.some((j) => ACTIVE.has(j.status)) ? setTimeout(refreshJobs, 1500) : null;
}

function jobItem(job) {
  const li = document.createElement('li');
  li.dataset.jobId = job.jobId;
  const st = document.createElement('span');
  st.className = `status ${job.status}`;
  st.textContent = job.status;
  const pr = document.createElement('span');
  pr.className = 'prompt';
  pr.textContent = job.prompt || job.jobId;
  const meta = document.createElement('span');
  meta.className = 'muted';
  meta.textContent = `${job.width}×${job.height} · ${time(job.createdAt)}${job.error ? ` · ${job.error.code}` : ''}`;
  li.append(st, pr, meta);
  const short = job.jobId.slice(0, 8);
  const view = button('Show', `Show job ${short}`, () => showResult(job));
  li.append(view);
  if (ACTIVE.has(job.status)) {
    li.append(button('Cancel', `Cancel job ${short}`, async () => {
      try { await svc.cancelJob(job.jobId); } catch (e) { say($('progress'), errText(e), true); }
      refreshJobs();
    }));
  }
  if (job.status === 'failed' || job.status === 'canceled') {
    li.append(button('Retry', `Retry job ${short}`, async () => {
      try {
        const r = await svc.retryJob(job.jobId);
        say($('progress'), `Job ${short} retried as ${r.jobId.slice(0, 8)}.`);
      } catch (e) { say($('progress'), errText(e), true); }
      refreshJobs();
    }));
  }
  return li;
}

function button(text, label, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'secondary';
  b.textContent = text;
  b.setAttribute('aria-label', label);
  b.addEventListener('click', onClick);
  return b;
}

$('refresh').addEventListener('click', refreshJobs);

// ---------------------------------------------------------------- start

setUpSupabase();
if (token) signedIn();
