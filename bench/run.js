#!/usr/bin/env node
/**
 * The benchmark: `npm run bench` (builds first). Uses DATABASE_URL's server if set (in databases of its
 * own, dropped at the end), else an embedded PostgreSQL with stock settings that it starts and stops.
 * Beside our service it runs graphile-worker and pg-boss (bench/peers/), each in a database and a process
 * of its own, at its defaults and at its best documented setting (bench/peers/settings.js), and prints every
 * figure as ours, theirs, and the ratio to the best peer. Every figure is the median of --runs runs
 * (default 3), shown with its min and max; run after run, every system takes its turn before the next run
 * starts, so that a machine that drifts moves them all. Prints a table and writes bench/results/<timestamp>.json.
 *
 *   npm run bench                            # everything, about 25 minutes on 2 cores
 *   npm run bench -- --runs 1                # one run of each
 *   npm run bench -- --only processing,latency,http,grown
 *   npm run bench -- --peers none            # our service only (or --peers pg-boss)
 *   npm run bench -- --runs 1 --jobs 2000 --drain-seconds 20 --latency-seconds 3 --http-seconds 2 --grown-rows 20000
 *                                            # a quick check that the harness works end to end
 *                                            # (test/bench/benchmark-harness.spec.ts runs one in CI)
 *   npm run bench -- --results-dir /tmp/x    # write the result file there instead of bench/results
 */
const { spawn } = require('node:child_process');
const { Buffer } = require('node:buffer');
const http = require('node:http');
const { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const os = require('node:os');
const { join } = require('node:path');
const { performance } = require('node:perf_hooks');
const autocannon = require('autocannon');
const { EmbeddedDatabase } = require('../dist/persistence/embedded-database');
const { runMigrations } = require('../dist/persistence/data-source');
const { Pool } = require('pg');
const { CLAIM_DUE, INSERT_JOB } = require('../dist/persistence/job.sql');
const PEER_SETTINGS = require('./peers/settings');
const { compare, formatComparison } = require('./compare');
const {
  NODE_OPTIONS,
  API_NODE_OPTIONS,
  UUID_V7,
  sleep,
  log,
  percentile,
  startService,
  serverCpuMeter,
  withClient,
  withTriggersOff,
  createDatabase,
} = require('./support');

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? args[index + 1] : fallback;
};
const RUNS = Number(option('runs', '3'));
const ONLY = new Set(option('only', 'processing,latency,http,grown').split(','));
const PEERS = option('peers', Object.keys(PEER_SETTINGS).join(','))
  .split(',')
  .filter((name) => name && name !== 'none');
const PROCESSING_JOBS = Number(option('jobs', '50000'));
/** A drain that has not finished by then is cut off and reported from the jobs done so far (marked partial). */
const DRAIN_SECONDS = Number(option('drain-seconds', '60'));
const LATENCY_RATE = Number(option('latency-rate', '200'));
const LATENCY_SECONDS = Number(option('latency-seconds', '20'));
const HTTP_SECONDS = Number(option('http-seconds', '10'));
const GROWN_ROWS = Number(option('grown-rows', '10000000'));
const RESULTS_DIR = option('results-dir', join(__dirname, 'results'));
/** Our api's NODE_OPTIONS: its deployment's (deploy/k8s/api.yaml) unless given, to measure others against them. */
const API_OPTIONS = option('api-node-options', API_NODE_OPTIONS);
const startApi = (url) => startService({ APP_ROLE: 'api', DATABASE_URL: url, NODE_OPTIONS: API_OPTIONS });
for (const peer of PEERS)
  if (!PEER_SETTINGS[peer])
    throw new Error(`unknown peer ${peer}; known: ${Object.keys(PEER_SETTINGS).join(', ')}`);

function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], runs: sorted };
}

/**
 * Runs `node bench/peers/<peer>.js <command> <options>` against the peer's database and resolves with the
 * JSON of its last stdout line. `ready` resolves when it says `{"ready":true}`; `stop()` sends SIGTERM.
 */
function startPeer(peer, url, command, options = {}) {
  const child = spawn(
    process.execPath,
    [join(__dirname, 'peers', `${peer}.js`), command, JSON.stringify(options)],
    {
      env: { PATH: process.env.PATH, NODE_OPTIONS, DATABASE_URL: url },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let buffered = '';
  let last;
  let ready;
  const readyPromise = new Promise((resolve) => (ready = resolve));
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    buffered += chunk;
    for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (!line) continue;
      let message;
      try {
        message = JSON.parse(line);
      } catch {
        // Something in the peer's library printed to stdout: pass it on, it is not the answer.
        log(`${peer}: ${line}`);
        continue;
      }
      last = message;
      if (last.ready) ready();
    }
  });
  const result = new Promise((resolve, reject) =>
    // 'close', not 'exit': by then stdout has been read to its end.
    child.once('close', (code, signal) => {
      if (code === 0 && last) resolve(last);
      else reject(new Error(`${peer} ${command} exited with ${signal ?? code}`));
    }),
  );
  const readyOrEnded = Promise.race([
    readyPromise,
    result.then(() => Promise.reject(new Error(`${peer} ${command} ended before it was ready`))),
  ]);
  // Short commands are never waited on for readiness, only for their result.
  result.catch(() => undefined);
  readyOrEnded.catch(() => undefined);
  return {
    pid: child.pid,
    result,
    ready: readyOrEnded,
    stop() {
      child.kill('SIGTERM');
      return result;
    },
  };
}

