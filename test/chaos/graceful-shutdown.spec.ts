import { eventually, insertJob } from '../support/job-factory';
import { spawnService, waitForHttp } from '../support/service-process';
import { createTestDatabase, type TestDatabase } from '../support/test-db';
import { checkHistory } from './support/history-checker';
import { WorkerFleet } from './support/worker-fleet';

const SHUTDOWN_GRACE_MS = 1_500;
/** After the grace, the worker gives released attempts up to 2 s to be written back; the rest is slack. */
const EXIT_BOUND_MS = SHUTDOWN_GRACE_MS + 2_000;
/** Attempts that outlast the grace: long enough that waiting for them would break the exit bound. */
const LONG_MS = EXIT_BOUND_MS + 4_000;

describe('chaos: SIGTERM and SIGINT to a busy worker', () => {
  let db: TestDatabase;
  let fleet: WorkerFleet;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  beforeEach(async () => {
    await db.reset();
    fleet = new WorkerFleet({
      DATABASE_URL: db.url,
      WORKER_CONCURRENCY: '6',
      LEASE_MS: '3000',
      SHUTDOWN_GRACE_MS: String(SHUTDOWN_GRACE_MS),
      WORKER_POLL_INTERVAL_MS: '250',
    });
  });
  afterEach(() => fleet.dispose());
  afterAll(() => db.drop());

  const liveLeasesOf = async (workerId: string): Promise<number> =>
    (
      await db.pool.query(
        `SELECT count(*)::int AS n FROM jobs WHERE worker_id = $1 AND lease_expires_at IS NOT NULL`,
        [workerId],
      )
    ).rows[0].n;

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`on ${signal} finishes short attempts, releases long ones, exits 0 within the grace, and fails no job`, async () => {
      const busy = await fleet.add();
      const short = await Promise.all(
        [1, 2, 3].map(() => insertJob(db.pool, { jobType: 'sleep', payload: { ms: 300 }, maxAttempts: 1 })),
      );
      const long = await Promise.all(
        [1, 2, 3].map(() =>
          insertJob(db.pool, { jobType: 'sleep', payload: { ms: LONG_MS }, maxAttempts: 1 }),
        ),
      );
      await eventually(async () => ((await liveLeasesOf(busy.id)) === 6 ? true : undefined));

      const signalledAt = Date.now();
      busy.process.kill(signal);
      const exit = await busy.process.exited;
      const tookMs = Date.now() - signalledAt;
      expect(exit).toEqual({ code: 0, signal: null });
      expect(tookMs).toBeLessThan(EXIT_BOUND_MS);

      const { rows: shortRows } = await db.pool.query(
        `SELECT state FROM jobs WHERE job_id = ANY($1::uuid[])`,
        [short],
      );
      expect(shortRows.map((row) => row.state)).toEqual(['completed', 'completed', 'completed']);
      const { rows: released } = await db.pool.query(
        `SELECT j.state, j.failed_attempts, j.lease_expires_at, a.outcome, a.error->>'code' AS code
         FROM jobs j JOIN job_attempts a USING (job_id) WHERE j.job_id = ANY($1::uuid[])`,
        [long],
      );
      expect(released).toHaveLength(3);
      for (const row of released) {
        expect(row).toMatchObject({
          state: 'running',
          failed_attempts: 0,
          lease_expires_at: null,
          outcome: 'interrupted',
          code: 'worker_shutdown',
        });
      }

      // Another worker picks the released jobs up at once; max_attempts 1 is not used up by the release.
      await fleet.add();
      await eventually(async () => {
        const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM jobs WHERE state = 'completed'`);
        return rows[0].n === 6 ? true : undefined;
      }, 60_000);
      const { violations, summary } = await checkHistory(db.pool, [...short, ...long]);
      expect(violations).toEqual([]);
      expect(summary).toMatchObject({ completed: 6, failed: 0 });
      // The released handlers stopped before the next worker started them again.
      const executions = fleet.checkExecutions();
      expect(executions.violations).toEqual([]);
      expect(executions.summary).toMatchObject({ executions: 9, aborted: 3, died: 0 });
    });
  }

  it('an API process exits 0 on SIGTERM', async () => {
    const api = await spawnService({ APP_ROLE: 'api', DATABASE_URL: db.url });
    try {
      await waitForHttp(api, '/health/ready');
      const created = await fetch(`${api.baseUrl}/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ job_type: 'noop' }),
      });
      expect(created.status).toBe(201);
      api.kill('SIGTERM');
      expect(await api.exited).toEqual({ code: 0, signal: null });
    } finally {
      api.kill('SIGKILL');
    }
  });
});
