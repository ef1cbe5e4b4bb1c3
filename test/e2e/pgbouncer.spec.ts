import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readExecutionLogs, recordExecutionsTo } from '../chaos/support/execution-log';
import { eventually } from '../support/job-factory';
import { startPgBouncer, type PgBouncer } from '../support/pgbouncer';
import { spawnService, waitForHttp, type ServiceProcess } from '../support/service-process';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

const WORKERS = 4;
const BATCHES = 10;
const BATCH_SIZE = 50;
const SINGLE_POSTS = 50;
/** Five processes starting at once on a busy two-core machine can take a while to be ready. */
const START_TIMEOUT_MS = 120_000;
/** What DB_STATEMENT_TIMEOUT_MS is left at; the database gets the same as its own setting (see beforeAll). */
const STATEMENT_TIMEOUT_MS = 30_000;

/**
 * The whole service through a real PgBouncer (Debian's, 1.18 on Debian 12) in transaction pooling mode
 * with four server connections, configured as it comes: no ignore_startup_parameters, no prepared
 * statement support. Four worker processes and an api run through it with DB_PREPARED_STATEMENTS=false.
 */
describe('through PgBouncer in transaction pooling mode', () => {
  let db: TestDatabase;
  let bouncer: PgBouncer;
  let processes: ServiceProcess[] = [];
  let logDir: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    bouncer = await startPgBouncer(db.url, { poolSize: 4 });
    // Behind a pooler statement_timeout is the role's or the database's own (README, "PgBouncer").
    await db.pool.query(`ALTER DATABASE ${db.name} SET statement_timeout = ${STATEMENT_TIMEOUT_MS}`);
  });
  beforeEach(async () => {
    await db.reset();
    logDir = mkdtempSync(join(tmpdir(), 'pgbouncer-executions-'));
  });
  afterEach(async () => {
    for (const service of processes) service.kill('SIGKILL');
    await Promise.all(processes.map((service) => service.exited));
    processes = [];
    rmSync(logDir, { recursive: true, force: true });
  });
  afterAll(async () => {
    await bouncer?.stop();
    await db?.drop();
  });

  async function startFleet(env: Record<string, string>): Promise<ServiceProcess> {
    const common = {
      DATABASE_URL: bouncer.url(db.name),
      DB_PREPARED_STATEMENTS: 'false',
      DB_POOL_SIZE: '4',
      LOG_LEVEL: 'info',
      ...env,
    };
    const api = await spawnService({ ...common, APP_ROLE: 'api' });
    processes.push(api);
    for (let n = 1; n <= WORKERS; n++) {
      const recorder = recordExecutionsTo(join(logDir, `worker-${n}.jsonl`));
      const worker = await spawnService(
        {
          ...common,
          ...recorder.env,
          APP_ROLE: 'worker',
          WORKER_ID: `bounced-${n}`,
          WORKER_CONCURRENCY: '8',
        },
        { nodeArgs: recorder.nodeArgs },
      );
      processes.push(worker);
    }
    await Promise.all(
      processes.map((service) => waitForHttp(service, '/health/ready', 200, START_TIMEOUT_MS)),
    );
    return api;
  }

  async function post(api: ServiceProcess, path: string, body: unknown): Promise<Record<string, any>> {
    const response = await fetch(`${api.baseUrl}${path}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    const answer = (await response.json()) as Record<string, any>;
    if (response.status !== 201)
      throw new Error(`POST ${path}: ${response.status} ${JSON.stringify(answer)}`);
    return answer;
  }

  const sleepJob = (ms: number): Record<string, unknown> => ({ job_type: 'sleep', payload: { ms } });

  it.each([
    ['with DATABASE_LISTEN_URL, a direct connection for LISTEN', true],
    ['without DATABASE_LISTEN_URL, by polling', false],
  ])(
    'completes every job exactly once %s',
    async (_name, listen) => {
      const api = await startFleet(
        listen
          ? // A poll this slow leaves the notifications as the only way to wake an idle worker.
            { DATABASE_LISTEN_URL: db.url, WORKER_POLL_INTERVAL_MS: '600000' }
          : { WORKER_POLL_INTERVAL_MS: '250' },
      );

      // One job to an idle fleet, awaited with a long poll: through LISTEN the workers hear of it and the
      // api of its end at once; without, the workers' poll and the long poll's look every second find them
      // (with LISTEN a long poll looks again by itself only every 15 s).
      const sentAt = Date.now();
      const first = await post(api, '/jobs', sleepJob(10));
      const waited = await fetch(`${api.baseUrl}/jobs/${first.job_id}?wait_ms=20000`);
      const firstDone = (await waited.json()) as Record<string, any>;
      expect(firstDone.state).toBe('completed');
      expect(Date.now() - sentAt).toBeLessThan(5_000);

      // Then a crowd: batches and single jobs, all at once.
      const ids = [first.job_id as string];
      const created = await Promise.all([
        ...Array.from({ length: BATCHES }, () =>
          post(api, '/jobs/batch', {
            jobs: Array.from({ length: BATCH_SIZE }, (_, i) => sleepJob(i % 20)),
          }).then((answer) => (answer.items as { job_id: string }[]).map((job) => job.job_id)),
        ),
        ...Array.from({ length: SINGLE_POSTS }, (_, i) =>
          post(api, '/jobs', sleepJob(i % 20)).then((answer) => [answer.job_id as string]),
        ),
      ]);
      ids.push(...created.flat());
      const total = 1 + BATCHES * BATCH_SIZE + SINGLE_POSTS;
      expect(new Set(ids).size).toBe(total);

      await eventually(
        async () => {
          const { rows } = await db.pool.query(
            `SELECT count(*)::int AS n FROM jobs WHERE state = 'completed'`,
          );
          return rows[0].n === total ? true : undefined;
        },
        90_000,
        200,
      );

      // The database: each job completed by its first attempt, and no attempt closed any other way.
      const { rows: jobs } = await db.pool.query(
        `SELECT job_id, state, attempts, failed_attempts, worker_id FROM jobs ORDER BY job_id`,
      );
      expect(jobs.map((job) => job.job_id).sort()).toEqual([...ids].sort());
      for (const job of jobs)
        expect(job).toMatchObject({ state: 'completed', attempts: 1, failed_attempts: 0 });
      const { rows: closed } = await db.pool.query(`SELECT count(*)::int AS n FROM job_attempts`);
      expect(closed[0].n).toBe(0);
      // The handlers: each job ran once, from start to end, nothing aborted.
      const events = readExecutionLogs(logDir);
      const runs = new Map<string, string[]>();
      for (const event of events) runs.set(event.job_id, [...(runs.get(event.job_id) ?? []), event.event]);
      expect(runs.size).toBe(total);
      for (const [, seen] of runs) expect(seen).toEqual(['start', 'end']);
      // The API: the attempt history each client sees says the same.
      for (const jobId of ids.slice(0, 20)) {
        const detail = (await (await fetch(`${api.baseUrl}/jobs/${jobId}`)).json()) as Record<string, any>;
        expect(detail.attempt_history).toEqual([
          expect.objectContaining({ attempt: 1, outcome: 'succeeded' }),
        ]);
      }
      // Every worker took a share.
      expect(new Set(jobs.map((job) => job.worker_id)).size).toBe(WORKERS);

      // It all went through PgBouncer, on no more than its four server connections.
      const clients = (await bouncer.admin('SHOW CLIENTS')).filter((row) => row.database === db.name);
      const byName = (name: string): number => clients.filter((row) => row.application_name === name).length;
      expect(byName('job-service-api')).toBeGreaterThanOrEqual(1);
      expect(byName('job-service-worker')).toBeGreaterThanOrEqual(WORKERS);
      const servers = (await bouncer.admin('SHOW SERVERS')).filter((row) => row.database === db.name);
      expect(servers.length).toBeLessThanOrEqual(4);
      // No notification reached a server session that PgBouncer had handed back: nothing LISTENed through it.
      expect(bouncer.output()).not.toMatch(/when not linked/);

      for (const service of processes) {
        const output = service.output();
        expect(output).toMatch(/DATABASE_URL goes through a connection pooler/);
        expect(output).not.toMatch(/prepared statement|unsupported startup parameter|"level":50/);
        // The database has the statement_timeout DB_STATEMENT_TIMEOUT_MS asks for: nothing to warn about.
        expect(output).not.toMatch(/does not carry statement_timeout/);
      }
      const workerOutput = processes.slice(1).map((worker) => worker.output());
      for (const output of workerOutput) {
        if (listen) expect(output).not.toMatch(/no LISTEN/);
        else expect(output).toMatch(/no LISTEN: DATABASE_URL goes through a pooler/);
      }
    },
    300_000,
  );

  it('warns when the server has another statement_timeout than DB_STATEMENT_TIMEOUT_MS, and still serves', async () => {
    const api = await spawnService({
      APP_ROLE: 'api',
      DATABASE_URL: bouncer.url(db.name),
      DB_PREPARED_STATEMENTS: 'false',
      DB_STATEMENT_TIMEOUT_MS: '5000',
      LOG_LEVEL: 'info',
    });
    processes.push(api);
    await waitForHttp(api, '/health/ready', 200, START_TIMEOUT_MS);
    expect(api.output()).toMatch(/does not carry statement_timeout/);
    expect(api.output()).toMatch(/"server_statement_timeout_ms":30000/);
    const created = await post(api, '/jobs', sleepJob(1));
    expect(created.state).toBe('pending');
  }, 180_000);
});
