#!/usr/bin/env node
/**
 * What one job costs the database on the hot path, for the scale-out arithmetic in the README: CPU time of
 * the PostgreSQL backend that runs the statements (read from /proc, so it counts the server's work only,
 * not the wait for a busy machine's CPU), WAL bytes written, and statements, per job. It runs the service's
 * own statements (JobRepository, built) on one connection to a PostgreSQL of its own (embedded, stock
 * settings but fsync, synchronous_commit and full_page_writes off), so no other client's work is counted:
 *   1. create: one POST /jobs each (one INSERT ... RETURNING with its NOTIFY);
 *   2. claim and complete the way a worker at WORKER_CONCURRENCY does, `--batch` per claim and per
 *      completion statement (10, the default; 1 is a worker that finds one job at a time).
 * Background work (autovacuum, checkpoints, WAL sending to replicas) is not in the figures.
 *
 * `--rules` measures what the database's own rules cost, by taking some away before the jobs are created, in
 * this throwaway database only: `off` drops the CHECK constraints of `jobs` and disables its triggers (the
 * update guard, the insert checks, the counters, the listing, the notifications); `checks` keeps only the
 * CHECK constraints (triggers disabled); `triggers` keeps only the triggers (CHECK constraints dropped); `on`,
 * the default, keeps all. The service never runs without them; the differences between the runs are the
 * price of each part of what the database enforces and maintains, per job.
 *
 *   npm run build && node bench/db-cost.js [--jobs 20000] [--batch 10] [--rules on|off|checks|triggers]
 */
const { mkdtempSync, rmSync, chmodSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { performance } = require('node:perf_hooks');
const { EmbeddedDatabase } = require('../dist/persistence/embedded-database');
const { runMigrations } = require('../dist/persistence/data-source');
const { JobRepository } = require('../dist/persistence/job.repository');
const { JobsDatabase } = require('../dist/persistence/jobs-database');
const { numberOption, processCpuSeconds, textOption } = require('./support');

/** User + system CPU of a process in ms. */
const cpuMs = (pid) => processCpuSeconds(pid) * 1000;

/** The CHECK constraints and the enabled triggers of `jobs`, internal ones (foreign keys) aside. */
const RULES_IN_FORCE = `
SELECT (SELECT count(*) FROM pg_constraint WHERE conrelid = 'jobs'::regclass AND contype = 'c')::int AS checks,
       (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'jobs'::regclass AND NOT tgisinternal AND tgenabled <> 'D')::int AS triggers`;

const DROP_CHECKS = `
DO $$
DECLARE
  constraint_name name;
BEGIN
  FOR constraint_name IN SELECT conname FROM pg_constraint WHERE conrelid = 'jobs'::regclass AND contype = 'c' LOOP
    EXECUTE format('ALTER TABLE jobs DROP CONSTRAINT %I', constraint_name);
  END LOOP;
END
$$`;

/** The triggers of `jobs` written for the service; internal ones (foreign keys) stay. */
const DISABLE_TRIGGERS = `ALTER TABLE jobs DISABLE TRIGGER USER`;

/** What each --rules takes away. */
const TAKEN_AWAY = {
  on: [],
  off: [DROP_CHECKS, DISABLE_TRIGGERS],
  checks: [DISABLE_TRIGGERS],
  triggers: [DROP_CHECKS],
};

async function main() {
  const jobs = numberOption('jobs', 20_000);
  const batch = numberOption('batch', 10);
  const rules = textOption('rules', 'on');
  if (!Object.hasOwn(TAKEN_AWAY, rules)) {
    throw new Error(`--rules takes ${Object.keys(TAKEN_AWAY).join(', ')}, not ${rules}`);
  }
  const folder = mkdtempSync(join(tmpdir(), 'job-service-db-cost-'));
  chmodSync(folder, 0o755);
  const server = await EmbeddedDatabase.start({ dataDir: join(folder, 'postgres'), ephemeral: true });
  let database;
  try {
    await runMigrations(server.url);
    // One pool connection, opened as a process of the service opens its own: every statement runs in the
    // backend whose CPU is read.
    database = await JobsDatabase.open({ url: server.url, poolSize: 1, preparedStatements: true });
    const { dataSource } = database;
    const repository = new JobRepository(database);
    for (const statement of TAKEN_AWAY[rules]) await dataSource.query(statement);
    const [rulesInForce] = await dataSource.query(RULES_IN_FORCE);
    const [{ pid }] = await dataSource.query('SELECT pg_backend_pid() AS pid');
    const walBytes = async () =>
      Number(
        (await dataSource.query(`SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn AS bytes`))[0].bytes,
      );
    const newJob = {
      jobType: 'noop',
      payload: { n: 1 },
      priority: 0,
      runAt: null,
      maxAttempts: 3,
      timeoutMs: 60_000,
      idempotencyKey: null,
      requestHash: null,
    };

    const create = async (count) => {
      for (let i = 0; i < count; i++) await repository.insertJobs([newJob]);
      return count;
    };
    const drain = async () => {
      let statements = 0;
      for (;;) {
        const claimed = await repository.claimDue(batch, 'db-cost-worker', 30_000, ['noop']);
        statements++;
        if (claimed.length === 0) return statements;
        await repository.markCompleted(
          'db-cost-worker',
          claimed.map((job) => ({ jobId: job.jobId, attempt: job.attempt, resultJson: 'null' })),
        );
        statements++;
      }
    };
    const measure = async (work) => {
      const cpuBefore = cpuMs(pid);
      const walBefore = await walBytes();
      const started = performance.now();
      const statements = await work();
      const wallMs = performance.now() - started;
      const cpu = cpuMs(pid) - cpuBefore;
      const wal = (await walBytes()) - walBefore;
      return {
        backend_cpu_ms_per_job: +(cpu / jobs).toFixed(4),
        wal_bytes_per_job: Math.round(wal / jobs),
        statements_per_job: +(statements / jobs).toFixed(3),
        wall_ms_per_job: +(wallMs / jobs).toFixed(4),
      };
    };

    // Warm-up: plans, caches, the claim index and the counter rows.
    await create(1_000);
    await drain();
    const created = await measure(() => create(jobs));
    // Statistics of the table as it now is, as autovacuum takes them within a minute of such growth. Left
    // to those of the warm-up's 1,000 rows, the completion kept the plan the server made for that table, a
    // sequential scan, and read every row of the grown table for each job completed one at a time.
    await dataSource.query('ANALYZE jobs');
    const claimedAndCompleted = await measure(drain);
    const report = {
      postgres: (await dataSource.query('SHOW server_version'))[0].server_version,
      jobs,
      batch,
      rules,
      rules_in_force: rulesInForce,
      create: created,
      claim_and_complete: claimedAndCompleted,
      total_backend_cpu_ms_per_job: +(
        created.backend_cpu_ms_per_job + claimedAndCompleted.backend_cpu_ms_per_job
      ).toFixed(4),
      total_wal_bytes_per_job: created.wal_bytes_per_job + claimedAndCompleted.wal_bytes_per_job,
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    await database?.close();
    await server.stop();
    rmSync(folder, { recursive: true, force: true });
  }
}

main().catch((error) => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
});