const runPeer = (peer, url, command, options) => startPeer(peer, url, command, options).result;

/**
 * Writes out what earlier runs left in the server's memory (CHECKPOINT) before a measured run, so that no
 * system's run pays for the flushing of another's writes. Skipped where the role may not checkpoint.
 */
async function checkpoint(url) {
  await withClient(url, (client) => client.query('CHECKPOINT')).catch(() => undefined);
}

async function reset(url) {
  await withClient(url, (client) =>
    withTriggersOff(client, 'TRUNCATE jobs, job_attempts, callback_deliveries, job_watches'),
  );
}

async function insertNoopJobs(url, count) {
  await withClient(url, async (client) => {
    await client.query(
      `INSERT INTO jobs (job_id, job_type, payload, run_at, available_at, max_attempts, timeout_ms)
       SELECT job_id_v7(), 'noop', '{}', now(), now(), 3, 60000 FROM generate_series(1, $1)`,
      [count],
    );
    // The rows the triggers wrote beside the jobs are settled too, as a table that grew over time would be.
    await client.query('VACUUM ANALYZE jobs, job_type_listing');
  });
}

/**
 * Progress from the maintained counters (a few rows), not a count over the table, so that watching a drain
 * costs the server next to nothing, whatever the table holds; the timing comes from the table once, at the end.
 */
function completedSoFar(client) {
  return client.query(`SELECT coalesce(sum(jobs), 0)::int AS done FROM job_counts WHERE state = 'completed'`);
}

/**
 * Starts measuring the CPU of the PostgreSQL server behind `url`: the function returned gives the seconds
 * it has used since, or null when the server is not on this machine. Ours and the peers' drains alike.
 */
async function serverCpuSince(url) {
  const meter = await serverCpuMeter(url);
  const start = meter?.();
  return () => (meter ? meter() - start : null);
}

/** Database CPU per 1,000 jobs over `runs`, or null when any run could not measure it. */
function serverCpuPer1000Jobs(runs) {
  return runs.every((r) => typeof r.server_cpu_seconds === 'number')
    ? stats(runs.map((r) => (r.server_cpu_seconds * 1e6) / r.jobs_completed))
    : null;
}

/**
 * Drains `count` pre-created noop jobs with `workers` processes; jobs/s from first claim to last completion
 * on the database clock, or over the jobs done by DRAIN_SECONDS when it takes longer (partial).
 */
async function drain(url, workers, env, count) {
  // Finished jobs already there (the grown table's history) are not work of this drain.
  const completedBefore = await withClient(
    url,
    async (client) => (await completedSoFar(client)).rows[0].done,
  );
  const serverCpu = await serverCpuSince(url);
  const processes = await Promise.all(
    Array.from({ length: workers }, () => startService({ APP_ROLE: 'worker', DATABASE_URL: url, ...env })),
  );
  // Workers start claiming as soon as they are up.
  const deadline = Date.now() + DRAIN_SECONDS * 1000;
  let result;
  for (;;) {
    const done =
      (await withClient(url, async (client) => (await completedSoFar(client)).rows[0].done)) -
      completedBefore;
    if (done >= count || Date.now() > deadline) break;
    await sleep(200);
  }
  const serverCpuSeconds = serverCpu();
  result = await withClient(url, async (client) => {
    const { rows } = await client.query(
      `SELECT count(*) FILTER (WHERE state = 'completed')::int AS done,
              extract(epoch FROM max(finished_at) FILTER (WHERE state = 'completed') - min(attempt_started_at)) AS seconds
       FROM jobs WHERE worker_id IS DISTINCT FROM 'seed'`,
    );
    return rows[0];
  });
  const rss = processes.map((service) => service.peakRssMb());
  const cpu = processes.reduce((sum, service) => sum + service.cpuSecondsSinceReady(), 0);
  await Promise.all(processes.map((service) => service.stop()));
  if (result.done === 0) throw new Error(`no job completed in ${DRAIN_SECONDS} s`);
  return {
    jobs_completed: result.done,
    jobs_per_second: result.done / Number(result.seconds),
    partial: result.done < count,
    peak_rss_mb: Math.max(...rss),
    cpu_seconds: cpu,
    server_cpu_seconds: serverCpuSeconds,
  };
}

/** What every processing configuration reports, ours and the peers' alike. */
function processingSummary(config, runs) {
  return {
    ...config,
    jobs: PROCESSING_JOBS,
    jobs_per_second: stats(runs.map((r) => r.jobs_per_second)),
    peak_rss_mb: stats(runs.map((r) => r.peak_rss_mb)),
    cpu_ms_per_1000_jobs: stats(runs.map((r) => (r.cpu_seconds * 1e6) / r.jobs_completed)),
    // The PostgreSQL server's CPU over the drain: what each system's statements cost the database, and a
    // figure that moves far less than jobs/s with what else the machine is doing.
    server_cpu_ms_per_1000_jobs: serverCpuPer1000Jobs(runs),
    partial_runs: runs.filter((r) => r.partial).length,
  };
}

