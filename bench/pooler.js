#!/usr/bin/env node
/**
 * Direct connections against PgBouncer in transaction pooling mode: `npm run bench:pooler` (builds first).
 * Four worker processes and one api, each with its defaults (WORKER_CONCURRENCY=10, DB_POOL_SIZE=10,
 * WORKER_POLL_INTERVAL_MS=1000), in four setups:
 *
 *   direct, prepared statements on       DATABASE_URL to the server (the default setup)
 *   direct, prepared statements off      the same with DB_PREPARED_STATEMENTS=false: what turning them off costs
 *   PgBouncer + DATABASE_LISTEN_URL      DATABASE_URL through PgBouncer, LISTEN on a direct connection
 *   PgBouncer, polling                   DATABASE_URL through PgBouncer, no LISTEN: workers poll
 *
 * PgBouncer (Debian's package) runs as a child process: transaction mode, default_pool_size 10, so the
 * 50 client connections of the five processes share 10 server connections. Each setup gets a database of
 * its own. Measured in each:
 *   - throughput: --jobs noop jobs created while their type is paused, then resumed; jobs/s until all completed;
 *   - enqueue-to-start latency: --rate POST /jobs per second for --seconds to the idle fleet; from each job's
 *     created_at to its attempt's start, on the database clock.
 * Uses DATABASE_URL's server if set, else an embedded PostgreSQL with stock settings.
 *
 *   npm run bench:pooler
 *   npm run bench:pooler -- --jobs 5000 --rate 50 --seconds 5      # a quick check that it works end to end
 *   npm run bench:pooler -- --setups 1,0                            # prepared statements off, then on
 */
const { execFileSync, spawn } = require('node:child_process');
const { chmodSync, mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const os = require('node:os');
const { join } = require('node:path');
const { performance } = require('node:perf_hooks');
const { runMigrations } = require('../dist/persistence/data-source');
const { sleep, log, freePort, percentile, startService, withClient, scratchServer } = require('./support');

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? args[index + 1] : fallback;
};
const JOBS = Number(option('jobs', '20000'));
const RATE = Number(option('rate', '100'));
const SECONDS = Number(option('seconds', '20'));
/** Which setups to run, by their number in the list below (0-3), in this order; e.g. `--setups 1,0`. */
const SETUPS = option('setups', '0,1,2,3').split(',').map(Number);
const WORKERS = 4;
const BOUNCER_POOL_SIZE = 10;

