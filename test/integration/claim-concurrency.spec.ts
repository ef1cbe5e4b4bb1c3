import { CLAIM_DUE } from '../../src/persistence/job.sql';
import { ALL_TYPES, insertJobs } from '../support/job-factory';
import { planNodes } from '../support/plans';
import { openRepository } from '../support/repository';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

describe('claiming under concurrency', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  beforeEach(() => db.reset());
  afterAll(() => db.drop());

  it('hands each of 2,000 jobs to exactly one of 4 claimers racing on separate pools', async () => {
    const ids = await insertJobs(db.pool, 2_000);
    const claimers = await Promise.all([1, 2, 3, 4].map(() => openRepository(db.url, 3)));
    try {
      const claimedBy = await Promise.all(
        claimers.map(async ({ repository }, index) => {
          const mine: string[] = [];
          // Several claim loops per claimer, like a worker with many free slots.
          await Promise.all(
            [0, 1, 2].map(async () => {
              for (;;) {
                const jobs = await repository.claimDue(7, `claimer-${index}`, 60_000, ALL_TYPES);
                if (jobs.length === 0) return;
                mine.push(...jobs.map((job) => job.jobId));
              }
            }),
          );
          return mine;
        }),
      );
      const all = claimedBy.flat();
      expect(all).toHaveLength(2_000);
      expect(new Set(all).size).toBe(2_000);
      expect(new Set(all)).toEqual(new Set(ids));
      // Work was actually shared: no claimer was starved by another's locks.
      for (const mine of claimedBy) expect(mine.length).toBeGreaterThan(0);

      const { rows } = await db.pool.query(
        `SELECT count(*)::int AS n FROM jobs WHERE state = 'running' AND attempts = 1 AND lease_expires_at IS NOT NULL`,
      );
      expect(rows[0].n).toBe(2_000);
    } finally {
      await Promise.all(claimers.map(({ close }) => close()));
    }
  });

  it('claims every due job and none whose run_at is still ahead, whatever its priority', async () => {
    const { repository, close } = await openRepository(db.url);
    try {
      const [late] = await insertJobs(db.pool, 1, { runInSeconds: -10 });
      const [urgent] = await insertJobs(db.pool, 1, { priority: 10, runInSeconds: -1 });
      const [early] = await insertJobs(db.pool, 1, { runInSeconds: -20 });
      await insertJobs(db.pool, 1, { priority: 1000, runInSeconds: 3600 });
      const claimed = await repository.claimDue(10, 'w', 60_000, ALL_TYPES);
      expect(claimed.map((job) => job.jobId).sort()).toEqual([late, urgent, early].sort());
      expect(await repository.claimDue(1, 'w', 60_000, ALL_TYPES)).toEqual([]);
    } finally {
      await close();
    }
  });

  it('takes the highest priority first when there are more due jobs than slots', async () => {
    const { repository, close } = await openRepository(db.url);
    try {
      await insertJobs(db.pool, 5, { priority: -5 });
      const [top] = await insertJobs(db.pool, 1, { priority: 7 });
      const [next] = await insertJobs(db.pool, 1, { priority: 3, runInSeconds: -60 });
      expect((await repository.claimDue(1, 'w', 60_000, ALL_TYPES)).map((job) => job.jobId)).toEqual([top]);
      expect((await repository.claimDue(1, 'w', 60_000, ALL_TYPES)).map((job) => job.jobId)).toEqual([next]);
    } finally {
      await close();
    }
  });

  it('reads the queue through the claim index in claim order, never a scan and sort of every due job', async () => {
    // A paused type and jobs of a type no worker here runs: the filters must not cost the index its use.
    await insertJobs(db.pool, 20_000);
    await insertJobs(db.pool, 500, { jobType: 'report.render' });
    await db.pool.query(`INSERT INTO job_type_pauses (job_type) VALUES ('sleep')`);
    await db.pool.query('ANALYZE jobs');
    // As the worker sends it: a prepared statement, whose plan PostgreSQL may replace by a generic one after
    // five executions; the plan looked at is the seventh's.
    const client = await db.pool.connect();
    try {
      await client.query(`PREPARE claim_due (integer, text, integer, text[]) AS ${CLAIM_DUE}`);
      const types = `ARRAY[${ALL_TYPES.map((type) => client.escapeLiteral(type)).join(', ')}]`;
      // 500: a worker at WORKER_CONCURRENCY=500 claims that many at once; joined on job_id alone, the
      // update then hashed a sequential scan of the table.
      for (const limit of [10, 500]) {
        const explain = `EXPLAIN (FORMAT JSON) EXECUTE claim_due(${limit}, 'w', 60000, ${types})`;
        for (let run = 1; run < 7; run++) await client.query(explain);
        const { rows } = await client.query(explain);
        const nodes = planNodes(rows[0]['QUERY PLAN'][0].Plan);
        expect(nodes.filter((node) => node.type === 'Sort')).toEqual([]);
        expect(nodes.filter((node) => node.type === 'Seq Scan' && node.relation === 'jobs')).toEqual([]);
        expect(nodes).toContainEqual(expect.objectContaining({ index: 'jobs_claim_idx' }));
      }
    } finally {
      client.release(true);
      await db.pool.query('DELETE FROM job_type_pauses');
    }
  });

  it('plans the claim once per connection, not again at every claim', async () => {
    // A pool of one connection, so that what the claims prepared on it can be read back on it.
    const { repository, database, close } = await openRepository(db.url, 1);
    try {
      await insertJobs(db.pool, 600);
      await db.pool.query('ANALYZE jobs');
      // An idle worker's claims (one job each) and a busy one's (hundreds), as the worker sends them.
      for (const limit of [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 500]) {
        expect(await repository.claimDue(limit, 'w', 60_000, ALL_TYPES)).toHaveLength(limit);
      }
      const [plans] = await database.dataSource.query(
        `SELECT generic_plans::int AS generic, custom_plans::int AS custom
         FROM pg_prepared_statements WHERE name = 'claim-due'`,
      );
      // PostgreSQL plans the first five executions for their own parameters, then keeps one plan if it
      // costs no more than they did. With a plain LIMIT $1 it never did, and every claim was planned again.
      expect(plans).toEqual({ generic: 6, custom: 5 });
    } finally {
      await close();
    }
  });
});
