import { Client } from 'pg';
import { seedHistory } from '../support/history';
import { ALL_TYPES, insertJobs } from '../support/job-factory';
import { openRepository } from '../support/repository';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

/** Finished jobs already in the table: enough that the churn below dirties fewer than 2% of its pages. */
const FINISHED_JOBS = 200_000;
const CHURNED_JOBS = 500;

describe('vacuuming a jobs table that keeps many finished jobs', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
    await seedHistory(db.pool, FINISHED_JOBS, { state: 'completed', createdSecondsAgo: 3_600 });
    await db.pool.query('VACUUM ANALYZE jobs');
  });
  afterAll(() => db.drop());

  /** Creates, claims and completes jobs with the worker's own statements, then vacuums; the vacuum's report. */
  async function churnThenVacuum(): Promise<string> {
    const { repository, close } = await openRepository(db.url, 2);
    try {
      await insertJobs(db.pool, CHURNED_JOBS);
      const claimed = await repository.claimDue(CHURNED_JOBS, 'w', 60_000, ALL_TYPES);
      expect(claimed).toHaveLength(CHURNED_JOBS);
      const completed = await repository.markCompleted(
        'w',
        claimed.map((job) => ({ jobId: job.jobId, attempt: job.attempt, resultJson: 'null' })),
      );
      expect(completed.size).toBe(CHURNED_JOBS);
    } finally {
      await close();
    }
    const client = new Client({ connectionString: db.url });
    const reports: string[] = [];
    client.on('notice', (notice) => reports.push(notice.message ?? ''));
    await client.connect();
    try {
      // The report is read as PostgreSQL words it in English.
      await client.query(`SET lc_messages = 'C'`);
      await client.query('VACUUM (VERBOSE) jobs');
    } finally {
      await client.end();
    }
    const report = reports.find((message) => /^finished vacuuming ".*\.public\.jobs"/.test(message));
    if (!report) throw new Error(`VACUUM VERBOSE reported nothing on jobs: ${JSON.stringify(reports)}`);
    return report;
  }

  it('removes the claim index entries of claimed jobs where PostgreSQL would skip the index pass', async () => {
    const { rows } = await db.pool.query(`SELECT reloptions FROM pg_class WHERE oid = 'jobs'::regclass`);
    expect(rows[0].reloptions).toContain('vacuum_index_cleanup=on');

    const asMigrated = await churnThenVacuum();
    expect(asMigrated).toMatch(/index scans: 1/);
    expect(asMigrated).toMatch(/index "jobs_claim_idx": pages: \d+ in total/);

    // The same churn under PostgreSQL's own default skips the indexes: the claim index would keep the entries
    // of every job claimed since, at its front, where each claim starts reading.
    await db.pool.query(`ALTER TABLE jobs RESET (vacuum_index_cleanup)`);
    try {
      const byDefault = await churnThenVacuum();
      expect(byDefault).toMatch(/index scans: 0/);
      expect(byDefault).toMatch(/index scan bypassed/);
    } finally {
      await db.pool.query(`ALTER TABLE jobs SET (vacuum_index_cleanup = on)`);
    }
  });
});
