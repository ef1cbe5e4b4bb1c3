import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'pg';
import { EmbeddedDatabase } from '../../src/persistence/embedded-database';
import { eventually } from '../support/job-factory';
import { spawnService, waitForHttp, type ServiceProcess } from '../support/service-process';
import { checkHistory } from './support/history-checker';
import { WorkerFleet } from './support/worker-fleet';

/** How long the server stays down: a scenario setting (heartbeats every LEASE_MS / 3 fail meanwhile). */
const OUTAGE_MS = 2_000;

/** These scenarios stop and cut off a PostgreSQL server of their own, never a shared one. */
describe('chaos: PostgreSQL restarts and dropped connections', () => {
  let folder: string;
  let server: EmbeddedDatabase;
  let pool: Pool;
  let api: ServiceProcess;
  let fleet: WorkerFleet;

  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), 'job-service-outage-'));
    chmodSync(folder, 0o755);
    server = await EmbeddedDatabase.start({ dataDir: join(folder, 'postgres'), ephemeral: true });
    const migrate = await spawnService({ APP_ROLE: 'migrate', DATABASE_URL: server.url });
    expect(await migrate.exited).toEqual({ code: 0, signal: null });
    pool = new Pool({ connectionString: server.url, max: 2 });
    pool.on('error', () => undefined);
    const env = {
      DATABASE_URL: server.url,
      LEASE_MS: '3000',
      SWEEP_INTERVAL_MS: '500',
      WORKER_POLL_INTERVAL_MS: '250',
    };
    api = await spawnService({ APP_ROLE: 'api', ...env });
    await waitForHttp(api, '/health/ready');
    fleet = new WorkerFleet({ ...env, WORKER_CONCURRENCY: '8' });
    await fleet.start(2);
  });

  afterAll(async () => {
    api?.kill('SIGKILL');
    await fleet?.dispose();
    await pool?.end();
    await server?.stop();
    rmSync(folder, { recursive: true, force: true });
  });

  const createJobs = async (count: number): Promise<string[]> => {
    const jobs = Array.from({ length: count }, (_, i) => ({
      job_type: 'sleep',
      payload: { ms: 100 + (i % 5) * 50 },
    }));
    const response = await fetch(`${api.baseUrl}/jobs/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jobs }),
    });
    expect(response.status).toBe(201);
    return ((await response.json()) as { items: { job_id: string }[] }).items.map((job) => job.job_id);
  };

  const drained = (): Promise<true> =>
    eventually(
      async () => {
        const { rows } = await pool.query(
          `SELECT count(*)::int AS n FROM jobs WHERE state NOT IN ('completed', 'failed')`,
        );
        return rows[0].n === 0 ? true : undefined;
      },
      60_000,
      250,
    );

  /** Waits until the workers are in the middle of the batch: some jobs done, some attempts running. */
  const midRun = (jobs: string[]): Promise<true> =>
    eventually(
      async () => {
        const { rows } = await pool.query(
          `SELECT count(*) FILTER (WHERE state = 'completed')::int AS done,
                  count(*) FILTER (WHERE lease_expires_at IS NOT NULL)::int AS live
           FROM jobs WHERE job_id = ANY($1::uuid[])`,
          [jobs],
        );
        return rows[0].done > 0 && rows[0].live > 0 ? true : undefined;
      },
      30_000,
      20,
    );

  /** The readiness status; a process that died meanwhile fails the test with what it printed. */
  const readiness = async (service: ServiceProcess): Promise<number> => {
    try {
      return (await fetch(`${service.baseUrl}/health/ready`)).status;
    } catch (error) {
      if (service.child.exitCode !== null) {
        throw new Error(`the process exited with ${service.child.exitCode}:\n${service.output()}`);
      }
      throw error;
    }
  };

  const everyProcessAlive = (): void => {
    expect(api.child.exitCode).toBeNull();
    for (const worker of fleet.workers) expect(worker.process.child.exitCode).toBeNull();
  };

  it('keeps running through a restart: the api ready and answering 503, workers not ready, then recovers by itself', async () => {
    const accepted = await createJobs(300);
    await midRun(accepted);
    await server.stop();

    // The api stays in its Service, so that clients get its prompt 503 rather than connection errors; its
    // readiness reports the database as down without failing.
    const apiReadiness = await eventually(
      async () => {
        const response = await fetch(`${api.baseUrl}/health/ready`);
        const body = (await response.json()) as { error?: { database?: { status: string } } };
        return body.error?.database?.status === 'down' ? response.status : undefined;
      },
      15_000,
      100,
    );
    expect(apiReadiness).toBe(200);
    for (const worker of fleet.workers) {
      await eventually(
        async () => ((await readiness(worker.process)) === 503 ? true : undefined),
        15_000,
        100,
      );
    }
    const started = Date.now();
    const refused = await fetch(`${api.baseUrl}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ job_type: 'noop' }),
    });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await refused.json()).toMatchObject({ status: 503, code: 'database_unavailable' });
    // Prompt: a refused connection fails at once, and no attempt waits longer than the pool's 5 s
    // connection timeout.
    expect(Date.now() - started).toBeLessThan(6_000);
    // The outage goes on for a while, long enough for heartbeats and claims to fail meanwhile.
    await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));

    await server.restart();
    await waitForHttp(api, '/health/ready', 200, 20_000);
    const after = await fetch(`${api.baseUrl}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ job_type: 'noop' }),
    });
    expect(after.status).toBe(201);
    accepted.push(((await after.json()) as { job_id: string }).job_id);

    await drained();
    const { violations, summary } = await checkHistory(pool, accepted);
    expect(violations).toEqual([]);
    expect(summary.jobs).toBe(301);
    expect(fleet.checkExecutions().violations).toEqual([]);
    everyProcessAlive();
  });

  it('recovers when every backend connection is terminated mid-run', async () => {
    const accepted = await createJobs(300);
    await midRun(accepted);
    const { rows } = await pool.query(
      `SELECT count(*)::int AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid()) AS terminated`,
    );
    expect(rows[0].n).toBeGreaterThan(0);
    await drained();
    const { violations } = await checkHistory(pool, accepted);
    expect(violations).toEqual([]);
    expect(fleet.checkExecutions().violations).toEqual([]);
    everyProcessAlive();
    for (const worker of fleet.workers) await waitForHttp(worker.process, '/health/ready', 200, 10_000);
  });
});
