import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { eventually, insertJobs } from '../support/job-factory';
import { waitForHttp } from '../support/service-process';
import { createTestDatabase, type TestDatabase } from '../support/test-db';
import { checkHistory } from './support/history-checker';
import { WorkerFleet } from './support/worker-fleet';

const LEASE_MS = 2_000;
const SWEEP_INTERVAL_MS = 500;
/**
 * How long each handler runs: well beyond lease + sweep, so that had the cut-off worker not aborted them,
 * its handlers would still be running when the rescuer takes their jobs over.
 */
const SLEEP_MS = 8_000;

describe('chaos: a worker cut off from the database while its attempts run', () => {
  let db: TestDatabase;
  let fleet: WorkerFleet;
  const role = `cutoff_${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    db = await createTestDatabase();
    // A role of its own, so that its connections can be terminated and new ones refused.
    await db.pool.query(`CREATE ROLE ${role} LOGIN SUPERUSER`);
  });
  afterAll(async () => {
    await fleet?.dispose();
    await db.drop();
    const admin = new Client({ connectionString: process.env.TEST_PG_ADMIN_URL });
    await admin.connect();
    await admin.query(`DROP ROLE IF EXISTS ${role}`);
    await admin.end();
  });

  it('stops its handlers before its leases expire, writes nothing after, and recovers when it can connect again', async () => {
    const cutOffUrl = new URL(db.url);
    cutOffUrl.username = role;
    fleet = new WorkerFleet({
      DATABASE_URL: db.url,
      LEASE_MS: String(LEASE_MS),
      SWEEP_INTERVAL_MS: String(SWEEP_INTERVAL_MS),
      LOG_LEVEL: 'info',
    });
    // The rescuer is up before the cut, so that how long a process takes to start does not decide when the
    // jobs are taken over. It never polls within the test: it claims only what it rescues itself, since
    // the rescuing worker wakes its claim loop at once. Jobs inserted by hand send no NOTIFY.
    const [isolated] = await Promise.all([
      fleet.add({
        id: 'isolated',
        env: { DATABASE_URL: cutOffUrl.toString(), WORKER_POLL_INTERVAL_MS: '250' },
      }),
      fleet.add({ id: 'rescuer', env: { WORKER_POLL_INTERVAL_MS: '600000' } }),
    ]);
    // Its LISTEN connection wakes its loop once when it connects; that wake must find nothing due yet.
    await eventually(async () => {
      const { rows } = await db.pool.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE datname = current_database() AND usename = current_user AND query ILIKE 'LISTEN %'`,
      );
      return rows[0].n === 1 ? true : undefined;
    });

    const jobs = await insertJobs(db.pool, 3, {
      jobType: 'sleep',
      payload: { ms: SLEEP_MS },
      runInSeconds: 1,
    });
    await eventually(async () => {
      const { rows } = await db.pool.query(
        `SELECT count(*)::int AS n FROM jobs WHERE worker_id = 'isolated' AND lease_expires_at IS NOT NULL`,
      );
      return rows[0].n === 3 ? true : undefined;
    });

    await db.pool.query(`ALTER ROLE ${role} NOLOGIN`);
    await db.pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [role]);
    // Heartbeats renewed the leases up to the cut; after it nothing can renew them.
    const cutAt = Date.now();

    await eventually(
      async () => {
        const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM jobs WHERE state = 'completed'`);
        return rows[0].n === 3 ? true : undefined;
      },
      60_000,
      100,
    );

    // The cut-off worker lives on through the cut: it has no reason to exit.
    if (isolated.exitedAt !== undefined) {
      throw new Error(`the cut-off worker exited:\n${isolated.process.output().slice(-4_000)}`);
    }

    // What the handlers recorded themselves: each isolated handler stopped before the rescuer's attempt
    // of its job started.
    const executions = fleet.checkExecutions();
    expect(executions.violations).toEqual([]);
    expect(executions.summary).toMatchObject({ jobs: 3, executions: 6, aborted: 3, unfinished: 0 });
    // The check could have failed: had they not been aborted, the isolated handlers would still have been
    // running when the rescuer started the same jobs.
    const events = fleet.executionEvents();
    for (const jobId of jobs) {
      const isolatedStart = events.find((e) => e.job_id === jobId && e.worker === 'isolated')!;
      const rescuerStart = events.find((e) => e.job_id === jobId && e.worker === 'rescuer')!;
      expect(rescuerStart.at_precise).toBeLessThan(isolatedStart.at_precise + SLEEP_MS);
    }

    const { rows: lost } = await db.pool.query(
      `SELECT job_id, finished_at FROM job_attempts WHERE worker_id = 'isolated' AND outcome = 'lost'`,
    );
    expect(lost).toHaveLength(3);

    // Each handler was aborted by the isolated worker itself, within one lease of the cut, before the
    // database let anyone else have the job.
    const aborts = isolated.process
      .output()
      .split('\n')
      .filter((line) => line.includes('attempt aborted: lease lost'))
      .map((line) => JSON.parse(line) as { job_id: string; time: string });
    expect(aborts.map((abort) => abort.job_id).sort()).toEqual([...jobs].sort());
    for (const abort of aborts) {
      const abortedAt = Date.parse(abort.time);
      expect(abortedAt - cutAt).toBeLessThan(LEASE_MS);
      const rescuedAt = (lost.find((row) => row.job_id === abort.job_id)!.finished_at as Date).getTime();
      expect(abortedAt).toBeLessThan(rescuedAt);
    }

    const { rows: done } = await db.pool.query(
      `SELECT worker_id, attempts FROM jobs WHERE job_id = ANY($1::uuid[])`,
      [jobs],
    );
    for (const row of done) expect(row).toEqual({ worker_id: 'rescuer', attempts: 2 });
    expect((await checkHistory(db.pool, jobs)).violations).toEqual([]);

    // Let it connect again: the same process turns ready again, with no restart.
    await db.pool.query(`ALTER ROLE ${role} LOGIN`);
    await waitForHttp(isolated.process, '/health/ready', 200, 15_000);
    expect(isolated.process.child.exitCode).toBeNull();
  });
});
