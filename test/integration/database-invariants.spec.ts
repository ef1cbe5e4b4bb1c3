import type { PoolClient } from 'pg';
import { CLAIM_DUE, MARK_COMPLETED, MARK_FAILED, SCHEDULE_RETRY } from '../../src/persistence/job.sql';
import { insertJob } from '../support/job-factory';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

/**
 * Each invariant of the contract, attacked with hand-written SQL: the database must refuse, and the row
 * must be unchanged afterwards. Jobs are driven into each state with the service's own statements.
 */
describe('invariants the database enforces', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  beforeEach(() => db.reset());
  afterAll(() => db.drop());

  const row = async (jobId: string): Promise<Record<string, any>> =>
    (await db.pool.query('SELECT * FROM jobs WHERE job_id = $1', [jobId])).rows[0];
  const refused = (sql: string, params: unknown[] = []): Promise<void> =>
    expect(db.pool.query(sql, params)).rejects.toThrow();

  const pendingJob = (): Promise<string> => insertJob(db.pool, { maxAttempts: 2 });
  const runningJob = async (): Promise<string> => {
    const jobId = await pendingJob();
    await db.pool.query(CLAIM_DUE, [1, 'w1', 60_000]);
    return jobId;
  };
  const completedJob = async (): Promise<string> => {
    const jobId = await runningJob();
    await db.pool.query(MARK_COMPLETED, [
      'w1',
      JSON.stringify([{ job_id: jobId, attempt: 1, result: { ok: true } }]),
    ]);
    return jobId;
  };
  const failedJob = async (): Promise<string> => {
    const jobId = await runningJob();
    await db.pool.query(MARK_FAILED, [jobId, 1, 'w1', 'failed', JSON.stringify({ code: 'x', message: 'y' })]);
    return jobId;
  };

  /** Runs `work` in a transaction and resolves with the error COMMIT (or a statement) raised, if any. */
  const inTransaction = async (
    work: (client: PoolClient) => Promise<unknown>,
  ): Promise<Error | undefined> => {
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await work(client);
      await client.query('COMMIT');
      return undefined;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      return error as Error;
    } finally {
      client.release();
    }
  };

  it('lets the legal transitions through (the control for every refusal below)', async () => {
    expect((await row(await completedJob())).state).toBe('completed');
    expect((await row(await failedJob())).state).toBe('failed');
  });

  describe('1. state only moves forward', () => {
    it('refuses to move a completed job back to pending or change its result (hand-written SQL)', async () => {
      const jobId = await completedJob();
      const before = await row(jobId);
      await refused(`UPDATE jobs SET state = 'pending' WHERE job_id = $1`, [jobId]);
      await refused(
        `UPDATE jobs SET state = 'pending', result = NULL, finished_at = NULL, started_at = NULL, attempts = 0,
                worker_id = NULL, attempt_started_at = NULL, available_at = now() WHERE job_id = $1`,
        [jobId],
      );
      await refused(`UPDATE jobs SET result = '{"ok": false}' WHERE job_id = $1`, [jobId]);
      expect(await row(jobId)).toEqual(before);
    });

    it('refuses running -> pending, pending -> completed, pending -> failed, failed -> running and unknown states', async () => {
      // Created in this order because CLAIM_DUE takes the oldest due job: no other pending job exists yet.
      const failed = await failedJob();
      const running = await runningJob();
      await refused(
        `UPDATE jobs SET state = 'pending', started_at = NULL, attempts = 0, worker_id = NULL, attempt_started_at = NULL,
                lease_expires_at = NULL, available_at = now() WHERE job_id = $1`,
        [running],
      );
      const pending = await pendingJob();
      await refused(
        `UPDATE jobs SET state = 'completed', result = '1', finished_at = now(), started_at = now(), available_at = NULL WHERE job_id = $1`,
        [pending],
      );
      await refused(
        `UPDATE jobs SET state = 'failed', error = '{"code":"a","message":"b"}', finished_at = now(), started_at = now(),
                available_at = NULL WHERE job_id = $1`,
        [pending],
      );
      await refused(
        `UPDATE jobs SET state = 'running', error = NULL, finished_at = NULL, available_at = now() WHERE job_id = $1`,
        [failed],
      );
      await refused(`UPDATE jobs SET state = 'paused' WHERE job_id = $1`, [pending]);
      expect((await row(running)).state).toBe('running');
      expect((await row(pending)).state).toBe('pending');
      expect((await row(failed)).state).toBe('failed');
    });
  });

  describe('2. write-once fields', () => {
    it('refuses changes to job_id, job_type, payload and created_at', async () => {
      const jobId = await runningJob();
      const before = await row(jobId);
      await refused(`UPDATE jobs SET job_id = gen_random_uuid() WHERE job_id = $1`, [jobId]);
      await refused(`UPDATE jobs SET job_type = 'echo' WHERE job_id = $1`, [jobId]);
      await refused(`UPDATE jobs SET payload = '{"x": 1}' WHERE job_id = $1`, [jobId]);
      await refused(`UPDATE jobs SET created_at = now() - interval '1 day' WHERE job_id = $1`, [jobId]);
      expect(await row(jobId)).toEqual(before);
    });

    it('refuses to change started_at once set', async () => {
      const jobId = await runningJob();
      await refused(`UPDATE jobs SET started_at = now() + interval '1 hour' WHERE job_id = $1`, [jobId]);
    });
  });

  describe('3. result, error and timestamps agree with the state', () => {
    it('refuses a pending job with a result, an error, started_at or finished_at', async () => {
      const insert = `INSERT INTO jobs (job_id, job_type, max_attempts, timeout_ms, available_at, result, error, started_at, finished_at)
                      VALUES (gen_random_uuid(), 'noop', 1, 1000, now(), $1, $2, $3, $4)`;
      await refused(insert, ['{"r":1}', null, null, null]);
      await refused(insert, [null, '{"code":"a","message":"b"}', null, null]);
      await refused(insert, [null, null, new Date(), null]);
      await refused(insert, [null, null, null, new Date()]);
      expect((await db.pool.query('SELECT count(*)::int AS n FROM jobs')).rows[0].n).toBe(0);
    });

    it('refuses to create a job that is already running, completed or failed', async () => {
      const insert = `INSERT INTO jobs (job_id, job_type, state, result, error, max_attempts, timeout_ms, attempts,
                        worker_id, attempt_started_at, started_at, finished_at, lease_expires_at, available_at)
                      VALUES (gen_random_uuid(), 'noop', $1, $2, $3, 3, 1000, 1, 'w', now(), now(), $4, $5, NULL)`;
      await refused(insert, ['completed', '{"r":1}', null, new Date(), null]);
      await refused(insert, ['failed', null, '{"code":"a","message":"b"}', new Date(), null]);
      await refused(insert, ['running', null, null, null, new Date(Date.now() + 60_000)]);
      expect((await db.pool.query('SELECT count(*)::int AS n FROM jobs')).rows[0].n).toBe(0);
    });

    it('refuses to complete without a result, to fail without a well-formed error, or to finish without finished_at', async () => {
      const jobId = await runningJob();
      await refused(
        `UPDATE jobs SET state = 'completed', finished_at = now(), lease_expires_at = NULL WHERE job_id = $1`,
        [jobId],
      );
      await refused(
        `UPDATE jobs SET state = 'failed', finished_at = now(), lease_expires_at = NULL WHERE job_id = $1`,
        [jobId],
      );
      await refused(
        `UPDATE jobs SET state = 'failed', error = '"just a string"', finished_at = now(), lease_expires_at = NULL WHERE job_id = $1`,
        [jobId],
      );
      await refused(
        `UPDATE jobs SET state = 'completed', result = '1', lease_expires_at = NULL WHERE job_id = $1`,
        [jobId],
      );
      for (const error of ['{"code":"boom"}', '{"message":"it broke"}']) {
        await refused(MARK_FAILED, [jobId, 1, 'w1', 'failed', error]);
        await refused(SCHEDULE_RETRY, [jobId, 1, 'w1', 'failed', error, 0]);
      }
      await refused(`UPDATE jobs SET finished_at = now() WHERE job_id = $1`, [jobId]);
      await refused(`UPDATE jobs SET result = '1' WHERE job_id = $1`, [jobId]);
      expect((await row(jobId)).state).toBe('running');
    });
  });

  describe('4. a terminal job is never updated again', () => {
    it('refuses any update of a completed or failed job, even of mutable columns', async () => {
      const completed = await completedJob();
      const failed = await failedJob();
      for (const jobId of [completed, failed]) {
        const before = await row(jobId);
        await refused(`UPDATE jobs SET priority = 5 WHERE job_id = $1`, [jobId]);
        await refused(`UPDATE jobs SET updated_at = now() WHERE job_id = $1`, [jobId]);
        await refused(`UPDATE jobs SET max_attempts = 10 WHERE job_id = $1`, [jobId]);
        expect(await row(jobId)).toEqual(before);
      }
      await refused(`UPDATE jobs SET error = '{"code":"other","message":"changed"}' WHERE job_id = $1`, [
        failed,
      ]);
    });
  });

  describe('5. attempts', () => {
    it('refuses to open a second attempt while one is live', async () => {
      const jobId = await runningJob();
      await refused(
        `UPDATE jobs SET attempts = attempts + 1, worker_id = 'w2', attempt_started_at = now(),
                lease_expires_at = now() + interval '1 minute' WHERE job_id = $1`,
        [jobId],
      );
      await refused(`UPDATE jobs SET worker_id = 'w2' WHERE job_id = $1`, [jobId]);
      expect(await row(jobId)).toMatchObject({ attempts: 1, worker_id: 'w1' });
    });

    it('refuses to close a live attempt without completing the job or recording the attempt', async () => {
      const jobId = await runningJob();
      const error = await inTransaction((client) =>
        client.query(`UPDATE jobs SET lease_expires_at = NULL, available_at = now() WHERE job_id = $1`, [
          jobId,
        ]),
      );
      expect(error?.message).toMatch(/closed without an attempt record/);
      expect((await row(jobId)).lease_expires_at).not.toBeNull();
    });

    it('never changes an attempt record once written', async () => {
      const jobId = await runningJob();
      await db.pool.query(SCHEDULE_RETRY, [
        jobId,
        1,
        'w1',
        'failed',
        JSON.stringify({ code: 'x', message: 'y' }),
        0,
      ]);
      await refused(`UPDATE job_attempts SET outcome = 'interrupted' WHERE job_id = $1`, [jobId]);
      await refused(`UPDATE job_attempts SET error = '{"code":"a","message":"b"}' WHERE job_id = $1`, [
        jobId,
      ]);
      // Nor by deleting it and writing another in its place.
      const rewritten = await inTransaction(async (client) => {
        await client.query('DELETE FROM job_attempts WHERE job_id = $1', [jobId]);
        await client.query(
          `INSERT INTO job_attempts (job_id, attempt, worker_id, started_at, finished_at, outcome, error)
           VALUES ($1, 1, 'w1', now(), now(), 'interrupted', '{"code":"a","message":"b"}')`,
          [jobId],
        );
      });
      expect(rewritten?.message).toMatch(/only deleted with its job/);
      const { rows } = await db.pool.query('SELECT outcome FROM job_attempts WHERE job_id = $1', [jobId]);
      expect(rows).toEqual([{ outcome: 'failed' }]);
      // Deleting the job (retention) takes its history with it.
      await db.pool.query('DELETE FROM jobs WHERE job_id = $1', [jobId]);
      expect((await db.pool.query('SELECT count(*)::int AS n FROM job_attempts')).rows[0].n).toBe(0);
    });

    it('refuses records of attempts never opened, of the live attempt, of a success, or with an open outcome', async () => {
      const jobId = await runningJob();
      const record = (attempt: number, outcome: string): Promise<Error | undefined> =>
        inTransaction((client) =>
          client.query(
            `INSERT INTO job_attempts (job_id, attempt, worker_id, started_at, finished_at, outcome, error)
             VALUES ($1, $2, 'w1', now(), now(), $3, '{"code":"a","message":"b"}')`,
            [jobId, attempt, outcome],
          ),
        );
      expect(await record(5, 'failed')).toBeDefined();
      expect(await record(1, 'failed')).toBeDefined();
      expect(await record(1, 'running')).toBeDefined();
      expect(await record(1, 'succeeded')).toBeDefined();
      expect((await db.pool.query('SELECT count(*)::int AS n FROM job_attempts')).rows[0].n).toBe(0);
    });

    it('refuses more failed attempts than max_attempts, while interrupted ones do not count', async () => {
      const jobId = await pendingJob(); // max_attempts 2
      const fail = JSON.stringify({ code: 'x', message: 'y' });
      for (const attempt of [1, 2, 3]) {
        await db.pool.query(CLAIM_DUE, [1, 'w1', 60_000]);
        const outcome = attempt === 2 ? 'interrupted' : 'failed';
        await db.pool.query(SCHEDULE_RETRY, [jobId, attempt, 'w1', outcome, fail, 0]);
      }
      expect(await row(jobId)).toMatchObject({ attempts: 3, failed_attempts: 2, state: 'running' });
      await db.pool.query(CLAIM_DUE, [1, 'w1', 60_000]);
      // A third failure would exceed max_attempts = 2, whether counted on the job or only recorded.
      expect(
        await inTransaction((client) => client.query(SCHEDULE_RETRY, [jobId, 4, 'w1', 'failed', fail, 0])),
      ).toBeDefined();
      const recordOnly = await inTransaction(async (client) => {
        await client.query(
          `UPDATE jobs SET lease_expires_at = NULL, available_at = now() WHERE job_id = $1`,
          [jobId],
        );
        await client.query(
          `INSERT INTO job_attempts (job_id, attempt, worker_id, started_at, finished_at, outcome, error)
           VALUES ($1, 4, 'w1', now(), now(), 'failed', $2)`,
          [jobId, fail],
        );
      });
      expect(recordOnly?.message).toMatch(/failed attempt records but failed_attempts/);
      // Nor can max_attempts be lowered below the failures already recorded.
      await refused(`UPDATE jobs SET max_attempts = 1 WHERE job_id = $1`, [jobId]);
      expect(await row(jobId)).toMatchObject({ attempts: 4, failed_attempts: 2, max_attempts: 2 });
    });
  });
});
