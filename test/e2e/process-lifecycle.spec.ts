import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually, insertJob, insertJobs } from '../support/job-factory';
import { freePort, spawnService, waitForHttp, type ServiceProcess } from '../support/service-process';
import { TcpProxy } from '../support/tcp-proxy';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

type Exit = Awaited<ServiceProcess['exited']>;

/** The process's exit, or 'still running' if it has not exited within `ms`. */
async function exitWithin(service: ServiceProcess, ms: number): Promise<Exit | 'still running'> {
  const timer = new AbortController();
  try {
    return await Promise.race([
      service.exited,
      sleep(ms, 'still running' as const, { signal: timer.signal }).catch(() => 'still running' as const),
    ]);
  } finally {
    timer.abort();
  }
}

describe('the service process at start-up and shutdown', () => {
  let db: TestDatabase;
  const services: ServiceProcess[] = [];
  const proxies: TcpProxy[] = [];
  const servers: Server[] = [];

  const spawn = async (env: Record<string, string>): Promise<ServiceProcess> => {
    const service = await spawnService(env);
    services.push(service);
    return service;
  };
  const proxyTo = async (listening: boolean): Promise<TcpProxy> => {
    const proxy = await TcpProxy.create(db.url, { listening });
    proxies.push(proxy);
    return proxy;
  };
  const leasesHeldBy = async (workerId: string): Promise<number> =>
    (
      await db.pool.query(
        `SELECT count(*)::int AS n FROM jobs WHERE worker_id = $1 AND lease_expires_at IS NOT NULL`,
        [workerId],
      )
    ).rows[0].n;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  beforeEach(() => db.reset());
  afterEach(async () => {
    for (const service of services.splice(0)) {
      service.kill('SIGKILL');
      await service.exited;
    }
    for (const proxy of proxies.splice(0)) await proxy.close();
    for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
  });
  afterAll(() => db.drop());

  it('claims nothing and exits 1 when its port is already in use', async () => {
    const port = await freePort();
    const occupier = createServer();
    servers.push(occupier);
    await new Promise<void>((resolve) => occupier.listen(port, '0.0.0.0', resolve));
    await insertJobs(db.pool, 100, { jobType: 'sleep', payload: { ms: 60_000 } });

    const worker = await spawn({
      APP_ROLE: 'worker',
      DATABASE_URL: db.url,
      PORT: String(port),
      WORKER_CONCURRENCY: '100',
    });
    expect(await exitWithin(worker, 30_000)).toEqual({ code: 1, signal: null });
    expect(worker.output()).toMatch(/EADDRINUSE/);

    const { rows } = await db.pool.query(
      `SELECT state, attempts, lease_expires_at IS NOT NULL AS leased, count(*)::int AS n
       FROM jobs GROUP BY 1, 2, 3`,
    );
    expect(rows).toEqual([{ state: 'pending', attempts: 0, leased: false, n: 100 }]);
    const { rows: records } = await db.pool.query(`SELECT count(*)::int AS n FROM job_attempts`);
    expect(records[0].n).toBe(0);
  });

  it('ends in time and leaves no job leased when SIGTERM arrives at any moment of start-up', async () => {
    const GRACE_MS = 2_000;
    const RUNS_PER_ROLE = 20;
    const env = (role: string, workerId: string): Record<string, string> => ({
      APP_ROLE: role,
      DATABASE_URL: db.url,
      WORKER_ID: workerId,
      WORKER_CONCURRENCY: '4',
      WORKER_POLL_INTERVAL_MS: '100',
      SHUTDOWN_GRACE_MS: String(GRACE_MS),
    });
    // Long jobs outlive the grace period and are released at every shutdown (an `interrupted` attempt does
    // not count against max_attempts 1, so any other ending would fail the job); each run adds short ones
    // that finish within the grace period.
    await insertJobs(db.pool, 6, { jobType: 'sleep', payload: { ms: 30_000 }, maxAttempts: 1 });

    // The start-up time of each role on this machine right now, both starting side by side as in the runs
    // below: from spawn to the first 200 of /health/ready. The second of two rounds counts (the first
    // also pays for cold file caches).
    const startupMs: Record<string, number> = {};
    for (let round = 0; round < 2; round++) {
      await Promise.all(
        ['worker', 'all'].map(async (role) => {
          const spawnedAt = performance.now();
          const probe = await spawn(env(role, `probe-${role}-${round}`));
          await waitForHttp(probe, '/health/ready', 200, 30_000);
          startupMs[role] = performance.now() - spawnedAt;
          probe.kill('SIGTERM');
          expect(await exitWithin(probe, GRACE_MS + 5_000)).toEqual({ code: 0, signal: null });
        }),
      );
    }

    interface Run {
      role: string;
      workerId: string;
      delayMs: number;
      exit: Exit | 'still running';
      tookMs: number;
    }
    // One lane per role, side by side. Of its runs, the first IN_START_UP are signalled at a random moment
    // of the i-th of IN_START_UP equal slices of [0, 1.1 x start-up time], counted from the spawn of the
    // child process; the others at a random moment of the 300 ms after it first answered ready, when it is
    // claiming and running jobs (how long start-up takes varies too much from run to run to get there by
    // timing alone).
    const IN_START_UP = 16;
    const lane = async (role: string): Promise<Run[]> => {
      const runs: Run[] = [];
      for (let i = 0; i < RUNS_PER_ROLE; i++) {
        await insertJobs(db.pool, 2, { jobType: 'sleep', payload: { ms: 150 }, maxAttempts: 1 });
        const workerId = `${role}-run-${i}`;
        const spawnedAt = performance.now();
        const service = await spawn(env(role, workerId));
        if (i < IN_START_UP) {
          const delayMs = ((i + Math.random()) / IN_START_UP) * 1.1 * startupMs[role];
          await sleep(Math.max(0, delayMs - (performance.now() - spawnedAt)));
        } else {
          await waitForHttp(service, '/health/ready', 200, 30_000);
          await sleep(Math.random() * 300);
        }
        const signalledAt = performance.now();
        service.kill('SIGTERM');
        const exit = await exitWithin(service, GRACE_MS + 10_000);
        const delayMs = signalledAt - spawnedAt;
        runs.push({ role, workerId, delayMs, exit, tookMs: performance.now() - signalledAt });
      }
      return runs;
    };
    const runs = (await Promise.all([lane('worker'), lane('all')])).flat();

    const attemptsBy = async (workerId: string): Promise<{ open: number; outcomes: string[] }> => {
      const { rows: closed } = await db.pool.query(`SELECT outcome FROM job_attempts WHERE worker_id = $1`, [
        workerId,
      ]);
      const { rows: onJob } = await db.pool.query(
        `SELECT state FROM jobs WHERE worker_id = $1 AND lease_expires_at IS NULL AND state = 'completed'`,
        [workerId],
      );
      return {
        open: await leasesHeldBy(workerId),
        outcomes: [...closed.map((row) => row.outcome as string), ...onJob.map(() => 'succeeded')],
      };
    };
    let claimed = 0;
    for (const run of runs) {
      const { open, outcomes } = await attemptsBy(run.workerId);
      if (outcomes.length > 0) claimed++;
      const context = { ...run, open, outcomes };
      expect(context).toMatchObject({ open: 0 });
      for (const outcome of outcomes) expect(['interrupted', 'succeeded']).toContain(outcome);
      if (run.exit !== 'still running' && run.exit.signal === 'SIGTERM') {
        // Signalled while Node itself was still booting, before main.ts's first import put the handlers in
        // place: the process had opened nothing yet. That window is a small part of start-up.
        expect(context).toMatchObject({ outcomes: [] });
        expect(run.delayMs).toBeLessThan(0.2 * startupMs[run.role]);
      } else {
        expect(context).toMatchObject({ exit: { code: 0, signal: null } });
      }
      // The process arms its last-resort exit (grace + 4 s) once its code has loaded; a signal that comes
      // while it loads waits for that, which takes at most a start-up's time on this machine.
      expect(run.tookMs).toBeLessThan(GRACE_MS + 4_000 + startupMs[run.role]);
    }
    const { rows: failed } = await db.pool.query(
      `SELECT count(*)::int AS n FROM jobs WHERE state = 'failed'`,
    );
    expect(failed[0].n).toBe(0);
    // The figures of this run, for whoever reads the test output.
    const byRole = (role: string): string => {
      const mine = runs.filter((run) => run.role === role);
      const took = mine.map((run) => run.tookMs);
      const killed = mine.filter((run) => run.exit !== 'still running' && run.exit.signal).length;
      return (
        `${role}: start-up ${Math.round(startupMs[role])} ms, ${mine.length} runs, delays ` +
        `${Math.round(Math.min(...mine.map((r) => r.delayMs)))}-${Math.round(Math.max(...mine.map((r) => r.delayMs)))} ms, ` +
        `exit after SIGTERM max ${Math.round(Math.max(...took))} ms, ${killed} ended by the signal itself`
      );
    };
    console.log(`${byRole('worker')}\n${byRole('all')}\nruns that had claimed jobs: ${claimed}`);
    expect(claimed).toBeGreaterThan(0);
  }, 300_000);

  it('exits promptly on SIGTERM while its LISTEN connection is still being opened', async () => {
    const proxy = await proxyTo(true);
    // Only the LISTEN connection is slow to open (it names itself in its startup message).
    proxy.holdBack = (firstBytes) => (firstBytes.includes('job-service-worker-listener') ? 4_500 : 0);
    const worker = await spawn({ APP_ROLE: 'worker', DATABASE_URL: proxy.url(db.url) });
    await waitForHttp(worker, '/health/ready', 200, 30_000);
    expect(proxy.heldBack).toBe(1);

    worker.kill('SIGTERM');
    expect(await exitWithin(worker, 3_000)).toEqual({ code: 0, signal: null });
  }, 60_000);

  it('exits within the grace period when the database stops answering while a job runs', async () => {
    const GRACE_MS = 2_000;
    const proxy = await proxyTo(true);
    const jobId = await insertJob(db.pool, { jobType: 'sleep', payload: { ms: 60_000 } });
    const worker = await spawn({
      APP_ROLE: 'worker',
      DATABASE_URL: proxy.url(db.url),
      WORKER_ID: 'cut-off',
      SHUTDOWN_GRACE_MS: String(GRACE_MS),
      DB_STATEMENT_TIMEOUT_MS: '2000',
    });
    await eventually(async () => ((await leasesHeldBy('cut-off')) === 1 ? true : undefined), 30_000);

    // Queries sent into the silence fail after DB_STATEMENT_TIMEOUT_MS + 1 s instead of hanging.
    proxy.blackhole();
    await eventually(async () => (/Query read timeout/.test(worker.output()) ? true : undefined), 15_000, 50);
    const signalledAt = performance.now();
    worker.kill('SIGTERM');
    const exit = await exitWithin(worker, GRACE_MS + 15_000);
    const tookMs = performance.now() - signalledAt;
    expect(exit).not.toBe('still running');
    expect(tookMs).toBeLessThan(GRACE_MS + 6_000);
    // 0 when the orderly close finished, 1 when the exit deadline (grace + 4 s) had to end it.
    expect([0, 1]).toContain((exit as Exit).code);
    // Nothing could be written back: the job keeps its lease until the rescue sweep takes it.
    const { rows } = await db.pool.query(`SELECT state FROM jobs WHERE job_id = $1`, [jobId]);
    expect(rows[0].state).toBe('running');
  }, 60_000);

  it('waits for a database that is not reachable yet, then runs jobs', async () => {
    const proxy = await proxyTo(false);
    const jobId = await insertJob(db.pool, { jobType: 'echo', payload: { late: true } });
    const worker = await spawn({ APP_ROLE: 'worker', DATABASE_URL: proxy.url(db.url) });
    const retries = (): number =>
      worker.output().match(/the database does not answer; retrying/g)?.length ?? 0;
    // Retries come after 0.5, 1 and 2 s: three of them is about 3.5 s of waiting.
    await eventually(async () => (retries() >= 3 ? true : undefined), 30_000, 50);
    expect(worker.child.exitCode).toBeNull();

    await proxy.listen();
    await eventually(
      async () => {
        const { rows } = await db.pool.query(`SELECT state, result FROM jobs WHERE job_id = $1`, [jobId]);
        return rows[0].state === 'completed' ? rows[0] : undefined;
      },
      30_000,
      100,
    );
    worker.kill('SIGTERM');
    expect(await exitWithin(worker, 10_000)).toEqual({ code: 0, signal: null });
  }, 60_000);

  it('gives up after DB_CONNECT_RETRY_MS with a message naming it, and a SIGTERM ends the wait', async () => {
    const proxy = await proxyTo(false);
    const impatient = await spawn({
      APP_ROLE: 'worker',
      DATABASE_URL: proxy.url(db.url),
      DB_CONNECT_RETRY_MS: '1000',
    });
    expect(await exitWithin(impatient, 20_000)).toEqual({ code: 1, signal: null });
    expect(impatient.output()).toMatch(/the database does not answer; retrying/);
    expect(impatient.output()).toMatch(/did not answer within DB_CONNECT_RETRY_MS \(1000 ms\)/);

    const patient = await spawn({ APP_ROLE: 'worker', DATABASE_URL: proxy.url(db.url) });
    await eventually(async () => (/retrying/.test(patient.output()) ? true : undefined), 30_000, 50);
    patient.kill('SIGTERM');
    expect(await exitWithin(patient, 2_000)).toEqual({ code: 0, signal: null });
  }, 60_000);

  it('stops the embedded PostgreSQL it was starting when SIGTERM arrives meanwhile', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'job-service-lifecycle-'));
    chmodSync(folder, 0o755); // as root the server runs as `postgres`, which must be able to enter it
    const dataDir = join(folder, 'postgres');
    const serverPid = (): number | undefined =>
      existsSync(join(dataDir, 'postmaster.pid'))
        ? Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0])
        : undefined;
    try {
      const service = await spawn({ APP_ROLE: 'worker', EMBEDDED_PG_DIR: dataDir, LOG_LEVEL: 'info' });
      await eventually(
        async () => (/starting the embedded PostgreSQL/.test(service.output()) ? true : undefined),
        30_000,
        10,
      );
      service.kill('SIGTERM');
      expect(await exitWithin(service, 60_000)).toEqual({ code: 0, signal: null });
      expect(service.output()).toMatch(/embedded PostgreSQL is running/);
      expect(serverPid()).toBeUndefined();
    } finally {
      const leftOver = serverPid();
      if (leftOver) process.kill(leftOver, 'SIGINT');
      await eventually(async () => (serverPid() === undefined ? true : undefined), 15_000, 100);
      rmSync(folder, { recursive: true, force: true });
    }
  }, 120_000);
});
