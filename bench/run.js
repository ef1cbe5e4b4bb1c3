#!/usr/bin/env node
/**
 * The benchmark: `npm run bench` (builds first). Uses DATABASE_URL's server if set (in a database of its
 * own, dropped at the end), else an embedded PostgreSQL with stock settings that it starts and stops.
 * Every figure is the median of --runs runs (default 3), shown with its min and max. Prints a table and
 * writes bench/results/<timestamp>.json.
 *
 *   npm run bench                 # everything, about 6 minutes on 2 cores
 *   npm run bench -- --runs 1     # one run of each
 *   npm run bench -- --only processing,latency,http,grown
 */
const { spawn } = require('node:child_process');
const { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const { createServer } = require('node:net');
const os = require('node:os');
const { join } = require('node:path');
const { performance } = require('node:perf_hooks');
const autocannon = require('autocannon');
const { Client } = require('pg');
const { EmbeddedDatabase } = require('../dist/persistence/embedded-database');
const { runMigrations } = require('../dist/persistence/data-source');

const MAIN = join(__dirname, '..', 'dist', 'main.js');
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? args[index + 1] : fallback;
};
const RUNS = Number(option('runs', '3'));
const ONLY = new Set(option('only', 'processing,latency,http,grown').split(','));
const PROCESSING_JOBS = Number(option('jobs', '50000'));
const GROWN_ROWS = Number(option('grown-rows', '1000000'));

/** Workers and the API run with the image's NODE_OPTIONS (see the Dockerfile), as deployed. */
const NODE_OPTIONS = /^ENV NODE_OPTIONS="([^"]*)"$/m.exec(readFileSync(join(__dirname, '..', 'Dockerfile'), 'utf8'))?.[1] ?? '';

/** A time-ordered UUIDv7 for a past time `t` (SQL expression), for finished jobs seeded as history. */
const UUID_V7 = (t) =>
  `(lpad(to_hex((extract(epoch FROM ${t}) * 1000)::bigint), 12, '0') || '7' || substr(md5(random()::text), 1, 3)
    || to_hex(8 + floor(random() * 4)::int) || substr(md5(random()::text), 1, 15))::uuid`;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (message) => process.stderr.write(`${message}\n`);