/**
 * The configurations of run `run` (1-based) in the order they take their turns, each with its index in
 * `configs`: grouped by system, the systems rotated by one each run. Over three runs each system goes first,
 * second and last once, so that a machine whose speed drifts during the benchmark favours none of them (with
 * ours always first, a machine that sped up over a run counted against ours).
 */
function inTurn(configs, run) {
  const systems = [...new Set(configs.map((config) => config.system))];
  const shift = (run - 1) % systems.length;
  const order = [...systems.slice(shift), ...systems.slice(0, shift)];
  return order.flatMap((system) => [...configs.entries()].filter(([, config]) => config.system === system));
}

/**
 * Every configuration drains the same number of pre-created noop jobs, one configuration after the other,
 * run after run: ours as separate worker processes, each peer as one runner process.
 */
async function processingScenarios(url, peerUrls) {
  // Our best setting for many short jobs: 500 slots, so that one claim and one completion statement carry up to
  // 500 jobs each (what graphile-worker's local queue of 500 does for it). The server's CPU per 1,000 noop jobs,
  // measured on 2 cores: about 40 ms at 100 slots, 27 ms at 500, 34 ms at 1,000.
  const tuned = { WORKER_CONCURRENCY: '500' };
  const configs = [
    { system: 'ours', setting: 'defaults', label: '1 worker, default settings', workers: 1, env: {} },
    { system: 'ours', setting: 'best', label: '1 worker, WORKER_CONCURRENCY=500', workers: 1, env: tuned },
    {
      system: 'ours',
      setting: 'c100',
      label: '1 worker, WORKER_CONCURRENCY=100',
      workers: 1,
      env: { WORKER_CONCURRENCY: '100' },
    },
    {
      system: 'ours',
      setting: 'two-workers',
      label: '2 workers, WORKER_CONCURRENCY=500',
      workers: 2,
      env: tuned,
    },
  ];
  for (const peer of PEERS) {
    for (const setting of ['defaults', 'best'])
      configs.push({ system: peer, setting, label: PEER_SETTINGS[peer][setting].label });
  }
  const runs = configs.map(() => []);
  for (let run = 1; run <= RUNS; run++) {
    for (const [index, config] of inTurn(configs, run)) {
      let result;
      if (config.system === 'ours') {
        await reset(url);
        await insertNoopJobs(url, PROCESSING_JOBS);
        await checkpoint(url);
        result = await drain(url, config.workers, config.env, PROCESSING_JOBS);
      } else {
        const peerUrl = peerUrls[config.system];
        await runPeer(config.system, peerUrl, 'prepare', { jobs: PROCESSING_JOBS });
        await checkpoint(peerUrl);
        const serverCpu = await serverCpuSince(peerUrl);
        result = await runPeer(config.system, peerUrl, 'drain', {
          setting: config.setting,
          jobs: PROCESSING_JOBS,
          maxSeconds: DRAIN_SECONDS,
        });
        result.server_cpu_seconds = serverCpu();
      }
      runs[index].push(result);
      const partial = result.partial ? ` (partial: ${result.jobs_completed} jobs in ${DRAIN_SECONDS} s)` : '';
      log(
        `  ${config.system}, ${config.label}, run ${run}: ${result.jobs_per_second.toFixed(0)} jobs/s${partial}, peak RSS ${result.peak_rss_mb.toFixed(0)} MB`,
      );
    }
  }
  const summaries = configs.map((config, index) => processingSummary(config, runs[index]));
  return {
    ours: summaries.filter((s) => s.system === 'ours'),
    peers: Object.fromEntries(
      PEERS.map((peer) => [
        peer,
        Object.fromEntries(summaries.filter((s) => s.system === peer).map((s) => [s.setting, s])),
      ]),
    ),
  };
}

/**
 * The latency runs' HTTP client: one request per job over kept-alive connections, with node:http. It runs on
 * the same two cores as the service, as the peers' producers do, so it should cost about what they cost:
 * `fetch` used about 1.6 ms of CPU per request at 200 requests/s (the whole api process about 1 ms), this
 * about 0.5 ms, and graphile-worker's producer process 0.4-0.6 ms per `addJob`.
 */
const latencyAgent = new http.Agent({ keepAlive: true });

