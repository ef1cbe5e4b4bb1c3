import type { PoolClient } from 'pg';
import { eventually } from '../support/job-factory';
import { spawnService, waitForHttp, type ServiceProcess } from '../support/service-process';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

const CONCURRENCY = 200;
const POOL_SIZE = 4;
/** Job writes that block: one on each connection of the worker's pool. */
const BLOCKED_WRITES = POOL_SIZE;
const LONG_JOBS = CONCURRENCY - BLOCKED_WRITES;
/**
 * Heartbeats every second; an attempt not renewed for 2.7 s fences itself. Short, yet with room for a
 * busy machine's scheduling delays: what the test is after is a wait of whole lease lengths.
 */
const LEASE_MS = 3_000;
const LONG_JOB_MS = 30_000;
const START_TIMEOUT_MS = 120_000;

/**
 * A worker at WORKER_CONCURRENCY=200 with DB_POOL_SIZE=4 whose every pool connection is taken by job
 * writes that wait (here: failures whose attempt record waits on a row lock the test holds, the way a
 * slow disk or a lock queue would hold them), for three lease lengths. The heartbeat renews the other
 * 196 leases on a connection of its own all the while: no attempt is lost, none runs twice.
 */
describe('heartbeats while job writes hold every pool connection', () => {
  let db: TestDatabase;
  let processes: ServiceProcess[] = [];
  let blocker: PoolClient | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await blocker?.query('ROLLBACK').catch(() => undefined);
    blocker?.release();
    for (const service of processes) service.kill('SIGKILL');
    await Promise.all(processes.map((service) => service.exited));
    await db.drop();
  });

  it('keeps every lease of a worker at WORKER_CONCURRENCY=200 with DB_POOL_SIZE=4', async () => {
    const api = await spawnService({ APP_ROLE: 'api', DATABASE_URL: db.url });
    const worker = await spawnService({
      APP_ROLE: 'worker',
      DATABASE_URL: db.url,
      WORKER_ID: 'busy-worker',
      WORKER_CONCURRENCY: String(CONCURRENCY),
      DB_POOL_SIZE: String(POOL_SIZE),
      LEASE_MS: String(LEASE_MS),
      SWEEP_INTERVAL_MS: '1000',
      WORKER_POLL_INTERVAL_MS: '250',
      LOG_LEVEL: 'info',
    });
    processes = [api, worker];
    await Promise.all(
      processes.map((service) => waitForHttp(service, '/health/ready', 200, START_TIMEOUT_MS)),
    );

    const submit = async (jobs: Record<string, unknown>[]): Promise<string[]> => {
      const response = await fetch(`${api.baseUrl}/jobs/batch`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ jobs }),
      });
      expect(response.status).toBe(201);
      return ((await response.json()) as { items: { job_id: string }[] }).items.map((job) => job.job_id);
    };
    const longIds = await submit(
      Array.from({ length: LONG_JOBS }, () => ({ job_type: 'sleep', payload: { ms: LONG_JOB_MS } })),
    );
    // Due a little later, so that the test can lay its trap first; they fail at once, each failure its own write.
    const failingIds = await submit(
      Array.from({ length: BLOCKED_WRITES }, () => ({
        job_type: 'fail',
        payload: { message: 'written late', permanent: true },
        max_attempts: 1,
        run_at: new Date(Date.now() + 8_000).toISOString(),
      })),
    );
    await eventually(
      async () => {
        const { rows } = await db.pool.query(
          `SELECT count(*)::int AS n FROM jobs WHERE job_id = ANY($1) AND state = 'running'`,
          [longIds],
        );
        return rows[0].n === LONG_JOBS ? true : undefined;
      },
      20_000,
      50,
    );

    const { rows: notYet } = await db.pool.query(
      `SELECT count(*)::int AS n FROM jobs WHERE job_id = ANY($1) AND state = 'pending'`,
      [failingIds],
    );
    expect(notYet[0].n).toBe(BLOCKED_WRITES);
    // The trap: an uncommitted attempt record under each failing job's key. The worker's own record of
    // that failure waits for this transaction on the primary key, holding its pool connection meanwhile.
    // (A superuser session without triggers: the row needs no job to match it.)
    blocker = await db.pool.connect();
    await blocker.query('BEGIN');
    await blocker.query('SET LOCAL session_replication_role = replica');
    await blocker.query(
      `INSERT INTO job_attempts (job_id, attempt, worker_id, started_at, finished_at, outcome, error)
       SELECT id, 1, 'test-blocker', now(), now(), 'failed', '{"code":"x","message":"x"}'
       FROM unnest($1::uuid[]) AS id`,
      [failingIds],
    );

    // Every connection of the worker's pool is now a job write waiting on that lock.
    await eventually(
      async () => {
        const { rows } = await db.pool.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity
           WHERE datname = $1 AND application_name = 'job-service-worker' AND wait_event_type = 'Lock'`,
          [db.name],
        );
        return rows[0].n === POOL_SIZE ? true : undefined;
      },
      20_000,
      50,
    );
    // Three lease lengths like that: the leases of the long jobs never lapse, on the database's clock.
    const holdUntil = Date.now() + 3 * LEASE_MS;
    let samples = 0;
    while (Date.now() < holdUntil) {
      const { rows } = await db.pool.query(
        `SELECT count(*) FILTER (WHERE lease_expires_at > now())::int AS held,
                count(*) FILTER (WHERE state = 'running')::int AS running
         FROM jobs WHERE job_id = ANY($1)`,
        [longIds],
      );
      expect(rows[0]).toEqual({ held: LONG_JOBS, running: LONG_JOBS });
      samples++;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(samples).toBeGreaterThan(10);
    const { rows: stillBlocked } = await db.pool.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE datname = $1 AND application_name = 'job-service-worker' AND wait_event_type = 'Lock'`,
      [db.name],
    );
    expect(stillBlocked[0].n).toBe(POOL_SIZE);
    await blocker.query('ROLLBACK');
    blocker.release();
    blocker = undefined;

    await eventually(
      async () => {
        const { rows } = await db.pool.query(
          `SELECT count(*)::int AS n FROM jobs WHERE state IN ('completed', 'failed')`,
        );
        return rows[0].n === CONCURRENCY ? true : undefined;
      },
      60_000,
      200,
    );
    const { rows: longJobs } = await db.pool.query(
      `SELECT state, attempts FROM jobs WHERE job_id = ANY($1)`,
      [longIds],
    );
    for (const job of longJobs) expect(job).toEqual({ state: 'completed', attempts: 1 });
    const { rows: failed } = await db.pool.query(
      `SELECT j.state, j.attempts, a.outcome, a.worker_id
       FROM jobs j JOIN job_attempts a USING (job_id) WHERE j.job_id = ANY($1)`,
      [failingIds],
    );
    expect(failed).toHaveLength(BLOCKED_WRITES);
    for (const job of failed) {
      expect(job).toEqual({ state: 'failed', attempts: 1, outcome: 'failed', worker_id: 'busy-worker' });
    }
    const { rows: otherRecords } = await db.pool.query(
      `SELECT count(*)::int AS n FROM job_attempts WHERE job_id = ANY($1)`,
      [longIds],
    );
    expect(otherRecords[0].n).toBe(0);
    expect(worker.output()).not.toMatch(/lease lost|lease expired|renewing leases failed/);
  }, 240_000);
});
