import { Client, type Notification } from 'pg';
import { CLAIM_DUE, JOBS_FINISHED_CHANNEL, MARK_COMPLETED, WATCH_JOB } from '../../src/persistence/job.sql';
import { ALL_TYPES, insertJobs } from '../support/job-factory';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

/**
 * The database announces a finished job only while a long poll watches it, and a watch cannot slip in
 * between a finish and its announcement: the statements the API and the workers run, against a real
 * PostgreSQL.
 */
describe('announcements of finished jobs', () => {
  let db: TestDatabase;
  let listener: Client;
  let heard: string[];

  beforeAll(async () => {
    db = await createTestDatabase();
    listener = new Client({ connectionString: db.url });
    await listener.connect();
    listener.on('notification', (message: Notification) => heard.push(...(message.payload ?? '').split(',')));
    await listener.query(`LISTEN ${JOBS_FINISHED_CHANNEL}`);
  });
  beforeEach(async () => {
    await db.reset();
    heard = [];
  });
  afterAll(async () => {
    await listener.end();
    await db.drop();
  });

  const claimAll = async (): Promise<void> => {
    await db.pool.query(CLAIM_DUE, [100, 'w1', 60_000, ALL_TYPES]);
  };
  const complete = (jobIds: string[], client: { query: Client['query'] } = db.pool): Promise<unknown> =>
    client.query(MARK_COMPLETED, [
      'w1',
      JSON.stringify(jobIds.map((jobId) => ({ job_id: jobId, attempt: 1, result: null }))),
    ]);
  const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 300));

  it('announces the finished jobs a long poll watches, and only those', async () => {
    const [watched, unwatched, watchedLater] = await insertJobs(db.pool, 3);
    await claimAll();
    await db.pool.query(WATCH_JOB, [watched, 60_000]);
    await db.pool.query(WATCH_JOB, [watchedLater, 60_000]);
    await complete([watched, unwatched]);
    await settle();
    expect(heard).toEqual([watched]);

    await complete([watchedLater]);
    await settle();
    expect(heard).toEqual([watched, watchedLater]);
  });

  it('keeps no watch for a job that does not exist', async () => {
    await db.pool.query(WATCH_JOB, ['0190e0a0-0000-7000-8000-000000000000', 60_000]);
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM job_watches');
    expect(rows[0].n).toBe(0);
  });

  it('makes a watch wait for a finish under way, so that the read after it sees the job finished', async () => {
    const [jobId] = await insertJobs(db.pool, 1);
    await claimAll();
    const finisher = new Client({ connectionString: db.url });
    await finisher.connect();
    try {
      // The finish runs its trigger before any watch exists, and commits only later.
      await finisher.query('BEGIN');
      await complete([jobId], finisher);
      let watchDone = false;
      const watching = db.pool.query(WATCH_JOB, [jobId, 60_000]).then(() => (watchDone = true));
      await settle();
      expect(watchDone).toBe(false);
      await finisher.query('COMMIT');
      await watching;
      const { rows } = await db.pool.query('SELECT state FROM jobs WHERE job_id = $1', [jobId]);
      expect(rows[0].state).toBe('completed');
    } finally {
      await finisher.end();
    }
    // That finish came before the watch: it was not announced, and the read above is what answers the poll.
    expect(heard).toEqual([]);
  });
});
