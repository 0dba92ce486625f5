// browser.mjs - drives the demo page (nginx/www/index.html) in headless
// Chromium with playwright-core, as a user would: controls are found by
// their label and role. Run by tests/integration/test_browser.py, which
// starts the stack and passes:
//   IMAGEGEN_TEST_BASE_URL   https://localhost:PORT (self-signed: ignored)
//   IMAGEGEN_TEST_TOKEN      a user's access token
//   IMAGEGEN_TEST_PROJECT    the user's newest project
//   IMAGEGEN_TEST_BRANCH     its main branch
//   IMAGEGEN_TEST_SHOTS      where the screenshots go
//   IMAGEGEN_CHROMIUM        the browser (default /usr/bin/chromium)
//   IMAGEGEN_TEST_SB_EMAIL, IMAGEGEN_TEST_SB_PASSWORD, IMAGEGEN_TEST_SB_PROJECT
//                            a second user, signed in by email and password
//                            through supabase-js (/vendor/supabase.js) and
//                            the test's fake Supabase Auth, and its project
// Prints one JSON line of findings on stdout; exits 1 on the first failure.

import assert from 'node:assert/strict';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.IMAGEGEN_TEST_BASE_URL;
const TOKEN = process.env.IMAGEGEN_TEST_TOKEN;
const PROJECT = process.env.IMAGEGEN_TEST_PROJECT;
const BRANCH = process.env.IMAGEGEN_TEST_BRANCH;
const SHOTS = process.env.IMAGEGEN_TEST_SHOTS;
const T = 30000;

const out = { steps: [] };
const step = (s) => { out.steps.push(s); process.stderr.write(`browser: ${s}\n`); };

async function api(method, p) {
  // Node's fetch and the self-signed certificate: ask the page instead.
  return page.evaluate(async ({ method, p, token }) => {
    const r = await fetch(p, { method, headers: { Authorization: `Bearer ${token}` } });
    return { status: r.status, body: await r.json() };
  }, { method, p, token: TOKEN });
}

async function until(fn, what, timeout = T) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function jobRow(prompt) {
  return page.getByRole('list', { name: 'Recent jobs' }).getByRole('listitem').filter({ hasText: prompt });
}

const browser = await chromium.launch({
  executablePath: process.env.IMAGEGEN_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--ignore-certificate-errors', '--no-sandbox', '--disable-dev-shm-usage'],
});
const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
const consoleErrors = [];
page.on('pageerror', (e) => consoleErrors.push(String(e)));
const audits = [];
page.on('console', (m) => { if (m.type() === 'info') audits.push(m.text()); });