function postJob(url, body) {
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      {
        method: 'POST',
        agent: latencyAgent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (response) => {
        response.resume();
        response.on('end', () =>
          response.statusCode === 201
            ? resolve()
            : reject(new Error(`POST /jobs answered ${response.statusCode}`)),
        );
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

/** Connections of the plain-client producer, as the peers' producers have: an insert never waits behind the one before it. */
const PRODUCER_CONNECTIONS = 4;

/**
 * Jobs created at a steady rate, one idle worker: creation to attempt start, database clock. `via` 'api':
 * POST /jobs to an api process, as clients do. 'library': the service's own INSERT_JOB from a plain pg pool
 * in this process, the way the peers' producers call `addJob` / `send`; it leaves the api's work out of
 * the machine's CPU while the worker picks jobs up, and so tells the worker's part apart.
 */
async function ourLatencyRun(url, via) {
  await reset(url);
  await checkpoint(url);
  const api = via === 'api' ? await startApi(url) : undefined;
  const producer =
    via === 'library' ? new Pool({ connectionString: url, max: PRODUCER_CONNECTIONS }) : undefined;
  // Connected before the run, not during it.
  if (producer)
    await Promise.all(Array.from({ length: PRODUCER_CONNECTIONS }, () => producer.query('SELECT 1')));
  const worker = await startService({ APP_ROLE: 'worker', DATABASE_URL: url });
  await sleep(500);
  const create = () =>
    producer
      ? producer.query({
          name: 'insert-job',
          text: INSERT_JOB,
          values: ['noop', '{}', 0, null, 3, 60_000, null, null, null],
        })
      : postJob(`${api.baseUrl}/jobs`, '{"job_type":"noop"}');
  const started = performance.now();
  const requests = [];
  for (let i = 0; i < LATENCY_RATE * LATENCY_SECONDS; i++) {
    const due = started + (i * 1000) / LATENCY_RATE;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    requests.push(create());
  }
  await Promise.all(requests);
  await sleep(1_000);
  const delays = await withClient(url, async (client) => {
    const { rows } = await client.query(
      `SELECT extract(epoch FROM attempt_started_at - created_at) * 1000 AS ms FROM jobs WHERE attempt_started_at IS NOT NULL`,
    );
    return rows.map((row) => Number(row.ms));
  });
  await Promise.all([api?.stop(), producer?.end(), worker.stop()]);
  if (delays.length < LATENCY_RATE * LATENCY_SECONDS) throw new Error(`only ${delays.length} jobs started`);
  return { sent: requests.length, started: delays.length, ...summarizeTimes(delays, [50, 95, 99]) };
}

/** The same for a peer: an idle worker process, and a producer process calling `addJob` / `send` at the rate. */
async function peerLatencyRun(peer, url, setting) {
  await runPeer(peer, url, 'prepare', {});
  await checkpoint(url);
  const worker = startPeer(peer, url, 'work', { setting });
  await worker.ready;
  await sleep(500);
  const produced = await runPeer(peer, url, 'produce', { rate: LATENCY_RATE, seconds: LATENCY_SECONDS });
  await sleep(1_000);
  return { ...(await worker.stop()), sent: produced.sent };
}

async function latencyScenarios(url, peerUrls) {
  const configs = [
    {
      system: 'ours',
      setting: 'defaults',
      via: 'api',
      label: 'one worker, default settings, jobs created by POST /jobs',
    },
    {
      system: 'ours',
      setting: 'defaults',
      via: 'library',
      label: 'one worker, default settings, jobs inserted by a plain client',
    },
  ];
  for (const peer of PEERS) {
    for (const setting of ['defaults', 'best'])
      configs.push({ system: peer, setting, label: PEER_SETTINGS[peer][setting].label });
  }
  const runs = configs.map(() => []);
  for (let run = 1; run <= RUNS; run++) {
    for (const [index, config] of inTurn(configs, run)) {
      const result =
        config.system === 'ours'
          ? await ourLatencyRun(url, config.via)
          : await peerLatencyRun(config.system, peerUrls[config.system], config.setting);
      runs[index].push(result);
      const behind =
        result.started < result.sent ? ` (only ${result.started} of ${result.sent} started)` : '';
      log(
        `  ${config.system}, ${config.setting}${config.via ? ` (via ${config.via})` : ''}, run ${run}: p50 ${result.p50_ms.toFixed(2)} ms, p95 ${result.p95_ms.toFixed(2)} ms, p99 ${result.p99_ms.toFixed(2)} ms${behind}`,
      );
    }
  }
  const summaries = configs.map((config, index) => ({
    ...config,
    rate_per_second: LATENCY_RATE,
    seconds: LATENCY_SECONDS,
    p50_ms: stats(runs[index].map((r) => r.p50_ms)),
    p95_ms: stats(runs[index].map((r) => r.p95_ms)),
    p99_ms: stats(runs[index].map((r) => r.p99_ms)),
    // A run where not every job had started a second after the last one was sent: the workers fell behind.
    behind_runs: runs[index].filter((r) => r.started < r.sent).length,
  }));
  return {
    ours: summaries[0],
    ours_library: summaries[1],
    peers: Object.fromEntries(
      PEERS.map((peer) => [
        peer,
        Object.fromEntries(summaries.filter((s) => s.system === peer).map((s) => [s.setting, s])),
      ]),
    ),
  };
}

function cannon(options) {
  return new Promise((resolve, reject) =>
    autocannon(options, (error, result) => (error ? reject(error) : resolve(result))),
  );
}

const SINGLE_CONNECTIONS = 50;
const BATCH_CONNECTIONS = 4;
const BATCH_SIZE = 1000;

async function ourHttpRun(url, batchBody) {
  await reset(url);
  await checkpoint(url);
  const api = await startApi(url);
  const result = await cannon({
    url: `${api.baseUrl}/jobs`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"job_type":"noop","payload":{}}',
    connections: SINGLE_CONNECTIONS,
    duration: HTTP_SECONDS,
  });
  const single = {
    calls_per_second: result.requests.average,
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
  };

  const batch = await ourBatchRun(url, api, batchBody, {});
  // The same batches answered with the new jobs' ids alone, as a client that only needs those asks.
  const batchMinimal = await ourBatchRun(url, api, batchBody, { prefer: 'return=minimal' });
  const peakRssMb = api.peakRssMb();
  await api.stop();
  return { single, batch, batch_minimal: batchMinimal, api_peak_rss_mb: peakRssMb };
}

async function ourBatchRun(url, api, batchBody, extraHeaders) {
  await reset(url);
  const serverCpu = await serverCpuSince(url);
  const apiCpuBefore = api.cpuSecondsSinceReady();
  const result = await cannon({
    url: `${api.baseUrl}/jobs/batch`,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...extraHeaders },
    body: batchBody,
    connections: BATCH_CONNECTIONS,
    duration: HTTP_SECONDS,
  });
  const cpuSeconds = api.cpuSecondsSinceReady() - apiCpuBefore;
  const serverCpuSeconds = serverCpu();
  const created = await withClient(
    url,
    async (client) => (await client.query('SELECT count(*)::int AS n FROM jobs')).rows[0].n,
  );
  return {
    jobs_per_second: created / HTTP_SECONDS,
    errors: result.non2xx + result.errors,
    cpu_ms_per_1000_jobs: (cpuSeconds * 1e6) / created,
    server_cpu_ms_per_1000_jobs: serverCpuSeconds === null ? null : (serverCpuSeconds * 1e6) / created,
  };
}

/** The peers' create calls from one Node process with as many calls in flight as our load generator's connections. */
async function peerHttpRun(peer, url) {
  await runPeer(peer, url, 'prepare', {});
  await checkpoint(url);
  const single = await runPeer(peer, url, 'create', {
    concurrency: SINGLE_CONNECTIONS,
    seconds: HTTP_SECONDS,
  });
  await runPeer(peer, url, 'prepare', {});
  const serverCpu = await serverCpuSince(url);
  const created = await runPeer(peer, url, 'create', {
    concurrency: BATCH_CONNECTIONS,
    seconds: HTTP_SECONDS,
    batch: BATCH_SIZE,
  });
  const serverCpuSeconds = serverCpu();
  const jobs = created.calls * BATCH_SIZE;
  const batch = {
    ...created,
    cpu_ms_per_1000_jobs: (created.cpu_seconds * 1e6) / jobs,
    server_cpu_ms_per_1000_jobs: serverCpuSeconds === null ? null : (serverCpuSeconds * 1e6) / jobs,
  };
  return { single, batch };
}

async function httpScenarios(url, peerUrls) {
  const batchBody = JSON.stringify({
    jobs: Array.from({ length: BATCH_SIZE }, () => ({ job_type: 'noop' })),
  });
  const systems = ['ours', ...PEERS];
  const runs = Object.fromEntries(systems.map((system) => [system, []]));
  for (let run = 1; run <= RUNS; run++) {
    for (const [, { system }] of inTurn(
      systems.map((system) => ({ system })),
      run,
    )) {
      const result =
        system === 'ours' ? await ourHttpRun(url, batchBody) : await peerHttpRun(system, peerUrls[system]);
      runs[system].push(result);
      const { single, batch } = result;
      log(
        `  ${system}, single create, run ${run}: ${single.calls_per_second.toFixed(0)}/s, p50 ${single.p50_ms.toFixed(1)} ms, p99 ${single.p99_ms.toFixed(1)} ms, errors ${single.errors}`,
      );
      log(
        `  ${system}, batch create of ${BATCH_SIZE.toLocaleString('en')}, run ${run}: ${batch.jobs_per_second.toFixed(0)} jobs/s (${batch.errors} errors)`,
      );
      if (result.batch_minimal) {
        log(
          `  ${system}, batch create with Prefer: return=minimal, run ${run}: ${result.batch_minimal.jobs_per_second.toFixed(0)} jobs/s (${result.batch_minimal.errors} errors)`,
        );
      }
    }
  }
  const summary = (system) => ({
    system,
    single: {
      connections: SINGLE_CONNECTIONS,
      seconds: HTTP_SECONDS,
      requests_per_second: stats(runs[system].map((r) => r.single.calls_per_second)),
      p50_ms: stats(runs[system].map((r) => r.single.p50_ms)),
      p99_ms: stats(runs[system].map((r) => r.single.p99_ms)),
      errors: stats(runs[system].map((r) => r.single.errors)),
    },
    batch: batchSummary(runs[system].map((r) => r.batch)),
  });
  const ours = {
    ...summary('ours'),
    batch_minimal: batchSummary(runs.ours.map((r) => r.batch_minimal)),
    // The api process's peak over its single and batch creates.
    api_peak_rss_mb: stats(runs.ours.map((r) => r.api_peak_rss_mb)),
  };
  return { ours, peers: Object.fromEntries(PEERS.map((peer) => [peer, summary(peer)])) };
}

/** The batch creates of every run, as the report gives them. */
function batchSummary(batches) {
  return {
    jobs_per_request: BATCH_SIZE,
    connections: BATCH_CONNECTIONS,
    seconds: HTTP_SECONDS,
    jobs_per_second: stats(batches.map((batch) => batch.jobs_per_second)),
    errors: stats(batches.map((batch) => batch.errors)),
    // The creating process's CPU (our api; the peer's calling process) and the database's, per 1,000 jobs.
    cpu_ms_per_1000_jobs: stats(batches.map((batch) => batch.cpu_ms_per_1000_jobs)),
    server_cpu_ms_per_1000_jobs: batches.every(
      (batch) => typeof batch.server_cpu_ms_per_1000_jobs === 'number',
    )
      ? stats(batches.map((batch) => batch.server_cpu_ms_per_1000_jobs))
      : null,
  };
}

/** Failed jobs among the grown table's finished rows: its oldest, so that a walk to them passes all the others. */
const GROWN_FAILED_ROWS = 100;

async function growTable(url, rows) {
  await withClient(url, async (client) => {
    await withTriggersOff(client, 'TRUNCATE jobs, job_attempts, callback_deliveries, job_watches');
    await client.query('SET session_replication_role = replica');
    await client.query(
      `INSERT INTO jobs (job_id, job_type, state, payload, result, error, run_at, available_at, attempts,
                         failed_attempts, max_attempts, timeout_ms, worker_id, attempt_started_at, created_at,
                         updated_at, started_at, finished_at)
       SELECT ${UUID_V7('t')}, 'noop', CASE WHEN failed THEN 'failed' ELSE 'completed' END, '{}',
              CASE WHEN NOT failed THEN 'null'::jsonb END,
              CASE WHEN failed THEN '{"code": "handler_error", "message": "seed"}'::jsonb END,
              t, NULL, 1, failed::int, 3, 60000, 'seed', t, t, t, t, t
       FROM (SELECT now() - make_interval(secs => g) AS t, g > $1 - $2 AS failed
             FROM generate_series(1, $1) AS g) AS seed`,
      [rows, GROWN_FAILED_ROWS],
    );
    await client.query('SET session_replication_role = DEFAULT');
    // The tables the insert wrote (the listings by its triggers), as in a table that grew over time: left to
    // autovacuum, its first pass over ten million new listing rows would fall into the drains that follow.
    await client.query('VACUUM ANALYZE jobs, job_type_listing, job_state_listing');
  });
}

const PROBE_JOBS = 100_000;
const PROBE_CLAIM = 100;

/** Leaves only the grown table's finished rows ('seed'), dropping the jobs of earlier drains and probes. */
async function keepOnlySeedRows(url) {
  await withClient(url, (client) =>
    withTriggersOff(client, `DELETE FROM jobs WHERE worker_id IS DISTINCT FROM 'seed'`),
  );
}

/** Sends `send` `count` times one after the other; the round trips, in ms. */
async function roundTripTimes(count, send) {
  const times = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await send();
    times.push(performance.now() - start);
  }
  return times;
}

