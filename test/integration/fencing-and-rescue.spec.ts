import { JobRepository } from '../../src/persistence/job.repository';
import { JobsDatabase } from '../../src/persistence/jobs-database';
import { AttemptOutcome } from '../../src/persistence/job-state';
import { ALL_TYPES, insertJob } from '../support/job-factory';
import { openRepository } from '../support/repository';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

const LEASE_MS = 60_000;
const boom = { code: 'boom', message: 'it broke' };

describe('fenced writes, lease renewal and rescue', () => {
  let db: TestDatabase;
  let repository: JobRepository;
  let close: () => Promise<void>;

  beforeAll(async () => {
    db = await createTestDatabase();
    ({ repository, close } = await openRepository(db.url));
  });
  beforeEach(() => db.reset());
  afterAll(async () => {
    await close();
    await db.drop();
  });

  const expireLease = (jobId: string): Promise<unknown> =>
    db.pool.query(`UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE job_id = $1`, [
      jobId,
    ]);
  const row = async (jobId: string): Promise<Record<string, any>> =>
    (await db.pool.query('SELECT * FROM jobs WHERE job_id = $1', [jobId])).rows[0];
  const records = async (jobId: string): Promise<Record<string, any>[]> =>
    (await db.pool.query('SELECT * FROM job_attempts WHERE job_id = $1 ORDER BY attempt', [jobId])).rows;

  it('completes only for the worker and attempt that hold the lease', async () => {
    const jobId = await insertJob(db.pool);
    const [claimed] = await repository.claimDue(1, 'worker-a', LEASE_MS, ALL_TYPES);
    const ref = { jobId, attempt: claimed.attempt };

    expect(
      await repository.markCompleted('worker-b', [{ ...ref, resultJson: JSON.stringify({ by: 'b' }) }]),
    ).toEqual(new Set());
    expect(
      await repository.markCompleted('worker-a', [
        { jobId, attempt: 2, resultJson: JSON.stringify({ stale: true }) },
      ]),
    ).toEqual(new Set());
    expect((await row(jobId)).state).toBe('running');

    expect(
      await repository.markCompleted('worker-a', [{ ...ref, resultJson: JSON.stringify({ by: 'a' }) }]),
    ).toEqual(new Set([jobId]));
    expect(await row(jobId)).toMatchObject({
      state: 'completed',
      result: { by: 'a' },
      lease_expires_at: null,
    });
  });

  it('refuses every write of a worker whose lease ran out, even before the rescue sweep', async () => {
    const jobId = await insertJob(db.pool);
    const [claimed] = await repository.claimDue(1, 'worker-a', LEASE_MS, ALL_TYPES);
    const ref = { jobId, attempt: claimed.attempt };
    await expireLease(jobId);

    expect(await repository.markCompleted('worker-a', [{ ...ref, resultJson: JSON.stringify(1) }])).toEqual(
      new Set(),
    );
    expect(await repository.markFailed('worker-a', ref, AttemptOutcome.Failed, boom)).toBe(false);
    expect(await repository.scheduleRetry('worker-a', ref, AttemptOutcome.Failed, boom, 0)).toBe(false);
    expect(await repository.renewLeases('worker-a', [ref], LEASE_MS)).toEqual([]);
    expect(await records(jobId)).toEqual([]);
  });

  it('lets a rescued job be claimed again and fences out its previous worker', async () => {
    const jobId = await insertJob(db.pool, { maxAttempts: 3 });
    const [first] = await repository.claimDue(1, 'worker-a', LEASE_MS, ALL_TYPES);
    await expireLease(jobId);

    const rescued = await repository.rescueExpiredLeases(100);
    expect(rescued).toEqual({
      rescued: [{ jobId, jobType: 'noop', attempt: 1, workerId: 'worker-a', state: 'running' }],
      refused: [],
    });
    expect(await records(jobId)).toEqual([
      expect.objectContaining({
        attempt: 1,
        worker_id: 'worker-a',
        outcome: 'lost',
        error: expect.objectContaining({ code: 'lease_expired' }),
      }),
    ]);

    const [second] = await repository.claimDue(1, 'worker-b', LEASE_MS, ALL_TYPES);
    expect(second).toMatchObject({ jobId, attempt: 2, failedAttempts: 1 });

    // The first worker wakes up and tries to finish: nothing it writes lands.
    expect(
      await repository.markCompleted('worker-a', [
        { jobId, attempt: first.attempt, resultJson: JSON.stringify('late') },
      ]),
    ).toEqual(new Set());
    expect(await repository.renewLeases('worker-a', [{ jobId, attempt: first.attempt }], LEASE_MS)).toEqual(
      [],
    );
    expect(
      await repository.markCompleted('worker-b', [{ jobId, attempt: 2, resultJson: JSON.stringify('ok') }]),
    ).toEqual(new Set([jobId]));
    expect(await row(jobId)).toMatchObject({
      state: 'completed',
      result: 'ok',
      attempts: 2,
      worker_id: 'worker-b',
    });
  });

  it('fails a job with lease_expired when its last allowed attempt is lost', async () => {
    const jobId = await insertJob(db.pool, { maxAttempts: 1 });
    await repository.claimDue(1, 'worker-a', LEASE_MS, ALL_TYPES);
    await expireLease(jobId);
    const rescued = await repository.rescueExpiredLeases(100);
    expect(rescued?.rescued).toEqual([expect.objectContaining({ jobId, state: 'failed' })]);
    expect(await row(jobId)).toMatchObject({
      state: 'failed',
      error: { code: 'lease_expired' },
      failed_attempts: 1,
    });
  });

  it('rescues each expired lease once when several sweeps run at the same time', async () => {
    const ids = await Promise.all(Array.from({ length: 30 }, () => insertJob(db.pool)));
    await repository.claimDue(30, 'worker-a', LEASE_MS, ALL_TYPES);
    await db.pool.query(`UPDATE jobs SET lease_expires_at = now() - interval '1 second'`);
    const sweepers = await Promise.all([1, 2, 3].map(() => openRepository(db.url, 2)));
    try {
      const results = await Promise.all(sweepers.map(({ repository: r }) => r.rescueExpiredLeases(7)));
      const more = await repository.rescueExpiredLeases(100);
      // A sweeper that found the turn taken gets null: another sweep is running.
      const rescuedIds = [...results, more]
        .flatMap((batch) => batch?.rescued ?? [])
        .map((attempt) => attempt.jobId);
      expect(rescuedIds.sort()).toEqual([...ids].sort());
      const { rows } = await db.pool.query(
        `SELECT count(*)::int AS n FROM job_attempts WHERE outcome = 'lost'`,
      );
      expect(rows[0].n).toBe(30);
    } finally {
      await Promise.all(sweepers.map(({ close: closeSweeper }) => closeSweeper()));
    }
  });

  it('renews only the leases the worker still holds', async () => {
    const kept = await insertJob(db.pool);
    const lost = await insertJob(db.pool);
    // A lease that cannot run out during the test, shorter than the renewal so that the renewal shows.
    const claimed = await repository.claimDue(2, 'worker-a', LEASE_MS / 4, ALL_TYPES);
    await expireLease(lost);
    await repository.rescueExpiredLeases(10);
    const before = (await row(kept)).lease_expires_at as Date;
    const held = await repository.renewLeases(
      'worker-a',
      claimed.map((job) => ({ jobId: job.jobId, attempt: job.attempt })),
      LEASE_MS,
    );
    expect(held).toEqual([{ jobId: kept, attempt: 1, cancelRequested: false }]);
    expect(((await row(kept)).lease_expires_at as Date).getTime()).toBeGreaterThan(before.getTime() + 30_000);
  });

  it('does not count an interrupted attempt against max_attempts', async () => {
    const jobId = await insertJob(db.pool, { maxAttempts: 1 });
    const interrupted = { code: 'worker_shutdown', message: 'released' };
    for (const attempt of [1, 2]) {
      const [claimed] = await repository.claimDue(1, `worker-${attempt}`, LEASE_MS, ALL_TYPES);
      expect(claimed).toMatchObject({ jobId, attempt, failedAttempts: 0 });
      expect(
        await repository.scheduleRetry(
          `worker-${attempt}`,
          { jobId, attempt },
          AttemptOutcome.Interrupted,
          interrupted,
          0,
        ),
      ).toBe(true);
    }
    const [third] = await repository.claimDue(1, 'worker-3', LEASE_MS, ALL_TYPES);
    expect(third).toMatchObject({ jobId, attempt: 3 });
    expect(
      await repository.markCompleted('worker-3', [{ jobId, attempt: 3, resultJson: JSON.stringify(null) }]),
    ).toEqual(new Set([jobId]));
    expect(await row(jobId)).toMatchObject({
      state: 'completed',
      attempts: 3,
      failed_attempts: 0,
      result: null,
    });
    expect((await records(jobId)).map((r) => r.outcome)).toEqual(['interrupted', 'interrupted']);
  });

  it('makes a retried job claimable only after its backoff', async () => {
    const jobId = await insertJob(db.pool);
    await repository.claimDue(1, 'worker-a', LEASE_MS, ALL_TYPES);
    expect(
      await repository.scheduleRetry('worker-a', { jobId, attempt: 1 }, AttemptOutcome.Failed, boom, 60_000),
    ).toBe(true);
    expect(await repository.claimDue(1, 'worker-b', LEASE_MS, ALL_TYPES)).toEqual([]);
    const job = await row(jobId);
    expect(job).toMatchObject({ state: 'running', lease_expires_at: null, failed_attempts: 1 });
    expect((job.available_at as Date).getTime() - Date.now()).toBeGreaterThan(50_000);
  });
});

