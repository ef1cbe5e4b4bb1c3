import type { JobRepository, RetentionBatchOptions } from '../../src/persistence/job.repository';
import { seedHistory } from '../support/history';
import { insertJobs } from '../support/job-factory';
import { openRepository } from '../support/repository';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

const HOUR_S = 3_600;
const HOUR_MS = HOUR_S * 1_000;

/**
 * The retention batch walks the primary key (job ids are time-ordered) with a cursor: a job it passed
 * before the job qualified is not looked at again on every pass, only when a new lap starts from the
 * oldest id.
 */
describe('the retention walk', () => {
  let db: TestDatabase;
  let repository: JobRepository;
  let close: () => Promise<void>;

  beforeAll(async () => {
    db = await createTestDatabase();
    ({ repository, close } = await openRepository(db.url, 2));
  });
  afterAll(async () => {
    await close();
    await db.drop();
  });
  beforeEach(async () => {
    await db.reset();
    await db.pool.query(
      `UPDATE retention_sweeps SET walked_to = '00000000-0000-0000-0000-000000000000', lap_started_at = now()`,
    );
  });

  const batch = (options: Partial<RetentionBatchOptions> & { failedMs?: number }) =>
    repository.sweepRetention({
      minIntervalMs: 0,
      retention: { completedMs: HOUR_MS, failedMs: options.failedMs ?? 3 * HOUR_MS, cancelledMs: 0 },
      horizonMs: HOUR_MS,
      limit: 1_000,
      lapMs: HOUR_MS,
      finishesKeptMs: HOUR_MS,
      ...options,
    });

  const remaining = async (ids: string[]): Promise<number> => {
    const { rows } = await db.pool.query(
      `SELECT count(*)::int AS n FROM jobs WHERE job_id = ANY($1::uuid[])`,
      [ids],
    );
    return rows[0].n;
  };

  it('deletes at most the batch size per transaction, and says when it reached the horizon', async () => {
    const old = await seedHistory(db.pool, 2_500, { state: 'completed', createdSecondsAgo: 2 * HOUR_S });
    expect(await batch({})).toEqual({ deleted: { completed: 1_000 }, caughtUp: false });
    expect(await batch({})).toEqual({ deleted: { completed: 1_000 }, caughtUp: false });
    expect(await batch({})).toEqual({ deleted: { completed: 500 }, caughtUp: true });
    expect(await remaining(old)).toBe(0);
  });

  it('passes over jobs that do not qualify yet, and looks at them again only in the next lap', async () => {
    // Failed 2 h ago: kept while failed jobs are kept 3 h.
    const failed = await seedHistory(db.pool, 5, { state: 'failed', createdSecondsAgo: 2 * HOUR_S });
    const completed = await seedHistory(db.pool, 5, { state: 'completed', createdSecondsAgo: 2 * HOUR_S });
    expect(await batch({})).toEqual({ deleted: { completed: 5 }, caughtUp: true });
    expect(await remaining(failed)).toBe(5);

    // Failed jobs are now kept 1 h only: they qualify, but the walk has passed them in this lap.
    expect(await batch({ failedMs: HOUR_MS })).toEqual({ deleted: {}, caughtUp: true });
    expect(await remaining(failed)).toBe(5);

    // The lap is over (lapMs 0): the walk starts again from the oldest id and finds them.
    expect(await batch({ failedMs: HOUR_MS, lapMs: 0 })).toEqual({ deleted: {}, caughtUp: true });
    expect(await batch({ failedMs: HOUR_MS })).toEqual({ deleted: { failed: 5 }, caughtUp: true });
    expect(await remaining([...failed, ...completed])).toBe(0);
  });

  it('never looks at jobs created after the horizon, nor touches unfinished jobs', async () => {
    const pending = await seedHistory(db.pool, 3, { state: 'pending', createdSecondsAgo: 2 * HOUR_S });
    const young = await seedHistory(db.pool, 3, {
      state: 'completed',
      createdSecondsAgo: 1_800,
      finishedSecondsAgo: 1_800,
    });
    const fresh = await insertJobs(db.pool, 3);
    // Completed jobs are kept 10 minutes, but the walk stops at jobs created an hour ago.
    expect(
      await batch({ retention: { completedMs: 600_000, failedMs: 0, cancelledMs: 0 }, horizonMs: HOUR_MS }),
    ).toEqual({ deleted: {}, caughtUp: true });
    expect(await remaining([...pending, ...young, ...fresh])).toBe(9);
  });

  it('only drops old finish counts when no retention is set', async () => {
    const old = await seedHistory(db.pool, 3, { state: 'completed', createdSecondsAgo: 2 * HOUR_S });
    await db.pool.query(
      `INSERT INTO job_finishes VALUES (date_trunc('second', now() - interval '2 hours'), 'noop', 'completed', 0, 3)`,
    );
    expect(await batch({ retention: null })).toEqual({ deleted: {}, caughtUp: true });
    expect(await remaining(old)).toBe(3);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM job_finishes`);
    expect(rows[0].n).toBe(0);
  });
});
