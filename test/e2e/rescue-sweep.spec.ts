import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { eventually, insertJobs } from '../support/job-factory';
import { openRepository } from '../support/repository';
import { startTestApp } from '../support/test-app';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

const SWEEP_INTERVAL_MS = 200;
const ORPHAN_TYPE = 'retired.type';

/**
 * The rescue sweep of a worker (APP_ROLE=worker) against jobs held by a worker that died: one row the
 * database refuses to close must not stop the rescue of the others, and sweeps that fail must show in
 * readiness and metrics instead of failing silently.
 */
describe('the rescue sweep of a worker', () => {
  let db: TestDatabase;
  let app: INestApplication;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestApp(db.url, { role: 'worker', sweepIntervalMs: SWEEP_INTERVAL_MS });
  });

  afterAll(async () => {
    await app.close();
    await db.drop();
  });

  const http = (): ReturnType<typeof request> => request(app.getHttpServer());
  const metric = async (name: string): Promise<number> => {
    const { text } = await http().get('/metrics').expect(200);
    const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
    return Number(line?.split(' ')[1]);
  };

  /**
   * Jobs claimed by a worker that then died: their leases run out after `leaseMs`. They are of a type
   * only that worker had, so that the live worker, which never claims a type it cannot run, leaves them
   * to the sweep.
   */
  const orphanJobs = async (count: number, leaseMs: number): Promise<string[]> => {
    const { repository, close } = await openRepository(db.url, 2);
    try {
      const ids = await insertJobs(db.pool, count, { jobType: ORPHAN_TYPE });
      const claimed = await repository.claimDue(count, 'dead-worker', leaseMs, [ORPHAN_TYPE]);
      expect(claimed.map((job) => job.jobId).sort()).toEqual([...ids].sort());
      return ids;
    } finally {
      await close();
    }
  };

  it('rescues every other expired lease when the database refuses to close one, and counts the refusal', async () => {
    const refusalsBefore = await metric('rescue_refused_leases_total');
    const ids = await orphanJobs(6, 300);
    const poisoned = ids[2];
    // A row the sweep cannot close, for a reason it cannot foresee: here a rule installed by the test.
    await db.pool.query(`
      CREATE FUNCTION refuse_one_rescue() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'refused for this job' USING ERRCODE = 'check_violation'; END $$`);
    await db.pool.query(
      `CREATE TRIGGER refuse_one_rescue BEFORE INSERT ON job_attempts FOR EACH ROW
         WHEN (NEW.job_id = '${poisoned}') EXECUTE FUNCTION refuse_one_rescue()`,
    );
    try {
      // The five others are rescued: closed as lost and claimable again.
      const lost = await eventually(async () => {
        const { rows } = await db.pool.query(`SELECT job_id FROM job_attempts WHERE outcome = 'lost'`);
        return rows.length === 5 ? rows.map((row) => row.job_id as string) : undefined;
      }, 20_000);
      expect(lost.sort()).toEqual(ids.filter((id) => id !== poisoned).sort());
      const { rows } = await db.pool.query(
        `SELECT job_id, lease_expires_at IS NOT NULL AS leased, available_at IS NOT NULL AS claimable FROM jobs`,
      );
      for (const row of rows) {
        expect(row).toEqual({
          job_id: row.job_id,
          leased: row.job_id === poisoned,
          claimable: row.job_id !== poisoned,
        });
      }
      expect(await metric('rescue_refused_leases_total')).toBeGreaterThan(refusalsBefore);
      // Refusing one row does not make the sweep a failure: readiness holds.
      await http().get('/health/ready').expect(200);
    } finally {
      await db.pool.query('DROP TRIGGER refuse_one_rescue ON job_attempts');
      await db.pool.query('DROP FUNCTION refuse_one_rescue()');
    }
    // Once the database accepts it, the last one is rescued too.
    await eventually(async () => {
      const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM job_attempts WHERE job_id = $1`, [
        poisoned,
      ]);
      return rows[0].n === 1 ? true : undefined;
    }, 20_000);
  });

  it('reports in readiness and metrics when sweeps keep failing, and recovers when they succeed', async () => {
    await http().get('/health/ready').expect(200);
    const failuresBefore = await metric('rescue_sweep_failures_total');
    // Every sweep now fails where it takes its turn.
    await db.pool.query(`
      CREATE FUNCTION refuse_sweep_turn() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'sweeps refused' USING ERRCODE = 'check_violation'; END $$`);
    await db.pool.query(
      `CREATE TRIGGER refuse_sweep_turn BEFORE UPDATE ON rescue_sweeps FOR EACH ROW EXECUTE FUNCTION refuse_sweep_turn()`,
    );
    try {
      const notReady = await eventually(async () => {
        const response = await http().get('/health/ready');
        return response.status === 503 ? response.body : undefined;
      }, 30_000);
      expect(notReady).toMatchObject({ code: 'not_ready', checks: { rescue: { status: 'down' } } });
      expect(await metric('rescue_sweep_failures_total')).toBeGreaterThan(failuresBefore);
      expect(await metric('rescue_last_completed_age_seconds')).toBeGreaterThan(
        (4 * SWEEP_INTERVAL_MS) / 1000,
      );
    } finally {
      await db.pool.query('DROP TRIGGER refuse_sweep_turn ON rescue_sweeps');
      await db.pool.query('DROP FUNCTION refuse_sweep_turn()');
    }
    await eventually(
      async () => ((await http().get('/health/ready')).status === 200 ? true : undefined),
      30_000,
    );
  });
});