/** The given percentiles (p50 and p99 unless told) of times in ms, as `{ p50_ms, p99_ms, ... }`. */
function summarizeTimes(times, percentiles = [50, 99]) {
  const sorted = [...times].sort((a, b) => a - b);
  return Object.fromEntries(percentiles.map((p) => [`p${p}_ms`, percentile(sorted, p)]));
}

/**
 * Times the worker's claim statement itself (CLAIM_DUE, prepared, as the worker sends it) from a plain
 * client, for one round: PROBE_JOBS due jobs, created beforehand and the table vacuumed as for a drain, then
 * claims of PROBE_CLAIM until they are all taken, on one new connection. The first claim on a connection
 * also parses and plans the statement, which a worker does once per connection; it is returned apart.
 */
async function claimRound(url) {
  await keepOnlySeedRows(url);
  await insertNoopJobs(url, PROBE_JOBS);
  await checkpoint(url);
  const [first, ...rest] = await withClient(url, (client) =>
    roundTripTimes(PROBE_JOBS / PROBE_CLAIM, () =>
      client.query({
        name: 'claim-due',
        text: CLAIM_DUE,
        values: [PROBE_CLAIM, 'claim-probe', 60_000, ['noop']],
      }),
    ),
  );
  return { first, rest };
}

/**
 * The claim rounds of one table, summed up: p50 and p99 over the round trips of all rounds but each round's
 * first claim, and the median of those first claims, in ms. With 1,000 claims a round the p99 is the 30th
 * slowest of 3,000, not one stray pause: taken over 200 or 600 claims, the same statement measured 67% to
 * 174% of the empty table's p99 from one run to the next.
 */