try {
  const res = await page.goto(`${BASE}/`);
  assert.equal(res.status(), 200);
  step('page loaded');

  // Every visible form control has a visible <label>.
  const unlabeled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea')]
    .filter((el) => el.offsetParent !== null)
    .filter((el) => !el.labels || el.labels.length === 0 || [...el.labels].every((l) => l.offsetParent === null))
    .map((el) => el.id || el.outerHTML));
  assert.deepEqual(unlabeled, [], 'controls without a visible label');

  // Sign in with a pasted token.
  await page.getByLabel('Access token').fill(TOKEN);
  await page.getByRole('button', { name: 'Sign in with token' }).click();
  await page.getByText(/Signed in as/).waitFor({ timeout: T });
  step('signed in');

  // The first project and its main branch are preselected.
  const project = page.getByLabel('Project', { exact: true });
  const branch = page.getByLabel('Branch', { exact: true });
  await until(async () => (await project.inputValue()) === PROJECT, 'the project preselected');
  assert.equal(await branch.inputValue(), BRANCH, 'the main branch preselected');
  step('project and main branch preselected');

  // Generate a master asset at 768x512: the picture loads at that size.
  await page.getByLabel('Job type').selectOption('master_asset');
  await page.getByLabel('Size').selectOption('768x512');
  await page.getByLabel('Prompt', { exact: true }).fill('A medieval castle on a hill');
  await page.getByRole('button', { name: 'Generate', exact: true }).click();
  const progress = page.getByRole('status').filter({ hasText: /^Job / });
  await progress.filter({ hasText: /generating|processing|queued|uploading|completed/ }).waitFor({ timeout: T });
  await progress.filter({ hasText: /completed/ }).waitFor({ timeout: T });
  const line = await progress.innerText();
  assert.match(line, /generating \+\d+\.\d s → .*completed \+\d+\.\d s/, `the stages in the progress line: ${line}`);
  assert.match(line, /created \d/, line);
  const img = page.getByRole('img', { name: /Generated image: A medieval castle on a hill/ });
  await img.waitFor({ state: 'visible', timeout: T });
  const size = await until(() => img.evaluate((el) => (el.complete && el.naturalWidth > 0
    ? [el.naturalWidth, el.naturalHeight] : null)), 'the image to load');
  assert.deepEqual(size, [768, 512], 'natural size = requested size');
  out.imageSrc = await img.getAttribute('src');
  assert.match(await page.locator('#result-caption').innerText(), /cost \d/);
  const history = page.getByRole('list', { name: 'Event history' });
  await history.getByRole('listitem').filter({ hasText: /→ completed/ }).waitFor({ timeout: T });
  step(`master asset generated, image ${size.join('x')}`);

  // A slow job, canceled from the list of recent jobs.
  await page.getByLabel('Size').selectOption('256x256');
  await page.getByLabel('Prompt', { exact: true }).fill('a slow job to cancel');
  await page.getByRole('button', { name: 'Generate', exact: true }).click();
  const slow = jobRow('a slow job to cancel');
  await slow.getByRole('button', { name: /^Cancel job / }).click({ timeout: T });
  await progress.filter({ hasText: /CANCELED/ }).waitFor({ timeout: T });
  await slow.filter({ hasText: 'canceled' }).waitFor({ timeout: T });
  const slowId = await slow.getAttribute('data-job-id');
  const sj = await api('GET', `/api/images/jobs/${slowId}`);
  assert.equal(sj.body.status, 'canceled');
  step('slow job canceled');

  // A failed job (the local provider's test hook), retried from the list.
  const doomed = '[[fail:CONTENT_POLICY]] a doomed lighthouse';
  await page.getByLabel('Prompt', { exact: true }).fill(doomed);
  await page.getByRole('button', { name: 'Generate', exact: true }).click();
  await progress.filter({ hasText: /CONTENT_POLICY/ }).waitFor({ timeout: T });
  const failedRow = jobRow(doomed).filter({ hasText: 'failed' }).first();
  await failedRow.waitFor({ timeout: T });
  const failedId = await failedRow.getAttribute('data-job-id');
  await failedRow.getByRole('button', { name: /^Retry job / }).click();
  await page.getByRole('status').filter({ hasText: /retried as/ }).waitFor({ timeout: T });
  await until(async () => (await jobRow(doomed).count()) === 2, 'the retry in the list');
  const list = await api('GET', `/api/images/jobs?projectId=${PROJECT}&limit=50`);
  const retried = list.body.jobs.find((j) => j.retryOf === failedId);
  assert.ok(retried, 'a new job whose retryOf is the failed one');
  step('failed job retried');

  // The module itself, imported in the page: the guide's call.
  const url = await page.evaluate(async ({ projectId, token }) => {
    const { imageService } = await import('/imageService.js');
    imageService.configure({ getAccessToken: () => token, pollIntervalMs: 250 });
    const r = await imageService.generateAssetImageKey(projectId, 'A castle from the module');
    const png = await fetch(r.imageUrl);
    return { imageUrl: r.imageUrl, status: png.status, type: png.headers.get('Content-Type'), job: r.job.status };
  }, { projectId: PROJECT, token: TOKEN });
  assert.equal(url.job, 'completed');
  assert.equal(url.status, 200);
  assert.equal(url.type, 'image/png');
  out.moduleImageUrl = url.imageUrl;
  step('generateAssetImageKey(projectId, prompt) in the page');

  // Screenshots: every job ended (the list refreshes itself while one
  // runs), the finished castle shown again, desktop then phone width.
  await until(async () => (await page.locator('#jobs .status').allInnerTexts())
    .every((st) => ['completed', 'failed', 'canceled'].includes(st)), 'the list of recent jobs settled');
  await page.getByLabel('Prompt', { exact: true }).fill('A medieval castle on a hill');
  await page.getByLabel('Size').selectOption('768x512');
  await jobRow('A medieval castle on a hill').getByRole('button', { name: /^Show job / }).click();
  await img.waitFor({ state: 'visible', timeout: T });
  await until(() => img.evaluate((el) => el.complete && el.naturalWidth === 768), 'the castle shown again');
  await page.screenshot({ path: path.join(SHOTS, 'demo-desktop.png'), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(200);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no horizontal scrolling at phone width (${overflow} px too wide)`);
  const phoneBox = await page.getByRole('button', { name: 'Generate', exact: true }).boundingBox();
  assert.ok(phoneBox && phoneBox.x >= 0 && phoneBox.x + phoneBox.width <= 390, 'Generate is on screen');
  await page.screenshot({ path: path.join(SHOTS, 'demo-phone.png'), fullPage: true });
  step('screenshots');

  // Sign-out while a job is being watched: nothing of this user's stays on
  // screen, and no poll or list timer of theirs runs on.
  await page.getByLabel('Size').selectOption('256x256');
  await page.getByLabel('Prompt', { exact: true }).fill('a job watched at sign-out');
  await page.getByRole('button', { name: 'Generate', exact: true }).click();
  await jobRow('a job watched at sign-out').waitFor({ timeout: T });
  const after = [];
  page.on('request', (r) => { if (new URL(r.url()).pathname.startsWith('/api/')) after.push(r.url()); });
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByText('Signed out.').waitFor({ timeout: T });
  const n0 = after.length;
  await page.waitForTimeout(3000);
  assert.deepEqual(after.slice(n0), [], 'requests after sign-out (a poll or a list timer ran on)');
  assert.equal(await page.locator('#result-image').isVisible(), false, 'the picture was left on screen');
  assert.equal(await page.locator('#result-image').getAttribute('src'), null, 'the picture was left in the page');
  assert.equal(await page.locator('#events li').count(), 0, 'the event history was left on screen');
  assert.equal(await page.locator('#jobs li').count(), 0, 'the job list was left on screen');
  assert.equal((await page.locator('#progress').innerText()).trim(), '', 'the progress line was left');
  assert.equal(await page.locator('#result-caption').innerText(), '', 'the caption was left');
  step('sign-out clears the screen and stops polling');

  // Email and password through supabase-js (the page's /config.json names
  // the Supabase project; the test proxies a fake of its Auth server).
  if (process.env.IMAGEGEN_TEST_SB_EMAIL) {
    const ctx2 = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
    const p2 = await ctx2.newPage();
    p2.on('pageerror', (e) => consoleErrors.push(String(e)));
    await p2.goto(`${BASE}/`);
    await p2.getByLabel('Email').fill(process.env.IMAGEGEN_TEST_SB_EMAIL);
    await p2.getByLabel('Password').fill('not the password');
    await p2.getByRole('button', { name: 'Sign in with email' }).click();
    await p2.getByText(/Sign-in failed: Invalid login credentials/).waitFor({ timeout: T });
    await p2.getByLabel('Password').fill(process.env.IMAGEGEN_TEST_SB_PASSWORD);
    await p2.getByRole('button', { name: 'Sign in with email' }).click();
    await p2.getByText(`Signed in as ${process.env.IMAGEGEN_TEST_SB_EMAIL}`).waitFor({ timeout: T });
    const sbProject = p2.getByLabel('Project', { exact: true });
    await until(async () => (await sbProject.inputValue()) === process.env.IMAGEGEN_TEST_SB_PROJECT,
      'the Supabase user\'s project preselected');
    out.supabaseToken = await p2.evaluate(async () => {
      const { imageService } = await import('/imageService.js');
      // the page's supabase global is supabase-js's namespace, not a client:
      // the default service must not take it for one
      return typeof imageService.listProjects === 'function' && typeof window.supabase.createClient;
    });
    await p2.getByRole('button', { name: 'Sign out' }).click();
    await p2.getByText('Signed out.').waitFor({ timeout: T });
    await ctx2.close();
    step('signed in with email and password through supabase-js');
  }

  // A server without GET /api/projects: the page asks for the IDs; an
  // empty branch is the project's main branch.
  {
    const ctx3 = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
    await ctx3.route('**/api/projects', (r) => r.fulfill({ status: 404, contentType: 'application/json',
      body: '{"error":{"code":"NOT_FOUND","message":"not found"}}' }));
    const p3 = await ctx3.newPage();
    p3.on('pageerror', (e) => consoleErrors.push(String(e)));
    await p3.goto(`${BASE}/`);
    await p3.getByLabel('Access token').fill(TOKEN);
    await p3.getByRole('button', { name: 'Sign in with token' }).click();
    await p3.getByText(/Projects could not be listed \(NOT_FOUND/).waitFor({ timeout: T });
    assert.equal(await p3.getByLabel('Project', { exact: true }).isVisible(), false);
    await p3.getByLabel('Project ID').fill(PROJECT);
    await p3.getByLabel('Size').selectOption('256x256');
    await p3.getByLabel('Prompt', { exact: true }).fill('a castle by hand');
    await p3.getByRole('button', { name: 'Generate', exact: true }).click();
    await p3.getByRole('status').filter({ hasText: /completed/ }).waitFor({ timeout: T });
    const id3 = await p3.locator('#jobs li').filter({ hasText: 'a castle by hand' }).first().getAttribute('data-job-id');
    const j3 = await api('GET', `/api/images/jobs/${id3}`);
    assert.equal(j3.body.branchId, BRANCH, 'the main branch');
    await ctx3.close();
    step('without GET /api/projects: IDs by hand, the main branch by default');
  }

  assert.deepEqual(consoleErrors, [], 'no page errors');
  out.ok = true;
} catch (e) {
  out.ok = false;
  out.error = String(e && e.stack ? e.stack : e);
  try {
    await page.screenshot({ path: path.join(SHOTS, 'failure.png'), fullPage: true });
    out.progress = await page.locator('#progress').innerText();
  } catch (e2) { /* the browser is gone */ }
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(out)}\n`);
process.exit(out.ok ? 0 : 1);
