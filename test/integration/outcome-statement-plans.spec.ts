import { CLAIM_DUE, MARK_COMPLETED, RENEW_LEASES } from '../../src/persistence/job.sql';
import { ALL_TYPES, insertJobs } from '../support/job-factory';
import { planNodes } from '../support/plans';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

describe('writing the outcomes of attempts', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db.drop());

  it('finds the jobs it completes or renews by their ids, never by reading the whole table', async () => {
    // A small table, its statistics taken while no job held a lease: where reading every row looked
    // cheaper to the planner than looking each job up.
    await insertJobs(db.pool, 6_000);
    await db.pool.query('ANALYZE jobs');
    const client = await db.pool.connect();
    try {
      const { rows: claimed } = await client.query(CLAIM_DUE, [500, 'w', 60_000, ALL_TYPES]);
      expect(claimed).toHaveLength(500);
      // As the worker sends them: prepared statements, whose plan PostgreSQL may replace by a generic one
      // after five executions; the plan looked at is the seventh's.
      await client.query(`PREPARE complete_attempts (text, jsonb) AS ${MARK_COMPLETED}`);
      await client.query(`PREPARE renew_leases (text, jsonb, integer) AS ${RENEW_LEASES}`);
      for (const count of [1, 500]) {
        const attempts = claimed.slice(0, count);
        const done = JSON.stringify(
          attempts.map((job) => ({ job_id: job.jobId, attempt: job.attempt, result: {} })),
        );
        const live = JSON.stringify(attempts.map((job) => ({ job_id: job.jobId, attempt: job.attempt })));
        for (const statement of [
          `EXECUTE complete_attempts('w', ${client.escapeLiteral(done)})`,
          `EXECUTE renew_leases('w', ${client.escapeLiteral(live)}, 60000)`,
        ]) {
          for (let run = 1; run < 7; run++) await client.query(`EXPLAIN ${statement}`);
          const { rows } = await client.query(`EXPLAIN (FORMAT JSON) ${statement}`);
          const nodes = planNodes(rows[0]['QUERY PLAN'][0].Plan);
          expect(nodes.filter((node) => node.type === 'Seq Scan' && node.relation === 'jobs')).toEqual([]);
          expect(nodes).toContainEqual(expect.objectContaining({ relation: 'jobs', index: 'jobs_pkey' }));
        }
      }
      // And they still do what they say: each attempt's outcome written once.
      const done = JSON.stringify(
        claimed.map((job) => ({ job_id: job.jobId, attempt: job.attempt, result: {} })),
      );
      const { rows: completed } = await client.query(MARK_COMPLETED, ['w', done]);
      expect(completed).toHaveLength(500);
      expect(await client.query(MARK_COMPLETED, ['w', done])).toHaveProperty('rowCount', 0);
    } finally {
      client.release(true);
    }
  });
});
