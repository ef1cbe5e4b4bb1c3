import { WORKER_DEMAND } from '../../src/persistence/job.sql';
import { insertJobs } from '../support/job-factory';
import { openRepository } from '../support/repository';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

/** The query KEDA scales workers on (deploy/k8s/worker.yaml), run as KEDA runs it. */
describe('the worker demand the autoscaler reads', () => {
  let db: TestDatabase;
  let repo: Awaited<ReturnType<typeof openRepository>>;

  const demand = async (): Promise<number> => {
    const { rows } = await db.pool.query(WORKER_DEMAND);
    expect(rows).toHaveLength(1);
    return Number(rows[0].demand);
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    repo = await openRepository(db.url, 2);
  });
  beforeEach(async () => {
    await db.reset();
    await db.pool.query('DELETE FROM job_type_pauses');
  });
  afterAll(async () => {
    await repo?.close();
    await db?.drop();
  });

  it('counts due jobs and running attempts, not jobs due later, paused types or finished jobs', async () => {
    await insertJobs(db.pool, 6, { jobType: 'noop' });
    await insertJobs(db.pool, 3, { jobType: 'noop', runInSeconds: 3_600 });
    await insertJobs(db.pool, 2, { jobType: 'sleep', payload: { ms: 1 } });
    await repo.repository.pauseJobType('sleep');
    expect(await demand()).toBe(6);

    const claimed = await repo.repository.claimDue(4, 'worker-1', 60_000, ['noop']);
    expect(claimed).toHaveLength(4);
    // 2 due + 4 running: claiming moves work from due to running, it does not make it go away.
    expect(await demand()).toBe(6);

    await repo.repository.markCompleted(
      'worker-1',
      claimed.slice(0, 3).map((job) => ({ jobId: job.jobId, attempt: job.attempt, resultJson: 'null' })),
    );
    expect(await demand()).toBe(3);

    await repo.repository.resumeJobType('sleep');
    expect(await demand()).toBe(5);
  });

  it('keeps counting the attempts still running once the backlog has drained', async () => {
    // The situation that scaled workers away under their long jobs: nothing due, everything running.
    await insertJobs(db.pool, 5, { jobType: 'sleep', payload: { ms: 600_000 } });
    await repo.repository.claimDue(5, 'worker-1', 60_000, ['sleep']);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS due FROM jobs WHERE available_at <= now()`);
    expect(rows[0].due).toBe(0);
    expect(await demand()).toBe(5);
  });
});