describe('when the rescue sweep scans the jobs table', () => {
  let db: TestDatabase;
  let database: JobsDatabase;
  let repository: JobRepository;

  beforeAll(async () => {
    db = await createTestDatabase();
    // One connection, so that its scan statistics can be flushed from it (pg_stat_force_next_flush).
    database = await JobsDatabase.open({ url: db.url, poolSize: 1, preparedStatements: true });
    repository = new JobRepository(database);
  });
  beforeEach(() => db.reset());
  afterAll(async () => {
    await database.close();
    await db.drop();
  });

  /** Sequential scans of jobs so far, with the sweeping connection's pending statistics flushed first. */
  const jobScans = async (): Promise<number> => {
    await database.dataSource.query('SELECT pg_stat_force_next_flush()');
    await database.dataSource.query('SELECT 1');
    const { rows } = await db.pool.query(
      `SELECT seq_scan::int AS n FROM pg_stat_user_tables WHERE relname = 'jobs'`,
    );
    return rows[0].n;
  };

  it('runs one sweep per interval across workers: another worker finds the turn taken', async () => {
    const other = await openRepository(db.url);
    try {
      expect(await repository.rescueExpiredLeases(500, 60_000)).not.toBeNull();
      expect(await other.repository.rescueExpiredLeases(500, 60_000)).toBeNull();
      expect(await repository.rescueExpiredLeases(500, 60_000)).toBeNull();
    } finally {
      await other.close();
    }
  });

  it('reads the lease counts instead of scanning the jobs table while no lease has expired, and scans once one has', async () => {
    await insertJob(db.pool, { jobType: 'noop' });
    await insertJob(db.pool, { jobType: 'noop' });
    const idle = await jobScans();
    expect(await repository.rescueExpiredLeases(500)).toEqual({ rescued: [], refused: [] });
    expect(await jobScans()).toBe(idle);

    // Two attempts hold live leases, one renewed since: still nothing to scan for.
    const claimed = await repository.claimDue(2, 'worker-a', 60_000, ALL_TYPES);
    expect(claimed).toHaveLength(2);
    await repository.renewLeases(
      'worker-a',
      [{ jobId: claimed[0].jobId, attempt: claimed[0].attempt }],
      90_000,
    );
    const live = await jobScans();
    expect(await repository.rescueExpiredLeases(500)).toEqual({ rescued: [], refused: [] });
    expect(await jobScans()).toBe(live);

    await db.pool.query(`UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE job_id = $1`, [
      claimed[1].jobId,
    ]);
    const beforeSweep = await jobScans();
    const batch = await repository.rescueExpiredLeases(500);
    expect(batch?.rescued.map((attempt) => attempt.jobId)).toEqual([claimed[1].jobId]);
    expect(await jobScans()).toBeGreaterThan(beforeSweep);

    // The expired lease is closed: the next sweep reads the counts only again.
    const rescued = await jobScans();
    expect(await repository.rescueExpiredLeases(500)).toEqual({ rescued: [], refused: [] });
    expect(await jobScans()).toBe(rescued);
  });

  it('scans when the lease counts disagree with the live attempts, and finds the expired lease anyway', async () => {
    await insertJob(db.pool, { jobType: 'noop' });
    const [claimed] = await repository.claimDue(1, 'worker-a', 60_000, ALL_TYPES);
    await db.pool.query(`UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE job_id = $1`, [
      claimed.jobId,
    ]);
    // An edit by hand that hides the expired second from the counts.
    await db.pool.query(`DELETE FROM job_lease_expiries WHERE expires_second <= now()`);
    const before = await jobScans();
    const batch = await repository.rescueExpiredLeases(500);
    expect(batch?.rescued.map((attempt) => attempt.jobId)).toEqual([claimed.jobId]);
    expect(await jobScans()).toBeGreaterThan(before);
  });
});
