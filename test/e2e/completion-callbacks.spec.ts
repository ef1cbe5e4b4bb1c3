import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import request from 'supertest';
import { eventually } from '../support/job-factory';
import { expectInvalid } from '../support/problems';
import { freePort, spawnService, waitForHttp, type ServiceProcess } from '../support/service-process';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

const SECRET = 'a-callback-signing-secret-of-32-characters-or-more';

type Json = Record<string, any>;

/** A callback as the receiver got it. */
interface ReceivedCallback {
  headers: IncomingMessage['headers'];
  rawBody: Buffer;
  body: Json;
  at: number;
}

type Answer = (callback: ReceivedCallback, response: ServerResponse) => unknown;

/**
 * A real receiver on a port of its own that can be stopped and started again on the same port (a
 * receiver that is down for a while), recording every callback it got.
 */
class Receiver {
  readonly received: ReceivedCallback[] = [];
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    readonly port: number,
    public answer: Answer = (_callback, response) => response.end('ok'),
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks/finished`;
  }

  async start(): Promise<void> {
    this.server = createServer((message, response) => {
      const chunks: Buffer[] = [];
      message.on('data', (chunk: Buffer) => chunks.push(chunk));
      message.on('end', () => {
        const rawBody = Buffer.concat(chunks);
        const callback = {
          headers: message.headers,
          rawBody,
          body: JSON.parse(rawBody.toString()),
          at: Date.now(),
        };
        this.received.push(callback);
        Promise.resolve(this.answer(callback, response)).catch(() => response.destroy());
      });
    });
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    this.server.on('clientError', (_error, socket) => socket.destroy());
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  forJob(jobId: string): ReceivedCallback[] {
    return this.received.filter((callback) => callback.body.job_id === jobId);
  }
}

/** The receiver's side of Job-Signature, written from the contract, not from the service's code. */
function signatureIsValid(callback: ReceivedCallback, secret = SECRET): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(callback.headers['job-signature'] ?? ''));
  if (!match || Math.abs(Date.now() / 1000 - Number(match[1])) > 300) return false;
  const expected = createHmac('sha256', secret).update(`${match[1]}.`).update(callback.rawBody).digest();
  return timingSafeEqual(expected, Buffer.from(match[2], 'hex'));
}

/**
 * Completion callbacks end to end: an api process and worker processes (`node dist/main`) on one database,
 * receivers that are real HTTP servers on this machine.
 */
describe('completion callbacks (callback_url)', () => {
  let db: TestDatabase;
  let api: ServiceProcess;
  const workers: ServiceProcess[] = [];
  const receivers: Receiver[] = [];

  const shared = (): Record<string, string> => ({
    DATABASE_URL: db.url,
    HTTP_TARGET_ALLOW: '127.0.0.1',
    HTTP_TARGET_SIGNING_SECRET: SECRET,
  });

  const startWorker = async (env: Record<string, string> = {}): Promise<ServiceProcess> => {
    const worker = await spawnService({
      ...shared(),
      APP_ROLE: 'worker',
      WORKER_POLL_INTERVAL_MS: '200',
      SWEEP_INTERVAL_MS: '200',
      CALLBACK_TIMEOUT_MS: '1000',
      CALLBACK_RETRY_BASE_MS: '200',
      CALLBACK_RETRY_MAX_MS: '400',
      ...env,
    });
    workers.push(worker);
    await waitForHttp(worker, '/health/ready');
    return worker;
  };

  const newReceiver = async (answer?: Answer, started = true): Promise<Receiver> => {
    const receiver = new Receiver(await freePort(), answer);
    receivers.push(receiver);
    if (started) await receiver.start();
    return receiver;
  };

  const http = () => request(api.baseUrl);
  const getJob = async (jobId: string): Promise<Json> =>
    (await http().get(`/jobs/${jobId}`).expect(200)).body;
  const createJob = async (body: Json): Promise<Json> =>
    (await http().post('/jobs').send(body).expect(201)).body;
  const callbackOf = async (jobId: string): Promise<Json> => (await getJob(jobId)).callback;
  const untilCallback = (jobId: string, state: string, timeoutMs = 20_000): Promise<Json> =>
    eventually(
      async () => {
        const job = await getJob(jobId);
        return job.callback?.state === state ? job : undefined;
      },
      timeoutMs,
      100,
    );

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await spawnService({ ...shared(), APP_ROLE: 'api' });
    await waitForHttp(api, '/health/ready');
  });

  afterEach(async () => {
    for (const worker of workers) worker.kill('SIGKILL');
    await Promise.all(workers.splice(0).map((worker) => worker.exited));
    await Promise.all(receivers.splice(0).map((receiver) => receiver.stop()));
  });

  afterAll(async () => {
    api.kill('SIGKILL');
    await api.exited;
    await db.drop();
  });

  it('POSTs the finished job exactly as GET /jobs/{id} shows it, signed, with Job-Id and an idempotency key', async () => {
    // While the receiver holds the request, it asks the API for the same job: the two must be equal.
    const seenByGet: Json[] = [];
    const receiver = await newReceiver(async (callback, response) => {
      seenByGet.push(await getJob(callback.body.job_id));
      response.end('thanks');
    });
    const created = await createJob({
      job_type: 'echo',
      payload: { hello: 'wörld' },
      callback_url: receiver.url,
    });
    expect(created.callback).toEqual({ url: receiver.url, state: 'waiting', attempts: 0 });

    await startWorker();
    const finished = await untilCallback(created.job_id, 'delivered');

    const [callback, ...more] = receiver.forJob(created.job_id);
    expect(more).toEqual([]);
    expect(callback.body).toEqual(seenByGet[0]);
    expect(callback.body).toMatchObject({
      job_id: created.job_id,
      state: 'completed',
      result: { hello: 'wörld' },
      callback: { url: receiver.url, state: 'pending', attempts: 1 },
    });
    expect(callback.headers['content-type']).toBe('application/json');
    expect(callback.headers['job-id']).toBe(created.job_id);
    expect(callback.headers['idempotency-key']).toBe(`callback:${created.job_id}`);
    expect(callback.headers['callback-attempt']).toBe('1');
    expect(signatureIsValid(callback)).toBe(true);
    // The check is real: another secret or another body does not verify.
    expect(signatureIsValid(callback, `${SECRET}x`)).toBe(false);
    expect(signatureIsValid({ ...callback, rawBody: Buffer.from('{}') })).toBe(false);
    // Once delivered, the job says so, and nothing else about it changed.
    expect(finished).toEqual({
      ...callback.body,
      callback: { url: receiver.url, state: 'delivered', attempts: 1 },
    });
    const listed = (await http().get('/jobs').query({ state: 'completed' }).expect(200)).body.items as Json[];
    expect(listed.find((job) => job.job_id === created.job_id)?.callback).toEqual(finished.callback);
  });

  it('keeps trying while the receiver is down and delivers once it is back', async () => {
    const receiver = await newReceiver(undefined, false);
    await startWorker();
    const created = await createJob({ job_type: 'noop', callback_url: receiver.url });
    // Refused connections: attempts pile up, the callback stays pending.
    await eventually(
      async () => ((await callbackOf(created.job_id)).attempts >= 3 ? true : undefined),
      20_000,
      100,
    );
    expect((await callbackOf(created.job_id)).state).toBe('pending');

    await receiver.start();
    const finished = await untilCallback(created.job_id, 'delivered');
    expect(finished.callback.attempts).toBeGreaterThanOrEqual(4);
    const received = receiver.forJob(created.job_id);
    expect(received).toHaveLength(1);
    expect(received[0].headers['callback-attempt']).toBe(String(finished.callback.attempts));
    expect(signatureIsValid(received[0])).toBe(true);
    const { rows } = await db.pool.query(
      `SELECT last_status, last_error, settled_at IS NOT NULL AS settled FROM callback_deliveries WHERE job_id = $1`,
      [created.job_id],
    );
    expect(rows[0]).toEqual({ last_status: 200, last_error: null, settled: true });
  });

  it('gives up after CALLBACK_MAX_ATTEMPTS non-2xx answers and records the last one', async () => {
    const receiver = await newReceiver((_callback, response) => {
      response.statusCode = 503;
      response.end('busy');
    });
    await startWorker({ CALLBACK_MAX_ATTEMPTS: '3' });
    const created = await createJob({ job_type: 'noop', callback_url: receiver.url });
    const finished = await untilCallback(created.job_id, 'failed');
    expect(finished.callback).toEqual({ url: receiver.url, state: 'failed', attempts: 3 });
    expect(receiver.forJob(created.job_id).map((callback) => callback.headers['callback-attempt'])).toEqual([
      '1',
      '2',
      '3',
    ]);
    const { rows } = await db.pool.query(
      `SELECT last_status, last_error FROM callback_deliveries WHERE job_id = $1`,
      [created.job_id],
    );
    expect(rows[0]).toEqual({ last_status: 503, last_error: expect.stringMatching(/503.*the last/) });
  });

  it("waits as long as the receiver's Retry-After asks before the next attempt, at most CALLBACK_RETRY_MAX_MS", async () => {
    // The first answer of each job is 503 with Retry-After: 2 s for one job, an hour for the other.
    const retryAfter = new Map<string, string>();
    const receiver = await newReceiver((callback, response) => {
      if (receiver.forJob(callback.body.job_id).length === 1) {
        response.statusCode = 503;
        response.setHeader('Retry-After', retryAfter.get(callback.body.job_id)!);
      }
      response.end();
    });
    const asksTwoSeconds = await createJob({ job_type: 'noop', callback_url: receiver.url });
    const asksAnHour = await createJob({ job_type: 'noop', callback_url: receiver.url });
    retryAfter.set(asksTwoSeconds.job_id, '2');
    retryAfter.set(asksAnHour.job_id, '3600');
    // The backoff alone would try again after 200 ms; the cap is 4 s.
    await startWorker({ CALLBACK_RETRY_MAX_MS: '4000' });

    const gapBetweenAttempts = async (jobId: string): Promise<number> => {
      const finished = await untilCallback(jobId, 'delivered');
      expect(finished.callback.attempts).toBe(2);
      const [first, second] = receiver.forJob(jobId);
      return second.at - first.at;
    };
    const [twoSeconds, capped] = await Promise.all([
      gapBetweenAttempts(asksTwoSeconds.job_id),
      gapBetweenAttempts(asksAnHour.job_id),
    ]);
    expect(twoSeconds).toBeGreaterThanOrEqual(1_900);
    expect(twoSeconds).toBeLessThan(3_900);
    expect(capped).toBeGreaterThanOrEqual(3_900);
    expect(capped).toBeLessThan(8_000);
  });

  it('on SIGTERM shares one grace period between a running job and a delivery under way, and exits 0 within it', async () => {
    const graceMs = 3_000;
    // A receiver that never answers, and a job that outlasts the grace period.
    const receiver = await newReceiver(() => undefined);
    const withCallback = await createJob({ job_type: 'noop', callback_url: receiver.url });
    const long = await createJob({ job_type: 'sleep', payload: { ms: 60_000 } });
    const worker = await startWorker({ SHUTDOWN_GRACE_MS: String(graceMs), CALLBACK_TIMEOUT_MS: '60000' });
    await eventually(
      async () =>
        receiver.forJob(withCallback.job_id).length === 1 && (await getJob(long.job_id)).state === 'running'
          ? true
          : undefined,
      20_000,
      50,
    );

    const signalledAt = Date.now();
    worker.kill('SIGTERM');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    // Waited one after the other, the job's grace and the delivery's would have taken twice as long.
    expect(Date.now() - signalledAt).toBeLessThan(graceMs + 2_000);
    // The job was released and the delivery stopped: both due again at once, for any worker.
    const released = await getJob(long.job_id);
    expect(released).toMatchObject({ attempts: 1, next_attempt_at: expect.any(String) });
    expect(released.attempt_history.map((attempt: Json) => attempt.outcome)).toEqual(['interrupted']);
    const { rows } = await db.pool.query(
      `SELECT state, attempts, last_error, next_attempt_at <= now() AS due FROM callback_deliveries WHERE job_id = $1`,
      [withCallback.job_id],
    );
    expect(rows[0]).toEqual({
      state: 'pending',
      attempts: 1,
      last_error: 'stopped by the worker shutting down',
      due: true,
    });
  });

  it('delivers through another worker when the worker delivering it is SIGKILLed mid-request', async () => {
    // The receiver takes the first request and never answers: the worker is killed while it waits.
    let hang = true;
    const receiver = await newReceiver((_callback, response) => {
      if (!hang) response.end('ok');
    });
    const first = await startWorker({ WORKER_ID: 'first', CALLBACK_TIMEOUT_MS: '1500' });
    const created = await createJob({ job_type: 'echo', payload: { n: 1 }, callback_url: receiver.url });
    await eventually(async () => (receiver.forJob(created.job_id).length === 1 ? true : undefined), 20_000);
    first.kill('SIGKILL');
    await first.exited;
    hang = false;

    await startWorker({ WORKER_ID: 'second' });
    const finished = await untilCallback(created.job_id, 'delivered');
    expect(finished).toMatchObject({ state: 'completed', callback: { state: 'delivered', attempts: 2 } });
    const received = receiver.forJob(created.job_id);
    expect(received.map((callback) => callback.headers['callback-attempt'])).toEqual(['1', '2']);
    // At least once: both carry the same job and the same idempotency key, for the receiver to dedupe.
    expect(received[1].body.job_id).toBe(received[0].body.job_id);
    expect(received[1].headers['idempotency-key']).toBe(received[0].headers['idempotency-key']);
    const { rows } = await db.pool.query(`SELECT worker_id FROM callback_deliveries WHERE job_id = $1`, [
      created.job_id,
    ]);
    expect(rows[0].worker_id).toBe('second');
  });

  it('calls back for jobs cancelled through the API, one by one and in bulk', async () => {
    const receiver = await newReceiver();
    await startWorker();
    const runAt = new Date(Date.now() + 3_600_000).toISOString();
    const one = await createJob({ job_type: 'noop', run_at: runAt, callback_url: receiver.url });
    const bulk = await createJob({ job_type: 'echo', run_at: runAt, callback_url: receiver.url });
    await http().post(`/jobs/${one.job_id}/cancel`).send({ reason: 'not needed' }).expect(200);
    await http().post('/jobs/cancel').send({ job_type: 'echo', reason: 'all of them' }).expect(202);

    for (const [job, reason] of [
      [one, 'not needed'],
      [bulk, 'all of them'],
    ] as const) {
      const finished = await untilCallback(job.job_id, 'delivered');
      const [callback] = receiver.forJob(job.job_id);
      expect(callback.body).toMatchObject({
        state: 'cancelled',
        error: { code: 'cancelled', message: reason },
        callback: { state: 'pending', attempts: 1 },
      });
      expect(finished.state).toBe('cancelled');
    }
  });

  it('calls back for a job the rescue sweep failed after its worker died on the last attempt', async () => {
    const receiver = await newReceiver();
    const doomed = await startWorker({ WORKER_ID: 'doomed', LEASE_MS: '1000' });
    const created = await createJob({
      job_type: 'sleep',
      payload: { ms: 60_000 },
      max_attempts: 1,
      callback_url: receiver.url,
    });
    await eventually(
      async () => ((await getJob(created.job_id)).state === 'running' ? true : undefined),
      20_000,
    );
    doomed.kill('SIGKILL');
    await doomed.exited;

    await startWorker({ WORKER_ID: 'rescuer' });
    const finished = await untilCallback(created.job_id, 'delivered');
    expect(finished).toMatchObject({ state: 'failed', error: { code: 'lease_expired' } });
    const [callback] = receiver.forJob(created.job_id);
    expect(callback.body).toMatchObject({ state: 'failed', error: { code: 'lease_expired' } });
    expect(signatureIsValid(callback)).toBe(true);
  });

  it('carries callback_url over to the job POST /jobs/{id}/retry creates', async () => {
    const receiver = await newReceiver();
    const runAt = new Date(Date.now() + 3_600_000).toISOString();
    const created = await createJob({ job_type: 'noop', run_at: runAt, callback_url: receiver.url });
    await http().post(`/jobs/${created.job_id}/cancel`).send({}).expect(200);
    const retried = (await http().post(`/jobs/${created.job_id}/retry`).expect(201)).body;
    expect(retried.callback).toEqual({ url: receiver.url, state: 'waiting', attempts: 0 });
    await startWorker();
    await untilCallback(retried.job_id, 'delivered');
    expect(receiver.forJob(retried.job_id)[0].body).toMatchObject({
      state: 'completed',
      retry_of: created.job_id,
    });
  });

  it('answers an idempotent replay with the callback as it stands, and refuses the key with another callback_url', async () => {
    const receiver = await newReceiver();
    await startWorker();
    const body = { job_type: 'noop', callback_url: receiver.url };
    const key = `callback-replay-${Date.now()}`;
    const created = (await http().post('/jobs').set('Idempotency-Key', key).send(body).expect(201)).body;
    await untilCallback(created.job_id, 'delivered');
    const replay = await http().post('/jobs').set('Idempotency-Key', key).send(body).expect(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body.callback).toEqual({ url: receiver.url, state: 'delivered', attempts: 1 });
    await http()
      .post('/jobs')
      .set('Idempotency-Key', key)
      .send({ ...body, callback_url: `${receiver.url}/other` })
      .expect(409);
  });

  it('gives up at once, sending nothing, when the callback host resolves to an address nobody allowed', async () => {
    const receiver = await newReceiver();
    // The name is allowed, the loopback address it resolves to is not: refused when the worker connects.
    await startWorker({ HTTP_TARGET_ALLOW: 'localhost' });
    const { rows } = await db.pool.query(
      `INSERT INTO jobs (job_type, payload, run_at, available_at, max_attempts, timeout_ms, callback_url)
       VALUES ('noop', '{}', now(), now(), 3, 60000, $1) RETURNING job_id`,
      [`http://localhost:${receiver.port}/hooks/finished`],
    );
    const finished = await untilCallback(rows[0].job_id, 'failed');
    expect(finished.callback.attempts).toBe(1);
    expect(receiver.received).toEqual([]);
    const { rows: delivery } = await db.pool.query(
      `SELECT last_status, last_error FROM callback_deliveries WHERE job_id = $1`,
      [rows[0].job_id],
    );
    expect(delivery[0]).toEqual({ last_status: null, last_error: expect.stringMatching(/refused/) });
  });

  it('shows callback null for a job without callback_url and creates no delivery for it', async () => {
    await startWorker();
    const created = await createJob({ job_type: 'noop' });
    expect(created.callback).toBeNull();
    await eventually(async () => ((await getJob(created.job_id)).state === 'completed' ? true : undefined));
    expect((await getJob(created.job_id)).callback).toBeNull();
    const { rows } = await db.pool.query(
      `SELECT count(*)::int AS n FROM callback_deliveries WHERE job_id = $1`,
      [created.job_id],
    );
    expect(rows[0].n).toBe(0);
  });

  it('refuses at POST /jobs a callback_url the allowlist does not allow, or that is no http(s) URL', async () => {
    const refused = [
      'http://10.1.2.3/hook',
      'http://169.254.169.254/latest/meta-data',
      'http://localhost:8080/hook',
      'ftp://127.0.0.1/hook',
      'http://user:secret@127.0.0.1/hook',
      '/relative/path',
      ' http://127.0.0.1/hook',
      'not a url',
    ];
    for (const url of refused) {
      const problem = await expectInvalid(
        db,
        () => http().post('/jobs').send({ job_type: 'noop', callback_url: url }),
        'callback_url',
      );
      expect(JSON.stringify(problem.errors)).not.toContain('secret');
    }
    for (const value of [null, 42, { url: 'http://127.0.0.1/' }, `http://127.0.0.1/${'a'.repeat(2048)}`]) {
      await expectInvalid(
        db,
        () => http().post('/jobs').send({ job_type: 'noop', callback_url: value }),
        'callback_url',
      );
    }
    const problem = await expectInvalid(
      db,
      () =>
        http()
          .post('/jobs/batch')
          .send({
            jobs: [
              { job_type: 'noop', callback_url: 'http://127.0.0.1:9/ok' },
              { job_type: 'noop', callback_url: 'http://10.0.0.1/' },
            ],
          }),
      'callback_url',
    );
    expect(problem.errors).toEqual([
      { index: 1, field: 'callback_url', message: expect.stringContaining('HTTP_TARGET_ALLOW') },
    ]);
  });

  it('accepts callback_url in a batch, stored on each job', async () => {
    const receiver = await newReceiver();
    const { body } = await http()
      .post('/jobs/batch')
      .send({ jobs: [{ job_type: 'noop', callback_url: receiver.url }, { job_type: 'noop' }] })
      .expect(201);
    expect(body.items.map((job: Json) => job.callback)).toEqual([
      { url: receiver.url, state: 'waiting', attempts: 0 },
      null,
    ]);
  });
});
