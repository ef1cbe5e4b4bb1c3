import { eventually, insertJobs } from '../support/job-factory';
import { spawnService, waitForHttp, type ServiceProcess } from '../support/service-process';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

/**
 * In a rolling deploy, jobs of a type that only the new workers have reach the database while old
 * workers still run. A worker claims only the types it has handlers for, so it never fails such a job:
 * the job waits, pending, for a worker that can run it, and the wait shows in the metrics.
 */
describe('a worker process and job types it has no handler for', () => {
  let db: TestDatabase;
  let worker: ServiceProcess | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    worker?.kill('SIGKILL');
    await worker?.exited;
    await db.drop();
  });

  it('leaves them pending and unattempted, runs the types it knows, and reports the waiting jobs', async () => {
    // Inserted straight into the table: the API of a newer release accepted them.
    const newer = await insertJobs(db.pool, 3, { jobType: 'report.render', maxAttempts: 1 });
    const known = await insertJobs(db.pool, 20, { jobType: 'echo', payload: { ok: true } });
    worker = await spawnService({ APP_ROLE: 'worker', DATABASE_URL: db.url, WORKER_POLL_INTERVAL_MS: '50' });
    await waitForHttp(worker, '/health/ready');

    await eventually(async () => {
      const { rows } = await db.pool.query(
        `SELECT count(*)::int AS n FROM jobs WHERE job_id = ANY($1) AND state = 'completed'`,
        [known],
      );
      return rows[0].n === known.length ? true : undefined;
    }, 30_000);
    // Ten more polls: the worker looked at the queue again and again and still left them alone.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const { rows } = await db.pool.query(
      `SELECT state, attempts, worker_id FROM jobs WHERE job_id = ANY($1)`,
      [newer],
    );
    expect(rows).toEqual(newer.map(() => ({ state: 'pending', attempts: 0, worker_id: null })));

    const metrics = await (await fetch(`${worker.baseUrl}/metrics`)).text();
    expect(metrics).toContain('worker_due_jobs_without_handler{job_type="report.render"} 3');
  });
});
