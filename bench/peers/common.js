/**
 * What both peer runners share. A runner is spawned by bench/run.js as
 *
 *   node bench/peers/<peer>.js <command> '<json options>'     (DATABASE_URL names the peer's own database)
 *
 * and answers with JSON lines on stdout: `{"ready":true}` once a long-running command is up, and the
 * result as the last line. Logs go to stderr.
 */
const { readFileSync } = require('node:fs');
const { performance } = require('node:perf_hooks');
const { Client } = require('pg');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function send(message) {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

/** Peak resident set size of this process in MB (VmHWM), the figure the bench reads for our workers. */
function peakRssMb() {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) / 1024 : NaN;
}

function cpuSeconds() {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

function percentile(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN;
}

async function withClient(work) {
  const client = new Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Resolves on SIGTERM or SIGINT, so that a worker can report before it exits. */
function stopSignal() {
  return new Promise((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
}

/**
 * Calls `call` from `concurrency` loops at once for `seconds`, like autocannon does for our API: how many
 * calls succeeded per second, the latency of each, and the CPU this process used meanwhile.
 */
async function closedLoop(call, concurrency, seconds) {
  const latencies = [];
  let errors = 0;
  const cpuBefore = cpuSeconds();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const start = performance.now();
        try {
          await call();
          latencies.push(performance.now() - start);
        } catch (error) {
          errors += 1;
          if (errors === 1) process.stderr.write(`${error.stack ?? error}\n`);
        }
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    calls: latencies.length,
    seconds: elapsed,
    calls_per_second: latencies.length / elapsed,
    p50_ms: percentile(latencies, 50),
    p99_ms: percentile(latencies, 99),
    errors,
    // This process's CPU over the loop: what the callers cost, as the api's CPU is for ours.
    cpu_seconds: cpuSeconds() - cpuBefore,
  };
}

/** Calls `call` at a steady `perSecond` for `seconds` without waiting for one call to finish before the next. */
async function steadyRate(call, perSecond, seconds) {
  const started = performance.now();
  const calls = [];
  let errors = 0;
  for (let i = 0; i < perSecond * seconds; i++) {
    const wait = started + (i * 1000) / perSecond - performance.now();
    if (wait > 0) await sleep(wait);
    calls.push(
      call().catch((error) => {
        errors += 1;
        if (errors === 1) process.stderr.write(`${error.stack ?? error}\n`);
      }),
    );
  }
  await Promise.all(calls);
  return { sent: calls.length - errors, errors };
}

/** Runs `commands[argv[2]]` with the JSON options of argv[3] and prints its result as the last line. */
function main(commands) {
  const [command, json = '{}'] = process.argv.slice(2);
  const run = commands[command];
  if (!run) {
    process.stderr.write(`usage: ${process.argv[1]} ${Object.keys(commands).join('|')} '<json options>'\n`);
    process.exit(2);
  }
  run(JSON.parse(json)).then(
    (result) => {
      send(result ?? {});
      process.exit(0);
    },
    (error) => {
      process.stderr.write(`${error.stack ?? error}\n`);
      process.exit(1);
    },
  );
}

module.exports = {
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
};
