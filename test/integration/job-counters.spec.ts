import { DataSource } from 'typeorm';
import { CreateJobs1764300000000 } from '../../migrations/1764300000000-create-jobs';
import { TuneJobsForChurn1764400000000 } from '../../migrations/1764400000000-tune-jobs-for-churn';
import { CloseInvariantHoles1764500000000 } from '../../migrations/1764500000000-close-invariant-holes';
import { OperatorControl1764600000000 } from '../../migrations/1764600000000-operator-control';
import { runMigrations } from '../../src/persistence/data-source';
import { AttemptOutcome, JobState } from '../../src/persistence/job-state';
import { seedHistory } from '../support/history';
import { insertJobs } from '../support/job-factory';
import { openRepository } from '../support/repository';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

/**
 * job_counts and job_finishes against a count of the rows, per job type and state, job_lease_expiries
 * against the live leases, per second of expiry, job_type_listing against the jobs themselves and
 * job_state_listing against the failed and cancelled jobs: equal.
 */
async function expectCountersToMatchRows(db: TestDatabase): Promise<void> {
  const { rows: unlisted } = await db.pool.query(
    `SELECT j.job_id AS job, l.job_id AS listed, coalesce(j.job_type, l.job_type) AS job_type
     FROM jobs j FULL JOIN job_type_listing l USING (job_type, job_id)
     WHERE j.job_id IS NULL OR l.job_id IS NULL`,
  );
  expect(unlisted).toEqual([]);
  const { rows: unlistedStates } = await db.pool.query(
    `SELECT j.job_id AS job, l.job_id AS listed, coalesce(j.state, l.state) AS state
     FROM (SELECT job_id, state FROM jobs WHERE state IN ('failed', 'cancelled')) AS j
     FULL JOIN job_state_listing l USING (state, job_id)
     WHERE j.job_id IS NULL OR l.job_id IS NULL`,
  );
  expect(unlistedStates).toEqual([]);
  const { rows } = await db.pool.query(
    `SELECT coalesce(c.job_type, r.job_type) AS job_type, coalesce(c.state, r.state) AS state,
            coalesce(c.jobs, 0)::int AS counted, coalesce(r.n, 0)::int AS rows,
            coalesce(c.live, 0)::int AS counted_live, coalesce(r.live, 0)::int AS live
     FROM (SELECT job_type, state, sum(jobs) AS jobs, sum(live) AS live FROM job_counts GROUP BY 1, 2) AS c
     FULL JOIN (SELECT job_type, state, count(*) AS n, count(*) FILTER (WHERE lease_expires_at IS NOT NULL) AS live
                FROM jobs GROUP BY 1, 2) AS r USING (job_type, state)`,
  );
  expect(rows.length).toBeGreaterThan(0);
  for (const row of rows) expect(row).toEqual({ ...row, counted: row.rows, counted_live: row.live });
  const { rows: finishes } = await db.pool.query(
    `SELECT coalesce(f.state, r.state) AS state, coalesce(f.n, 0)::int AS counted, coalesce(r.n, 0)::int AS rows
     FROM (SELECT state, sum(jobs) AS n FROM job_finishes GROUP BY 1) AS f
     FULL JOIN (SELECT state, count(*) AS n FROM jobs WHERE finished_at > now() - interval '1 hour' GROUP BY 1) AS r
       USING (state)`,
  );
  for (const row of finishes) expect(row).toEqual({ ...row, counted: row.rows });
  const { rows: leases } = await db.pool.query(
    `SELECT coalesce(e.second, r.second) AS second, coalesce(e.n, 0)::int AS counted, coalesce(r.n, 0)::int AS rows
     FROM (SELECT expires_second AS second, sum(leases) AS n FROM job_lease_expiries
           GROUP BY 1 HAVING sum(leases) <> 0) AS e
     FULL JOIN (SELECT date_trunc('second', lease_expires_at) AS second, count(*) AS n
                FROM jobs WHERE lease_expires_at IS NOT NULL GROUP BY 1) AS r USING (second)`,
  );
  for (const row of leases) expect(row).toEqual({ ...row, counted: row.rows });
}