function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], runs: sorted };
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** Starts `node dist/main` with `env` and waits until /health/ready answers. */
async function startService(env) {
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH, NODE_OPTIONS, LOG_LEVEL: 'warn', MIGRATE_ON_START: 'false', ...env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const baseUrl = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${baseUrl}/health/ready`)).ok) break;
    } catch {
      // not up yet
    }
    if (child.exitCode !== null || i > 300) throw new Error(`service did not start (${JSON.stringify(env)})`);
    await sleep(100);
  }
  return {
    baseUrl,
    pid: child.pid,
    /** Peak resident set size so far, in MB (VmHWM). */
    peakRssMb() {
      const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      return match ? Number(match[1]) / 1024 : NaN;
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function withClient(url, work) {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * Runs `sql` with the database's triggers off for this session only. The schema refuses TRUNCATE and the
 * deletion of young or unfinished jobs; the benchmark's own database is scratch space, a superuser may.
 */
async function withTriggersOff(client, sql, params) {
  await client.query('SET session_replication_role = replica');
  try {
    return await client.query(sql, params);
  } finally {
    await client.query('SET session_replication_role = DEFAULT');
  }
}

async function reset(url) {
  await withClient(url, (client) => withTriggersOff(client, 'TRUNCATE jobs, job_attempts'));
}

async function insertNoopJobs(url, count) {
  await withClient(url, async (client) => {
    await client.query(
      `INSERT INTO jobs (job_id, job_type, payload, run_at, available_at, max_attempts, timeout_ms)
       SELECT job_id_v7(), 'noop', '{}', now(), now(), 3, 60000 FROM generate_series(1, $1)`,
      [count],
    );
    await client.query('VACUUM ANALYZE jobs');
  });
}

/** Drains `count` pre-created noop jobs with `workers` processes; jobs/s from first claim to last completion. */
async function drain(url, workers, env, count) {
  const processes = await Promise.all(Array.from({ length: workers }, () => startService({ APP_ROLE: 'worker', DATABASE_URL: url, ...env })));
  // Workers start claiming as soon as they are up; measure on the database clock.
  const deadline = Date.now() + 300_000;
  let result;
  while (Date.now() < deadline) {
    result = await withClient(url, async (client) => {
      const { rows } = await client.query(
        `SELECT count(*) FILTER (WHERE state = 'completed')::int AS done,
                extract(epoch FROM max(finished_at) - min(attempt_started_at)) AS seconds
         FROM jobs`,
      );
      return rows[0];
    });
    if (result.done >= count) break;
    await sleep(200);
  }
  const rss = processes.map((service) => service.peakRssMb());
  await Promise.all(processes.map((service) => service.stop()));
  if (result.done < count) throw new Error(`only ${result.done} of ${count} jobs completed`);
  return { jobsPerSecond: count / Number(result.seconds), peakRssMb: Math.max(...rss) };
}

async function processingScenario(url, label, workers, env, count = PROCESSING_JOBS) {
  const throughput = [];
  const rss = [];
  for (let run = 1; run <= RUNS; run++) {
    await reset(url);
    await insertNoopJobs(url, count);
    const { jobsPerSecond, peakRssMb } = await drain(url, workers, env, count);
    log(`  ${label}, run ${run}: ${jobsPerSecond.toFixed(0)} jobs/s, peak RSS ${peakRssMb.toFixed(0)} MB`);
    throughput.push(jobsPerSecond);
    rss.push(peakRssMb);
  }
  return { label, workers, env, jobs: count, jobs_per_second: stats(throughput), peak_rss_mb: stats(rss) };
}

/** Jobs created through the API at a steady rate with idle workers: creation to attempt start, database clock. */
async function latencyScenario(url) {
  const perSecond = 200;
  const seconds = 20;
  const p50 = [];
  const p95 = [];
  const p99 = [];
  for (let run = 1; run <= RUNS; run++) {
    await reset(url);
    const api = await startService({ APP_ROLE: 'api', DATABASE_URL: url });
    const worker = await startService({ APP_ROLE: 'worker', DATABASE_URL: url });
    await sleep(500);
    const started = performance.now();
    const requests = [];
    for (let i = 0; i < perSecond * seconds; i++) {
      const due = started + (i * 1000) / perSecond;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      requests.push(
        fetch(`${api.baseUrl}/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"job_type":"noop"}',
        }).then((response) => response.arrayBuffer()),
      );
    }
    await Promise.all(requests);
    await sleep(1_000);
    const delays = await withClient(url, async (client) => {
      const { rows } = await client.query(
        `SELECT extract(epoch FROM attempt_started_at - created_at) * 1000 AS ms FROM jobs WHERE attempt_started_at IS NOT NULL`,
      );
      return rows.map((row) => Number(row.ms)).sort((a, b) => a - b);
    });
    await Promise.all([api.stop(), worker.stop()]);
    if (delays.length < perSecond * seconds) throw new Error(`only ${delays.length} jobs started`);
    p50.push(percentile(delays, 50));
    p95.push(percentile(delays, 95));
    p99.push(percentile(delays, 99));
    log(`  pickup latency, run ${run}: p50 ${p50.at(-1).toFixed(2)} ms, p95 ${p95.at(-1).toFixed(2)} ms, p99 ${p99.at(-1).toFixed(2)} ms`);
  }
  return { rate_per_second: perSecond, seconds, p50_ms: stats(p50), p95_ms: stats(p95), p99_ms: stats(p99) };
}

function cannon(options) {
  return new Promise((resolve, reject) => autocannon(options, (error, result) => (error ? reject(error) : resolve(result))));
}

async function httpScenario(url) {
  const single = { rps: [], p50: [], p99: [], errors: [] };
  const batchJobsPerSecond = [];
  const batchBody = JSON.stringify({ jobs: Array.from({ length: 1000 }, () => ({ job_type: 'noop' })) });
  for (let run = 1; run <= RUNS; run++) {
    await reset(url);
    const api = await startService({ APP_ROLE: 'api', DATABASE_URL: url });
    const result = await cannon({
      url: `${api.baseUrl}/jobs`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"job_type":"noop","payload":{}}',
      connections: 50,
      duration: 10,
    });
    single.rps.push(result.requests.average);
    single.p50.push(result.latency.p50);
    single.p99.push(result.latency.p99);
    single.errors.push(result.errors + result.timeouts + result.non2xx);
    log(`  POST /jobs, run ${run}: ${result.requests.average.toFixed(0)} req/s, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, errors ${single.errors.at(-1)}`);

    await reset(url);
    const batch = await cannon({
      url: `${api.baseUrl}/jobs/batch`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: batchBody,
      connections: 4,
      duration: 10,
    });
    const created = await withClient(url, async (client) => (await client.query('SELECT count(*)::int AS n FROM jobs')).rows[0].n);
    batchJobsPerSecond.push(created / 10);
    log(`  POST /jobs/batch, run ${run}: ${(created / 10).toFixed(0)} jobs/s (${batch.non2xx + batch.errors} errors)`);
    await api.stop();
  }
  return {
    single: {
      connections: 50,
      seconds: 10,
      requests_per_second: stats(single.rps),
      p50_ms: stats(single.p50),
      p99_ms: stats(single.p99),
      errors: stats(single.errors),
    },
    batch: { jobs_per_request: 1000, connections: 4, seconds: 10, jobs_per_second: stats(batchJobsPerSecond) },
  };
}

