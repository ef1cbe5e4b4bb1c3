import { eventually, insertJob, insertJobs } from '../support/job-factory';
import { createTestDatabase, type TestDatabase } from '../support/test-db';
import { checkHistory } from './support/history-checker';
import { WorkerFleet, type FleetWorker } from './support/worker-fleet';

interface Death {
  worker: FleetWorker;
  diedAt: number;
  signal: string | null;
  /** The leases the worker held in the database when it died. */
  leases: Date[];
}

describe('chaos: handlers that hang, block the event loop, or always throw', () => {
  let db: TestDatabase;
  let fleet: WorkerFleet;
  let deaths: Death[];
  let supervising: boolean;
  let supervisor: Promise<void>;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  beforeEach(async () => {
    await db.reset();
    fleet = new WorkerFleet({
      DATABASE_URL: db.url,
      WORKER_CONCURRENCY: '4',
      LEASE_MS: '2000',
      SWEEP_INTERVAL_MS: '500',
      WORKER_POLL_INTERVAL_MS: '250',
      RETRY_BASE_MS: '50',
      RETRY_MAX_MS: '200',
    });
    await fleet.start(2);
    deaths = [];
    supervising = true;
    supervisor = supervise();
  });
  afterEach(async () => {
    supervising = false;
    await supervisor;
    await fleet.stopAll();
  });
  afterAll(() => db.drop());

  /** Like a Deployment: a worker that dies is replaced. Each death is recorded with the leases it held. */
  async function supervise(): Promise<void> {
    while (supervising) {
      for (const worker of fleet.workers) {
        const { signalCode, exitCode } = worker.process.child;
        if ((signalCode === null && exitCode === null) || deaths.some((death) => death.worker === worker))
          continue;
        const death: Death = { worker, diedAt: Date.now(), signal: signalCode, leases: [] };
        deaths.push(death);
        const { rows } = await db.pool.query(
          `SELECT lease_expires_at FROM jobs WHERE worker_id = $1 AND lease_expires_at IS NOT NULL`,
          [worker.id],
        );
        death.leases = rows.map((row) => row.lease_expires_at as Date);
        if (supervising) await fleet.add();
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  const allFinished = (ids: string[]): Promise<true> =>
    eventually(
      async () => {
        const { rows } = await db.pool.query(
          `SELECT count(*)::int AS n FROM jobs WHERE job_id = ANY($1::uuid[]) AND state IN ('completed', 'failed')`,
          [ids],
        );
        return rows[0].n === ids.length ? true : undefined;
      },
      60_000,
      100,
    );

  const story = async (
    jobId: string,
  ): Promise<{ state: string; code: string | null; outcomes: string[] }> => {
    const { rows: job } = await db.pool.query(
      `SELECT state, error->>'code' AS code FROM jobs WHERE job_id = $1`,
      [jobId],
    );
    const { rows: attempts } = await db.pool.query(
      `SELECT outcome FROM job_attempts WHERE job_id = $1 ORDER BY attempt`,
      [jobId],
    );
    return { state: job[0].state, code: job[0].code, outcomes: attempts.map((row) => row.outcome) };
  };

  const completedCount = async (ids: string[]): Promise<number> =>
    (
      await db.pool.query(
        `SELECT count(*)::int AS n FROM jobs WHERE job_id = ANY($1::uuid[]) AND state = 'completed'`,
        [ids],
      )
    ).rows[0].n;

  it('closes the attempts of a handler that ignores abort at its timeout, and fails a poison job, without slowing others', async () => {
    const hung = await insertJob(db.pool, {
      jobType: 'sleep',
      payload: { ms: 3_600_000, ignore_abort: true },
      timeoutMs: 300,
      maxAttempts: 2,
    });
    const poison = await insertJob(db.pool, {
      jobType: 'fail',
      payload: { message: 'poison' },
      maxAttempts: 3,
    });
    const healthy = await insertJobs(db.pool, 40, { jobType: 'echo', payload: { ok: true } });
    const all = [hung, poison, ...healthy];
    await allFinished(all);

    expect((await checkHistory(db.pool, all)).violations).toEqual([]);
    expect(await story(hung)).toEqual({
      state: 'failed',
      code: 'timeout',
      outcomes: ['timed_out', 'timed_out'],
    });
    expect(await story(poison)).toEqual({
      state: 'failed',
      code: 'requested_failure',
      outcomes: ['failed', 'failed', 'failed'],
    });
    expect(await completedCount(healthy)).toBe(40);
    expect(deaths).toEqual([]);
  });

  it('ends a worker whose event loop is blocked before its lease expires, so the job never runs in two places', async () => {
    const blocking = await insertJob(db.pool, {
      jobType: 'sleep',
      payload: { ms: 6_000, busy: true },
      maxAttempts: 2,
    });
    const healthy = await insertJobs(db.pool, 40, { jobType: 'echo', payload: { ok: true } });
    const all = [blocking, ...healthy];
    await allFinished(all);

    expect((await checkHistory(db.pool, all)).violations).toEqual([]);
    expect(await story(blocking)).toEqual({
      state: 'failed',
      code: 'lease_expired',
      outcomes: ['lost', 'lost'],
    });
    const killed = deaths.filter((death) => death.signal === 'SIGKILL');
    expect(killed).toHaveLength(2);
    for (const death of killed) {
      expect(death.worker.process.output()).toMatch(/event loop blocked for \d+ ms while holding leases/);
      expect(death.leases.length).toBeGreaterThan(0);
      for (const lease of death.leases) expect(death.diedAt).toBeLessThan(lease.getTime());
    }
    expect(await completedCount(healthy)).toBe(40);
  });
});
