import { seedHistory } from '../support/history';
import { eventually, insertJobs } from '../support/job-factory';
import { spawnService, waitForHttp, type ServiceProcess } from '../support/service-process';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

const HOUR_S = 3_600;
const HOUR_MS = HOUR_S * 1_000;

/**
 * Retention on real worker processes (APP_ROLE=worker): terminal jobs past their state's retention are
 * deleted with their attempt records, everything else stays, 0 keeps jobs forever, and one worker
 * deletes at a time however many run.
 */
describe('retention of finished jobs', () => {
  let db: TestDatabase;
  let workers: ServiceProcess[] = [];

  beforeEach(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    for (const worker of workers) worker.kill('SIGKILL');
    await Promise.all(workers.map((worker) => worker.exited));
    workers = [];
    await db.drop();
  });

  const startWorkers = async (count: number, env: Record<string, string>): Promise<ServiceProcess[]> => {
    const started = await Promise.all(
      Array.from({ length: count }, (_, n) =>
        spawnService({
          APP_ROLE: 'worker',
          DATABASE_URL: db.url,
          WORKER_ID: `retention-${n}`,
          RETENTION_SWEEP_INTERVAL_MS: '200',
          ...env,
        }),
      ),
    );
    workers.push(...started);
    await Promise.all(started.map((worker) => waitForHttp(worker, '/health/ready')));
    return started;
  };

  const ids = async (sql: string): Promise<string[]> =>
    (await db.pool.query(sql)).rows.map((row) => row.job_id as string).sort();

  const deletedMetric = async (worker: ServiceProcess, state: string): Promise<number> => {
    const text = await (await fetch(`${worker.baseUrl}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`jobs_deleted_total{state="${state}"} `));
    return line ? Number(line.split(' ')[1]) : 0;
  };

  const countsAgreeWithRows = async (): Promise<void> => {
    const { rows } = await db.pool.query(
      `SELECT coalesce(c.job_type, r.job_type) AS job_type, coalesce(c.state, r.state) AS state,
              coalesce(c.jobs, 0)::int AS counted, coalesce(r.n, 0)::int AS rows
       FROM (SELECT job_type, state, sum(jobs) AS jobs FROM job_counts GROUP BY 1, 2) AS c
       FULL JOIN (SELECT job_type, state, count(*) AS n FROM jobs GROUP BY 1, 2) AS r USING (job_type, state)`,
    );
    for (const row of rows) expect(row).toEqual({ ...row, counted: row.rows });
  };

  it('deletes terminal jobs past their retention with their attempt records, and keeps every other job', async () => {
    // Retention: completed 1 h, failed 3 h, cancelled forever.
    const expiredCompleted = await seedHistory(db.pool, 30, {
      state: 'completed',
      createdSecondsAgo: 2 * HOUR_S,
    });
    const expiredFailed = await seedHistory(db.pool, 10, {
      state: 'failed',
      createdSecondsAgo: 4 * HOUR_S,
      withAttemptRecord: true,
    });
    const kept = [
      // Created long ago, finished only 20 minutes ago.
      ...(await seedHistory(db.pool, 10, {
        state: 'completed',
        createdSecondsAgo: 5 * HOUR_S,
        finishedSecondsAgo: 1_200,
      })),
      // Failed 2 h ago: within the 3 h of failed jobs.
      ...(await seedHistory(db.pool, 10, {
        state: 'failed',
        createdSecondsAgo: 2 * HOUR_S,
        withAttemptRecord: true,
      })),
      // Cancelled jobs are kept forever.
      ...(await seedHistory(db.pool, 10, { state: 'cancelled', createdSecondsAgo: 120 * HOUR_S })),
      // Not finished: created 3 h ago, due in a year.
      ...(await seedHistory(db.pool, 5, { state: 'pending', createdSecondsAgo: 3 * HOUR_S })),
      // New jobs the worker runs now.
      ...(await insertJobs(db.pool, 20, { jobType: 'noop' })),
    ].sort();

    const [worker] = await startWorkers(1, {
      RETENTION_COMPLETED_MS: String(HOUR_MS),
      RETENTION_FAILED_MS: String(3 * HOUR_MS),
      RETENTION_CANCELLED_MS: '0',
    });

    await eventually(
      async () => ((await ids('SELECT job_id FROM jobs')).length === kept.length ? true : undefined),
      30_000,
      100,
    );
    expect(await ids('SELECT job_id FROM jobs')).toEqual(kept);
    const gone = [...expiredCompleted, ...expiredFailed];
    expect(await ids(`SELECT job_id FROM job_attempts WHERE job_id = ANY('{${gone.join(',')}}')`)).toEqual(
      [],
    );
    expect(await ids(`SELECT job_id FROM job_attempts WHERE worker_id = 'history'`)).toHaveLength(10);
    expect(await deletedMetric(worker, 'completed')).toBe(30);
    expect(await deletedMetric(worker, 'failed')).toBe(10);
    expect(await deletedMetric(worker, 'cancelled')).toBe(0);
    await countsAgreeWithRows();
  });

  it('keeps every job forever when all three retentions are 0, and still drops old finish counts', async () => {
    const history = [
      ...(await seedHistory(db.pool, 10, { state: 'completed', createdSecondsAgo: 1_000 * HOUR_S })),
      ...(await seedHistory(db.pool, 10, { state: 'failed', createdSecondsAgo: 1_000 * HOUR_S })),
      ...(await seedHistory(db.pool, 10, { state: 'cancelled', createdSecondsAgo: 1_000 * HOUR_S })),
    ].sort();
    // Per-second finish counts from two hours ago: only the last hour is kept.
    await db.pool.query(
      `INSERT INTO job_finishes VALUES (date_trunc('second', now() - interval '2 hours'), 'noop', 'completed', 0, 5)`,
    );
    const { rows: before } = await db.pool.query('SELECT now() AS at');

    const [worker] = await startWorkers(1, {
      RETENTION_COMPLETED_MS: '0',
      RETENTION_FAILED_MS: '0',
      RETENTION_CANCELLED_MS: '0',
    });
    // Passes ran (each takes the turn and dates it) well after the worker started.
    await eventually(
      async () => {
        const { rows } = await db.pool.query(
          `SELECT last_swept_at > $1::timestamptz + interval '1 second' AS later FROM retention_sweeps`,
          [before[0].at],
        );
        return rows[0].later ? true : undefined;
      },
      30_000,
      100,
    );
    expect(await ids('SELECT job_id FROM jobs')).toEqual(history);
    for (const state of ['completed', 'failed', 'cancelled'])
      expect(await deletedMetric(worker, state)).toBe(0);
    const { rows: finishes } = await db.pool.query('SELECT count(*)::int AS n FROM job_finishes');
    expect(finishes[0].n).toBe(0);
  });

  it('has one worker delete at a time across the fleet, in transactions of at most 1,000 jobs', async () => {
    // Every statement that deletes jobs, by which backend and when it ran.
    await db.pool.query(`
      CREATE TABLE deletions (pid int, started timestamptz, ended timestamptz, jobs int);
      CREATE FUNCTION log_deletion() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO deletions SELECT pg_backend_pid(), statement_timestamp(), clock_timestamp(), count(*) FROM gone;
        RETURN NULL;
      END $$;
      CREATE TRIGGER log_deletion AFTER DELETE ON jobs REFERENCING OLD TABLE AS gone
        FOR EACH STATEMENT EXECUTE FUNCTION log_deletion();`);

    const fleet = await startWorkers(3, { RETENTION_COMPLETED_MS: String(HOUR_MS) });
    // Written once every worker is up and sweeping, so that all of them race for the work.
    const expired = await seedHistory(db.pool, 10_000, {
      state: 'completed',
      createdSecondsAgo: 10 * HOUR_S,
    });
    await eventually(
      async () => ((await ids('SELECT job_id FROM jobs')).length === 0 ? true : undefined),
      60_000,
      200,
    );

    const { rows: deletions } = await db.pool.query(`SELECT jobs FROM deletions WHERE jobs > 0`);
    expect(deletions.reduce((sum, d) => sum + d.jobs, 0)).toBe(expired.length);
    for (const deletion of deletions) expect(deletion.jobs).toBeLessThanOrEqual(1_000);
    // No two deleting statements ever ran at the same time (one that found its rows taken counts too).
    const { rows: overlaps } = await db.pool.query(
      `SELECT a.pid AS one, b.pid AS other FROM deletions a JOIN deletions b
         ON a.ctid < b.ctid AND a.started < b.ended AND b.started < a.ended`,
    );
    expect(overlaps).toEqual([]);
    const metrics = await Promise.all(fleet.map((worker) => deletedMetric(worker, 'completed')));
    expect(metrics.reduce((sum, n) => sum + n, 0)).toBe(expired.length);
    await countsAgreeWithRows();
  });
});
