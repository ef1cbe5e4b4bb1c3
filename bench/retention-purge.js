#!/usr/bin/env node
/**
 * Retention at scale: `npm run bench:retention` (builds first). Seeds a jobs table with --rows finished jobs
 * past their retention (default 10,000,000; one in ten with a failed attempt record before it completed),
 * then runs a real worker process while a steady stream of new noop jobs (--rate per second) arrives:
 *
 *   1. baseline: retention off (every RETENTION_*_MS = 0), --baseline-seconds long;
 *   2. purge: a worker with the default retention, until it has deleted every seeded job.
 *
 * It prints, for the jobs created in each phase, the time from creation to the start of their attempt (the
 * database's clock: what a claim that waits on the purge would show), and the purge's duration and rate.
 * Uses DATABASE_URL's server if set (in a database of its own, dropped at the end), else an embedded
 * PostgreSQL with stock settings. Writes bench/results/retention-<timestamp>.json (or into --results-dir).
 *
 *   npm run bench:retention
 *   npm run bench:retention -- --rows 200000 --baseline-seconds 10     # a quick check of the harness
 */
const { mkdirSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { Client } = require('pg');
const { runMigrations } = require('../dist/persistence/data-source');
const { JOBS_DUE_CHANNEL } = require('../dist/persistence/job.sql');
const {
  UUID_V7,
  sleep,
  log,
  percentile,
  startService,
  withClient,
  createDatabase,
  numberOption,
  textOption,
  scratchServer,
} = require('./support');

const ROWS = numberOption('rows', 10_000_000);
const RATE = numberOption('rate', 200);
const BASELINE_SECONDS = numberOption('baseline-seconds', 60);
const SEED_CHUNK = 1_000_000;
const DAY_S = 86_400;

/** Seeds `rows` completed jobs created 8 to 9 days ago, the way a restore would (the schema's rules off). */
async function seed(url, rows) {
  await withClient(url, async (client) => {
    await client.query('SET session_replication_role = replica');
    for (let done = 0; done < rows; done += SEED_CHUNK) {
      const count = Math.min(SEED_CHUNK, rows - done);
      // Spread over one day, oldest first, so that ids follow creation time as the service's do.
      await client.query(
        `WITH seeded AS (
           INSERT INTO jobs (job_id, job_type, state, payload, result, run_at, available_at, attempts, failed_attempts,
                             max_attempts, timeout_ms, worker_id, attempt_started_at, created_at, updated_at,
                             started_at, finished_at)
           SELECT ${UUID_V7('t')}, 'noop', 'completed', '{}', 'null', t, NULL, retried + 1, retried, 3, 60000,
                  'seed', t, t, t, t, t + interval '5 ms'
           FROM (SELECT now() - make_interval(secs => ${9 * DAY_S} - (g + $1) * ${DAY_S}::float8 / $2) AS t,
                        (g % 10 = 0)::int AS retried
                 FROM generate_series(1, $3) AS g) AS rows
           RETURNING job_id, started_at, failed_attempts
         )
         INSERT INTO job_attempts (job_id, attempt, worker_id, started_at, finished_at, outcome, error)
         SELECT job_id, 1, 'seed', started_at - interval '1 s', started_at - interval '999 ms', 'failed',
                '{"code": "handler_error", "message": "seeded"}'
         FROM seeded WHERE failed_attempts = 1`,
        [done, rows, count],
      );
      log(`  seeded ${(done + count).toLocaleString('en')} of ${rows.toLocaleString('en')}`);
    }
    await client.query('SET session_replication_role = DEFAULT');
    await client.query('VACUUM ANALYZE jobs, job_type_listing, job_attempts');
  });
}

/** Inserts one due noop job every 1/rate s, as POST /jobs would, until stopped. */
function steadyArrivals(url, rate) {
  const client = new Client({ connectionString: url });
  let stopped = false;
  const running = (async () => {
    await client.connect();
    const started = Date.now();
    for (let sent = 0; !stopped; sent++) {
      const due = started + (sent * 1000) / rate;
      if (due > Date.now()) await sleep(due - Date.now());
      await client.query(
        `WITH inserted AS (
           INSERT INTO jobs (job_id, job_type, payload, priority, run_at, available_at, max_attempts, timeout_ms)
           VALUES (job_id_v7(), 'noop', '{}', 0, now(), now(), 3, 60000) RETURNING 1)
         SELECT pg_notify('${JOBS_DUE_CHANNEL}', '') FROM inserted`,
      );
    }
    await client.end();
  })();
  return {
    stop: async () => {
      stopped = true;
      await running;
    },
  };
}

/** Creation-to-start times (ms) of the new jobs created between `from` and `to`, and how many are still waiting. */
async function startLatency(url, from, to) {
  return withClient(url, async (client) => {
    const { rows } = await client.query(
      `SELECT extract(epoch FROM started_at - created_at) * 1000 AS ms
       FROM jobs WHERE worker_id IS DISTINCT FROM 'seed' AND created_at >= $1 AND created_at < $2`,
      [from, to],
    );
    const times = rows.map((row) => (row.ms === null ? Infinity : Number(row.ms))).sort((a, b) => a - b);
    const figure = (p) => Number(percentile(times, p).toFixed(2));
    return {
      jobs: times.length,
      unstarted: times.filter((ms) => ms === Infinity).length,
      p50_ms: figure(50),
      p95_ms: figure(95),
      p99_ms: figure(99),
      max_ms: figure(100),
    };
  });
}

/** The sum of a counter across its labels, from a worker's /metrics. */
async function counterTotal(baseUrl, name) {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) total += Number(line.split(' ').pop());
  return total;
}

