import type { Pool } from 'pg';
import { v7 as uuidv7 } from 'uuid';
import {
  CLAIM_DUE,
  MARK_COMPLETED,
  MARK_FAILED,
  RENEW_LEASES,
  SCHEDULE_RETRY,
} from '../../src/persistence/job.sql';
import { insertJob } from '../support/job-factory';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

/**
 * The invariants of SPEC.md "Invariants the database itself enforces", each proved by trying to break it
 * with raw SQL and seeing PostgreSQL refuse, next to a legal statement the database accepts (so the test
 * would fail if the database refused everything). Jobs are driven into their states by the service's own
 * statements (job.sql.ts); only the attack is hand-written.
 */

type Row = Record<string, any>;
type Statement = [sql: string, params?: unknown[]];

const LEASE_MS = 60_000;
const WORKER = 'worker-a';
const boom = { code: 'boom', message: 'it broke' };

// Messages of the constraints and triggers in migrations/1764300000000-create-jobs.ts.
const TERMINAL_FROZEN = /can never change again/;
const BAD_MOVE = /cannot move from/;
const IDENTITY_FIXED = /job_id, job_type, payload, created_at and the idempotency key never change/;
const ATTEMPT_BY_CLAIM_ONLY = /an attempt opens only by a claim/;
const ATTEMPT_BELONGS_TO_WORKER = /belongs to its worker; only a new claim changes it/;
const RECORD_MISSING = /closed without an attempt record/;
const RECORD_FROZEN = /is closed and never changes/;

