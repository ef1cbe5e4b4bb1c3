/**
 * What the benchmark scripts share: starting the service as deployed, scratch databases, and the few
 * statistics they print.
 */
const { spawn } = require('node:child_process');
const { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync } = require('node:fs');
const os = require('node:os');
const { createServer } = require('node:net');
const { join } = require('node:path');
const { Client } = require('pg');
const { parseAllDocuments } = require('yaml');

const MAIN = join(__dirname, '..', 'dist', 'main.js');

/** Workers run with the image's NODE_OPTIONS (see the Dockerfile), as deployed; so do the peers. */
const NODE_OPTIONS =
  /^ENV NODE_OPTIONS="([^"]*)"$/m.exec(readFileSync(join(__dirname, '..', 'Dockerfile'), 'utf8'))?.[1] ?? '';

/** The api runs with the NODE_OPTIONS its deployment sets (deploy/k8s/api.yaml), else the image's. */
const API_NODE_OPTIONS = (() => {
  const manifest = parseAllDocuments(
    readFileSync(join(__dirname, '..', 'deploy', 'k8s', 'api.yaml'), 'utf8'),
  ).map((doc) => doc.toJS());
  const deployment = manifest.find((doc) => doc?.kind === 'Deployment');
  const env = deployment?.spec.template.spec.containers[0].env ?? [];
  return env.find((entry) => entry.name === 'NODE_OPTIONS')?.value ?? NODE_OPTIONS;
})();

/** A time-ordered UUIDv7 for a past time `t` (SQL expression), for finished jobs seeded as history. */
const UUID_V7 = (t) =>
  `(lpad(to_hex((extract(epoch FROM ${t}) * 1000)::bigint), 12, '0') || '7' || substr(md5(random()::text), 1, 3)
    || to_hex(8 + floor(random() * 4)::int) || substr(md5(random()::text), 1, 15))::uuid`;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (message) => process.stderr.write(`${message}\n`);

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

/** CPU time (user + system) a process has used so far, in seconds. */
function processCpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime are fields 14 and 15 of the line, counted in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * A meter of the CPU time the PostgreSQL server behind `url` has used so far, in seconds: the postmaster, its
 * live children (backends, background processes) and, through the postmaster's cumulative child times, the
 * backends that have exited since. Resolves to null when the server's data folder is not on this machine
 * (DATABASE_URL pointing elsewhere, or a server run as a user whose folder cannot be read).
 */
async function serverCpuMeter(url) {
  try {
    const dataDirectory = await withClient(
      url,
      async (client) => (await client.query('SHOW data_directory')).rows[0].data_directory,
    );
    const postmaster = Number(readFileSync(join(dataDirectory, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const fieldsOf = (pid) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    fieldsOf(postmaster);
    return () => {
      const own = fieldsOf(postmaster);
      // utime, stime, cutime, cstime: fields 14-17 of the line, in clock ticks (100 per second on Linux).
      let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
      for (const entry of readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        try {
          const fields = fieldsOf(entry);
          if (Number(fields[1]) === postmaster) ticks += Number(fields[11]) + Number(fields[12]);
        } catch {
          // The process ended while the list was read: its time is in the postmaster's child times.
        }
      }
      return ticks / 100;
    };
  } catch {
    return null;
  }
}

/**
 * Starts `node dist/main` with `env` and waits (up to `readyWithinMs`) until /health/ready answers. Its
 * NODE_OPTIONS are the deployment's for its role.
 */
async function startService(env, { readyWithinMs = 30_000 } = {}) {
  const port = await freePort();
  const nodeOptions = env.APP_ROLE === 'api' ? API_NODE_OPTIONS : NODE_OPTIONS;
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH,
      NODE_OPTIONS: nodeOptions,
      LOG_LEVEL: 'warn',
      MIGRATE_ON_START: 'false',
      ...env,
      PORT: String(port),
    },
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
    if (child.exitCode !== null || i > readyWithinMs / 100)
      throw new Error(`service did not start (${JSON.stringify(env)})`);
    await sleep(100);
  }
  // Boot work is not the work being measured; the peers, too, count CPU from when their worker starts.
  const cpuAtReady = processCpuSeconds(child.pid);
  return {
    baseUrl,
    pid: child.pid,
    /** Peak resident set size so far, in MB (VmHWM). */
    peakRssMb() {
      const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      return match ? Number(match[1]) / 1024 : NaN;
    },
    cpuSecondsSinceReady() {
      return processCpuSeconds(child.pid) - cpuAtReady;
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

/** `CREATE DATABASE <name>` on the server of `serverUrl`; returns the new database's URL and how to drop it. */
async function createDatabase(serverUrl, name) {
  await withClient(serverUrl, (client) => client.query(`CREATE DATABASE ${name}`));
  const parsed = new URL(serverUrl);
  parsed.pathname = `/${name}`;
  return {
    url: parsed.toString(),
    drop: () =>
      withClient(serverUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)),
  };
}

/** The value after `--name` on the command line, or `fallback`. */
function textOption(name, fallback) {
  const args = process.argv.slice(2);
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? args[index + 1] : fallback;
}

/** The value after `--name` on the command line, as a number, or `fallback`. */
function numberOption(name, fallback) {
  return Number(textOption(name, fallback));
}

/**
 * A server for a benchmark's scratch databases: DATABASE_URL's when set, else an embedded PostgreSQL with
 * stock settings in a temporary folder, removed by `stop()`.
 */
async function scratchServer(purpose) {
  if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL, stop: async () => undefined };
  // Required here, not at the top: the build must exist, and only scripts that start a server need it.
  const { EmbeddedDatabase } = require('../dist/persistence/embedded-database');
  const folder = mkdtempSync(join(os.tmpdir(), `job-service-${purpose}-`));
  // The embedded server may run as another user (as root it must): it needs to reach its data folder.
  chmodSync(folder, 0o755);
  const embedded = await EmbeddedDatabase.start({ dataDir: join(folder, 'postgres') });
  return {
    url: embedded.url,
    stop: async () => {
      await embedded.stop();
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

module.exports = {
  numberOption,
  textOption,
  scratchServer,
  MAIN,
  NODE_OPTIONS,
  API_NODE_OPTIONS,
  UUID_V7,
  sleep,
  log,
  percentile,
  freePort,
  processCpuSeconds,
  serverCpuMeter,
  startService,
  withClient,
  withTriggersOff,
  createDatabase,
};