/** Adds finished jobs straight into the table (triggers off for this session only: the rows are final). */
async function growTable(url, rows) {
  await withClient(url, async (client) => {
    await withTriggersOff(client, 'TRUNCATE jobs, job_attempts');
    await client.query('SET session_replication_role = replica');
    await client.query(
      `INSERT INTO jobs (job_id, job_type, state, payload, result, run_at, available_at, attempts, max_attempts, timeout_ms,
                         worker_id, attempt_started_at, created_at, updated_at, started_at, finished_at)
       SELECT ${UUID_V7('t')}, 'noop', 'completed', '{}', 'null', t, NULL, 1, 3, 60000, 'seed', t, t, t, t, t
       FROM (SELECT now() - make_interval(secs => g) AS t FROM generate_series(1, $1) AS g) AS seed`,
      [rows],
    );
    await client.query('SET session_replication_role = DEFAULT');
    await client.query('VACUUM ANALYZE jobs');
  });
}

async function grownScenario(url, best) {
  await growTable(url, GROWN_ROWS);
  const throughput = [];
  for (let run = 1; run <= RUNS; run++) {
    await withClient(url, (client) => withTriggersOff(client, `DELETE FROM jobs WHERE worker_id IS DISTINCT FROM 'seed'`));
    await withClient(url, (client) =>
      client.query(
        `INSERT INTO jobs (job_id, job_type, payload, run_at, available_at, max_attempts, timeout_ms)
         SELECT job_id_v7(), 'noop', '{}', now(), now(), 3, 60000 FROM generate_series(1, $1)`,
        [PROCESSING_JOBS],
      ),
    );
    await withClient(url, (client) => client.query('VACUUM ANALYZE jobs'));
    const processes = await Promise.all(
      Array.from({ length: best.workers }, () => startService({ APP_ROLE: 'worker', DATABASE_URL: url, ...best.env })),
    );
    let result;
    for (;;) {
      result = await withClient(url, async (client) => {
        const { rows } = await client.query(
          `SELECT count(*)::int AS done, extract(epoch FROM max(finished_at) - min(attempt_started_at)) AS seconds
           FROM jobs WHERE state = 'completed' AND worker_id <> 'seed'`,
        );
        return rows[0];
      });
      if (result.done >= PROCESSING_JOBS) break;
      await sleep(200);
    }
    await Promise.all(processes.map((service) => service.stop()));
    throughput.push(PROCESSING_JOBS / Number(result.seconds));
    log(`  ${GROWN_ROWS.toLocaleString('en')} finished rows present, run ${run}: ${throughput.at(-1).toFixed(0)} jobs/s`);
  }

  // Listing stays fast: first page and 100th page of GET /jobs.
  const api = await startService({ APP_ROLE: 'api', DATABASE_URL: url });
  let cursor = null;
  for (let page = 1; page < 100; page++) {
    const body = await (await fetch(`${api.baseUrl}/jobs${cursor ? `?cursor=${cursor}` : ''}`)).json();
    cursor = body.next_cursor;
  }
  const timePage = async (query) => {
    const times = [];
    for (let i = 0; i < 300; i++) {
      const start = performance.now();
      await (await fetch(`${api.baseUrl}/jobs${query}`)).arrayBuffer();
      times.push(performance.now() - start);
    }
    times.sort((a, b) => a - b);
    return { p50_ms: percentile(times, 50), p99_ms: percentile(times, 99) };
  };
  const listing = { first_page: await timePage(''), page_100: await timePage(`?cursor=${cursor}`) };
  log(`  GET /jobs with ${GROWN_ROWS.toLocaleString('en')} rows: first page p99 ${listing.first_page.p99_ms.toFixed(2)} ms, 100th page p99 ${listing.page_100.p99_ms.toFixed(2)} ms`);
  await api.stop();
  return { finished_rows: GROWN_ROWS, label: best.label, workers: best.workers, env: best.env, jobs_per_second: stats(throughput), listing };
}