describe('invariants the database itself enforces', () => {
  let db: TestDatabase;
  let pool: Pool;

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = db.pool;
  });
  beforeEach(() => db.reset());
  afterAll(() => db.drop());

  const row = async (jobId: string): Promise<Row> =>
    (await pool.query('SELECT * FROM jobs WHERE job_id = $1', [jobId])).rows[0];
  const records = async (jobId: string): Promise<Row[]> =>
    (await pool.query('SELECT * FROM job_attempts WHERE job_id = $1 ORDER BY attempt', [jobId])).rows;

  /** Claims the (only) due job for `workerId` with the service's claim; returns the claimed rows. */
  const claim = async (workerId = WORKER): Promise<Row[]> =>
    (await pool.query(CLAIM_DUE, [1, workerId, LEASE_MS])).rows;

  /** A pending job claimed once: running, attempt 1 live. */
  const runningJob = async (seed: { maxAttempts?: number } = {}): Promise<string> => {
    const jobId = await insertJob(pool, seed);
    const claimed = await claim();
    expect(claimed.map((job) => job.job_id)).toEqual([jobId]);
    return jobId;
  };

  const complete = async (jobId: string, attempt: number, result: unknown): Promise<void> => {
    const done = await pool.query(MARK_COMPLETED, [
      WORKER,
      JSON.stringify([{ job_id: jobId, attempt, result }]),
    ]);
    expect(done.rowCount).toBe(1);
  };

  /** Closes the live attempt with `outcome` and makes the job claimable after `afterMs`. */
  const retry = async (
    jobId: string,
    attempt: number,
    outcome = 'failed',
    counts = 1,
    afterMs = 0,
  ): Promise<void> => {
    const closed = await pool.query(SCHEDULE_RETRY, [
      jobId,
      attempt,
      WORKER,
      outcome,
      JSON.stringify(boom),
      afterMs,
      counts,
    ]);
    expect(closed.rowCount).toBe(1);
  };

  const fail = async (jobId: string, attempt: number, outcome = 'failed'): Promise<void> => {
    const closed = await pool.query(MARK_FAILED, [jobId, attempt, WORKER, outcome, JSON.stringify(boom)]);
    expect(closed.rowCount).toBe(1);
  };

  const completedJob = async (result: unknown = { answer: 42 }): Promise<string> => {
    const jobId = await runningJob();
    await complete(jobId, 1, result);
    return jobId;
  };

  const failedJob = async (): Promise<string> => {
    const jobId = await runningJob();
    await fail(jobId, 1);
    return jobId;
  };

  /** Running, attempt 1 closed as failed, waiting for its retry in a minute: no live attempt. */
  const waitingJob = async (): Promise<string> => {
    const jobId = await runningJob();
    await retry(jobId, 1, 'failed', 1, 60_000);
    return jobId;
  };

  /** Runs `statement` and expects PostgreSQL to refuse it, leaving the job row and its records as they were. */
  const expectRefused = async (jobId: string, [sql, params]: Statement, message: RegExp): Promise<void> => {
    const before = { job: await row(jobId), records: await records(jobId) };
    await expect(pool.query(sql, params)).rejects.toThrow(message);
    expect({ job: await row(jobId), records: await records(jobId) }).toEqual(before);
  };

  /**
   * Runs `statements` in one explicit transaction; each statement is accepted, and the deferred constraint
   * triggers refuse the COMMIT. Nothing of the transaction remains.
   */
  const expectCommitRefused = async (jobId: string, statements: Statement[], message: RegExp) => {
    const before = { job: await row(jobId), records: await records(jobId) };
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      for (const [sql, params] of statements) await client.query(sql, params);
      await expect(client.query('COMMIT')).rejects.toThrow(message);
    } finally {
      await client.query('ROLLBACK'); // no-op after the refused COMMIT; cleans up if a statement threw
      client.release();
    }
    expect({ job: await row(jobId), records: await records(jobId) }).toEqual(before);
  };

  /** Runs `statements` in one explicit transaction and expects the COMMIT to succeed. */
  const commit = async (statements: Statement[]): Promise<void> => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      for (const [sql, params] of statements) await client.query(sql, params);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK');
      throw error;
    } finally {
      client.release();
    }
  };

  const insertRecord = (jobId: string, attempt: number, outcome = 'failed'): Statement => [
    `INSERT INTO job_attempts (job_id, attempt, worker_id, started_at, finished_at, outcome, error)
     VALUES ($1, $2, $3, now() - interval '1 second', now(), $4, $5::jsonb)`,
    [jobId, attempt, WORKER, outcome, JSON.stringify(boom)],
  ];

  describe('1. state only moves pending -> running -> completed | failed', () => {
    it('moves a job pending -> running -> completed and pending -> running -> failed with the real statements', async () => {
      const completedId = await insertJob(pool);
      expect((await row(completedId)).state).toBe('pending');
      await claim();
      expect((await row(completedId)).state).toBe('running');
      await complete(completedId, 1, { ok: true });
      expect(await row(completedId)).toMatchObject({ state: 'completed', result: { ok: true } });

      const failedId = await runningJob();
      await fail(failedId, 1);
      expect(await row(failedId)).toMatchObject({ state: 'failed', error: boom });
    });

    it('refuses to move a completed job back to pending', async () => {
      const jobId = await completedJob();
      // Every column set as a pending job has it, so only the transition itself is at fault.
      await expectRefused(
        jobId,
        [
          `UPDATE jobs SET state = 'pending', result = NULL, finished_at = NULL, started_at = NULL, attempts = 0,
             worker_id = NULL, attempt_started_at = NULL, lease_expires_at = NULL, available_at = now()
           WHERE job_id = $1`,
          [jobId],
        ],
        TERMINAL_FROZEN,
      );
    });

    it('refuses to move a completed job back to running', async () => {
      const jobId = await completedJob();
      await expectRefused(
        jobId,
        [
          `UPDATE jobs SET state = 'running', result = NULL, finished_at = NULL, available_at = now()
           WHERE job_id = $1`,
          [jobId],
        ],
        TERMINAL_FROZEN,
      );
    });

    it('refuses to move a failed job back to running', async () => {
      const jobId = await failedJob();
      await expectRefused(
        jobId,
        [
          `UPDATE jobs SET state = 'running', error = NULL, finished_at = NULL, available_at = now()
           WHERE job_id = $1`,
          [jobId],
        ],
        TERMINAL_FROZEN,
      );
    });

    it('refuses to move a running job back to pending', async () => {
      const jobId = await waitingJob();
      await expectRefused(
        jobId,
        [
          `UPDATE jobs SET state = 'pending', started_at = NULL, attempts = 0, failed_attempts = 0,
             worker_id = NULL, attempt_started_at = NULL
           WHERE job_id = $1`,
          [jobId],
        ],
        BAD_MOVE,
      );
    });

    it('refuses to move a job with a live attempt back to pending', async () => {
      const jobId = await runningJob();
      await expectRefused(
        jobId,
        [
          `UPDATE jobs SET state = 'pending', started_at = NULL, attempts = 0, worker_id = NULL,
             attempt_started_at = NULL, lease_expires_at = NULL, available_at = now()
           WHERE job_id = $1`,
          [jobId],
        ],
        BAD_MOVE,
      );
    });

    it('refuses to complete a pending job directly, without running it', async () => {
      const jobId = await insertJob(pool);
      await expectRefused(
        jobId,
        [
          `UPDATE jobs SET state = 'completed', result = $2::jsonb, finished_at = now(), started_at = now(),
             attempts = 1, worker_id = $3, attempt_started_at = now(), available_at = NULL
           WHERE job_id = $1`,
          [jobId, JSON.stringify({ forged: true }), WORKER],
        ],
        BAD_MOVE,
      );
    });

    it('refuses to fail a pending job directly, without running it', async () => {
      const jobId = await insertJob(pool);
      await expectRefused(
        jobId,
        [
          `UPDATE jobs SET state = 'failed', error = $2::jsonb, finished_at = now(), started_at = now(),
             attempts = 1, worker_id = $3, attempt_started_at = now(), available_at = NULL
           WHERE job_id = $1`,
          [jobId, JSON.stringify(boom), WORKER],
        ],
        BAD_MOVE,
      );
    });

    it('refuses to complete a running job that has no live attempt', async () => {
      const jobId = await waitingJob();
      await expectRefused(
        jobId,
        [
          `UPDATE jobs SET state = 'completed', result = $2::jsonb, finished_at = now(), available_at = NULL
           WHERE job_id = $1`,
          [jobId, JSON.stringify({ forged: true })],
        ],
        /only a live attempt can complete a job/,
      );
    });

    it('refuses a state outside pending, running, completed and failed', async () => {
      const jobId = await insertJob(pool);
      await expectRefused(
        jobId,
        [`UPDATE jobs SET state = 'cancelled' WHERE job_id = $1`, [jobId]],
        BAD_MOVE,
      );
      const running = await waitingJob();
      await expectRefused(
        running,
        [`UPDATE jobs SET state = 'paused' WHERE job_id = $1`, [running]],
        BAD_MOVE,
      );

      const newId = uuidv7();
      await expect(
        pool.query(
          `INSERT INTO jobs (job_id, job_type, state, max_attempts, timeout_ms, available_at)
           VALUES ($1, 'noop', 'cancelled', 3, 1000, now())`,
          [newId],
        ),
      ).rejects.toThrow(/jobs_state_known/);
      expect(await row(newId)).toBeUndefined();
    });

    it('refuses to insert a job that is already completed, never having been pending or running', async () => {
      // The state machine starts at pending: a job born completed skipped pending -> running -> completed.
      const jobId = uuidv7();
      await expect(
        pool.query(
          `INSERT INTO jobs (job_id, job_type, state, result, max_attempts, timeout_ms, attempts, worker_id,
             attempt_started_at, started_at, finished_at)
           VALUES ($1, 'noop', 'completed', $2::jsonb, 3, 1000, 1, $3, now(), now(), now())`,
          [jobId, JSON.stringify({ forged: true }), WORKER],
        ),
      ).rejects.toThrow();
      expect(await row(jobId)).toBeUndefined();
    });
  });

  describe('2. identity never changes; started_at and finished_at never change once set', () => {
    it('accepts the legal updates of a live job: lease renewal and a new priority', async () => {
      const jobId = await runningJob();
      const before = await row(jobId);
      const renewed = await pool.query(RENEW_LEASES, [
        WORKER,
        JSON.stringify([{ job_id: jobId, attempt: 1 }]),
        LEASE_MS * 2,
      ]);
      expect(renewed.rowCount).toBe(1);
      await pool.query('UPDATE jobs SET priority = 7 WHERE job_id = $1', [jobId]);
      const after = await row(jobId);
      expect(after.priority).toBe(7);
      expect(after.lease_expires_at.getTime()).toBeGreaterThan(before.lease_expires_at.getTime());
      expect(after.started_at).toEqual(before.started_at);
    });

    it('refuses to change job_id', async () => {
      const jobId = await runningJob();
      await expectRefused(
        jobId,
        ['UPDATE jobs SET job_id = $2 WHERE job_id = $1', [jobId, uuidv7()]],
        IDENTITY_FIXED,
      );
    });

    it('refuses to change job_type', async () => {
      const jobId = await runningJob();
      await expectRefused(
        jobId,
        [`UPDATE jobs SET job_type = 'other' WHERE job_id = $1`, [jobId]],
        IDENTITY_FIXED,
      );
    });

    it('refuses to change payload', async () => {
      const jobId = await runningJob();
      await expectRefused(
        jobId,
        [
          'UPDATE jobs SET payload = $2::jsonb WHERE job_id = $1',
          [jobId, JSON.stringify({ tampered: true })],
        ],
        IDENTITY_FIXED,
      );
    });

    it('refuses to change created_at', async () => {
      const jobId = await insertJob(pool);
      await expectRefused(
        jobId,
        [`UPDATE jobs SET created_at = created_at - interval '1 day' WHERE job_id = $1`, [jobId]],
        IDENTITY_FIXED,
      );
    });

    it('refuses to change started_at once set, even with a later claim', async () => {
      const jobId = await runningJob();
      await expectRefused(
        jobId,
        [`UPDATE jobs SET started_at = started_at + interval '1 second' WHERE job_id = $1`, [jobId]],
        /started_at never changes once set/,
      );
      // A second claim keeps the first started_at (coalesce in CLAIM_DUE); a claim that overwrote it is refused.
      const waiting = await waitingJob();
      await expectRefused(
        waiting,
        [
          `UPDATE jobs SET attempts = attempts + 1, worker_id = $2, attempt_started_at = now(),
             lease_expires_at = now() + interval '1 minute', available_at = NULL, started_at = now() + interval '1 second'
           WHERE job_id = $1`,
          [waiting, 'worker-b'],
        ],
        /started_at never changes once set/,
      );
    });

    it('refuses to change finished_at of a completed or a failed job', async () => {
      const completed = await completedJob();
      await expectRefused(
        completed,
        [`UPDATE jobs SET finished_at = finished_at + interval '1 second' WHERE job_id = $1`, [completed]],
        TERMINAL_FROZEN,
      );
      const failed = await failedJob();
      await expectRefused(
        failed,
        [`UPDATE jobs SET finished_at = finished_at - interval '1 second' WHERE job_id = $1`, [failed]],
        TERMINAL_FROZEN,
      );
    });
  });

  describe('3. result, error, finished_at and started_at agree with the state', () => {
    const insertPending = (columns: string, values: string, params: unknown[]): Statement => [
      `INSERT INTO jobs (job_id, job_type, max_attempts, timeout_ms, available_at${columns})
       VALUES ($1, 'noop', 3, 1000, now()${values})`,
      params,
    ];

    it('accepts a pending job with none of them set, and a completed job with a JSON null result', async () => {
      const jobId = uuidv7();
      await pool.query(...insertPending('', '', [jobId]));
      expect(await row(jobId)).toMatchObject({
        state: 'pending',
        result: null,
        error: null,
        started_at: null,
        finished_at: null,
      });
      await claim();
      await complete(jobId, 1, null);
      const completed = await pool.query(
        'SELECT result IS NOT NULL AS has_result FROM jobs WHERE job_id = $1',
        [jobId],
      );
      expect(completed.rows).toEqual([{ has_result: true }]);
    });

    it.each([
      ['a result', ', result', ', $2::jsonb', JSON.stringify({ early: true }), /jobs_result_iff_completed/],
      ['an error', ', error', ', $2::jsonb', JSON.stringify(boom), /jobs_error_iff_failed/],
      ['finished_at', ', finished_at', ', $2::timestamptz', new Date(), /jobs_finished_at_iff_terminal/],
      ['started_at', ', started_at', ', $2::timestamptz', new Date(), /jobs_started_at_iff_not_pending/],
    ])('refuses to insert a pending job with %s', async (_what, columns, values, value, message) => {
      const jobId = uuidv7();
      await expect(pool.query(...insertPending(columns, values, [jobId, value]))).rejects.toThrow(message);
      expect(await row(jobId)).toBeUndefined();
    });

    it('refuses to complete a job without a result', async () => {
      const jobId = await runningJob();
      await expectRefused(
        jobId,
        [
          `UPDATE jobs SET state = 'completed', finished_at = now(), lease_expires_at = NULL WHERE job_id = $1`,
          [jobId],
        ],
        /jobs_result_iff_completed/,
      );
    });

    it('refuses to complete a job without finished_at', async () => {
      const jobId = await runningJob();
      await expectRefused(
        jobId,
        [
          `UPDATE jobs SET state = 'completed', result = '{}'::jsonb, lease_expires_at = NULL WHERE job_id = $1`,
          [jobId],
        ],
        /jobs_finished_at_iff_terminal/,
      );
    });

    it('refuses to complete a job that also carries an error', async () => {
      const jobId = await runningJob();
      await expectRefused(
        jobId,
        [
          `UPDATE jobs SET state = 'completed', result = '{}'::jsonb, error = $2::jsonb, finished_at = now(),
             lease_expires_at = NULL
           WHERE job_id = $1`,
          [jobId, JSON.stringify(boom)],
        ],
        /jobs_error_iff_failed/,
      );
    });

    it('refuses to fail a job without an error', async () => {
      const jobId = await runningJob();
      await expectRefused(
        jobId,
        [
          `UPDATE jobs SET state = 'failed', finished_at = now(), lease_expires_at = NULL,
             failed_attempts = failed_attempts + 1
           WHERE job_id = $1`,
          [jobId],
        ],
        /jobs_error_iff_failed/,
      );
    });

    it('refuses to fail a job that also carries a result', async () => {
      const jobId = await runningJob();
      await expectRefused(
        jobId,
        [
          `UPDATE jobs SET state = 'failed', error = $2::jsonb, result = '{}'::jsonb, finished_at = now(),
             lease_expires_at = NULL
           WHERE job_id = $1`,
          [jobId, JSON.stringify(boom)],
        ],
        /jobs_result_iff_completed/,
      );
    });

    it.each([
      ['a string', 'boom'],
      ['an array', [boom]],
      ['an object without a message', { code: 'boom' }],
      ['an object without a code', { message: 'it broke' }],
      ['a numeric code', { code: 500, message: 'it broke' }],
      ['a null message', { code: 'boom', message: null }],
    ])('refuses to fail a job with an error that is %s', async (_what, error) => {
      const jobId = await runningJob();
      await expectRefused(
        jobId,
        [MARK_FAILED, [jobId, 1, WORKER, 'failed', JSON.stringify(error)]],
        /jobs_error_shape/,
      );
    });

    it('refuses to set finished_at on a running job', async () => {
      const jobId = await runningJob();
      await expectRefused(
        jobId,
        ['UPDATE jobs SET finished_at = now() WHERE job_id = $1', [jobId]],
        /jobs_finished_at_iff_terminal/,
      );
      const waiting = await waitingJob();
      await expectRefused(
        waiting,
        ['UPDATE jobs SET finished_at = now() WHERE job_id = $1', [waiting]],
        /jobs_finished_at_iff_terminal/,
      );
    });

    it('refuses a claim that leaves started_at unset', async () => {
      const jobId = await insertJob(pool);
      await expectRefused(
        jobId,
        [
          `UPDATE jobs SET state = 'running', attempts = 1, worker_id = $2, attempt_started_at = now(),
             lease_expires_at = now() + interval '1 minute', available_at = NULL
           WHERE job_id = $1`,
          [jobId, WORKER],
        ],
        /jobs_started_at_iff_not_pending/,
      );
    });
  });

  describe('4. a terminal job is never updated again', () => {
    it('hand-written SQL cannot move a completed job back to pending or change its result', async () => {
      const jobId = await completedJob({ answer: 42 });
      const completed = await row(jobId);

      await expectRefused(
        jobId,
        [
          `UPDATE jobs SET state = 'pending', result = NULL, finished_at = NULL, started_at = NULL, attempts = 0,
             worker_id = NULL, attempt_started_at = NULL, available_at = now()
           WHERE job_id = $1`,
          [jobId],
        ],
        TERMINAL_FROZEN,
      );
      await expectRefused(
        jobId,
        ['UPDATE jobs SET result = $2::jsonb WHERE job_id = $1', [jobId, JSON.stringify({ answer: 41 })]],
        TERMINAL_FROZEN,
      );
      expect(await row(jobId)).toEqual(completed);
      expect(completed).toMatchObject({ state: 'completed', result: { answer: 42 } });
    });

    it('accepts a new priority and updated_at on a job that is not terminal', async () => {
      const jobId = await waitingJob();
      await pool.query(`UPDATE jobs SET priority = 5, updated_at = now() WHERE job_id = $1`, [jobId]);
      expect((await row(jobId)).priority).toBe(5);
    });

    it.each([
      ['its result', 'result = $2::jsonb', JSON.stringify({ answer: 0 })],
      ['its result to JSON null', 'result = $2::jsonb', 'null'],
      ['its priority', 'priority = $2', 10],
      ['updated_at', 'updated_at = $2', new Date()],
      ['run_at', 'run_at = $2', new Date()],
      ['its lease', `lease_expires_at = now() + $2 * interval '1 millisecond'`, LEASE_MS],
      ['its worker', 'worker_id = $2', 'worker-b'],
      ['max_attempts', 'max_attempts = $2', 10],
    ])('refuses to change %s on a completed job', async (_what, assignment, value) => {
      const jobId = await completedJob();
      await expectRefused(
        jobId,
        [`UPDATE jobs SET ${assignment} WHERE job_id = $1`, [jobId, value]],
        TERMINAL_FROZEN,
      );
    });

    it('refuses to reopen a completed job with a new claim', async () => {
      const jobId = await completedJob();
      await expectRefused(
        jobId,
        [
          `UPDATE jobs SET attempts = attempts + 1, worker_id = $2, attempt_started_at = now(),
             lease_expires_at = now() + interval '1 minute'
           WHERE job_id = $1`,
          [jobId, 'worker-b'],
        ],
        TERMINAL_FROZEN,
      );
      expect(await claim()).toEqual([]);
    });

    it.each([
      ['its error', 'error = $2::jsonb', JSON.stringify({ code: 'other', message: 'rewritten' })],
      ['its priority', 'priority = $2', 10],
      ['updated_at', 'updated_at = $2', new Date()],
      ['available_at, to be claimed again', 'available_at = $2', new Date()],
    ])('refuses to change %s on a failed job', async (_what, assignment, value) => {
      const jobId = await failedJob();
      await expectRefused(
        jobId,
        [`UPDATE jobs SET ${assignment} WHERE job_id = $1`, [jobId, value]],
        TERMINAL_FROZEN,
      );
    });
  });

  describe('5. attempts: one live at a time, records frozen, failures within max_attempts', () => {
    it('opens the next attempt only by a claim once the previous one closed', async () => {
      const jobId = await runningJob();
      expect(await claim('worker-b')).toEqual([]); // not claimable while attempt 1 is live
      await retry(jobId, 1);
      const [second] = await claim('worker-b');
      expect(second).toMatchObject({ job_id: jobId, attempts: 2 });
      expect(await row(jobId)).toMatchObject({ attempts: 2, worker_id: 'worker-b', state: 'running' });
    });

    it('refuses to open a new attempt while one is live', async () => {
      const jobId = await runningJob();
      await expectRefused(
        jobId,
        [
          `UPDATE jobs SET attempts = attempts + 1, worker_id = $2, attempt_started_at = now(),
             lease_expires_at = now() + interval '1 minute'
           WHERE job_id = $1`,
          [jobId, 'worker-b'],
        ],
        ATTEMPT_BY_CLAIM_ONLY,
      );
    });

    it('refuses to make a job with a live attempt claimable', async () => {
      const jobId = await runningJob();
      await expectRefused(
        jobId,
        ['UPDATE jobs SET available_at = now() WHERE job_id = $1', [jobId]],
        /jobs_claimable_iff_waiting/,
      );
    });

    it('refuses to hand a live attempt to another worker', async () => {
      const jobId = await runningJob();
      await expectRefused(
        jobId,
        [`UPDATE jobs SET worker_id = $2, attempt_started_at = now() WHERE job_id = $1`, [jobId, 'worker-b']],
        ATTEMPT_BELONGS_TO_WORKER,
      );
    });

    it('refuses to revive a closed attempt with a new lease', async () => {
      const jobId = await waitingJob();
      await expectRefused(
        jobId,
        [
          `UPDATE jobs SET lease_expires_at = now() + interval '1 minute', available_at = NULL WHERE job_id = $1`,
          [jobId],
        ],
        ATTEMPT_BELONGS_TO_WORKER,
      );
    });

    it.each([
      ['skips an attempt number', 'attempts + 2'],
      ['lowers the attempt count', 'attempts - 1'],
    ])('refuses a claim that %s', async (_what, attempts) => {
      const jobId = await waitingJob();
      await expectRefused(
        jobId,
        [
          `UPDATE jobs SET attempts = ${attempts}, worker_id = $2, attempt_started_at = now(),
             lease_expires_at = now() + interval '1 minute', available_at = NULL
           WHERE job_id = $1`,
          [jobId, 'worker-b'],
        ],
        ATTEMPT_BY_CLAIM_ONLY,
      );
    });

    it.each([
      ['outcome', `outcome = 'interrupted'`],
      ['error', `error = '{"code": "other", "message": "rewritten"}'::jsonb`],
      ['finished_at', `finished_at = finished_at + interval '1 second'`],
    ])("refuses to change an attempt record's %s", async (_what, assignment) => {
      const jobId = await waitingJob();
      await expectRefused(
        jobId,
        [`UPDATE job_attempts SET ${assignment} WHERE job_id = $1 AND attempt = 1`, [jobId]],
        RECORD_FROZEN,
      );
      expect((await records(jobId))[0]).toMatchObject({ outcome: 'failed', error: boom });
    });

    it("refuses to rewrite an attempt record's outcome by deleting and re-inserting it", async () => {
      const jobId = await waitingJob();
      const before = await records(jobId);
      expect(before).toEqual([expect.objectContaining({ attempt: 1, outcome: 'failed' })]);
      const client = await pool.connect();
      let rewritten: unknown;
      try {
        await client.query('BEGIN');
        await client.query('DELETE FROM job_attempts WHERE job_id = $1 AND attempt = 1', [jobId]);
        await client.query(...insertRecord(jobId, 1, 'interrupted'));
        await client.query('COMMIT');
        rewritten = await records(jobId);
      } catch (error) {
        await client.query('ROLLBACK');
        rewritten = error;
      } finally {
        client.release();
      }
      // Either step may be refused, but the attempt must still read as it closed: failed.
      expect(await records(jobId)).toEqual(before);
      expect(rewritten).toBeInstanceOf(Error);
    });

    it('refuses an attempt record for an attempt that was never opened', async () => {
      const jobId = await waitingJob();
      await expectCommitRefused(jobId, [insertRecord(jobId, 2)], /attempt 2 was never opened/);
      const pending = await insertJob(pool);
      await expectCommitRefused(pending, [insertRecord(pending, 1)], /attempt 1 was never opened/);
    });

    it('refuses an attempt record for the live attempt', async () => {
      const jobId = await runningJob();
      await expectCommitRefused(jobId, [insertRecord(jobId, 1)], /attempt 1 is live or succeeded/);
    });

    it('refuses an attempt record for the attempt that completed the job', async () => {
      const jobId = await completedJob();
      await expectCommitRefused(jobId, [insertRecord(jobId, 1)], /attempt 1 is live or succeeded/);
    });

    it.each(['running', 'succeeded', 'cancelled'])(
      'refuses an attempt record with outcome %s',
      async (outcome) => {
        const jobId = await runningJob();
        await retry(jobId, 1, 'interrupted', 0, 0);
        await claim();
        // Attempt 2 closes legally in the same statement; only the record's outcome is wrong.
        await expectRefused(
          jobId,
          [SCHEDULE_RETRY, [jobId, 2, WORKER, outcome, JSON.stringify(boom), 0, 0]],
          /job_attempts_outcome_closed/,
        );
      },
    );

    it('refuses an attempt record whose error is not an object with string code and message', async () => {
      const jobId = await runningJob();
      await expectRefused(
        jobId,
        [SCHEDULE_RETRY, [jobId, 1, WORKER, 'failed', JSON.stringify({ code: 1 }), 0, 1]],
        /job_attempts_error_shape/,
      );
    });

    it('accepts closing a live attempt with its record in one transaction, in either order', async () => {
      const recordFirst = await runningJob();
      await commit([
        insertRecord(recordFirst, 1, 'timed_out'),
        [
          `UPDATE jobs SET lease_expires_at = NULL, available_at = now(), failed_attempts = failed_attempts + 1
           WHERE job_id = $1`,
          [recordFirst],
        ],
      ]);
      const jobFirst = await runningJob();
      await commit([
        [
          `UPDATE jobs SET state = 'failed', error = $2::jsonb, finished_at = now(), lease_expires_at = NULL,
             failed_attempts = failed_attempts + 1
           WHERE job_id = $1`,
          [jobFirst, JSON.stringify(boom)],
        ],
        insertRecord(jobFirst, 1, 'failed'),
      ]);
      expect((await records(recordFirst)).map((r) => r.outcome)).toEqual(['timed_out']);
      expect((await records(jobFirst)).map((r) => r.outcome)).toEqual(['failed']);
    });

    it('refuses at commit to close a live attempt for a retry without its attempt record', async () => {
      const jobId = await runningJob();
      await expectCommitRefused(
        jobId,
        [
          [
            `UPDATE jobs SET lease_expires_at = NULL, available_at = now(), failed_attempts = failed_attempts + 1
             WHERE job_id = $1`,
            [jobId],
          ],
        ],
        RECORD_MISSING,
      );
    });

    it('refuses at commit to fail a job without the record of its last attempt', async () => {
      const jobId = await runningJob();
      await expectCommitRefused(
        jobId,
        [
          [
            `UPDATE jobs SET state = 'failed', error = $2::jsonb, finished_at = now(), lease_expires_at = NULL,
               failed_attempts = failed_attempts + 1
             WHERE job_id = $1`,
            [jobId, JSON.stringify(boom)],
          ],
        ],
        RECORD_MISSING,
      );
    });

    it('refuses even a single statement that closes a live attempt without its record, made immediate', async () => {
      const jobId = await runningJob();
      const before = await row(jobId);
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('SET CONSTRAINTS ALL IMMEDIATE');
        await expect(
          client.query('UPDATE jobs SET lease_expires_at = NULL, available_at = now() WHERE job_id = $1', [
            jobId,
          ]),
        ).rejects.toThrow(RECORD_MISSING);
      } finally {
        await client.query('ROLLBACK');
        client.release();
      }
      expect(await row(jobId)).toEqual(before);
    });

    it.each(['failed', 'timed_out', 'lost'])(
      'refuses a %s attempt record beyond max_attempts',
      async (outcome) => {
        const jobId = await runningJob({ maxAttempts: 1 });
        await retry(jobId, 1, outcome, 1);
        await claim();
        // Counted on the job row: failed_attempts would pass max_attempts.
        await expectRefused(
          jobId,
          [SCHEDULE_RETRY, [jobId, 2, WORKER, outcome, JSON.stringify(boom), 0, 1]],
          /jobs_attempt_counts/,
        );
        // Not counted on the row: the record count itself is checked at commit.
        await expectCommitRefused(
          jobId,
          [[SCHEDULE_RETRY, [jobId, 2, WORKER, outcome, JSON.stringify(boom), 0, 0]]],
          /2 failed attempts exceed max_attempts 1/,
        );
        expect((await records(jobId)).map((r) => r.outcome)).toEqual([outcome]);
      },
    );

    it('refuses to fail a job with a failed attempt beyond max_attempts', async () => {
      const jobId = await runningJob({ maxAttempts: 1 });
      await retry(jobId, 1, 'lost', 1);
      await claim();
      await expectRefused(
        jobId,
        [MARK_FAILED, [jobId, 2, WORKER, 'failed', JSON.stringify(boom)]],
        /jobs_attempt_counts/,
      );
    });

    it('accepts interrupted attempt records beyond max_attempts, since they are not failures', async () => {
      const jobId = await runningJob({ maxAttempts: 1 });
      for (const attempt of [1, 2, 3]) {
        await retry(jobId, attempt, 'interrupted', 0);
        await claim();
      }
      await fail(jobId, 4, 'failed');
      expect((await records(jobId)).map((r) => [r.attempt, r.outcome])).toEqual([
        [1, 'interrupted'],
        [2, 'interrupted'],
        [3, 'interrupted'],
        [4, 'failed'],
      ]);
      expect(await row(jobId)).toMatchObject({
        state: 'failed',
        attempts: 4,
        failed_attempts: 1,
        max_attempts: 1,
      });
    });

    it('refuses to lower max_attempts below the failed attempts already recorded', async () => {
      const jobId = await runningJob({ maxAttempts: 2 });
      // Two failed records; the job row's failed_attempts counter is left behind (the count flag is 0).
      await retry(jobId, 1, 'failed', 0);
      await claim();
      await retry(jobId, 2, 'failed', 0);
      expect((await records(jobId)).map((r) => r.outcome)).toEqual(['failed', 'failed']);
      await expectRefused(
        jobId,
        ['UPDATE jobs SET max_attempts = 1 WHERE job_id = $1', [jobId]],
        /max_attempts/,
      );
    });
  });
});
