import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../support/browser';
import { eventually } from '../support/job-factory';
import { spawnService, waitForHttp, type ServiceProcess } from '../support/service-process';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

type Job = Record<string, any>;

// The page's own globals, for the functions page.evaluate runs in the browser: the tests compile without
// the DOM library, and these declarations stay inside this file.
declare const sessionStorage: { getItem(name: string): string | null };
declare const localStorage: { length: number };
declare const document: { cookie: string };
declare const location: { href: string };

const ADMIN = 'k-admin-dash-7f3a91c2';
const READ = 'k-read-dash-0b64e5d8';
/** Where the dashboard keeps the key (ui/src/api.ts). */
const KEY_ITEM = 'job-service.api-key';

/**
 * The operator dashboard in a real headless Chromium, against a real api process (API keys on) and a real
 * worker process, as an operator uses it: sign in, follow jobs, cancel, retry, pause, with an admin key
 * and with a read key.
 */
describe('operator dashboard in a browser', () => {
  let db: TestDatabase;
  let api: ServiceProcess;
  let worker: ServiceProcess;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  /** What the page reported that the policy refused (a script, a style, a Trusted Types sink). */
  let refusals: string[];
  /** Every URL the browser asked for. */
  let requested: string[];

  beforeAll(async () => {
    db = await createTestDatabase();
    [api, worker, browser] = await Promise.all([
      spawnService({
        APP_ROLE: 'api',
        DATABASE_URL: db.url,
        API_KEYS: `${ADMIN},${READ}:read`,
        LOG_LEVEL: 'debug',
      }),
      spawnService({ APP_ROLE: 'worker', DATABASE_URL: db.url, WORKER_POLL_INTERVAL_MS: '100' }),
      launchChromium(),
    ]);
    await Promise.all([waitForHttp(api, '/health/ready'), waitForHttp(worker, '/health/ready')]);
  });

  beforeEach(async () => {
    refusals = [];
    requested = [];
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await newPage(context);
  });

  afterEach(async () => {
    await context.close();
    expect(refusals).toEqual([]);
    for (const url of requested) {
      expect(url.startsWith(api.baseUrl)).toBe(true);
      expect(url).not.toContain(ADMIN);
      expect(url).not.toContain(READ);
    }
  });

  afterAll(async () => {
    await browser?.close();
    for (const service of [api, worker]) service?.kill('SIGTERM');
    await Promise.all([api?.exited, worker?.exited]);
    // Checked after the processes wrote everything they were going to write.
    expect(api.output()).not.toContain(ADMIN);
    expect(api.output()).not.toContain(READ);
    await db?.drop();
  });

  async function newPage(within: BrowserContext): Promise<Page> {
    const opened = await within.newPage();
    opened.on('console', (message) => {
      if (/Content Security Policy|requires 'Trusted|Refused to/i.test(message.text()))
        refusals.push(message.text());
    });
    opened.on('pageerror', (error) => refusals.push(`page error: ${error.message}`));
    opened.on('request', (request) => requested.push(request.url()));
    return opened;
  }

  async function call(method: string, path: string, body?: unknown, key = ADMIN): Promise<Response> {
    return fetch(`${api.baseUrl}${path}`, {
      method,
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }
  async function createJob(body: Record<string, unknown>): Promise<Job> {
    const response = await call('POST', '/jobs', body);
    expect(response.status).toBe(201);
    return (await response.json()) as Job;
  }
  async function getJob(jobId: string): Promise<Job> {
    return (await (await call('GET', `/jobs/${jobId}`)).json()) as Job;
  }
  async function waitForState(jobId: string, state: string): Promise<Job> {
    return eventually(async () => {
      const job = await getJob(jobId);
      return job.state === state ? job : undefined;
    }, 20_000);
  }

  async function signIn(on: Page, key: string): Promise<void> {
    await on.goto(`${api.baseUrl}/ui/`);
    await on.getByLabel('API key').fill(key);
    await on.getByRole('button', { name: 'Sign in' }).click();
    await on.getByRole('heading', { name: 'Overview' }).waitFor();
  }
  const open = (on: Page, fragment: string): Promise<unknown> => on.goto(`${api.baseUrl}/ui/#${fragment}`);
  const titleBadge = (on: Page, state: string) => on.locator('.title-row .badge', { hasText: state });
  const buttons = (on: Page, name: string) => on.getByRole('button', { name, exact: true });

  it('signs in with a key kept for the tab only, refuses a wrong one, and signs out', async () => {
    await page.goto(`${api.baseUrl}/ui`);
    await page.getByLabel('API key').fill('not-a-key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('This key is not accepted.').waitFor();

    await page.getByLabel('API key').fill(ADMIN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.getByText('key scope: admin').waitFor();
    const storage = await page.evaluate(
      (item) => ({
        session: sessionStorage.getItem(item),
        local: localStorage.length,
        cookie: document.cookie,
        url: location.href,
      }),
      KEY_ITEM,
    );
    expect(storage).toEqual({ session: ADMIN, local: 0, cookie: '', url: expect.any(String) });
    expect(storage.url).not.toContain(ADMIN);

    // A reload keeps the tab's session; another tab has its own and must sign in.
    await page.reload();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    const otherTab = await newPage(context);
    await otherTab.goto(`${api.baseUrl}/ui/`);
    await otherTab.getByLabel('API key').waitFor();

    await buttons(page, 'Sign out').click();
    await page.getByLabel('API key').waitFor();
    expect(await page.evaluate((item) => sessionStorage.getItem(item), KEY_ITEM)).toBeNull();
  });

  it('shows a job created through the API appear in the list, then its detail and the chart', async () => {
    await signIn(page, ADMIN);
    await open(page, '/jobs');
    await page.getByRole('heading', { name: 'Jobs' }).waitFor();
    const job = await createJob({ job_type: 'echo', payload: { hello: 'dashboard' } });

    // The list refreshes itself: the new job appears without a reload.
    const row = page.locator(`tr[data-job-id="${job.job_id}"]`);
    await row.waitFor({ timeout: 15_000 });
    await row.getByRole('link').click();
    await page.getByRole('heading', { name: job.job_id }).waitFor();
    await titleBadge(page, 'completed').waitFor({ timeout: 15_000 });
    expect(await page.getByLabel('payload', { exact: true }).textContent()).toContain('"hello": "dashboard"');
    expect(await page.getByLabel('result', { exact: true }).textContent()).toContain('"hello": "dashboard"');
    const done = await getJob(job.job_id);
    const attempt = page.locator('.timeline-item').first();
    expect(await attempt.textContent()).toContain('#1');
    expect(await attempt.locator('.badge').textContent()).toBe('succeeded');
    expect(await attempt.textContent()).toContain(done.attempt_history[0].worker_id);

    await open(page, '/');
    await page.locator('rect.series-completed').first().waitFor();
    expect(Number(await page.locator('[data-state-count="completed"]').textContent())).toBeGreaterThanOrEqual(
      1,
    );
  });

  it('cancels a running sleep job from its page; the worker stops it and it shows cancelled', async () => {
    const job = await createJob({ job_type: 'sleep', payload: { ms: 60_000 } });
    await waitForState(job.job_id, 'running');
    await signIn(page, ADMIN);
    await open(page, `/jobs/${job.job_id}`);
    await titleBadge(page, 'running').waitFor();

    await buttons(page, 'Cancel').click();
    await page.getByRole('dialog').getByLabel('Reason (optional)').fill('stopped from the dashboard');
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel job' }).click();
    await titleBadge(page, 'cancelled').waitFor({ timeout: 10_000 });

    const after = await getJob(job.job_id);
    expect(after).toMatchObject({
      state: 'cancelled',
      error: { code: 'cancelled', message: 'stopped from the dashboard' },
    });
    expect(after.attempt_history.map((a: Job) => a.outcome)).toEqual(['cancelled']);
    await page.locator('.timeline-item .badge', { hasText: 'cancelled' }).waitFor();
    expect(await buttons(page, 'Cancel').count()).toBe(0);
  });

  it('retries a failed job: a new job that names the old one', async () => {
    const failed = await createJob({
      job_type: 'fail',
      payload: { message: 'the printer is on fire', permanent: true },
    });
    await waitForState(failed.job_id, 'failed');
    await signIn(page, ADMIN);
    await open(page, `/jobs/${failed.job_id}`);
    await page.locator('.error-box', { hasText: 'the printer is on fire' }).waitFor();

    await buttons(page, 'Retry').click();
    await page.waitForURL((url) => url.hash.startsWith('#/jobs/') && !url.hash.includes(failed.job_id));
    const retryId = new URL(page.url()).hash.replace('#/jobs/', '');
    await page.getByRole('heading', { name: retryId }).waitFor();
    await page.locator(`a[href="#/jobs/${failed.job_id}"]`).waitFor();
    expect(await getJob(retryId)).toMatchObject({ retry_of: failed.job_id, job_type: 'fail' });
    expect((await getJob(failed.job_id)).state).toBe('failed');
  });

  it('bulk-cancels the jobs of the current filter after showing how many it will hit', async () => {
    const runAt = new Date(Date.now() + 86_400_000).toISOString();
    const created = await call('POST', '/jobs/batch', {
      jobs: [1, 2, 3].map((priority) => ({ job_type: 'noop', priority, run_at: runAt })),
    });
    const ids: string[] = ((await created.json()) as Job).items.map((job: Job) => job.job_id);
    await signIn(page, ADMIN);
    await open(page, '/jobs?state=pending&job_type=noop');
    await page.locator('tbody tr[data-job-id]').nth(2).waitFor();

    await buttons(page, 'Cancel matching…').click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('heading', { name: 'Cancel 3 jobs?' }).waitFor();
    expect(await dialog.getByTestId('bulk-count').textContent()).toBe('3');
    await dialog.getByRole('button', { name: 'Cancel jobs' }).click();
    await page.getByText('3 jobs cancelled or being stopped.').waitFor();
    for (const id of ids) expect((await getJob(id)).state).toBe('cancelled');
    await page.getByText('No jobs match.').waitFor();

    // With none left in that state (the counters say so), the refresh reads the counts, not the jobs
    // table: at 10 million jobs a state filter with no match would walk all of them.
    const seen = requested.length;
    await new Promise((resolve) => setTimeout(resolve, 5_500));
    const refreshed = requested.slice(seen).map((url) => new URL(url).pathname);
    expect(refreshed).toContain('/stats');
    expect(refreshed).not.toContain('/jobs');
  });

  it('pauses a job type, so that its jobs wait, and resumes it', async () => {
    await signIn(page, ADMIN);
    await open(page, '/job-types');
    const card = page.locator('[data-job-type="echo"]');
    await card.getByRole('button', { name: 'Pause' }).click();
    await card.locator('.badge', { hasText: 'paused' }).waitFor();
    const types = (await (await call('GET', '/job-types')).json()) as Job[];
    expect(types.find((type) => type.job_type === 'echo')?.paused).toBe(true);

    const waiting = await createJob({ job_type: 'echo', payload: {} });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect((await getJob(waiting.job_id)).state).toBe('pending');
    await open(page, '/');
    await page.locator('.paused-list', { hasText: 'echo' }).waitFor();

    await open(page, '/job-types');
    await card.getByRole('button', { name: 'Resume' }).click();
    await card.locator('.badge', { hasText: 'active' }).waitFor();
    await waitForState(waiting.job_id, 'completed');
  });

  it('refreshes a later page in place, keeping its cursor while new jobs arrive', async () => {
    const runAt = new Date(Date.now() + 86_400_000).toISOString();
    const created = await call('POST', '/jobs/batch', {
      jobs: Array.from({ length: 30 }, (_, n) => ({ job_type: 'echo', payload: { n }, run_at: runAt })),
    });
    const ids: string[] = ((await created.json()) as Job).items.map((job: Job) => job.job_id);
    await signIn(page, ADMIN);
    await open(page, '/jobs?job_type=echo');
    await page.locator(`tr[data-job-id="${ids[29]}"]`).waitFor();
    await buttons(page, 'Older ›').click();
    // Newest first: the first five of the batch are on the second page of 25.
    const row = page.locator(`tr[data-job-id="${ids[0]}"]`);
    await row.waitFor();
    const secondPage = page.url();
    expect(secondPage).toContain('cursor=');

    await createJob({ job_type: 'echo', payload: { late: true }, run_at: runAt });
    expect((await call('POST', `/jobs/${ids[0]}/cancel`, {})).status).toBe(200);
    await row.locator('.badge', { hasText: 'cancelled' }).waitFor({ timeout: 15_000 });
    expect(page.url()).toBe(secondPage);
    expect(await page.locator(`tr[data-job-id="${ids[4]}"]`).count()).toBe(1);

    await buttons(page, '‹ Newer').click();
    await page.locator(`tr[data-job-id="${ids[29]}"]`).waitFor();
    expect(await call('POST', '/jobs/cancel', { job_type: 'echo', state: 'pending' })).toHaveProperty(
      'status',
      202,
    );
  });

  it('shows a read key no action at all, and the API refuses it the actions (403)', async () => {
    const running = await createJob({ job_type: 'sleep', payload: { ms: 60_000 } });
    const failed = await createJob({ job_type: 'fail', payload: { message: 'x', permanent: true } });
    await Promise.all([waitForState(running.job_id, 'running'), waitForState(failed.job_id, 'failed')]);

    await signIn(page, READ);
    await page.getByText('key scope: read (read-only)').waitFor();
    // Each page once its data is shown, where an admin key gets these buttons (the tests above use them).
    const noActionButtons = async (): Promise<void> => {
      for (const name of ['Cancel', 'Cancel matching…', 'Retry', 'Pause', 'Resume']) {
        expect([name, await buttons(page, name).count()]).toEqual([name, 0]);
      }
    };
    await open(page, '/jobs?state=running');
    await page.locator(`tr[data-job-id="${running.job_id}"]`).waitFor();
    await noActionButtons();
    expect(await page.locator('.row-actions').count()).toBe(0);
    await open(page, '/jobs?state=failed');
    await page.locator(`tr[data-job-id="${failed.job_id}"]`).waitFor();
    await noActionButtons();
    await open(page, `/jobs/${running.job_id}`);
    await titleBadge(page, 'running').waitFor();
    await noActionButtons();
    await open(page, `/jobs/${failed.job_id}`);
    await titleBadge(page, 'failed').waitFor();
    await noActionButtons();
    await open(page, '/job-types');
    await page.locator('[data-job-type="sleep"]').waitFor();
    await noActionButtons();

    const statuses = await page.evaluate(
      async ({ item, runningId, failedId }) => {
        const headers = { Authorization: `Bearer ${sessionStorage.getItem(item)}` };
        const post = async (path: string): Promise<number> =>
          (await fetch(path, { method: 'POST', headers })).status;
        return [
          await post(`/jobs/${runningId}/cancel`),
          await post(`/jobs/${failedId}/retry`),
          await post('/job-types/sleep/pause'),
        ];
      },
      { item: KEY_ITEM, runningId: running.job_id, failedId: failed.job_id },
    );
    expect(statuses).toEqual([403, 403, 403]);
    expect((await getJob(running.job_id)).state).toBe('running');
    expect((await call('POST', `/jobs/${running.job_id}/cancel`, {})).status).toBe(200);
  });

  it('needs no sign-in where the API needs no key, and then offers every action', async () => {
    const open_ = await spawnService({ APP_ROLE: 'api', DATABASE_URL: db.url });
    try {
      await waitForHttp(open_, '/health/ready');
      await page.goto(`${open_.baseUrl}/ui/#/job-types`);
      await page.getByText('no key needed').waitFor();
      await page.locator('[data-job-type="echo"]').getByRole('button', { name: 'Pause' }).waitFor();
      expect(await page.getByLabel('API key').count()).toBe(0);
      expect(await buttons(page, 'Sign out').count()).toBe(0);
    } finally {
      open_.kill('SIGTERM');
      await open_.exited;
    }
    // This page talked to the other process.
    requested = requested.filter((url) => !url.startsWith(open_.baseUrl));
  });
});