function withDatabase(url, name) {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

/** PgBouncer in transaction mode in front of `serverUrl`'s server; as root it runs as `postgres`. */
async function startPgBouncer(serverUrl) {
  const server = new URL(serverUrl);
  const user = decodeURIComponent(server.username || 'postgres');
  const password = server.password ? ` password=${decodeURIComponent(server.password)}` : '';
  const port = await freePort();
  const dir = mkdtempSync(join(os.tmpdir(), 'bench-pgbouncer-'));
  chmodSync(dir, 0o755);
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${server.hostname} port=${server.port || 5432} user=${user}${password}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${join(dir, 'users.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${BOUNCER_POOL_SIZE}`,
      'max_client_conn = 1000',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  writeFileSync(join(dir, 'users.txt'), `"${user}" ""\n`, { mode: 0o644 });
  const runAs = process.getuid?.() === 0 ? ['-u', 'postgres'] : [];
  const child = spawn('pgbouncer', [...runAs, join(dir, 'pgbouncer.ini')], {
    stdio: ['ignore', 'ignore', 'ignore'],
    env: { PATH: `${process.env.PATH}:/usr/sbin` },
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const url = (name) => {
    const through = new URL(withDatabase(serverUrl, name));
    through.host = `127.0.0.1:${port}`;
    return through.toString();
  };
  for (let i = 0; ; i++) {
    try {
      await withClient(url('postgres'), (client) => client.query('SELECT 1'));
      break;
    } catch (error) {
      if (child.exitCode !== null || i > 100) throw new Error(`PgBouncer did not start: ${error}`);
      await sleep(100);
    }
  }
  const version = execFileSync('sh', ['-c', 'PATH=$PATH:/usr/sbin pgbouncer --version'], {
    encoding: 'utf8',
  }).split('\n')[0];
  return {
    url,
    version,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function post(baseUrl, path, body) {
  const response = await fetch(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`POST ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

async function measure(setup, directUrl, env) {
  const api = await startService({ ...env, APP_ROLE: 'api' }, { readyWithinMs: 120_000 });
  const workers = await Promise.all(
    Array.from({ length: WORKERS }, (_, n) =>
      startService({ ...env, APP_ROLE: 'worker', WORKER_ID: `bench-${n + 1}` }, { readyWithinMs: 120_000 }),
    ),
  );
  try {
    // Throughput: a backlog made while paused, then drained.
    await post(api.baseUrl, '/job-types/noop/pause');
    await withClient(directUrl, (client) =>
      client.query(
        `INSERT INTO jobs (job_id, job_type, payload, run_at, available_at, max_attempts, timeout_ms)
         SELECT job_id_v7(), 'noop', '{}', now(), now(), 3, 60000 FROM generate_series(1, $1)`,
        [JOBS],
      ),
    );
    const startedAt = performance.now();
    await post(api.baseUrl, '/job-types/noop/resume');
    for (;;) {
      const { rows } = await withClient(directUrl, (client) =>
        client.query(`SELECT count(*)::int AS n FROM jobs WHERE state = 'completed'`),
      );
      if (rows[0].n >= JOBS) break;
      if (performance.now() - startedAt > 600_000)
        throw new Error(`${setup}: the backlog did not drain in 10 minutes`);
      await sleep(50);
    }
    const drainSeconds = (performance.now() - startedAt) / 1000;
    await sleep(2_000);

    // Latency: jobs sent one by one at a steady rate to an idle fleet.
    const sent = [];
    const every = 1000 / RATE;
    const latencyStart = performance.now();
    for (let i = 0; i < RATE * SECONDS; i++) {
      const due = latencyStart + i * every;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      sent.push(post(api.baseUrl, '/jobs', { job_type: 'noop' }).then((job) => job.job_id));
    }
    const ids = await Promise.all(sent);
    for (;;) {
      const { rows } = await withClient(directUrl, (client) =>
        client.query(`SELECT count(*)::int AS n FROM jobs WHERE job_id = ANY($1) AND state = 'completed'`, [
          ids,
        ]),
      );
      if (rows[0].n === ids.length) break;
      await sleep(100);
    }
    const { rows } = await withClient(directUrl, (client) =>
      client.query(
        `SELECT extract(epoch FROM started_at - created_at) * 1000 AS ms FROM jobs WHERE job_id = ANY($1)`,
        [ids],
      ),
    );
    const latencies = rows.map((row) => Number(row.ms)).sort((a, b) => a - b);
    return {
      setup,
      jobs_per_second: Math.round(JOBS / drainSeconds),
      latency_ms: {
        p50: Math.round(percentile(latencies, 50)),
        p95: Math.round(percentile(latencies, 95)),
        p99: Math.round(percentile(latencies, 99)),
        max: Math.round(latencies[latencies.length - 1]),
      },
    };
  } finally {
    await Promise.all([api, ...workers].map((service) => service.stop()));
  }
}

async function main() {
  const server = await scratchServer('pooler');
  const serverUrl = server.url;
  const bouncer = await startPgBouncer(serverUrl);
  const results = [];
  const setups = [
    ['direct, prepared statements on', (direct) => ({ DATABASE_URL: direct })],
    [
      'direct, prepared statements off',
      (direct) => ({ DATABASE_URL: direct, DB_PREPARED_STATEMENTS: 'false' }),
    ],
    [
      'PgBouncer + DATABASE_LISTEN_URL',
      (direct, pooled) => ({
        DATABASE_URL: pooled,
        DATABASE_LISTEN_URL: direct,
        DB_PREPARED_STATEMENTS: 'false',
      }),
    ],
    ['PgBouncer, polling', (_direct, pooled) => ({ DATABASE_URL: pooled, DB_PREPARED_STATEMENTS: 'false' })],
  ];
  let postgres;
  try {
    for (const index of SETUPS) {
      const [setup, env] = setups[index];
      const name = `job_service_bench_pooler_${process.pid}_${index}`;
      await withClient(serverUrl, (client) => client.query(`CREATE DATABASE ${name}`));
      const direct = withDatabase(serverUrl, name);
      try {
        await runMigrations(direct);
        // Behind the pooler statement_timeout comes from the database, as the README says to set it.
        await withClient(direct, (client) =>
          client.query(`ALTER DATABASE ${name} SET statement_timeout = 30000`),
        );
        postgres ??= await withClient(
          direct,
          async (client) => (await client.query('SHOW server_version')).rows[0].server_version,
        );
        log(`${setup}: ${JOBS} jobs, then ${RATE}/s for ${SECONDS} s`);
        const result = await measure(setup, direct, env(direct, bouncer.url(name)));
        log(`  ${JSON.stringify(result)}`);
        results.push(result);
      } finally {
        await withClient(serverUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
      }
    }
  } finally {
    await bouncer.stop();
    await server.stop();
  }
  const report = {
    date: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      memory_gb: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      postgres,
      pgbouncer: bouncer.version,
    },
    options: {
      jobs: JOBS,
      rate: RATE,
      seconds: SECONDS,
      workers: WORKERS,
      pgbouncer_pool_size: BOUNCER_POOL_SIZE,
      setups: SETUPS,
    },
    results,
  };
  const out = (line) => process.stdout.write(`${line}\n`);
  out(JSON.stringify(report, null, 2));
  out('\n| setup | jobs/s | latency p50 | p95 | p99 | max |\n|---|---|---|---|---|---|');
  for (const r of results) {
    const l = r.latency_ms;
    out(`| ${r.setup} | ${r.jobs_per_second} | ${l.p50} ms | ${l.p95} ms | ${l.p99} ms | ${l.max} ms |`);
  }
}

main().catch((error) => {
  log(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