async function main() {
  let embedded;
  let url;
  let dropBenchDatabase = async () => undefined;
  if (process.env.DATABASE_URL) {
    const name = `job_service_bench_${process.pid}`;
    await withClient(process.env.DATABASE_URL, (client) => client.query(`CREATE DATABASE ${name}`));
    const parsed = new URL(process.env.DATABASE_URL);
    parsed.pathname = `/${name}`;
    url = parsed.toString();
    dropBenchDatabase = () => withClient(process.env.DATABASE_URL, (client) => client.query(`DROP DATABASE ${name} WITH (FORCE)`));
  } else {
    const folder = mkdtempSync(join(os.tmpdir(), 'job-service-bench-'));
    chmodSync(folder, 0o755);
    log('starting an embedded PostgreSQL (stock settings)');
    embedded = await EmbeddedDatabase.start({ dataDir: join(folder, 'postgres') });
    url = embedded.url;
    dropBenchDatabase = async () => rmSync(folder, { recursive: true, force: true });
  }
  const postgres = await withClient(url, async (client) => (await client.query('SHOW server_version')).rows[0].server_version);
  await runMigrations(url);

  const report = {
    date: new Date().toISOString(),
    node_options: NODE_OPTIONS,
    machine: { cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model, memory_gb: Math.round(os.totalmem() / 2 ** 30), node: process.version, postgres },
    runs: RUNS,
  };
  try {
    if (ONLY.has('processing') || ONLY.has('grown')) {
      log(`processing: ${PROCESSING_JOBS.toLocaleString('en')} pre-created noop jobs`);
      const tuned = { WORKER_CONCURRENCY: '100' };
      report.processing = [
        await processingScenario(url, '1 worker, default settings', 1, {}),
        await processingScenario(url, '1 worker, WORKER_CONCURRENCY=100', 1, tuned),
        await processingScenario(url, '2 workers, WORKER_CONCURRENCY=100', 2, tuned),
      ];
    }
    if (ONLY.has('latency')) {
      log('pickup latency: 200 jobs/s through POST /jobs for 20 s, one idle worker (default settings)');
      report.pickup_latency = await latencyScenario(url);
    }
    if (ONLY.has('http')) {
      log('HTTP: one api process');
      report.http = await httpScenario(url);
    }
    if (ONLY.has('grown') && report.processing) {
      const best = [...report.processing].sort((a, b) => b.jobs_per_second.median - a.jobs_per_second.median)[0];
      log(`grown table: ${GROWN_ROWS.toLocaleString('en')} finished jobs, then "${best.label}" again`);
      report.grown_table = await grownScenario(url, best);
      report.grown_table.empty_table_jobs_per_second = best.jobs_per_second.median;
      report.grown_table.ratio_to_empty = report.grown_table.jobs_per_second.median / best.jobs_per_second.median;
    }
  } finally {
    await embedded?.stop();
    await dropBenchDatabase();
  }

  const resultsDir = join(__dirname, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `${report.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  printTable(report);
  log(`\nwritten to ${file}`);
}

function printTable(report) {
  const fmt = (s, digits = 0) => `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}-${s.max.toFixed(digits)})`;
  const lines = [['figure', 'median (min-max)']];
  for (const p of report.processing ?? []) {
    lines.push([`processing, ${p.label}`, `${fmt(p.jobs_per_second)} jobs/s`]);
    lines.push([`  peak worker RSS`, `${fmt(p.peak_rss_mb)} MB`]);
  }
  if (report.pickup_latency) {
    const l = report.pickup_latency;
    lines.push(['pickup latency at 200 jobs/s, p50 / p95 / p99', `${fmt(l.p50_ms, 2)} / ${fmt(l.p95_ms, 2)} / ${fmt(l.p99_ms, 2)} ms`]);
  }
  if (report.http) {
    const s = report.http.single;
    lines.push(['POST /jobs, 50 connections', `${fmt(s.requests_per_second)} req/s`]);
    lines.push(['  latency p50 / p99', `${fmt(s.p50_ms, 1)} / ${fmt(s.p99_ms, 1)} ms`]);
    lines.push(['  errors', fmt(s.errors)]);
    lines.push(['POST /jobs/batch of 1,000', `${fmt(report.http.batch.jobs_per_second)} jobs/s`]);
  }
  if (report.grown_table) {
    const g = report.grown_table;
    lines.push([`processing with ${g.finished_rows.toLocaleString('en')} finished rows (${g.label})`, `${fmt(g.jobs_per_second)} jobs/s (${(g.ratio_to_empty * 100).toFixed(0)}% of empty)`]);
    lines.push(['GET /jobs p99, first page / 100th page', `${g.listing.first_page.p99_ms.toFixed(2)} / ${g.listing.page_100.p99_ms.toFixed(2)} ms`]);
  }
  const width = Math.max(...lines.map(([a]) => a.length));
  process.stdout.write(`\nJob service benchmark, ${report.date.slice(0, 10)}, ${report.machine.cpus} cores, ${report.machine.memory_gb} GiB, Node ${report.machine.node}, PostgreSQL ${report.machine.postgres}, ${report.runs} run(s)\n\n`);
  for (const [a, b] of lines) process.stdout.write(`${a.padEnd(width)}  ${b}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
});
