#!/usr/bin/env node
/**
 * pg-boss as the bench runs it: a `noop` queue worked in a process of its own, in a database of its own.
 * Commands (see common.js for the protocol): setup, prepare, drain, work, produce, create.
 *
 * pg-boss keeps finished jobs with `created_on`, `started_on` (the fetch's `now()`) and `completed_on`, so
 * every time comes from the job table, on the database clock, as it does for our service.
 */
const PgBoss = require('pg-boss');
const {
  closedLoop,
  cpuSeconds,
  main,
  peakRssMb,
  send,
  sleep,
  steadyRate,
  stopSignal,
  withClient,
} = require('./common');
const SETTINGS = require('./settings')['pg-boss'];

const connectionString = process.env.DATABASE_URL;
const QUEUE = 'noop';

async function startBoss(options = {}) {
  const boss = new PgBoss({ connectionString, ...options });
  boss.on('error', (error) => process.stderr.write(`pg-boss error: ${error.message}\n`));
  await boss.start();
  return boss;
}

async function withBoss(work, options) {
  const boss = await startBoss(options);
  try {
    return await work(boss);
  } finally {
    await boss.stop({ graceful: false, close: true, wait: true });
  }
}

async function startWorkers(boss, settingName, handler) {
  const setting = SETTINGS[settingName];
  if (!setting) throw new Error(`unknown setting ${settingName}`);
  for (let i = 0; i < setting.workers; i++) await boss.work(QUEUE, { ...setting.work }, handler);
}

async function setup() {
  await withBoss((boss) => boss.createQueue(QUEUE));
}

/** Empties the queue and creates `jobs` noop jobs through `insert`, 1,000 per call. */
async function prepare({ jobs = 0 }) {
  await withClient((client) => client.query('TRUNCATE pgboss.job, pgboss.archive'));
  await withBoss(
    async (boss) => {
      for (let done = 0; done < jobs; done += 1000) {
        await boss.insert(
          Array.from({ length: Math.min(1000, jobs - done) }, () => ({ name: QUEUE, data: {} })),
        );
      }
    },
    { supervise: false, schedule: false },
  );
  await withClient((client) => client.query('VACUUM ANALYZE pgboss.job'));
  return { jobs };
}

const PROGRESS = `SELECT count(*) FILTER (WHERE state = 'completed')::int AS done,
                         extract(epoch FROM max(completed_on) - min(started_on)) AS seconds
                  FROM pgboss.job WHERE name = '${QUEUE}'`;

/** Works off `jobs` pre-created jobs: jobs/s from the first fetch to the last completion. */
async function drain({ setting, jobs, maxSeconds = 120 }) {
  const cpuBefore = cpuSeconds();
  const boss = await startBoss();
  let started = 0;
  let allStarted;
  const allStartedPromise = new Promise((resolve) => (allStarted = resolve));
  await startWorkers(boss, setting, async (batch) => {
    started += batch.length;
    if (started >= jobs) allStarted();
  });
  const deadline = Date.now() + maxSeconds * 1000;
  const timedOut = await Promise.race([
    allStartedPromise.then(() => false),
    sleep(maxSeconds * 1000).then(() => true),
  ]);
  const progress = await withClient(async (client) => {
    for (;;) {
      const { rows } = await client.query(PROGRESS);
      // The last completions may land just after the deadline; a few seconds more is not a stall.
      if (rows[0].done >= jobs || timedOut || Date.now() > deadline + 5_000) return rows[0];
      await sleep(20);
    }
  });
  const result = {
    jobs,
    jobs_completed: progress.done,
    seconds: Number(progress.seconds),
    partial: progress.done < jobs,
    peak_rss_mb: peakRssMb(),
    cpu_seconds: cpuSeconds() - cpuBefore,
  };
  result.jobs_per_second = result.jobs_completed / result.seconds;
  await boss.stop({ graceful: false, close: true, wait: false });
  return result;
}

/** Idle workers until SIGTERM; then the delays from creation to fetch of the jobs they ran. */
async function work({ setting }) {
  const boss = await startBoss();
  await startWorkers(boss, setting, async () => undefined);
  send({ ready: true });
  await stopSignal();
  await boss.stop({ graceful: false, close: false, wait: false });
  return withClient(async (client) => {
    const { rows } = await client.query(
      `SELECT count(*)::int AS started,
              percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM started_on - created_on) * 1000) AS p
       FROM pgboss.job WHERE name = '${QUEUE}' AND started_on IS NOT NULL`,
    );
    const [p50, p95, p99] = (rows[0].p ?? []).map(Number);
    return { started: rows[0].started, p50_ms: p50, p95_ms: p95, p99_ms: p99 };
  });
}

/** `send` at a steady rate, each call on its own (as an application would from its requests). */
async function produce({ rate, seconds }) {
  return withBoss((boss) => steadyRate(() => boss.send(QUEUE, {}), rate, seconds));
}

/** `send` (or `insert` of `batch`) from `concurrency` callers at once for `seconds`. */
async function create({ concurrency, seconds, batch = 0 }) {
  return withBoss(async (boss) => {
    const jobs = Array.from({ length: batch }, () => ({ name: QUEUE, data: {} }));
    const call = batch ? () => boss.insert(jobs) : () => boss.send(QUEUE, {});
    const result = await closedLoop(call, concurrency, seconds);
    return { ...result, jobs_per_second: result.calls_per_second * (batch || 1) };
  });
}

main({ setup, prepare, drain, work, produce, create });
