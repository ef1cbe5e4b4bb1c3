import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { eventually, insertJobs } from '../support/job-factory';
import { spawnService, waitForHttp, type ServiceProcess } from '../support/service-process';
import { createTestDatabase, type TestDatabase } from '../support/test-db';
import { checkHistory } from './support/history-checker';

const LEASE_MS = 2_000;

describe('chaos: a worker cut off from the database while its attempts run', () => {
  let db: TestDatabase;
  const role = `cutoff_${randomBytes(4).toString('hex')}`;
  const processes: ServiceProcess[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    // A role of its own, so that its connections can be terminated and new ones refused.
    await db.pool.query(`CREATE ROLE ${role} LOGIN SUPERUSER`);
  });
  afterAll(async () => {
    for (const service of processes) service.kill('SIGKILL');
    await Promise.all(processes.map((service) => service.exited));
    await db.drop();
    const admin = new Client({ connectionString: process.env.TEST_PG_ADMIN_URL });
    await admin.connect();
    await admin.query(`DROP ROLE IF EXISTS ${role}`);
    await admin.end();
  });

  it('stops its handlers before its leases expire, writes nothing after, and recovers when it can connect again', async () => {
    const cutOffUrl = new URL(db.url);
    cutOffUrl.username = role;
    const env = {
      LEASE_MS: String(LEASE_MS),
      SWEEP_INTERVAL_MS: '500',
      WORKER_POLL_INTERVAL_MS: '250',
      LOG_LEVEL: 'info',
    };
    const isolated = await spawnService({
      APP_ROLE: 'worker',
      DATABASE_URL: cutOffUrl.toString(),
      WORKER_ID: 'isolated',
      ...env,
    });
    processes.push(isolated);
    await waitForHttp(isolated, '/health/ready');

    const jobs = await insertJobs(db.pool, 3, { jobType: 'sleep', payload: { ms: 5_000 } });
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
    const rescuer = await spawnService({
      APP_ROLE: 'worker',
      DATABASE_URL: db.url,
      WORKER_ID: 'rescuer',
      ...env,
    });
    processes.push(rescuer);

    await eventually(
      async () => {
        const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM jobs WHERE state = 'completed'`);
        return rows[0].n === 3 ? true : undefined;
      },
      30_000,
      100,
    );
    const { rows: lost } = await db.pool.query(
      `SELECT job_id, finished_at FROM job_attempts WHERE worker_id = 'isolated' AND outcome = 'lost'`,
    );
    expect(lost).toHaveLength(3);

    // Each handler was aborted by the isolated worker itself, within one lease of the cut, before the
    // database let anyone else have the job.
    const aborts = isolated
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
    await waitForHttp(isolated, '/health/ready', 200, 15_000);
    expect(isolated.child.exitCode).toBeNull();
  });
});
