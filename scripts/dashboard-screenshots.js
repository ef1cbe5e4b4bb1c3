/* global console */
// Takes the README's screenshots of the operator dashboard: starts the built service (`node dist/main`,
// APP_ROLE=all) on a database of its own on DATABASE_URL's server, gives it a few minutes of ordinary
// work (jobs that complete, fail and retry, a paused type, cancels, a retry), and photographs each page
// with Debian's chromium into docs/screenshots/. Run `npm run build` first.
//
//   DATABASE_URL=postgres://... node scripts/dashboard-screenshots.js [--minutes 4]
const { spawn } = require('node:child_process');
const { mkdirSync } = require('node:fs');
const { join } = require('node:path');
const { Client } = require('pg');
const { chromium } = require('playwright-core');
const { runMigrations } = require('../dist/persistence/data-source');
// The flags the browser tests launch Chromium with (test/support/browser.ts).
const CHROMIUM_ARGS = require('../test/support/chromium-args.json');

const ROOT = join(__dirname, '..');
const OUT = join(ROOT, 'docs', 'screenshots');
const KEY = 'screenshot-admin-key';
const PORT = 3977;
const BASE = `http://127.0.0.1:${PORT}`;
const minutesArg = process.argv.indexOf('--minutes');
const LOAD_MINUTES = minutesArg > 0 ? Number(process.argv[minutesArg + 1]) : 4;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function call(method, path, body) {
  const response = await fetch(`${BASE}${path}`, {
    method,
    headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

async function admin(url, sql) {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function waitForState(jobId, states) {
  for (let i = 0; i < 600; i += 1) {
    const job = await call('GET', `/jobs/${jobId}`);
    if (states.includes(job.state)) return job;
    await sleep(100);
  }
  throw new Error(`job ${jobId} did not reach ${states}`);
}

/** Steady, ordinary traffic: mostly completing jobs, a few that fail for good, some that fail then pass. */
async function load(until) {
  let round = 0;
  while (Date.now() < until) {
    round += 1;
    const jobs = [];
    for (let i = 0; i < 20 + (round % 7) * 6; i += 1) {
      jobs.push({ job_type: 'echo', payload: { order: round * 100 + i } });
    }
    for (let i = 0; i < 4; i += 1) jobs.push({ job_type: 'sleep', payload: { ms: 500 + i * 700 } });
    for (let i = 0; i < (round % 4 === 0 ? 3 : 1); i += 1) {
      jobs.push({ job_type: 'fail', payload: { message: 'upstream answered 502' }, max_attempts: 2 });
    }
    await call('POST', '/jobs/batch', { jobs });
    await sleep(3_000);
  }
}

async function main() {
  const serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) throw new Error('DATABASE_URL must name a PostgreSQL server (a database is created there)');
  const name = `job_service_screenshots_${process.pid}`;
  const adminUrl = new URL(serverUrl);
  adminUrl.pathname = '/postgres';
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  await admin(adminUrl.toString(), `CREATE DATABASE ${name}`);
  let service;
  let browser;
  try {
    await runMigrations(url.toString());
    service = spawn(process.execPath, [join(ROOT, 'dist', 'main.js')], {
      env: {
        PATH: process.env.PATH,
        APP_ROLE: 'all',
        DATABASE_URL: url.toString(),
        PORT: String(PORT),
        API_KEYS: KEY,
        // Failing attempts are part of the show: a warning for each would bury real problems.
        LOG_LEVEL: 'error',
        MIGRATE_ON_START: 'false',
        RETRY_BASE_MS: '500',
        RETRY_MAX_MS: '2000',
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    for (let i = 0; ; i += 1) {
      const ready = await fetch(`${BASE}/health/ready`).then(
        (r) => r.ok,
        () => false,
      );
      if (ready) break;
      if (i > 300) throw new Error('the service did not become ready');
      await sleep(100);
    }

    console.log(`running ${LOAD_MINUTES} minutes of traffic for the chart…`);
    await load(Date.now() + LOAD_MINUTES * 60_000);

    // The states a dashboard is there for: a failed job with its attempts, its retry, a paused type with
    // jobs waiting, long jobs running, work scheduled for later, a cancelled job.
    const failed = await call('POST', '/jobs', {
      job_type: 'fail',
      payload: { message: 'connect ECONNREFUSED 10.0.3.7:5432' },
      max_attempts: 3,
    });
    await waitForState(failed.job_id, ['failed']);
    const retried = await call('POST', `/jobs/${failed.job_id}/retry`);
    await call('POST', '/job-types/noop/pause');
    await call('POST', '/jobs/batch', { jobs: Array.from({ length: 12 }, () => ({ job_type: 'noop' })) });
    const later = new Date(Date.now() + 3_600_000).toISOString();
    await call('POST', '/jobs/batch', {
      jobs: Array.from({ length: 8 }, (_, i) => ({
        job_type: 'echo',
        payload: { report: i },
        run_at: later,
      })),
    });
    const running = [];
    for (let i = 0; i < 3; i += 1) {
      running.push(await call('POST', '/jobs', { job_type: 'sleep', payload: { ms: 600_000 }, priority: 5 }));
    }
    const doomed = await call('POST', '/jobs', { job_type: 'sleep', payload: { ms: 600_000 } });
    await waitForState(doomed.job_id, ['running']);
    await call('POST', `/jobs/${doomed.job_id}/cancel`, { reason: 'customer withdrew the order' });
    await waitForState(doomed.job_id, ['cancelled']);
    await waitForState(retried.job_id, ['running', 'failed']);
    await sleep(2_000);

    mkdirSync(OUT, { recursive: true });
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: CHROMIUM_ARGS,
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    const shoot = async (file, fullPage = true) => {
      await page.mouse.move(0, 0);
      await page.screenshot({ path: join(OUT, file), fullPage });
      console.log(`docs/screenshots/${file}`);
    };

    await page.goto(`${BASE}/ui/`);
    await page.getByLabel('API key').waitFor();
    await shoot('sign-in.png', false);
    await page.getByLabel('API key').fill(KEY);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('rect.series-completed').first().waitFor();
    await sleep(500);
    await shoot('overview.png');

    await page.goto(`${BASE}/ui/#/jobs`);
    await page.locator('tbody tr[data-job-id]').nth(10).waitFor();
    await shoot('jobs.png');

    await page.goto(`${BASE}/ui/#/jobs/${failed.job_id}`);
    await page.locator('.timeline-item').nth(2).waitFor();
    await shoot('job-detail.png');

    await page.goto(`${BASE}/ui/#/job-types`);
    await page.locator('[data-job-type="noop"] .badge', { hasText: 'paused' }).waitFor();
    await page.locator('[data-job-type="sleep"] summary').click();
    await shoot('job-types.png');

    await page.goto(`${BASE}/ui/#/jobs?state=pending&job_type=noop`);
    await page.locator('tbody tr[data-job-id]').first().waitFor();
    await page.getByRole('button', { name: 'Cancel matching…' }).click();
    await page.getByRole('dialog').getByTestId('bulk-count').waitFor();
    await shoot('bulk-cancel.png', false);
    for (const job of running) await call('POST', `/jobs/${job.job_id}/cancel`, {});
  } finally {
    await browser?.close();
    if (service && service.exitCode === null) {
      service.kill('SIGTERM');
      await new Promise((resolve) => service.once('exit', resolve));
    }
    await admin(adminUrl.toString(), `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