function claimSummary(rounds) {
  return {
    claims: rounds.reduce((sum, round) => sum + round.rest.length, 0),
    jobs_per_claim: PROBE_CLAIM,
    ...summarizeTimes(rounds.flatMap((round) => round.rest)),
    first_claim_ms: summarizeTimes(
      rounds.map((round) => round.first),
      [50],
    ).p50_ms,
  };
}

/** Requests per page and run when timing GET /jobs: its p99 is then the 10th slowest, not one stray pause. */
const LISTING_REQUESTS = 1_000;

/**
 * One run of the listing: an api started on the table, the first 99 pages walked (which also warms the
 * api up), then LISTING_REQUESTS of the first page, as many of the 100th, and as many of the first page of
 * `?state=failed` (on the grown table the GROWN_FAILED_ROWS oldest jobs), one after the other.
 */
async function listingRound(url) {
  const api = await startApi(url);
  try {
    let cursor = null;
    for (let page = 1; page < 100; page++) {
      const body = await (await fetch(`${api.baseUrl}/jobs${cursor ? `?cursor=${cursor}` : ''}`)).json();
      cursor = body.next_cursor;
    }
    const timePage = async (query) =>
      summarizeTimes(
        await roundTripTimes(LISTING_REQUESTS, async () =>
          (await fetch(`${api.baseUrl}/jobs${query}`)).arrayBuffer(),
        ),
      );
    return {
      first_page: await timePage(''),
      page_100: await timePage(`?cursor=${cursor}`),
      failed_page: await timePage('?state=failed'),
    };
  } finally {
    await api.stop();
  }
}

