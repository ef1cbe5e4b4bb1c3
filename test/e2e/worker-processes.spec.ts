import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { insertJobs, eventually } from '../support/job-factory';
import { spawnService, waitForHttp, type ServiceProcess } from '../support/service-process';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

describe('separate worker processes (APP_ROLE=worker)', () => {
  let db: TestDatabase;
  let workers: ServiceProcess[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    for (const worker of workers) worker.kill('SIGKILL');
    await Promise.all(workers.map((worker) => worker.exited));
    workers = [];
  });
  afterAll(() => db.drop());

  it('four workers sharing 2,000 jobs complete each exactly once, in one attempt, each doing its part', async () => {
    const concurrency = 16;
    const pollIntervalMs = 250;
    // Every worker is ready before the first job exists, so none can miss the work by starting late.
    workers = await Promise.all(
      [1, 2, 3, 4].map((n) =>
        spawnService({
          APP_ROLE: 'worker',
          DATABASE_URL: db.url,
          WORKER_ID: `proc-${n}`,
          WORKER_CONCURRENCY: String(concurrency),
          WORKER_POLL_INTERVAL_MS: String(pollIntervalMs),
        }),
      ),
    );
    await Promise.all(workers.map((worker) => waitForHttp(worker, '/health/ready')));
    // 50 ms each: the four together need at least 2,000 * 50 / (4 * 16) ms, about 1.6 s, six poll
    // intervals, however fast the machine, so every worker finds the queue full when it next polls.
    const ids = await insertJobs(db.pool, 2_000, { jobType: 'sleep', payload: { ms: 50 } });

    await eventually(
      async () => {
        const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM jobs WHERE state = 'completed'`);
        return rows[0].n === 2_000 ? true : undefined;
      },
      60_000,
      100,
    );
    const { rows } = await db.pool.query(
      `SELECT job_id, attempts, failed_attempts, worker_id, result FROM jobs ORDER BY job_id`,
    );
    expect(rows.map((row) => row.job_id).sort()).toEqual([...ids].sort());
    for (const row of rows) {
      expect(row).toMatchObject({
        attempts: 1,
        failed_attempts: 0,
        result: { slept_ms: expect.any(Number) },
      });
    }
    const { rows: records } = await db.pool.query('SELECT count(*)::int AS n FROM job_attempts');
    expect(records[0].n).toBe(0);
    // The work was shared: each worker's first claim found a full queue and filled all its slots.
    const perWorker = new Map<string, number>();
    for (const row of rows) perWorker.set(row.worker_id, (perWorker.get(row.worker_id) ?? 0) + 1);
    expect([...perWorker.keys()].sort()).toEqual(['proc-1', 'proc-2', 'proc-3', 'proc-4']);
    for (const done of perWorker.values()) expect(done).toBeGreaterThanOrEqual(concurrency);
  });

  it('never runs more attempts at once than WORKER_CONCURRENCY, nor claims more jobs than it has free slots', async () => {
    const worker = await spawnService({
      APP_ROLE: 'worker',
      DATABASE_URL: db.url,
      WORKER_ID: 'bounded',
      WORKER_CONCURRENCY: '4',
    });
    workers.push(worker);
    await waitForHttp(worker, '/health/ready');
    const ids = await insertJobs(db.pool, 40, { jobType: 'sleep', payload: { ms: 150 } });

    // The worker's own count of attempts it runs, sampled until every job is done.
    const liveSeen: number[] = [];
    await eventually(
      async () => {
        const metrics = await (await fetch(`${worker.baseUrl}/metrics`)).text();
        liveSeen.push(Number(/^worker_live_attempts (\d+)/m.exec(metrics)![1]));
        const { rows } = await db.pool.query(
          `SELECT count(*)::int AS n FROM jobs WHERE state = 'completed' AND job_id = ANY($1)`,
          [ids],
        );
        return rows[0].n === 40 ? true : undefined;
      },
      30_000,
      5,
    );
    expect(Math.max(...liveSeen)).toBe(4);
    // Every claim statement sets one attempt_started_at (its transaction's now()) on the jobs it takes.
    const { rows: claims } = await db.pool.query(
      `SELECT count(*)::int AS jobs FROM jobs WHERE worker_id = 'bounded' GROUP BY attempt_started_at`,
    );
    expect(claims.reduce((sum, claim) => sum + claim.jobs, 0)).toBe(40);
    expect(Math.max(...claims.map((claim) => claim.jobs))).toBe(4);
  });

  it('serves /health/live and /health/ready but not the jobs API', async () => {
    const worker = await spawnService({ APP_ROLE: 'worker', DATABASE_URL: db.url });
    workers.push(worker);
    await waitForHttp(worker, '/health/ready');
    const ready = (await (await fetch(`${worker.baseUrl}/health/ready`)).json()) as Record<string, any>;
    expect(ready.info).toMatchObject({ database: { status: 'up' }, worker: { status: 'up' } });
    expect((await fetch(`${worker.baseUrl}/health/live`)).status).toBe(200);
    expect((await fetch(`${worker.baseUrl}/jobs`)).status).toBe(404);
    expect((await fetch(`${worker.baseUrl}/metrics`)).status).toBe(200);
  });

  it('exits 0 on SIGTERM when idle', async () => {
    const worker = await spawnService({ APP_ROLE: 'worker', DATABASE_URL: db.url });
    workers.push(worker);
    await waitForHttp(worker, '/health/ready');
    worker.kill('SIGTERM');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
  });

  it('runs a job and stops with no warning from Node (one statement at a time on its LISTEN connection)', async () => {
    const worker = await spawnService({ APP_ROLE: 'worker', DATABASE_URL: db.url });
    workers.push(worker);
    await waitForHttp(worker, '/health/ready');
    const [id] = await insertJobs(db.pool, 1, { jobType: 'noop' });
    await eventually(async () => {
      const { rows } = await db.pool.query(`SELECT state FROM jobs WHERE job_id = $1`, [id]);
      return rows[0].state === 'completed' ? true : undefined;
    });
    worker.kill('SIGTERM');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    expect(worker.output()).not.toMatch(/Warning/);
  });
});

describe('process start-up', () => {
  it('APP_ROLE=migrate applies the migrations to an empty database and exits 0', async () => {
    const db = await createTestDatabase({ empty: true });
    try {
      const migrate = await spawnService({ APP_ROLE: 'migrate', DATABASE_URL: db.url });
      expect(await migrate.exited).toEqual({ code: 0, signal: null });
      const { rows } = await db.pool.query(`SELECT timestamp FROM schema_migrations ORDER BY timestamp`);
      const files = readdirSync(join(__dirname, '..', '..', 'migrations'))
        .map((file) => Number(file.split('-')[0]))
        .sort();
      expect(rows.map((row) => Number(row.timestamp))).toEqual(files);
      const again = await spawnService({ APP_ROLE: 'migrate', DATABASE_URL: db.url });
      expect(await again.exited).toEqual({ code: 0, signal: null });
    } finally {
      await db.drop();
    }
  });

  it('exits 1 naming each invalid variable when the configuration is bad', async () => {
    const service = await spawnService({
      APP_ROLE: 'everything',
      WORKER_CONCURRENCY: 'many',
      DATABASE_URL: 'postgres://x/y',
    });
    expect(await service.exited).toEqual({ code: 1, signal: null });
    expect(service.output()).toMatch(
      /APP_ROLE must be one of api, worker, all, migrate \(got "everything"\)/,
    );
    expect(service.output()).toMatch(/WORKER_CONCURRENCY must be a whole number/);
  });

  it('refuses to start in production without DATABASE_URL', async () => {
    const service = await spawnService({ NODE_ENV: 'production' });
    expect(await service.exited).toEqual({ code: 1, signal: null });
    expect(service.output()).toMatch(/DATABASE_URL is required when NODE_ENV=production/);
  });
});
