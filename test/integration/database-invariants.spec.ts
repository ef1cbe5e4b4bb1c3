import { randomBytes } from 'node:crypto';
import type { PoolClient } from 'pg';
import {
  CLAIM_DUE,
  INSERT_JOBS,
  MARK_COMPLETED,
  MARK_FAILED,
  SCHEDULE_RETRY,
} from '../../src/persistence/job.sql';
import { insertJob } from '../support/job-factory';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

/** INSERT_JOBS's $1 for `count` plain noop jobs. */
const plainJobs = (count: number): string =>
  JSON.stringify(
    Array.from({ length: count }, () => ({
      job_type: 'noop',
      payload: {},
      priority: 0,
      max_attempts: 3,
      timeout_ms: 1000,
    })),
  );

/**
 * Each invariant of the contract, attacked with hand-written SQL: the database must refuse, and the row
 * must be unchanged afterwards. Jobs are driven into each state with the service's own statements.
 */
describe('invariants the database enforces', () => {
  let db: TestDatabase;

  /** The ids INSERT_JOBS gives the jobs of `jobs` (its $1) from `randomBits` (its $2), in request order. */
  const insertedIds = async (jobs: string, randomBits: Buffer): Promise<string[]> => {
    const { rows } = await db.pool.query<{ jobs: [number, string, unknown][] }>(INSERT_JOBS, [
      jobs,
      randomBits,
    ]);
    return [...rows[0].jobs].sort((a, b) => a[0] - b[0]).map(([, jobId]) => jobId);
  };

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
    await db.pool.query(CLAIM_DUE, [1, 'w1', 60_000, ['noop']]);
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

  /**
   * A pending job whose id is two minutes old, as if created then: the insert rule would refuse such an id
   * today, so it is seeded in a session whose triggers are off (a superuser's privilege).
   */
  const seedOldJob = async (): Promise<string> => {
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL session_replication_role = replica');
      const { rows } = await client.query(
        `INSERT INTO jobs (job_id, job_type, max_attempts, timeout_ms, run_at, available_at)
         VALUES (($1::text || substr(gen_random_uuid()::text, 14))::uuid, 'noop', 2, 60000, now(), now())
         RETURNING job_id`,
        [oldIdPrefix(120_000)],
      );
      await client.query('COMMIT');
      return rows[0].job_id;
    } finally {
      client.release();
    }
  };
  /** The first 13 characters of a UUIDv7 made `ageMs` ago, with its version digit. */
  const oldIdPrefix = (ageMs: number): string => {
    const hex = (Date.now() - ageMs).toString(16).padStart(12, '0');
    return `${hex.slice(0, 8)}-${hex.slice(8)}`;
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

    it('refuses the same changes from a statement that stamps updated_at itself, as the hot-path statements do', async () => {
      const running = await runningJob();
      const completed = await completedJob();
      const before = [await row(running), await row(completed)];
      const stamped = (set: string, jobId: string): Promise<void> =>
        refused(`UPDATE jobs SET ${set}, updated_at = now() WHERE job_id = $1`, [jobId]);
      await stamped(`job_type = 'echo'`, running);
      await stamped(`payload = '{"x": 1}'`, running);
      await stamped(`created_at = now() - interval '1 day'`, running);
      await stamped(`started_at = now() + interval '1 hour'`, running);
      await stamped(`worker_id = 'w2'`, running);
      await stamped(`attempts = attempts + 1, lease_expires_at = now() + interval '1 minute'`, running);
      await stamped(`failed_attempts = failed_attempts + 1`, running);
      await stamped(`state = 'pending'`, running);
      await stamped(`result = '{"other": true}'`, completed);
      await stamped(`state = 'running'`, completed);
      expect([await row(running), await row(completed)]).toEqual(before);
    });

    it('stamps updated_at on an allowed change that does not set it', async () => {
      const jobId = await runningJob();
      const updatedAt = async (): Promise<Date> =>
        (await db.pool.query(`SELECT updated_at FROM jobs WHERE job_id = $1`, [jobId])).rows[0].updated_at;
      // Backdated with the triggers off: the guard would stamp this very update.
      const client = await db.pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('SET LOCAL session_replication_role = replica');
        await client.query(`UPDATE jobs SET updated_at = now() - interval '1 day' WHERE job_id = $1`, [
          jobId,
        ]);
        await client.query('COMMIT');
      } finally {
        client.release();
      }
      expect(Date.now() - (await updatedAt()).getTime()).toBeGreaterThan(3_600_000);
      await db.pool.query(`UPDATE jobs SET max_attempts = 5 WHERE job_id = $1`, [jobId]);
      const { rows } = await db.pool.query(
        `SELECT updated_at > now() - interval '1 minute' AS fresh FROM jobs WHERE job_id = $1`,
        [jobId],
      );
      expect(rows[0].fresh).toBe(true);
    });

    it('refuses to change started_at once set', async () => {
      const jobId = await runningJob();
      await refused(`UPDATE jobs SET started_at = now() + interval '1 hour' WHERE job_id = $1`, [jobId]);
    });

    it('refuses a malformed job_type, callback_url or payload when the job is inserted, and any later change of them', async () => {
      const insert = (jobType: string, callbackUrl: string | null): Promise<unknown> =>
        db.pool.query(
          `INSERT INTO jobs (job_type, max_attempts, timeout_ms, run_at, available_at, callback_url)
           VALUES ($1, 3, 1000, now(), now(), $2)`,
          [jobType, callbackUrl],
        );
      const refusedAs = async (
        jobType: string,
        callbackUrl: string | null,
        column: string,
      ): Promise<void> => {
        const error = await insert(jobType, callbackUrl).then(
          () => undefined,
          (caught: { code?: string; column?: string }) => caught,
        );
        expect(error).toMatchObject({ code: '23514', column });
      };
      await refusedAs('has space', null, 'job_type');
      await refusedAs('-leading-dash', null, 'job_type');
      await refusedAs('x'.repeat(101), null, 'job_type');
      await refusedAs('', null, 'job_type');
      await refusedAs('noop\n', null, 'job_type');
      await refusedAs('caf\u00e9', null, 'job_type');
      await refusedAs(`${'x'.repeat(99)}\u00e9`, null, 'job_type');
      await refusedAs('noop', 'ftp://example.com/hook', 'callback_url');
      await refusedAs('noop', `https://example.com/${'x'.repeat(2048)}`, 'callback_url');
      for (const payload of ['[]', '"text"', '1', 'null']) {
        const error = await db.pool
          .query(
            `INSERT INTO jobs (job_type, payload, max_attempts, timeout_ms, run_at, available_at)
             VALUES ('noop', $1::jsonb, 3, 1000, now(), now())`,
            [payload],
          )
          .then(
            () => undefined,
            (caught: { code?: string; column?: string }) => caught,
          );
        expect(error).toMatchObject({ code: '23514', column: 'payload' });
      }
      const jobCount = async (): Promise<number> =>
        (await db.pool.query('SELECT count(*)::int AS n FROM jobs')).rows[0].n;
      expect(await jobCount()).toBe(0);
      // The controls: the longest job_type and a plain https URL go in; once in, neither changes.
      await insert('x'.repeat(100), null);
      await insert('noop', 'https://example.com/hook');
      const { rows } = await db.pool.query(`SELECT job_id FROM jobs WHERE callback_url IS NOT NULL`);
      await refused(`UPDATE jobs SET job_type = 'has space' WHERE job_id = $1`, [rows[0].job_id]);
      await refused(`UPDATE jobs SET callback_url = 'ftp://example.com' WHERE job_id = $1`, [rows[0].job_id]);
      expect(await jobCount()).toBe(2);
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
    });

    it('deletes attempt records together with their job, once the job may be deleted', async () => {
      const jobId = await seedOldJob(); // max_attempts 2
      await db.pool.query(CLAIM_DUE, [1, 'w1', 60_000, ['noop']]);
      await db.pool.query(SCHEDULE_RETRY, [
        jobId,
        1,
        'w1',
        'failed',
        JSON.stringify({ code: 'x', message: 'y' }),
        0,
      ]);
      await db.pool.query(CLAIM_DUE, [1, 'w1', 60_000, ['noop']]);
      await db.pool.query(MARK_FAILED, [
        jobId,
        2,
        'w1',
        'failed',
        JSON.stringify({ code: 'x', message: 'y' }),
      ]);
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
      const jobId = await insertJob(db.pool, { maxAttempts: 3 });
      const fail = JSON.stringify({ code: 'x', message: 'y' });
      for (const attempt of [1, 2, 3]) {
        await db.pool.query(CLAIM_DUE, [1, 'w1', 60_000, ['noop']]);
        const outcome = attempt === 2 ? 'interrupted' : 'failed';
        await db.pool.query(SCHEDULE_RETRY, [jobId, attempt, 'w1', outcome, fail, 0]);
      }
      expect(await row(jobId)).toMatchObject({ attempts: 3, failed_attempts: 2, state: 'running' });
      await db.pool.query(CLAIM_DUE, [1, 'w1', 60_000, ['noop']]);
      // A third failure while running would leave no attempt (max_attempts = 3), whether counted on the
      // job or only recorded: the last failure fails the job instead.
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
      await db.pool.query(MARK_FAILED, [jobId, 4, 'w1', 'failed', fail]);
      expect(await row(jobId)).toMatchObject({ state: 'failed', failed_attempts: 3 });
    });
  });

  describe('holes an outside review found', () => {
    const count = async (table: string): Promise<number> =>
      (await db.pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n;

    it('refuses to delete a pending or running job: an accepted job is never lost', async () => {
      const running = await runningJob();
      const pending = await pendingJob();
      await refused(`DELETE FROM jobs WHERE job_id = $1`, [pending]);
      await refused(`DELETE FROM jobs WHERE job_id = $1`, [running]);
      await refused(`DELETE FROM jobs`);
      expect(await count('jobs')).toBe(2);
    });

    it('refuses TRUNCATE of the jobs and of the attempt records', async () => {
      const jobId = await runningJob();
      await db.pool.query(SCHEDULE_RETRY, [
        jobId,
        1,
        'w1',
        'failed',
        JSON.stringify({ code: 'x', message: 'y' }),
        0,
      ]);
      await refused(`TRUNCATE job_attempts`);
      await refused(`TRUNCATE jobs CASCADE`);
      await refused(`TRUNCATE jobs, job_attempts`);
      expect(await count('jobs')).toBe(1);
      expect(await count('job_attempts')).toBe(1);
    });

    it('refuses a max_attempts that leaves a live job no attempt (it would stop the rescue sweep)', async () => {
      const jobId = await runningJob(); // max_attempts 2
      await db.pool.query(SCHEDULE_RETRY, [
        jobId,
        1,
        'w1',
        'failed',
        JSON.stringify({ code: 'x', message: 'y' }),
        0,
      ]);
      await refused(`UPDATE jobs SET max_attempts = failed_attempts WHERE job_id = $1`, [jobId]);
      await refused(`UPDATE jobs SET max_attempts = 1 WHERE job_id = $1`, [jobId]);
      // Raising it is fine.
      await db.pool.query(`UPDATE jobs SET max_attempts = 5 WHERE job_id = $1`, [jobId]);
      expect(await row(jobId)).toMatchObject({ max_attempts: 5, failed_attempts: 1 });
    });

    it('refuses an insert that sets created_at, updated_at, started_at, a state, or a claim time apart from run_at', async () => {
      const insert = (columns: string, values: string): Promise<void> =>
        refused(
          `INSERT INTO jobs (job_type, max_attempts, timeout_ms, run_at, available_at${columns})
           VALUES ('noop', 3, 1000, now(), now()${values})`,
        );
      await insert(', created_at', `, now() - interval '1 day'`);
      await insert(', updated_at', `, now() - interval '1 day'`);
      await insert(', started_at', ', now()');
      await insert(', state, started_at', `, 'running', now()`);
      await refused(
        `INSERT INTO jobs (job_type, max_attempts, timeout_ms, run_at, available_at)
         VALUES ('noop', 3, 1000, now() + interval '1 hour', now())`,
      );
      expect(await count('jobs')).toBe(0);
      // The control: a plain insert goes through and gets a fresh UUIDv7 from the database.
      const { rows } = await db.pool.query(
        `INSERT INTO jobs (job_type, max_attempts, timeout_ms, run_at, available_at)
         VALUES ('noop', 3, 1000, now(), now()) RETURNING job_id`,
      );
      expect(rows[0].job_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    });

    it('refuses a whole multi-row insert when one of its rows is unlike a new job, naming that row', async () => {
      const badId = '0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b';
      const insert = db.pool.query(
        `INSERT INTO jobs (job_id, job_type, state, max_attempts, timeout_ms, run_at, available_at)
         VALUES (job_id_v7(), 'noop', 'pending', 3, 1000, now(), now()),
                (job_id_v7(), 'noop', 'pending', 3, 1000, now(), now()),
                ($1, 'noop', 'pending', 3, 1000, now(), now())`,
        [badId],
      );
      await expect(insert).rejects.toMatchObject({
        code: '23514',
        message: expect.stringContaining(`job ${badId}: a job id is a UUIDv7 of this minute`),
      });
      await expect(
        db.pool.query(
          `INSERT INTO jobs (job_type, max_attempts, timeout_ms, run_at, available_at, updated_at)
           SELECT 'noop', 3, 1000, now(), now(), CASE WHEN n = 3 THEN now() - interval '1 day' ELSE now() END
           FROM generate_series(1, 4) AS n`,
        ),
      ).rejects.toMatchObject({
        code: '23514',
        message: expect.stringContaining('a job is created pending'),
      });
      expect(await count('jobs')).toBe(0);
    });

    it('never lets the id of a deleted job be inserted again, with another payload', async () => {
      const jobId = await seedOldJob();
      await db.pool.query(CLAIM_DUE, [1, 'w1', 60_000, ['noop']]);
      await db.pool.query(MARK_COMPLETED, ['w1', JSON.stringify([{ job_id: jobId, attempt: 1, result: 1 }])]);
      await db.pool.query('DELETE FROM jobs WHERE job_id = $1', [jobId]);
      await refused(
        `INSERT INTO jobs (job_id, job_type, payload, max_attempts, timeout_ms, run_at, available_at)
         VALUES ($1, 'noop', '{"other": true}', 3, 1000, now(), now())`,
        [jobId],
      );
      // Nor an id that is not a UUIDv7, or one of another time.
      await refused(
        `INSERT INTO jobs (job_id, job_type, max_attempts, timeout_ms, run_at, available_at)
         VALUES (gen_random_uuid(), 'noop', 3, 1000, now(), now())`,
      );
      expect(await count('jobs')).toBe(0);
    });

    it('takes only a UUIDv7 id of this minute, and makes such ids itself, in order within a batch', async () => {
      /** A UUIDv7-shaped id whose time is `offsetMs` from now and whose version digit is `version`. */
      const idAt = (offsetMs: number, version = '7'): string => {
        const hex = (Date.now() + offsetMs).toString(16).padStart(12, '0');
        return `${hex.slice(0, 8)}-${hex.slice(8)}-${version}abc-8def-0123456789ab`;
      };
      const insertWithId = (jobId: string) =>
        `INSERT INTO jobs (job_id, job_type, max_attempts, timeout_ms, run_at, available_at)
         VALUES ('${jobId}', 'noop', 3, 1000, now(), now())`;
      await refused(insertWithId(idAt(-90_000)));
      await refused(insertWithId(idAt(90_000)));
      await refused(insertWithId(idAt(0, '4')));
      expect(await count('jobs')).toBe(0);
      await db.pool.query(insertWithId(idAt(-30_000)));
      await db.pool.query(insertWithId(idAt(30_000)));
      expect(await count('jobs')).toBe(2);

      const before = Date.now();
      const ids = await insertedIds(plainJobs(500), randomBytes(8 * 500));
      const after = Date.now();
      for (const id of ids) {
        expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        const ms = parseInt(id.replace('-', '').slice(0, 12), 16);
        expect(ms).toBeGreaterThanOrEqual(before - 1_000);
        expect(ms).toBeLessThanOrEqual(after + 1_000);
      }
      expect(new Set(ids).size).toBe(500);
      // The time fields (ms, version, sub-ms) never go back within a batch; two ids of the same microsecond
      // are ordered by their random bits only, so the whole id need not be.
      const times = ids.map((id) => id.slice(0, 18));
      expect([...times].sort()).toEqual(times);
    });

    it("takes a batch's random id bits from the bytes given, the variant written over the first two", async () => {
      const given = Buffer.from('ffffffffffffffff' + '0000000000000000' + '0123456789abcdef', 'hex');
      const tails = (await insertedIds(plainJobs(3), given)).map((id) => id.replace(/-/g, '').slice(16));
      expect(tails).toEqual(['bfffffffffffffff', '8000000000000000', '8123456789abcdef']);
      // Too few bytes for the jobs: no id can be made, and nothing is inserted.
      await expect(db.pool.query(INSERT_JOBS, [plainJobs(3), randomBytes(8 * 3 - 1)])).rejects.toMatchObject({
        code: '22P02',
      });
      expect(await count('jobs')).toBe(3);
    });

    it('refuses to delete a terminal job whose id is under a minute old (so that its id cannot come back)', async () => {
      const jobId = await completedJob();
      await refused(`DELETE FROM jobs WHERE job_id = $1`, [jobId]);
      expect(await count('jobs')).toBe(1);
    });

    it('refuses to date a new attempt in the future', async () => {
      const jobId = await pendingJob();
      await refused(
        `UPDATE jobs SET state = 'running', attempts = 1, started_at = now(), worker_id = 'w',
                attempt_started_at = now() + interval '1 hour', lease_expires_at = now() + interval '2 hours',
                available_at = NULL WHERE job_id = $1`,
        [jobId],
      );
      expect((await row(jobId)).state).toBe('pending');
    });

    it("refuses to delete, truncate or date in the future the rescue sweep's bookkeeping", async () => {
      await refused(`DELETE FROM rescue_sweeps`);
      await refused(`TRUNCATE rescue_sweeps`);
      await refused(`UPDATE rescue_sweeps SET last_swept_at = 'infinity'`);
      await refused(`UPDATE rescue_sweeps SET last_swept_at = now() + interval '1 day'`);
      expect(await count('rescue_sweeps')).toBe(1);
    });
  });
});