describe('the job counters', () => {
  it('start from the rows already in the table when the migration runs', async () => {
    const db = await createTestDatabase({ empty: true });
    try {
      const early = new DataSource({
        type: 'postgres',
        url: db.url,
        migrations: [
          CreateJobs1764300000000,
          TuneJobsForChurn1764400000000,
          CloseInvariantHoles1764500000000,
          OperatorControl1764600000000,
        ],
        migrationsTableName: 'schema_migrations',
      });
      await early.initialize();
      await early.runMigrations({ transaction: 'each' });
      await early.destroy();

      await insertJobs(db.pool, 7, { jobType: 'echo' });
      await insertJobs(db.pool, 3, { jobType: 'noop' });
      await db.pool.query(
        `UPDATE jobs SET state = 'running', attempts = 1, started_at = now(), worker_id = 'w', attempt_started_at = now(),
                         lease_expires_at = now() + interval '1 minute', available_at = NULL
         WHERE job_id IN (SELECT job_id FROM jobs WHERE job_type = 'echo' LIMIT 4)`,
      );
      await seedHistory(db.pool, 5, { state: 'completed', createdSecondsAgo: 600 });
      await seedHistory(db.pool, 6, { state: 'failed', jobType: 'echo', createdSecondsAgo: 7_200 });
      await seedHistory(db.pool, 2, { state: 'cancelled', createdSecondsAgo: 3_600 });

      await runMigrations(db.url);
      await expectCountersToMatchRows(db);
      const { rows } = await db.pool.query(
        `SELECT state, count(*)::int AS n FROM job_state_listing GROUP BY state ORDER BY state`,
      );
      expect(rows).toEqual([
        { state: 'cancelled', n: 2 },
        { state: 'failed', n: 6 },
      ]);
    } finally {
      await db.drop();
    }
  });

  it('add up when many claimers and completers change jobs at once', async () => {
    const db = await createTestDatabase();
    const workers = await Promise.all([1, 2, 3, 4, 5, 6].map(() => openRepository(db.url, 2)));
    try {
      await insertJobs(db.pool, 1_500, { jobType: 'noop' });
      await insertJobs(db.pool, 1_500, { jobType: 'echo' });
      // Every worker claims and completes small batches as fast as it can, overlapping the others: their
      // statements write the same (type, state) counters, on whichever shards their transactions fall.
      await Promise.all(
        workers.map(async ({ repository }, n) => {
          for (;;) {
            const claimed = await repository.claimDue(3, `w${n}`, 60_000, ['noop', 'echo']);
            if (claimed.length === 0) return;
            const [first, ...rest] = claimed;
            await repository.markCompleted(
              `w${n}`,
              rest.map((job) => ({ jobId: job.jobId, attempt: job.attempt, resultJson: '{}' })),
            );
            if (n % 2 === 0) {
              // Keep the first attempt live, its lease renewed: the live counts and the seconds its lease
              // expires in must add up too.
              await repository.renewLeases(`w${n}`, [{ jobId: first.jobId, attempt: first.attempt }], 90_000);
              continue;
            }
            await repository.scheduleRetry(
              `w${n}`,
              { jobId: first.jobId, attempt: first.attempt },
              AttemptOutcome.Interrupted,
              { code: 'interrupted', message: 'released' },
              60_000,
            );
          }
        }),
      );
      await expectCountersToMatchRows(db);
      const { rows } = await db.pool.query(`SELECT count(DISTINCT shard)::int AS shards FROM job_counts`);
      expect(rows[0].shards).toBeGreaterThan(1);
    } finally {
      await Promise.all(workers.map(({ close }) => close()));
      await db.drop();
    }
  });

  it('follow each lease through claim, renewal, expiry, rescue and truncation', async () => {
    const db = await createTestDatabase();
    const { repository, close } = await openRepository(db.url);
    try {
      await insertJobs(db.pool, 4, { jobType: 'noop' });
      const claimed = await repository.claimDue(3, 'w', 60_000, ['noop']);
      expect(claimed).toHaveLength(3);
      await expectCountersToMatchRows(db);
      await repository.renewLeases('w', [{ jobId: claimed[0].jobId, attempt: claimed[0].attempt }], 120_000);
      await expectCountersToMatchRows(db);
      await db.pool.query(
        `UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE job_id = $1`,
        [claimed[1].jobId],
      );
      await expectCountersToMatchRows(db);
      const batch = await repository.rescueExpiredLeases(500);
      expect(batch?.rescued.map((attempt) => attempt.jobId)).toEqual([claimed[1].jobId]);
      await expectCountersToMatchRows(db);
      await repository.markCompleted('w', [
        { jobId: claimed[2].jobId, attempt: claimed[2].attempt, resultJson: '{}' },
      ]);
      await expectCountersToMatchRows(db);
      const { rows } = await db.pool.query(`SELECT sum(leases)::int AS leases FROM job_lease_expiries`);
      expect(rows[0].leases).toBe(1);

      await db.reset();
      const { rows: after } = await db.pool.query(
        `SELECT (SELECT count(*) FROM job_lease_expiries)::int AS seconds, (SELECT count(*) FROM job_type_listing)::int AS listed,
                (SELECT count(*) FROM job_state_listing)::int AS listed_states`,
      );
      expect(after[0]).toEqual({ seconds: 0, listed: 0, listed_states: 0 });
    } finally {
      await close();
      await db.drop();
    }
  });

  it('let go of deleted jobs, and list the jobs of every way of creating them', async () => {
    const db = await createTestDatabase();
    const { repository, close } = await openRepository(db.url);
    try {
      const old = await seedHistory(db.pool, 6, {
        state: 'completed',
        jobType: 'echo',
        createdSecondsAgo: 7_200,
      });
      await seedHistory(db.pool, 4, { state: 'failed', createdSecondsAgo: 7_200 });
      await insertJobs(db.pool, 3, { jobType: 'noop' });
      const newJob = (jobType: string) => ({
        jobType,
        payload: {},
        priority: 0,
        runAt: null,
        maxAttempts: 3,
        timeoutMs: 60_000,
        idempotencyKey: null,
        requestHash: null,
        callbackUrl: null,
      });
      await repository.insertJobs([newJob('echo')]);
      await repository.insertJobs([newJob('echo'), newJob('noop'), newJob('mail.send')]);
      const [failed] = await seedHistory(db.pool, 1, { state: 'failed', createdSecondsAgo: 7_200 });
      expect(await repository.retryAsNewJob(failed)).not.toBeNull();
      await expectCountersToMatchRows(db);

      const { rowCount } = await db.pool.query(`DELETE FROM jobs WHERE job_id = ANY($1::uuid[])`, [
        old.slice(0, 4),
      ]);
      expect(rowCount).toBe(4);
      await expectCountersToMatchRows(db);
      const { rows } = await db.pool.query(
        `SELECT count(*)::int AS n FROM job_type_listing WHERE job_type = 'echo'`,
      );
      expect(rows[0].n).toBe(2 + 1 + 1);
    } finally {
      await close();
      await db.drop();
    }
  });

  it('list every job that fails or is cancelled, whichever way, until it is deleted', async () => {
    const db = await createTestDatabase();
    const { repository, close } = await openRepository(db.url);
    try {
      const [handlerFails, leaseRunsOut, cancelledRunning, completed] = await insertJobs(db.pool, 4, {
        maxAttempts: 1,
      });
      const [cancelledPending, cancelledByFilter] = await insertJobs(db.pool, 2, { jobType: 'echo' });
      const claimed = await repository.claimDue(4, 'w', 60_000, ['noop']);
      const attempt = (jobId: string) => ({
        jobId,
        attempt: claimed.find((job) => job.jobId === jobId)!.attempt,
      });
      expect(claimed).toHaveLength(4);

      expect(
        await repository.markFailed('w', attempt(handlerFails), AttemptOutcome.Failed, {
          code: 'handler_error',
          message: 'no',
        }),
      ).toBe(true);
      await db.pool.query(
        `UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE job_id = $1`,
        [leaseRunsOut],
      );
      expect((await repository.rescueExpiredLeases(500))?.rescued.map((ref) => ref.jobId)).toEqual([
        leaseRunsOut,
      ]);
      expect(await repository.cancelJob(cancelledRunning, 'stop')).not.toBeNull();
      expect(await repository.markCancelled('w', attempt(cancelledRunning))).toBe(true);
      await repository.markCompleted('w', [{ ...attempt(completed), resultJson: '{}' }]);
      expect(await repository.cancelJob(cancelledPending, null)).not.toBeNull();
      expect(await repository.cancelMatching({ jobType: 'echo', state: JobState.Pending }, null, 10)).toBe(1);
      await expectCountersToMatchRows(db);
      const listed = async (state: string) =>
        (
          await db.pool.query(`SELECT job_id FROM job_state_listing WHERE state = $1 ORDER BY job_id`, [
            state,
          ])
        ).rows.map((row) => row.job_id);
      expect(await listed('failed')).toEqual([handlerFails, leaseRunsOut].sort());
      expect(await listed('cancelled')).toEqual(
        [cancelledRunning, cancelledPending, cancelledByFilter].sort(),
      );

      // A retry is a new pending job: the one it repeats stays listed, and it is not.
      expect(await repository.retryAsNewJob(handlerFails)).not.toBeNull();
      await expectCountersToMatchRows(db);

      const old = await seedHistory(db.pool, 3, { state: 'failed', createdSecondsAgo: 7_200 });
      await seedHistory(db.pool, 2, { state: 'cancelled', createdSecondsAgo: 7_200 });
      await expectCountersToMatchRows(db);
      const batch = await repository.sweepRetention({
        minIntervalMs: 0,
        retention: { completedMs: 60_000, failedMs: 60_000, cancelledMs: 60_000 },
        horizonMs: 120_000,
        limit: 1_000,
        lapMs: 60_000,
        finishesKeptMs: 3_600_000,
      });
      expect(batch?.deleted).toEqual({ failed: 3, cancelled: 2 });
      await expectCountersToMatchRows(db);
      expect(await listed('failed')).not.toContain(old[0]);
      expect(await listed('failed')).toEqual([handlerFails, leaseRunsOut].sort());
    } finally {
      await close();
      await db.drop();
    }
  });

  it('refuse to be written by anything but the triggers on jobs', async () => {
    const db = await createTestDatabase();
    try {
      await insertJobs(db.pool, 2);
      await seedHistory(db.pool, 1, { state: 'failed', createdSecondsAgo: 7_200 });
      const writes: Record<string, string[]> = {
        job_counts: [
          `UPDATE job_counts SET jobs = jobs + 1`,
          `DELETE FROM job_counts`,
          `INSERT INTO job_counts VALUES ('noop', 'pending', 0, 5, 0)`,
          `TRUNCATE job_counts`,
        ],
        job_type_listing: [
          `UPDATE job_type_listing SET job_type = 'echo'`,
          `DELETE FROM job_type_listing`,
          `INSERT INTO job_type_listing VALUES ('noop', job_id_v7())`,
          `TRUNCATE job_type_listing`,
        ],
        job_state_listing: [
          `UPDATE job_state_listing SET state = 'cancelled'`,
          `DELETE FROM job_state_listing`,
          `INSERT INTO job_state_listing VALUES ('failed', job_id_v7())`,
          `TRUNCATE job_state_listing`,
        ],
      };
      for (const [table, statements] of Object.entries(writes)) {
        for (const sql of statements) {
          await expect(db.pool.query(sql)).rejects.toThrow(`${table} is kept by the triggers`);
        }
      }
      await expectCountersToMatchRows(db);
    } finally {
      await db.drop();
    }
  });
});
