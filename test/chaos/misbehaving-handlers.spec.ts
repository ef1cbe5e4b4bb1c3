import { eventually, insertJob, insertJobs } from '../support/job-factory';
import { createTestDatabase, type TestDatabase } from '../support/test-db';
import { checkHistory } from './support/history-checker';
import { WorkerFleet, type FleetWorker } from './support/worker-fleet';

/**
 * The watchdog ends a blocked worker a twentieth of the lease before it runs out (at most 500 ms): a
 * 5 s lease gives it 250 ms, which a slow, busy machine still keeps.
 */
const LEASE_MS = 5_000;

interface Death {
  worker: FleetWorker;
  signal: string | null;
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
      LEASE_MS: String(LEASE_MS),
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
    await fleet.dispose();
  });
  afterAll(() => db.drop());

  /** Like a Deployment: a worker that dies is replaced. */
  async function supervise(): Promise<void> {
    while (supervising) {
      for (const worker of fleet.workers) {
        const { signalCode, exitCode } = worker.process.child;
        if ((signalCode === null && exitCode === null) || deaths.some((death) => death.worker === worker))
          continue;
        deaths.push({ worker, signal: signalCode });
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
    // The hung handler ignores its signal and runs on (the documented limit); nothing else overlapped.
    const executions = fleet.checkExecutions();
    expect(executions.violations).toEqual([]);
    expect(executions.summary).toMatchObject({ executions: 2, unfinished: 2 });
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
      // Twice the lease: had the watchdog not ended it, it would still run when the job is rescued.
      payload: { ms: 2 * LEASE_MS, busy: true },
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
    // From the handlers' own records: the blocked handler was gone, with its process, before the job
    // started anywhere else.
    const executions = fleet.checkExecutions();
    expect(executions.violations).toEqual([]);
    expect(executions.summary).toMatchObject({ executions: 2, died: 2 });

    // The watchdog ended each worker before the lease of its blocked attempt ran out. The lease was at
    // least started_at + LEASE_MS (heartbeats only extend it); the time is the watchdog's own last line.
    const { rows: attempts } = await db.pool.query(
      `SELECT worker_id, extract(epoch FROM started_at) * 1000 AS started_ms FROM job_attempts
       WHERE job_id = $1 ORDER BY attempt`,
      [blocking],
    );
    const killed = deaths.filter((death) => death.signal === 'SIGKILL');
    expect(killed.map((death) => death.worker.id).sort()).toEqual(
      attempts.map((row) => row.worker_id).sort(),
    );
    for (const attempt of attempts) {
      const output = killed.find((death) => death.worker.id === attempt.worker_id)!.worker.process.output();
      const line = output
        .split('\n')
        .find((text) => /event loop blocked for \d+ ms while holding leases/.test(text));
      expect(line).toBeDefined();
      const killedAt = Date.parse((JSON.parse(line!) as { time: string }).time);
      expect(killedAt).toBeLessThan(Number(attempt.started_ms) + LEASE_MS);
    }
    expect(await completedCount(healthy)).toBe(40);
  });
});