/** The listing runs of one table: the median (and range) over runs of each page's p50 and p99. */
function listingSummary(rounds) {
  const page = (name) => ({
    p50_ms: stats(rounds.map((round) => round[name].p50_ms)),
    p99_ms: stats(rounds.map((round) => round[name].p99_ms)),
  });
  return {
    requests_per_run: LISTING_REQUESTS,
    first_page: page('first_page'),
    page_100: page('page_100'),
    failed_page: page('failed_page'),
  };
}

/**
 * The grown table against an empty one, side by side: `url`'s jobs table gets GROWN_ROWS finished jobs, and
 * `emptyUrl` (the same schema, in a database of its own on the same server) keeps nothing but each run's
 * jobs. Every run measures both, one right after the other, the first of the two alternating from run to
 * run: a machine that drifts during the benchmark moves both alike, where comparing with the processing
 * runs of half an hour before compared the machine with itself as much as the tables.
 */
async function grownScenario(url, emptyUrl, best) {
  await growTable(url, GROWN_ROWS);
  const tables = { empty: emptyUrl, grown: url };
  // With an odd number of runs the empty table goes first once more than the grown one.
  const pairOrder = (run) => (run % 2 === 1 ? ['empty', 'grown'] : ['grown', 'empty']);

  const claimRounds = { empty: [], grown: [] };
  for (let run = 1; run <= RUNS; run++) {
    for (const table of pairOrder(run)) claimRounds[table].push(await claimRound(tables[table]));
  }
  const emptyClaims = claimSummary(claimRounds.empty);
  const grownClaims = claimSummary(claimRounds.grown);
  log(
    `  claim of ${PROBE_CLAIM} (statement round trip), p99: ${emptyClaims.p99_ms.toFixed(2)} ms on the empty table, ` +
      `${grownClaims.p99_ms.toFixed(2)} ms with ${GROWN_ROWS.toLocaleString('en')} finished rows; ` +
      `first claim on a connection ${emptyClaims.first_claim_ms.toFixed(2)} and ${grownClaims.first_claim_ms.toFixed(2)} ms`,
  );

  const drains = { empty: [], grown: [] };
  for (let run = 1; run <= RUNS; run++) {
    for (const table of pairOrder(run)) {
      await keepOnlySeedRows(tables[table]);
      // As for the processing runs: the jobs created beforehand, VACUUM ANALYZE, a CHECKPOINT, then the drain.
      await insertNoopJobs(tables[table], PROCESSING_JOBS);
      await checkpoint(tables[table]);
      const result = await drain(tables[table], best.workers, best.env, PROCESSING_JOBS);
      drains[table].push(result);
      const which =
        table === 'grown'
          ? `${GROWN_ROWS.toLocaleString('en')} finished rows present`
          : 'empty table alongside';
      log(`  ${which}, run ${run}: ${result.jobs_per_second.toFixed(0)} jobs/s`);
    }
  }

  // Listing stays fast: the first and the 100th page of GET /jobs, from an api on each table, in turns.
  const listingRuns = { empty: [], grown: [] };
  for (let run = 1; run <= RUNS; run++) {
    for (const table of pairOrder(run)) listingRuns[table].push(await listingRound(tables[table]));
  }
  const listing = { ...listingSummary(listingRuns.grown), empty_table: listingSummary(listingRuns.empty) };
  log(
    `  GET /jobs p99, median of ${RUNS} runs of ${LISTING_REQUESTS} requests: first page ${listing.first_page.p99_ms.median.toFixed(2)} ms ` +
      `with ${GROWN_ROWS.toLocaleString('en')} finished rows, ${listing.empty_table.first_page.p99_ms.median.toFixed(2)} ms on the empty table; ` +
      `100th page ${listing.page_100.p99_ms.median.toFixed(2)} and ${listing.empty_table.page_100.p99_ms.median.toFixed(2)} ms; ` +
      `?state=failed ${listing.failed_page.p99_ms.median.toFixed(2)} and ${listing.empty_table.failed_page.p99_ms.median.toFixed(2)} ms`,
  );
  const jobsPerSecond = stats(drains.grown.map((r) => r.jobs_per_second));
  const emptyJobsPerSecond = stats(drains.empty.map((r) => r.jobs_per_second));
  return {
    finished_rows: GROWN_ROWS,
    label: best.label,
    workers: best.workers,
    env: best.env,
    jobs_per_second: jobsPerSecond,
    server_cpu_ms_per_1000_jobs: serverCpuPer1000Jobs(drains.grown),
    empty_table: {
      jobs_per_second: emptyJobsPerSecond,
      server_cpu_ms_per_1000_jobs: serverCpuPer1000Jobs(drains.empty),
    },
    ratio_to_empty: jobsPerSecond.median / emptyJobsPerSecond.median,
    listing,
    claims: { empty_table: emptyClaims, grown_table: grownClaims },
  };
}

