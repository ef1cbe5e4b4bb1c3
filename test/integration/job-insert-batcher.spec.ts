import { v7 as uuidv7 } from 'uuid';
import { JobInsertBatcher } from '../../src/jobs/job-insert-batcher';
import type { NewJob } from '../../src/persistence/job.repository';
import { openRepository } from '../support/repository';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

const newJob = (overrides: Partial<NewJob> = {}): NewJob => ({
  jobId: uuidv7(),
  jobType: 'noop',
  payload: {},
  priority: 0,
  runAt: null,
  maxAttempts: 3,
  timeoutMs: 1_000,
  idempotencyKey: null,
  requestHash: null,
  ...overrides,
});

describe('group commit of single-job creates', () => {
  let db: TestDatabase;
  let batcher: JobInsertBatcher;
  let close: () => Promise<void>;

  beforeAll(async () => {
    db = await createTestDatabase();
    const opened = await openRepository(db.url);
    close = opened.close;
    batcher = new JobInsertBatcher(opened.repository);
  });
  beforeEach(() => db.reset());
  afterAll(async () => {
    await close();
    await db.drop();
  });

  it('stores every job of a burst and answers each with its own row', async () => {
    const jobs = Array.from({ length: 300 }, (_, n) => newJob({ payload: { n } }));
    const rows = await Promise.all(jobs.map((job) => batcher.insert(job)));
    expect(rows.map((row) => row?.jobId)).toEqual(jobs.map((job) => job.jobId));
    expect(rows.map((row) => row?.payload)).toEqual(jobs.map((job) => job.payload));
    const { rows: stored } = await db.pool.query('SELECT count(*)::int AS n FROM jobs');
    expect(stored[0].n).toBe(300);
  });

  it('fails only the job the database refuses when it shares a statement with others', async () => {
    const good = Array.from({ length: 20 }, () => newJob());
    const bad = newJob({ jobType: 'not a valid type!' });
    const results = await Promise.allSettled(
      [...good.slice(0, 10), bad, ...good.slice(10)].map((job) => batcher.insert(job)),
    );
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(20);
    const rejected = results.filter((result) => result.status === 'rejected');
    expect(rejected).toHaveLength(1);
    const { rows } = await db.pool.query('SELECT job_id FROM jobs');
    expect(rows.map((row) => row.job_id).sort()).toEqual(good.map((job) => job.jobId).sort());
  });

  it('answers null for a job whose idempotency key is taken, even within one statement', async () => {
    const first = newJob({ idempotencyKey: 'k-1', requestHash: 'h' });
    const second = newJob({ idempotencyKey: 'k-1', requestHash: 'h' });
    const [a, b] = await Promise.all([batcher.insert(first), batcher.insert(second)]);
    expect([a, b].filter((row) => row === null)).toHaveLength(1);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM jobs WHERE idempotency_key = 'k-1'`);
    expect(rows[0].n).toBe(1);
  });
});
