import type { JobRepository } from '../../src/persistence/job.repository';
import { seedHistory } from '../support/history';
import { eventually } from '../support/job-factory';
import { openRepository } from '../support/repository';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

const URL = 'http://127.0.0.1:9/hook';
const HOUR_S = 3_600;
const HOUR_MS = HOUR_S * 1_000;

/** The rules the database keeps for completion callbacks, whoever writes: the service or a hand-written statement. */
describe('callback deliveries in the database', () => {
  let db: TestDatabase;
  let repository: JobRepository;
  let close: () => Promise<void>;

  beforeAll(async () => {
    db = await createTestDatabase();
    ({ repository, close } = await openRepository(db.url, 4));
  });
  afterAll(async () => {
    await close();
    await db.drop();
  });
  beforeEach(() => db.reset());

  /** A pending job (due in a year: nothing claims it) with a callback_url, created as the API would. */
  const newJob = async (callbackUrl: string | null = URL): Promise<string> => {
    const { rows } = await db.pool.query(
      `INSERT INTO jobs (job_type, payload, run_at, available_at, max_attempts, timeout_ms, callback_url)
       VALUES ('noop', '{}', now() + interval '1 year', now() + interval '1 year', 3, 60000, $1)
       RETURNING job_id`,
      [callbackUrl],
    );
    return rows[0].job_id;
  };

  /** Cancels a pending job with a hand-written statement, as an operator might. */
  const CANCEL = `
    UPDATE jobs SET state = 'cancelled', cancel_requested_at = now(), available_at = NULL, finished_at = now(),
                    error = '{"code": "cancelled", "message": "by hand"}'
    WHERE job_id = $1`;

  const deliveryOf = async (jobId: string): Promise<Record<string, unknown> | undefined> => {
    const { rows } = await db.pool.query(`SELECT * FROM callback_deliveries WHERE job_id = $1`, [jobId]);
    return rows[0];
  };

  it('creates the delivery in the transaction of the terminal transition, and only there', async () => {
    const jobId = await newJob();
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(CANCEL, [jobId]);
      const { rows } = await client.query(
        `SELECT count(*)::int AS n FROM callback_deliveries WHERE job_id = $1`,
        [jobId],
      );
      expect(rows[0].n).toBe(1);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    expect(await deliveryOf(jobId)).toBeUndefined();

    await db.pool.query(CANCEL, [jobId]);
    expect(await deliveryOf(jobId)).toMatchObject({
      url: URL,
      state: 'pending',
      attempts: 0,
      worker_id: null,
      settled_at: null,
      next_attempt_at: expect.any(Date),
    });
  });

  it('creates none for a job without callback_url', async () => {
    const jobId = await newJob(null);
    await db.pool.query(CANCEL, [jobId]);
    expect(await deliveryOf(jobId)).toBeUndefined();
  });

  it('refuses a delivery made by hand, a changed callback_url, a delete, and any step backwards', async () => {
    const jobId = await newJob();
    await expect(
      db.pool.query(`UPDATE jobs SET callback_url = 'http://127.0.0.1:9/other' WHERE job_id = $1`, [jobId]),
    ).rejects.toThrow(/callback_url is set when the job is created and never changes/);
    await expect(
      db.pool.query(`UPDATE jobs SET callback_url = 'ftp://x' WHERE job_id = $1`, [jobId]),
    ).rejects.toThrow();
    await expect(
      db.pool.query(`INSERT INTO callback_deliveries (job_id, url, next_attempt_at) VALUES ($1, $2, now())`, [
        jobId,
        URL,
      ]),
    ).rejects.toThrow(/created only by its job reaching a terminal state/);

    await db.pool.query(CANCEL, [jobId]);
    await expect(db.pool.query(`DELETE FROM callback_deliveries WHERE job_id = $1`, [jobId])).rejects.toThrow(
      /goes only with its job/,
    );
    await expect(db.pool.query(`TRUNCATE callback_deliveries`)).rejects.toThrow(/cannot be truncated/);
    await expect(
      db.pool.query(`UPDATE callback_deliveries SET attempts = 2 WHERE job_id = $1`, [jobId]),
    ).rejects.toThrow(/only grow by one/);
    await expect(
      db.pool.query(`UPDATE callback_deliveries SET url = 'http://x/' WHERE job_id = $1`, [jobId]),
    ).rejects.toThrow(/never change/);
    // Settling without an attempt breaks a constraint; with one, it holds for good.
    await expect(
      db.pool.query(
        `UPDATE callback_deliveries SET state = 'delivered', next_attempt_at = NULL, settled_at = now() WHERE job_id = $1`,
        [jobId],
      ),
    ).rejects.toThrow();
    // The refused update locked the row, and its backend may release that lock after it has reported the
    // error: a claim sent at once on another connection can pass over the row (SKIP LOCKED) and find nothing.
    const claimed = await eventually(
      async () => (await repository.claimDueCallbacks(10, 'w1', 60_000))[0],
      5_000,
    );
    expect(claimed).toMatchObject({ jobId, url: URL, attempt: 1 });
    expect(await repository.recordCallbackAttempt('w1', claimed, { state: 'delivered', status: 204 })).toBe(
      true,
    );
    await expect(
      db.pool.query(
        `UPDATE callback_deliveries SET state = 'pending', next_attempt_at = now(), settled_at = NULL WHERE job_id = $1`,
        [jobId],
      ),
    ).rejects.toThrow(/is delivered and can never change again/);
    expect(await deliveryOf(jobId)).toMatchObject({ state: 'delivered', attempts: 1, last_status: 204 });
  });

  it('hands a due delivery to one claimer at a time, and to another once the lease has run out', async () => {
    const ids = await Promise.all([1, 2, 3, 4, 5, 6].map(() => newJob()));
    for (const id of ids) await db.pool.query(CANCEL, [id]);
    const [a, b] = await Promise.all([
      repository.claimDueCallbacks(4, 'a', 300),
      repository.claimDueCallbacks(4, 'b', 60_000),
    ]);
    expect([...a, ...b].map((claimed) => claimed.jobId).sort()).toEqual([...ids].sort());
    expect(await repository.claimDueCallbacks(10, 'c', 60_000)).toEqual([]);

    // a's lease runs out before it answers: c claims a's deliveries again, and a's late outcome is refused.
    await new Promise((resolve) => setTimeout(resolve, 400));
    const again = await repository.claimDueCallbacks(10, 'c', 60_000);
    expect(again.map((claimed) => claimed.jobId).sort()).toEqual(a.map((claimed) => claimed.jobId).sort());
    expect(again.every((claimed) => claimed.attempt === 2)).toBe(true);
    expect(await repository.recordCallbackAttempt('a', a[0], { state: 'delivered', status: 200 })).toBe(
      false,
    );
    expect(
      await repository.recordCallbackAttempt('c', again[0], {
        state: 'retry',
        retryInMs: 60_000,
        status: 503,
        error: 'the receiver answered 503',
      }),
    ).toBe(true);
    expect(await deliveryOf(again[0].jobId)).toMatchObject({
      state: 'pending',
      attempts: 2,
      last_status: 503,
      last_error: 'the receiver answered 503',
    });
    // Due again only after its backoff.
    expect(
      (await repository.claimDueCallbacks(10, 'd', 60_000)).map((claimed) => claimed.jobId),
    ).not.toContain(again[0].jobId);
  });

  it('lets retention delete finished jobs with their settled deliveries, and keeps a job whose callback is pending', async () => {
    const [pending, delivered, failed, without] = await Promise.all(
      [1, 2, 3, 4].map(() => seedHistory(db.pool, 1, { state: 'completed', createdSecondsAgo: 2 * HOUR_S })),
    ).then((lists) => lists.map(([id]) => id));
    // History with deliveries in each state, written the way seedHistory writes jobs (rules off).
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL session_replication_role = replica');
      await client.query(`UPDATE jobs SET callback_url = $2 WHERE job_id = ANY($1::uuid[])`, [
        [pending, delivered, failed],
        URL,
      ]);
      await client.query(
        `INSERT INTO callback_deliveries (job_id, url, state, attempts, next_attempt_at, settled_at)
         VALUES ($1, $4, 'pending', 3, now() + interval '1 hour', NULL),
                ($2, $4, 'delivered', 1, NULL, now()),
                ($3, $4, 'failed', 15, NULL, now())`,
        [pending, delivered, failed, URL],
      );
      await client.query('COMMIT');
    } finally {
      client.release();
    }

    const batch = await repository.sweepRetention({
      minIntervalMs: 0,
      retention: { completedMs: HOUR_MS, failedMs: HOUR_MS, cancelledMs: HOUR_MS },
      horizonMs: HOUR_MS,
      limit: 1_000,
      lapMs: HOUR_MS,
      finishesKeptMs: HOUR_MS,
    });
    expect(batch).toEqual({ deleted: { completed: 3 }, caughtUp: true });
    const { rows: jobs } = await db.pool.query(`SELECT job_id FROM jobs`);
    expect(jobs.map((row) => row.job_id)).toEqual([pending]);
    const { rows: deliveries } = await db.pool.query(`SELECT job_id FROM callback_deliveries`);
    expect(deliveries.map((row) => row.job_id)).toEqual([pending]);
    expect(without).toBeDefined();

    // Deleting it by hand is refused too, as long as its callback is pending.
    await expect(db.pool.query(`DELETE FROM jobs WHERE job_id = $1`, [pending])).rejects.toThrow(
      /cannot be deleted while its callback is still pending/,
    );
  });
});
