#!/usr/bin/env node
/**
 * graphile-worker as the bench runs it: a `noop` task in a process of its own, in a database of its own.
 * Commands (see common.js for the protocol): setup, prepare, drain, work, produce, create.
 *
 * graphile-worker deletes a job when it completes, so the database keeps no completion time. The runner
 * takes the claim times from the jobs the task receives (`locked_at`, set by the claim's `now()`), and the
 * end of a drain from `clock_timestamp()` the moment the job table is seen empty, polled every 5 ms once the
 * last job has started: both on the database clock.
 */
const { Logger, makeWorkerUtils, run, runMigrations } = require('graphile-worker');
const { types } = require('pg');
const {
  closedLoop,
  cpuSeconds,
  main,
  peakRssMb,
  percentile,
  send,
  sleep,
  steadyRate,
  stopSignal,
  withClient,
} = require('./common');
const SETTINGS = require('./settings')['graphile-worker'];

const connectionString = process.env.DATABASE_URL;
const JOBS = 'graphile_worker._private_jobs';
const logger = new Logger(() => (level, message) => {
  if (level === 'error' || level === 'warning')
    process.stderr.write(`graphile-worker ${level}: ${message}\n`);
});

/**
 * node-postgres turns timestamptz into a Date, which drops the microseconds; keep them on the side, so that
 * claim and creation times are as exact as those the bench reads for the other systems.
 */
const parseTimestamptz = types.getTypeParser(1184);
types.setTypeParser(1184, (text) => {
  const date = parseTimestamptz(text);
  const fraction = /:\d\d\.(\d+)/.exec(text)?.[1] ?? '';
  date.epochMicros = Math.floor(date.getTime() / 1000) * 1e6 + Number(fraction.padEnd(6, '0').slice(0, 6));
  return date;
});
const micros = (date) => date.epochMicros ?? date.getTime() * 1000;

async function withUtils(work) {
  const utils = await makeWorkerUtils({ connectionString, logger });
  try {
    return await work(utils);
  } finally {
    await utils.release();
  }
}

function startWorker(settingName, task) {
  const setting = SETTINGS[settingName];
  if (!setting) throw new Error(`unknown setting ${settingName}`);
  return run({
    connectionString,
    logger,
    noHandleSignals: true,
    taskList: { noop: task },
    preset: { worker: { ...setting.worker } },
  });
}

async function setup() {
  await runMigrations({ connectionString, logger });
}

/** Empties the queue and creates `jobs` noop jobs through `addJobs`, 1,000 per call. */
async function prepare({ jobs = 0 }) {
  await withClient((client) => client.query(`TRUNCATE ${JOBS}, graphile_worker._private_job_queues`));
  await withUtils(async (utils) => {
    for (let done = 0; done < jobs; done += 1000) {
      const count = Math.min(1000, jobs - done);
      await utils.addJobs(Array.from({ length: count }, () => ({ identifier: 'noop', payload: {} })));
    }
  });
  await withClient((client) => client.query(`VACUUM ANALYZE ${JOBS}`));
  return { jobs };
}

/** Works off `jobs` pre-created jobs: jobs/s from the first claim to the last completion. */
async function drain({ setting, jobs, maxSeconds = 120 }) {
  let firstClaim = Infinity;
  let started = 0;
  let allStarted;
  const allStartedPromise = new Promise((resolve) => (allStarted = resolve));
  const cpuBefore = cpuSeconds();
  const runner = await startWorker(setting, async (_payload, helpers) => {
    firstClaim = Math.min(firstClaim, micros(helpers.job.locked_at));
    if (++started >= jobs) allStarted();
  });
  const deadline = Date.now() + maxSeconds * 1000;
  const timedOut = await Promise.race([
    allStartedPromise.then(() => false),
    sleep(maxSeconds * 1000).then(() => true),
  ]);
  const end = await withClient(async (client) => {
    for (;;) {
      const { rows } = await client.query(
        `SELECT (extract(epoch FROM clock_timestamp()) * 1e6)::bigint AS t, (SELECT count(*)::int FROM ${JOBS}) AS remaining`,
      );
      // The last completions may land just after the deadline; a few seconds more is not a stall.
      if (rows[0].remaining === 0 || timedOut || Date.now() > deadline + 5_000)
        return { micros: Number(rows[0].t), remaining: rows[0].remaining };
      await sleep(5);
    }
  });
  const result = {
    jobs,
    jobs_completed: jobs - end.remaining,
    seconds: (end.micros - firstClaim) / 1e6,
    partial: end.remaining > 0,
    peak_rss_mb: peakRssMb(),
    cpu_seconds: cpuSeconds() - cpuBefore,
  };
  result.jobs_per_second = result.jobs_completed / result.seconds;
  await runner.stop();
  return result;
}

/** An idle worker until SIGTERM; then the delays from creation to claim of the jobs it ran. */
async function work({ setting }) {
  const delays = [];
  const runner = await startWorker(setting, async (_payload, helpers) => {
    delays.push((micros(helpers.job.locked_at) - micros(helpers.job.created_at)) / 1000);
  });
  send({ ready: true });
  await stopSignal();
  await runner.stop();
  delays.sort((a, b) => a - b);
  return {
    started: delays.length,
    p50_ms: percentile(delays, 50),
    p95_ms: percentile(delays, 95),
    p99_ms: percentile(delays, 99),
  };
}

/** `addJob` at a steady rate, each call on its own (as an application would from its requests). */
async function produce({ rate, seconds }) {
  return withUtils((utils) => steadyRate(() => utils.addJob('noop', {}), rate, seconds));
}

/** `addJob` (or `addJobs` of `batch`) from `concurrency` callers at once for `seconds`. */
async function create({ concurrency, seconds, batch = 0 }) {
  return withUtils(async (utils) => {
    const specs = Array.from({ length: batch }, () => ({ identifier: 'noop', payload: {} }));
    const call = batch ? () => utils.addJobs(specs) : () => utils.addJob('noop', {});
    const result = await closedLoop(call, concurrency, seconds);
    return { ...result, jobs_per_second: result.calls_per_second * (batch || 1) };
  });
}

main({ setup, prepare, drain, work, produce, create });
