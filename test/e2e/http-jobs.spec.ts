import { createHmac, timingSafeEqual } from 'node:crypto';
import request from 'supertest';
import { eventually } from '../support/job-factory';
import { startHttpTarget, type HttpTarget, type ReceivedRequest } from '../support/http-target';
import { expectInvalid, type Json } from '../support/problems';
import { freePort, spawnService, waitForHttp, type ServiceProcess } from '../support/service-process';
import { createTestDatabase, type TestDatabase } from '../support/test-db';
import { startTestApp } from '../support/test-app';

const SECRET = 'e2e-signing-secret-at-least-32-characters';
const RETRY_MAX_MS = 3_000;
const TERMINAL = ['completed', 'failed', 'cancelled'];

/** The receiver's check of Job-Signature, as the README shows it, written here from the contract alone. */
function signatureValid(received: ReceivedRequest, secret: string): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(received.headers['job-signature'] ?? ''));
  if (!match) return false;
  if (Math.abs(Date.now() / 1000 - Number(match[1])) > 300) return false;
  const expected = createHmac('sha256', secret).update(`${match[1]}.`).update(received.body).digest();
  return timingSafeEqual(expected, Buffer.from(match[2], 'hex'));
}

describe('http jobs run by a real worker process against real local servers', () => {
  let db: TestDatabase;
  let service: ServiceProcess;
  let target: HttpTarget;
  let loopback: HttpTarget;
  /** Which attempt of which job the target is answering: the test's script keys on these. */
  const attemptOf = (received: ReceivedRequest): number => Number(received.headers['job-attempt']);
  const jobOf = (received: ReceivedRequest): string => String(received.headers['job-id']);

  async function create(payload: Json, extra: Json = {}): Promise<string> {
    const response = await request(service.baseUrl)
      .post('/jobs')
      .send({ job_type: 'http', payload, ...extra });
    expect({ status: response.status, body: response.body }).toMatchObject({ status: 201 });
    return response.body.job_id as string;
  }

  async function finished(jobId: string, timeoutMs = 20_000): Promise<Json> {
    return eventually(
      async () => {
        const job = (await request(service.baseUrl).get(`/jobs/${jobId}`)).body as Json;
        return TERMINAL.includes(job.state) ? job : undefined;
      },
      timeoutMs,
      50,
    );
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    target = await startHttpTarget(undefined, '127.0.0.3');
    loopback = await startHttpTarget(undefined, '127.0.0.1');
    service = await spawnService({
      APP_ROLE: 'all',
      DATABASE_URL: db.url,
      // The target runs on 127.0.0.3, a loopback address reached only because it is listed here.
      // `localhost` is listed by name only: it passes POST /jobs, and must be refused once it resolves to
      // 127.0.0.1 (or ::1), which nobody listed.
      HTTP_TARGET_ALLOW: '127.0.0.3,localhost',
      HTTP_TARGET_SIGNING_SECRET: SECRET,
      HTTP_TARGET_MAX_RESPONSE_BYTES: '1000',
      WORKER_POLL_INTERVAL_MS: '50',
      RETRY_BASE_MS: '50',
      RETRY_MAX_MS: String(RETRY_MAX_MS),
    });
    await waitForHttp(service, '/health/ready');
  });
  afterEach(() => {
    target.received.length = 0;
  });
  afterAll(async () => {
    service.kill('SIGKILL');
    await service.exited;
    await target.close();
    await loopback.close();
    await db.drop();
  });

  it('POSTs a signed request with Job-Id, Job-Attempt and Idempotency-Key and completes with the JSON answer', async () => {
    target.respond((_request, response) => {
      response.setHeader('Content-Type', 'application/json; charset=utf-8');
      response.setHeader('Set-Cookie', 'session=secret');
      response.end(JSON.stringify({ accepted: true, items: [1, 2] }));
    });
    const jobId = await create({
      url: `${target.url}/orders?token=abc`,
      headers: { Authorization: 'Bearer downstream-token' },
      body: { order: 42, note: 'ünïcode' },
    });
    const job = await finished(jobId);

    expect(job).toMatchObject({
      state: 'completed',
      attempts: 1,
      result: { status: 200, body: { accepted: true, items: [1, 2] } },
    });
    expect(job.result.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(job.result.headers).not.toHaveProperty('set-cookie');
    expect(job.result).not.toHaveProperty('truncated');
    expect(target.received).toHaveLength(1);
    const [received] = target.received;
    expect(received.method).toBe('POST');
    expect(received.path).toBe('/orders?token=abc');
    expect(received.headers).toMatchObject({
      'job-id': jobId,
      'job-attempt': '1',
      'idempotency-key': jobId,
      authorization: 'Bearer downstream-token',
      'content-type': 'application/json',
    });
    expect(JSON.parse(received.body.toString())).toEqual({ order: 42, note: 'ünïcode' });
    expect(signatureValid(received, SECRET)).toBe(true);
    expect(signatureValid(received, 'another-secret-of-at-least-32-chars!!')).toBe(false);
  });

  it('sends a string body as it is, and a GET without one; a text answer is kept as text', async () => {
    target.respond((request, response) => {
      response.setHeader('Content-Type', 'text/plain');
      response.end(`${request.method} got ${request.body.length} bytes`);
    });
    const posted = await finished(await create({ url: target.url, body: 'plain text' }));
    const got = await finished(await create({ url: target.url, method: 'GET' }));
    expect(posted.result.body).toBe('POST got 10 bytes');
    expect(got.result.body).toBe('GET got 0 bytes');
    expect(target.received[0].headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(target.received[0].body.toString()).toBe('plain text');
    // An empty body is signed too: the signature covers "<t>." and nothing after it.
    expect(signatureValid(target.received[1], SECRET)).toBe(true);
  });

  it('a receiver answering 503 then 200 sees two attempts with the same Idempotency-Key', async () => {
    target.respond((request, response) => {
      response.statusCode = attemptOf(request) === 1 ? 503 : 200;
      response.end(attemptOf(request) === 1 ? 'busy' : 'done');
    });
    const jobId = await create({ url: target.url, body: {} });
    const job = await finished(jobId);

    expect(job).toMatchObject({ state: 'completed', attempts: 2, result: { status: 200, body: 'done' } });
    expect(job.attempt_history[0]).toMatchObject({
      attempt: 1,
      outcome: 'failed',
      error: { code: 'http_status', status: 503, message: expect.stringMatching(/answered 503: busy/) },
    });
    expect(target.received.map(attemptOf)).toEqual([1, 2]);
    expect(target.received.map((received) => received.headers['idempotency-key'])).toEqual([jobId, jobId]);
    // The token in the query string stays out of the recorded error.
    expect(job.attempt_history[0].error.message).not.toMatch(/\?/);
  });

  it('retries 408, 425, 429 and every 5xx; fails at once on any other status with error.code http_status', async () => {
    const retried = [408, 425, 429, 500, 502, 503, 504, 599];
    const permanent = [301, 302, 304, 400, 401, 403, 404, 405, 409, 410, 418, 422];
    // The status is in the URL, not looked up by job id: the worker may call before create() returns.
    target.respond((request, response) => {
      const status = Number(/^\/status\/(\d+)/.exec(request.path)?.[1]);
      response.statusCode = attemptOf(request) === 1 ? status : 200;
      if (status >= 300 && status < 400) response.setHeader('Location', `${target.url}/elsewhere`);
      response.end();
    });
    const jobs: [number, string][] = [];
    for (const status of [...retried, ...permanent]) {
      const jobId = await create({ url: `${target.url}/status/${status}` }, { max_attempts: 3 });
      jobs.push([status, jobId]);
    }
    for (const [status, jobId] of jobs) {
      const job = await finished(jobId);
      if (retried.includes(status)) {
        expect({ status, state: job.state, attempts: job.attempts }).toEqual({
          status,
          state: 'completed',
          attempts: 2,
        });
      } else {
        expect({ status, state: job.state, attempts: job.attempts, error: job.error }).toEqual({
          status,
          state: 'failed',
          attempts: 1,
          error: expect.objectContaining({ code: 'http_status', status }),
        });
      }
    }
    // A redirect was not followed (HTTP_TARGET_FOLLOW_REDIRECTS is off).
    expect(target.received.filter((received) => received.path === '/elsewhere')).toHaveLength(0);
  });

  it('waits as long as Retry-After says, in seconds or as an HTTP date, capped by RETRY_MAX_MS', async () => {
    // The header to send is in the URL, not looked up by job id: the worker may call before create() returns.
    target.respond((request, response) => {
      if (attemptOf(request) > 1) return void response.end('ok');
      response.statusCode = 429;
      response.setHeader('Retry-After', new URL(request.path, target.url).searchParams.get('retry_after')!);
      response.end();
    });
    const cases: [string, number, number][] = [];
    for (const [header, minMs, maxMs] of [
      ['2', 1_900, 2_900],
      [() => new Date(Date.now() + 2_000).toUTCString(), 900, 2_900],
      ['3600', RETRY_MAX_MS - 100, RETRY_MAX_MS + 1_500],
    ] as const) {
      const value = typeof header === 'function' ? header() : header;
      const jobId = await create({ url: `${target.url}/?retry_after=${encodeURIComponent(value)}` });
      cases.push([jobId, minMs, maxMs]);
    }
    for (const [jobId, minMs, maxMs] of cases) {
      const job = await finished(jobId);
      expect(job).toMatchObject({ state: 'completed', attempts: 2 });
      const [first, second] = target.received.filter((received) => jobOf(received) === jobId);
      const waited = second.at - first.at;
      expect({ jobId, waited }).toEqual({ jobId, waited: expect.any(Number) });
      expect(waited).toBeGreaterThanOrEqual(minMs);
      expect(waited).toBeLessThanOrEqual(maxMs);
    }
  });

  it('keeps only the first HTTP_TARGET_MAX_RESPONSE_BYTES of a huge answer and hangs up on the rest', async () => {
    let sent = 0;
    let closed = false;
    const chunk = Buffer.alloc(64 * 1024, 'x');
    target.respond((_request, response) => {
      response.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': String(10 * 1024 ** 3) });
      response.on('close', () => (closed = true));
      const pump = (): void => {
        while (!closed) {
          sent += chunk.length;
          if (!response.write(chunk)) return void response.once('drain', pump);
        }
      };
      pump();
    });
    const job = await finished(await create({ url: target.url }));
    expect(job).toMatchObject({ state: 'completed', result: { status: 200, truncated: true } });
    expect(job.result.body).toBe('x'.repeat(1000));
    await eventually(async () => (closed ? true : undefined), 5_000);
    expect(sent).toBeLessThan(64 * 1024 ** 2);
  });

  it('a truncated JSON answer is kept as text, never half-parsed', async () => {
    target.respond((_request, response) => {
      response.setHeader('Content-Type', 'application/json');
      response.end(JSON.stringify({ items: Array.from({ length: 500 }, (_, n) => n) }));
    });
    const job = await finished(await create({ url: target.url }));
    expect(job.result).toMatchObject({ truncated: true, body: expect.stringMatching(/^\{"items":\[0,1,2,/) });
    expect(job.result.body).toHaveLength(1000);
  });

  it('a slow answer within timeout_ms completes; one past it times the attempt out through its AbortSignal', async () => {
    target.respond((request, response) => {
      const delay = request.path === '/slow' ? 400 : 60_000;
      const timer = setTimeout(() => response.end('late but fine'), delay);
      response.on('close', () => clearTimeout(timer));
    });
    const slow = await create({ url: `${target.url}/slow` }, { timeout_ms: 5_000 });
    const stuck = await create({ url: `${target.url}/stuck` }, { timeout_ms: 500, max_attempts: 2 });
    expect(await finished(slow)).toMatchObject({ state: 'completed', result: { body: 'late but fine' } });
    const job = await finished(stuck);
    expect(job).toMatchObject({ state: 'failed', attempts: 2, error: { code: 'timeout' } });
    expect(job.attempt_history.map((attempt: Json) => attempt.outcome)).toEqual(['timed_out', 'timed_out']);
  });

  it('a cancel aborts the request in flight: the target sees the connection close', async () => {
    let closed = false;
    target.respond((_request, response) => response.on('close', () => (closed = true)));
    const jobId = await create({ url: `${target.url}/forever` }, { timeout_ms: 60_000 });
    await eventually(async () => (target.received.length > 0 ? true : undefined), 10_000);
    await request(service.baseUrl).post(`/jobs/${jobId}/cancel`).expect(200);
    const job = await finished(jobId, 10_000);
    expect(job).toMatchObject({ state: 'cancelled', error: { code: 'cancelled' } });
    await eventually(async () => (closed ? true : undefined), 5_000);
  });

  it('a network error fails the attempt and is retried', async () => {
    const closedPort = await freePort();
    const job = await finished(await create({ url: `http://127.0.0.3:${closedPort}/` }, { max_attempts: 2 }));
    expect(job).toMatchObject({ state: 'failed', attempts: 2, error: { code: 'network_error' } });
    expect(job.error.message).toMatch(/ECONNREFUSED/);
  });

  it('refuses at connect time a listed name that resolves to a loopback address: nothing is sent', async () => {
    const jobId = await create({ url: `http://localhost:${loopback.port}/` }, { max_attempts: 3 });
    const job = await finished(jobId);
    expect(job).toMatchObject({ state: 'failed', attempts: 1, error: { code: 'target_refused' } });
    expect(job.error.message).toMatch(/localhost \((127\.0\.0\.1|::1)\) is refused/);
    expect(loopback.received).toHaveLength(0);
  });

  it('POST /jobs refuses a URL the allowlist does not allow, and other bad payloads, with 400', async () => {
    const api = request(service.baseUrl);
    const post = (payload: Json) => () => api.post('/jobs').send({ job_type: 'http', payload });
    for (const url of [
      'http://127.0.0.1/',
      'http://127.0.0.2/',
      'http://169.254.169.254/latest/meta-data/',
      'http://[::1]/',
      'http://2130706433/',
      'https://example.com/',
      'ftp://127.0.0.1/',
      'http://user:pw@127.0.0.1/',
      'not a url',
    ]) {
      const problem = await expectInvalid(db, post({ url }), 'payload.url');
      expect(problem.errors[0].message).toMatch(/^url /);
    }
    await expectInvalid(db, post({}), 'payload.url');
    await expectInvalid(db, post({ url: target.url, method: 'TRACE' }), 'payload.method');
    await expectInvalid(db, post({ url: target.url, method: 'GET', body: 'x' }), 'payload.body');
    await expectInvalid(
      db,
      post({ url: target.url, headers: { 'Idempotency-Key': 'mine' } }),
      'payload.headers["Idempotency-Key"]',
    );
    await expectInvalid(
      db,
      post({ url: target.url, headers: { 'X-A': 'a\r\nInjected: 1' } }),
      'payload.headers["X-A"]',
    );
    await expectInvalid(db, post({ url: target.url, headers: { 'X-A': 5 } }), 'payload.headers["X-A"]');
    await expectInvalid(db, post({ url: target.url, headers: { 'X-A': '😀' } }), 'payload.headers["X-A"]');
    await expectInvalid(
      db,
      post({ url: target.url, headers: { 'Bad Name': 'x' } }),
      'payload.headers["Bad Name"]',
    );
    await expectInvalid(db, post({ url: target.url, extra: true }), 'payload.extra');
    expect(target.received).toHaveLength(0);
    expect(loopback.received).toHaveLength(0);
  });

  it('GET /job-types describes the http payload', async () => {
    const types = (await request(service.baseUrl).get('/job-types')).body as Json[];
    const http = types.find((type) => type.job_type === 'http')!;
    expect(http.payload_schema).toMatchObject({
      properties: { url: expect.any(Object), method: expect.any(Object), headers: expect.any(Object) },
      required: ['url'],
    });
  });
});

describe('http jobs with an empty HTTP_TARGET_ALLOW', () => {
  let db: TestDatabase;
  let app: Awaited<ReturnType<typeof startTestApp>>;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestApp(db.url, { role: 'api', httpTargetAllow: [] });
  });
  afterAll(async () => {
    await app.close();
    await db.drop();
  });

  it('refuses every URL at POST /jobs, loopback included', async () => {
    for (const url of ['http://127.0.0.1/', 'https://example.com/hook']) {
      const problem = await expectInvalid(
        db,
        () => request(app.getHttpServer()).post('/jobs').send({ job_type: 'http', payload: { url } }),
        'payload.url',
      );
      expect(problem.errors[0].message).toMatch(/HTTP_TARGET_ALLOW is empty/);
    }
  });
});

describe('a worker shutting down while an http request is in flight', () => {
  let db: TestDatabase;
  let target: HttpTarget;

  beforeAll(async () => {
    db = await createTestDatabase();
    // Never answers: only the worker's shutdown can end the request.
    target = await startHttpTarget(() => undefined, '127.0.0.3');
  });
  afterAll(async () => {
    await target.close();
    await db.drop();
  });

  it('aborts it after SHUTDOWN_GRACE_MS, releases the attempt and exits 0', async () => {
    const worker = await spawnService({
      APP_ROLE: 'all',
      DATABASE_URL: db.url,
      HTTP_TARGET_ALLOW: '127.0.0.3',
      SHUTDOWN_GRACE_MS: '1000',
      WORKER_POLL_INTERVAL_MS: '50',
    });
    try {
      await waitForHttp(worker, '/health/ready');
      const created = await request(worker.baseUrl)
        .post('/jobs')
        .send({ job_type: 'http', payload: { url: target.url } })
        .expect(201);
      await eventually(async () => (target.received.length > 0 ? true : undefined), 10_000);
      const stoppedAt = Date.now();
      worker.kill('SIGTERM');
      const exit = await Promise.race([
        worker.exited,
        new Promise((resolve) => setTimeout(() => resolve('still running'), 15_000)),
      ]);
      expect({
        exit,
        output: exit === 'still running' || (exit as Json).code !== 0 ? worker.output() : '',
      }).toEqual({
        exit: { code: 0, signal: null },
        output: '',
      });
      // Released within the grace period (plus the close), not left for the lease to expire.
      expect(Date.now() - stoppedAt).toBeLessThan(1_000 + 4_000);
      const { rows } = await db.pool.query(
        `SELECT outcome FROM job_attempts WHERE job_id = $1 ORDER BY attempt`,
        [created.body.job_id],
      );
      expect(rows.map((row) => row.outcome)).toEqual(['interrupted']);
    } finally {
      worker.kill('SIGKILL');
      await worker.exited;
    }
  });
});