async function main() {
  const server = await scratchServer('retention');
  const database = await createDatabase(server.url, `retention_bench_${process.pid}`);
  const report = {
    date: new Date().toISOString(),
    rows: ROWS,
    rate: RATE,
    baseline_seconds: BASELINE_SECONDS,
  };
  try {
    await runMigrations(database.url);
    log(`seeding ${ROWS.toLocaleString('en')} completed jobs, 8 to 9 days old`);
    const seedStart = Date.now();
    await seed(database.url, ROWS);
    report.seed_seconds = (Date.now() - seedStart) / 1000;
    report.table_mb = await withClient(database.url, async (client) => {
      const { rows } = await client.query(
        `SELECT pg_total_relation_size('jobs') / 1048576 AS jobs, pg_total_relation_size('job_attempts') / 1048576 AS attempts`,
      );
      return { jobs: Number(rows[0].jobs), job_attempts: Number(rows[0].attempts) };
    });

    const arrivals = steadyArrivals(database.url, RATE);
    const keepAll = { RETENTION_COMPLETED_MS: '0', RETENTION_FAILED_MS: '0', RETENTION_CANCELLED_MS: '0' };
    const env = { APP_ROLE: 'worker', DATABASE_URL: database.url, RETENTION_SWEEP_INTERVAL_MS: '1000' };

    log(`baseline: ${BASELINE_SECONDS} s at ${RATE} jobs/s, retention off`);
    let worker = await startService({ ...env, ...keepAll });
    await sleep(2_000);
    const baselineFrom = new Date();
    await sleep(BASELINE_SECONDS * 1000);
    const baselineTo = new Date();
    await sleep(2_000);
    await worker.stop();

    log('purge: a worker with the default retention');
    worker = await startService(env);
    const purgeFrom = new Date();
    let deleted = 0;
    while (deleted < ROWS) {
      await sleep(1_000);
      deleted = await counterTotal(worker.baseUrl, 'jobs_deleted_total');
      if (Date.now() % 30_000 < 1_000) log(`  deleted ${deleted.toLocaleString('en')}`);
    }
    const purgeTo = new Date();
    await sleep(2_000);
    await arrivals.stop();
    await sleep(1_000);
    await worker.stop();

    report.baseline = await startLatency(database.url, baselineFrom, baselineTo);
    report.during_purge = await startLatency(database.url, purgeFrom, purgeTo);
    const purgeSeconds = (purgeTo - purgeFrom) / 1000;
    report.purge = { deleted, seconds: purgeSeconds, jobs_per_second: Math.round(deleted / purgeSeconds) };
    report.left = await withClient(database.url, async (client) => {
      const { rows } = await client.query(
        `SELECT (SELECT count(*) FROM jobs WHERE worker_id = 'seed')::int AS seeded_jobs,
                (SELECT count(*) FROM job_attempts)::int AS attempt_records`,
      );
      return rows[0];
    });

    log(
      `seeded in ${report.seed_seconds.toFixed(0)} s (jobs ${report.table_mb.jobs} MB, attempt records ${report.table_mb.job_attempts} MB)`,
    );
    log(
      `purge: ${deleted.toLocaleString('en')} jobs in ${purgeSeconds.toFixed(0)} s (${report.purge.jobs_per_second.toLocaleString('en')} jobs/s); left: ${JSON.stringify(report.left)}`,
    );
    for (const phase of ['baseline', 'during_purge']) {
      const r = report[phase];
      log(
        `${phase.padEnd(12)} creation to start, ${r.jobs} jobs (${r.unstarted} not started): p50 ${r.p50_ms} ms, p95 ${r.p95_ms} ms, p99 ${r.p99_ms} ms, max ${r.max_ms} ms`,
      );
    }
    const resultsDir = textOption('results-dir', join(__dirname, 'results'));
    mkdirSync(resultsDir, { recursive: true });
    const file = join(resultsDir, `retention-${report.date.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
    log(`written to ${file}`);
  } finally {
    await database.drop().catch(() => undefined);
    await server.stop();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    log(error.stack ?? String(error));
    process.exit(1);
  },
);