/** The installed version of a peer package, for the report. */
function peerVersion(peer) {
  return JSON.parse(readFileSync(join(__dirname, '..', 'node_modules', peer, 'package.json'), 'utf8'))
    .version;
}

async function main() {
  let embedded;
  let serverUrl;
  let folder;
  if (process.env.DATABASE_URL) {
    serverUrl = process.env.DATABASE_URL;
  } else {
    folder = mkdtempSync(join(os.tmpdir(), 'job-service-bench-'));
    chmodSync(folder, 0o755);
    log('starting an embedded PostgreSQL (stock settings)');
    embedded = await EmbeddedDatabase.start({ dataDir: join(folder, 'postgres') });
    serverUrl = embedded.url;
  }
  const drops = [];
  const report = {
    date: new Date().toISOString(),
    node_options: NODE_OPTIONS,
    api_node_options: API_OPTIONS,
    runs: RUNS,
    options: {
      jobs: PROCESSING_JOBS,
      drain_seconds: DRAIN_SECONDS,
      latency_rate: LATENCY_RATE,
      latency_seconds: LATENCY_SECONDS,
      http_seconds: HTTP_SECONDS,
      grown_rows: GROWN_ROWS,
    },
    peers: Object.fromEntries(
      PEERS.map((peer) => [peer, { version: peerVersion(peer), settings: PEER_SETTINGS[peer] }]),
    ),
  };
  try {
    const base = `job_service_bench_${process.pid}`;
    const ours = await createDatabase(serverUrl, base);
    drops.push(ours.drop);
    const url = ours.url;
    const postgres = await withClient(
      url,
      async (client) => (await client.query('SHOW server_version')).rows[0].server_version,
    );
    report.machine = {
      cpus: os.cpus().length,
      cpu_model: os.cpus()[0]?.model,
      memory_gb: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      postgres,
    };
    await runMigrations(url);
    // The grown-table runs compare with an empty table measured alongside them, in a database of its own.
    let emptyTwinUrl;
    if (ONLY.has('grown')) {
      const twin = await createDatabase(serverUrl, `${base}_empty`);
      drops.push(twin.drop);
      emptyTwinUrl = twin.url;
      await runMigrations(emptyTwinUrl);
    }
    const peerUrls = {};
    for (const peer of PEERS) {
      const database = await createDatabase(serverUrl, `${base}_${peer.replace(/-/g, '_')}`);
      drops.push(database.drop);
      peerUrls[peer] = database.url;
      await runPeer(peer, database.url, 'setup');
    }

    if (ONLY.has('processing') || ONLY.has('grown')) {
      log(
        `processing: ${PROCESSING_JOBS.toLocaleString('en')} pre-created noop jobs (cut off after ${DRAIN_SECONDS} s)`,
      );
      report.processing = await processingScenarios(url, peerUrls);
    }
    if (ONLY.has('latency')) {
      log(`enqueue-to-start latency: ${LATENCY_RATE} jobs/s for ${LATENCY_SECONDS} s, idle workers`);
      report.pickup_latency = await latencyScenarios(url, peerUrls);
    }
    if (ONLY.has('http')) {
      log('creating jobs: ours through one api process, the peers from one Node process');
      report.http = await httpScenarios(url, peerUrls);
    }
    if (ONLY.has('grown') && report.processing) {
      const best = [...report.processing.ours].sort(
        (a, b) => b.jobs_per_second.median - a.jobs_per_second.median,
      )[0];
      log(`grown table: ${GROWN_ROWS.toLocaleString('en')} finished jobs, then "${best.label}" again`);
      report.grown_table = await grownScenario(url, emptyTwinUrl, best);
    }
  } finally {
    for (const drop of drops.reverse())
      await drop().catch((error) => log(`could not drop a bench database: ${error.message}`));
    await embedded?.stop();
    if (folder) rmSync(folder, { recursive: true, force: true });
  }

  report.comparison = compare(report, PEERS);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${report.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  printTable(report);
  log(`\nwritten to ${file}`);
}

function printTable(report) {
  const m = report.machine;
  const out = (line = '') => process.stdout.write(`${line}\n`);
  out();
  out(
    `Job service benchmark, ${report.date.slice(0, 10)}, ${m.cpus} cores, ${m.memory_gb} GiB, Node ${m.node}, PostgreSQL ${m.postgres}, ${report.runs} run(s), median (min-max)`,
  );
  out();
  out(formatComparison(report.comparison, PEERS));
  out();
  const marked = report.comparison.some((r) =>
    [r.ours, ...Object.values(r.peers)].some((entry) => entry?.mark),
  );
  if (marked) {
    out(
      '* some runs were cut off (a drain past --drain-seconds, figured from the jobs done by then) or fell behind',
    );
    out('  (latency: not every job had started 1 s after the last one was sent)');
  }
  for (const [peer, { version, settings }] of Object.entries(report.peers)) {
    out(`${peer} ${version}: defaults = ${settings.defaults.label}; best = ${settings.best.label}`);
  }
}

main().catch((error) => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
});
