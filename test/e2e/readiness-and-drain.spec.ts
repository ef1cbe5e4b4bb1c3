import { readdirSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually, insertJob } from '../support/job-factory';
import { spawnService, waitForHttp, type ServiceProcess } from '../support/service-process';
import { TcpProxy } from '../support/tcp-proxy';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

/** How many migrations this version ships, all of which an unmigrated database lacks. */
const SHIPPED_MIGRATIONS = readdirSync(join(__dirname, '..', '..', 'migrations')).filter((name) =>
  name.endsWith('.ts'),
).length;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, any>;
}

/** One request on a connection of its own (no keep-alive pool), so that each shows what a new client gets. */
function call(service: ServiceProcess, method: string, path: string, body?: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const request = httpRequest(
      `${service.baseUrl}${path}`,
      {
        method,
        agent: false,
        headers: payload
          ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
          : {},
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: text ? JSON.parse(text) : {},
          }),
        );
      },
    );
    request.on('error', reject);
    request.end(payload);
  });
}

const readiness = (service: ServiceProcess): Promise<Answer> => call(service, 'GET', '/health/ready');

describe('readiness, liveness and the database being down are three different things', () => {
  const services: ServiceProcess[] = [];
  const proxies: TcpProxy[] = [];
  const databases: TestDatabase[] = [];

  const spawn = async (env: Record<string, string>): Promise<ServiceProcess> => {
    const service = await spawnService(env);
    services.push(service);
    return service;
  };
  const database = async (options: { empty?: boolean } = {}): Promise<TestDatabase> => {
    const db = await createTestDatabase(options);
    databases.push(db);
    return db;
  };

  afterEach(async () => {
    for (const service of services.splice(0)) {
      service.kill('SIGKILL');
      await service.exited;
    }
    for (const proxy of proxies.splice(0)) await proxy.close();
  });
  afterAll(async () => {
    for (const db of databases) await db.drop();
  });

  it('keeps an api on an unmigrated database out of service, naming the schema check, until it is migrated', async () => {
    const db = await database({ empty: true });
    const api = await spawn({ APP_ROLE: 'api', DATABASE_URL: db.url });
    await waitForHttp(api, '/health/live');

    const notReady = await readiness(api);
    expect(notReady.status).toBe(503);
    expect(notReady.headers['retry-after']).toBe('1');
    expect(notReady.body).toMatchObject({
      code: 'not_ready',
      checks: {
        database: { status: 'up' },
        schema: {
          status: 'down',
          reason: expect.stringMatching(
            new RegExp(
              `lacks ${SHIPPED_MIGRATIONS} of the ${SHIPPED_MIGRATIONS} migrations.*APP_ROLE=migrate`,
            ),
          ),
        },
      },
    });
    expect(notReady.body.checks.schema.missing[0]).toBe('CreateJobs1764300000000');
    // Liveness is about the process only: restarting it would not migrate anything.
    expect((await call(api, 'GET', '/health/live')).status).toBe(200);

    // A worker waits for its migrations before it claims, and a SIGTERM ends the wait.
    const worker = await spawn({ APP_ROLE: 'worker', DATABASE_URL: db.url });
    await eventually(async () =>
      /waiting for APP_ROLE=migrate before claiming/.test(worker.output()) ? true : undefined,
    );
    worker.kill('SIGTERM');
    expect(await worker.exited).toEqual({ code: 0, signal: null });

    const migrate = await spawn({ APP_ROLE: 'migrate', DATABASE_URL: db.url });
    expect(await migrate.exited).toEqual({ code: 0, signal: null });
    const ready = await readiness(api);
    expect(ready.status).toBe(200);
    expect(ready.body.info.schema).toEqual({ status: 'up', migrations: SHIPPED_MIGRATIONS });
    expect((await call(api, 'POST', '/jobs', { job_type: 'noop' })).status).toBe(201);
  });

  it('keeps a process on a partly migrated database out of service, naming what is missing, and its worker from claiming', async () => {
    const db = await database();
    const jobId = await insertJob(db.pool, { jobType: 'echo', payload: { early: true } });
    const { rows } = await db.pool.query(
      `DELETE FROM schema_migrations WHERE id = (SELECT max(id) FROM schema_migrations) RETURNING timestamp, name`,
    );
    const [{ timestamp, name }] = rows;
    const [api, worker] = await Promise.all([
      spawn({ APP_ROLE: 'api', DATABASE_URL: db.url }),
      spawn({ APP_ROLE: 'worker', DATABASE_URL: db.url, WORKER_POLL_INTERVAL_MS: '100' }),
    ]);
    for (const service of [api, worker]) {
      await waitForHttp(service, '/health/live');
      const answer = await eventually(async () => {
        const got = await readiness(service);
        return got.body.checks?.schema ? got : undefined;
      });
      expect(answer.status).toBe(503);
      expect(answer.body.checks.schema).toMatchObject({ status: 'down', missing: [name] });
    }
    await eventually(async () =>
      /waiting for APP_ROLE=migrate before claiming/.test(worker.output()) ? true : undefined,
    );
    // The worker's statements may need the missing migration: it has claimed nothing meanwhile.
    await sleep(1_000);
    const before = await db.pool.query(`SELECT state, attempts FROM jobs WHERE job_id = $1`, [jobId]);
    expect(before.rows[0]).toEqual({ state: 'pending', attempts: 0 });

    await db.pool.query(`INSERT INTO schema_migrations (timestamp, name) VALUES ($1, $2)`, [timestamp, name]);
    await waitForHttp(api, '/health/ready', 200, 10_000);
    await waitForHttp(worker, '/health/ready', 200, 10_000);
    const done = await eventually(async () => {
      const { rows: job } = await db.pool.query(`SELECT state, result FROM jobs WHERE job_id = $1`, [jobId]);
      return job[0].state === 'completed' ? job[0] : undefined;
    });
    expect(done.result).toEqual({ early: true });
  });

  it('keeps an api ready during a database outage, answering 503 with Retry-After, while a worker is not ready', async () => {
    const db = await database();
    const proxy = await TcpProxy.create(db.url, { listening: true });
    proxies.push(proxy);
    const env = { DATABASE_URL: proxy.url(db.url), WORKER_POLL_INTERVAL_MS: '100' };
    const [api, worker] = await Promise.all([
      spawn({ APP_ROLE: 'api', ...env }),
      spawn({ APP_ROLE: 'worker', ...env }),
    ]);
    await waitForHttp(api, '/health/ready');
    await waitForHttp(worker, '/health/ready');

    // The database goes away: every connection is dropped and new ones are refused.
    await proxy.close();
    const started = performance.now();
    const outage = await readiness(api);
    expect(outage.status).toBe(200);
    expect(outage.body).toMatchObject({
      status: 'ok',
      info: { shutdown: { status: 'up' }, schema: { status: 'up' } },
      error: { database: { status: 'down' } },
    });
    expect(performance.now() - started).toBeLessThan(3_000);
    const refused = await call(api, 'POST', '/jobs', { job_type: 'noop' });
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.body).toMatchObject({ status: 503, code: 'database_unavailable' });
    // A worker has no clients to answer: it reports itself not ready.
    const workerDown = await eventually(async () => {
      const got = await readiness(worker);
      return got.status === 503 ? got : undefined;
    });
    expect(workerDown.body.checks.database.status).toBe('down');
    for (const service of [api, worker])
      expect((await call(service, 'GET', '/health/live')).status).toBe(200);

    await proxy.listen();
    const created = await eventually(async () => {
      const got = await call(api, 'POST', '/jobs', { job_type: 'noop' });
      return got.status === 201 ? got : undefined;
    }, 15_000);
    expect(created.body.job_id).toEqual(expect.any(String));
    await waitForHttp(worker, '/health/ready', 200, 15_000);
  });

  it('answers requests for SHUTDOWN_DRAIN_DELAY_MS after SIGTERM, not ready and closing connections, then exits 0', async () => {
    const DRAIN_MS = 1_500;
    const db = await database();
    const api = await spawn({
      APP_ROLE: 'api',
      DATABASE_URL: db.url,
      SHUTDOWN_DRAIN_DELAY_MS: String(DRAIN_MS),
    });
    await waitForHttp(api, '/health/ready');

    const signalledAt = performance.now();
    api.kill('SIGTERM');
    let exitedAt = Infinity;
    void api.exited.then(() => (exitedAt = performance.now()));
    await sleep(100);
    const notReady = await readiness(api);
    expect(notReady.status).toBe(503);
    expect(notReady.body.checks.shutdown).toMatchObject({ status: 'down' });
    expect((await call(api, 'GET', '/health/live')).status).toBe(200);

    // New connections keep being accepted and served through the drain; each answer closes its connection.
    let served = 0;
    while (performance.now() - signalledAt < DRAIN_MS - 300) {
      const created = await call(api, 'POST', '/jobs', { job_type: 'noop' });
      expect(created.status).toBe(201);
      expect(created.headers.connection).toBe('close');
      served++;
      await sleep(100);
    }
    expect(served).toBeGreaterThan(3);
    expect(await api.exited).toEqual({ code: 0, signal: null });
    expect(exitedAt - signalledAt).toBeGreaterThanOrEqual(DRAIN_MS);
    expect(exitedAt - signalledAt).toBeLessThan(DRAIN_MS + 3_000);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM jobs`);
    expect(rows[0].n).toBe(served);
  });

  it('answers a request under way at SIGTERM on a keep-alive connection, closes that connection, and exits 0', async () => {
    const db = await database();
    const api = await spawn({ APP_ROLE: 'api', DATABASE_URL: db.url });
    await waitForHttp(api, '/health/ready');
    const job = await call(api, 'POST', '/jobs', { job_type: 'noop' });

    // HTTP/1.1 keeps the connection open after an answer unless told otherwise; a long poll is under way.
    const socket = connect(api.port, '127.0.0.1');
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
    const closedAt = new Promise<number>((resolve) => socket.on('close', () => resolve(performance.now())));
    socket.write(`GET /jobs/${job.body.job_id}?wait_ms=1500 HTTP/1.1\r\nHost: 127.0.0.1:${api.port}\r\n\r\n`);
    await sleep(300);
    const signalledAt = performance.now();
    api.kill('SIGTERM');

    // Answered in full, and the connection closed with it: a keep-alive connection left open would hold
    // the server's close until the exit deadline, and the process would exit 1.
    expect((await closedAt) - signalledAt).toBeLessThan(3_000);
    expect(await api.exited).toEqual({ code: 0, signal: null });
    expect(performance.now() - signalledAt).toBeLessThan(4_000);
    expect(received).toMatch(/^HTTP\/1\.1 200 /);
    expect(received).toMatch(/^connection: close\r$/im);
    expect(received).toContain(`"job_id":"${job.body.job_id}"`);
  });

  it('closes the listener at once on SIGTERM when no drain delay is set (the default outside production)', async () => {
    const db = await database();
    const api = await spawn({ APP_ROLE: 'api', DATABASE_URL: db.url });
    await waitForHttp(api, '/health/ready');
    const signalledAt = performance.now();
    api.kill('SIGTERM');
    expect(await api.exited).toEqual({ code: 0, signal: null });
    expect(performance.now() - signalledAt).toBeLessThan(1_500);
  });
});
