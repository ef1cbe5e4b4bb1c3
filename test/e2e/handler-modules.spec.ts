import { createHash } from 'node:crypto';
import { join, relative } from 'node:path';
import request from 'supertest';
import { eventually } from '../support/job-factory';
import { expectInvalid, type Json } from '../support/problems';
import { spawnService, waitForHttp, type ServiceProcess } from '../support/service-process';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

const ROOT = join(__dirname, '..', '..');
const EXAMPLES = join(ROOT, 'examples', 'handlers');
const FIXTURES = join(__dirname, '..', 'fixtures', 'handler-modules');

describe('handler modules (HANDLER_MODULES)', () => {
  let db: TestDatabase;
  let api: ServiceProcess;
  let worker: ServiceProcess;

  async function finished(jobId: string): Promise<Json> {
    return eventually(
      async () => {
        const job = (await request(api.baseUrl).get(`/jobs/${jobId}`)).body as Json;
        return ['completed', 'failed', 'cancelled'].includes(job.state) ? job : undefined;
      },
      20_000,
      50,
    );
  }

  async function create(job_type: string, payload: Json, extra: Json = {}): Promise<string> {
    const response = await request(api.baseUrl)
      .post('/jobs')
      .send({ job_type, payload, ...extra });
    expect({ status: response.status, body: response.body }).toMatchObject({ status: 201 });
    return response.body.job_id as string;
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    // Two ways of naming a module: a path relative to the working directory, and an absolute one.
    const modules = [
      `./${relative(process.cwd(), EXAMPLES)}`,
      join(FIXTURES, 'esm-handlers.mjs'),
      join(FIXTURES, 'compiled-typescript.js'),
    ].join(',');
    [api, worker] = await Promise.all([
      spawnService({ APP_ROLE: 'api', DATABASE_URL: db.url, HANDLER_MODULES: modules }),
      spawnService({
        APP_ROLE: 'worker',
        DATABASE_URL: db.url,
        HANDLER_MODULES: modules,
        WORKER_POLL_INTERVAL_MS: '50',
        RETRY_BASE_MS: '5000',
      }),
    ]);
    await Promise.all([waitForHttp(api, '/health/ready'), waitForHttp(worker, '/health/ready')]);
  });
  afterAll(async () => {
    for (const service of [api, worker]) service?.kill('SIGKILL');
    await Promise.all([api?.exited, worker?.exited]);
    await db.drop();
  });

  it('runs a job of the example package in a worker process started with HANDLER_MODULES', async () => {
    const job = await finished(await create('text.stats', { text: 'the cat and the hat\nthe end', top: 2 }));
    expect(job).toMatchObject({
      state: 'completed',
      attempts: 1,
      result: {
        lines: 2,
        words: 7,
        characters: 27,
        top: [
          { word: 'the', count: 3 },
          { word: 'and', count: 1 },
        ],
      },
    });
    const doubled = await finished(await create('ts.double', { n: 21 }));
    expect(doubled.result).toEqual({ doubled: 42 });
    const checksum = await finished(
      await create('checksum.sha256', { data: 'aGVsbG8=', encoding: 'base64' }),
    );
    expect(checksum.result).toEqual({ sha256: createHash('sha256').update('hello').digest('hex') });
  });

  it('a module error with permanent: true fails the job at once, with its code and details', async () => {
    const job = await finished(
      await create('checksum.sha256', { data: '%%%', encoding: 'base64' }, { max_attempts: 5 }),
    );
    expect(job).toMatchObject({ state: 'failed', attempts: 1, error: { code: 'invalid_base64' } });
    const esm = await finished(await create('esm.flaky', { permanent: true }, { max_attempts: 5 }));
    expect(esm).toMatchObject({ state: 'failed', attempts: 1, error: { code: 'bad_input', hint: 'x' } });
  });

  it('a module error with retryAfterMs sets the next attempt time instead of the backoff', async () => {
    // RETRY_BASE_MS is 5 s: a retry within about a second can only be the 200 ms the handler asked for.
    const started = Date.now();
    const job = await finished(await create('esm.flaky', {}));
    expect(job).toMatchObject({
      state: 'completed',
      attempts: 2,
      result: { attempt: 2, job_id: job.job_id },
    });
    expect(job.attempt_history[0]).toMatchObject({ outcome: 'failed', error: { code: 'not_ready' } });
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('validates payloads against the JSON Schema at POST /jobs, naming the field', async () => {
    const post = (payload: Json) => () =>
      request(api.baseUrl).post('/jobs').send({ job_type: 'text.stats', payload });
    await expectInvalid(db, post({}), 'payload.text');
    await expectInvalid(db, post({ text: 5 }), 'payload.text');
    await expectInvalid(db, post({ text: 'x', top: 0 }), 'payload.top');
    await expectInvalid(db, post({ text: 'x', extra: 1 }), 'payload.extra');
    const problem = await expectInvalid(
      db,
      () =>
        request(api.baseUrl)
          .post('/jobs')
          .send({ job_type: 'checksum.sha256', payload: { data: 'x', encoding: 'hex' } }),
      'payload.encoding',
    );
    expect(problem.errors[0].message).toMatch(/allowed values/);
  });

  it('lists the module types with their schema in GET /job-types, beside the built-in ones', async () => {
    const types = (await request(api.baseUrl).get('/job-types').expect(200)).body as Json[];
    expect(types.map((type) => type.job_type)).toEqual(
      expect.arrayContaining(['checksum.sha256', 'echo', 'esm.flaky', 'http', 'text.stats']),
    );
    expect(types.find((type) => type.job_type === 'text.stats')).toMatchObject({
      description: expect.stringMatching(/Counts the lines/),
      payload_schema: { type: 'object', required: ['text'], additionalProperties: false },
      paused: false,
    });
  });
});

describe('a handler module that cannot be used stops the boot', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db.drop());

  const cases: [string, string, RegExp][] = [
    [
      'a module that cannot be found',
      './no/such/module',
      /"\.\/no\/such\/module" cannot be loaded: Cannot find module/,
    ],
    ['an unknown package', 'no-such-handler-package', /"no-such-handler-package" cannot be loaded/],
    // Resolved by package name from the working directory, loaded, and refused for what it exports.
    [
      'a package that is no handler module',
      'ipaddr.js',
      /"ipaddr\.js" must export an array of handler definitions/,
    ],
    [
      'a module that throws while loading',
      join(FIXTURES, 'broken.js'),
      /broken\.js" cannot be loaded: boom while loading/,
    ],
    [
      'a type a built-in handler has',
      join(FIXTURES, 'duplicate-type.js'),
      /duplicate-type\.js" defines job type "echo", already defined by a built-in handler/,
    ],
    [
      'an invalid schema',
      join(FIXTURES, 'invalid-schema.js'),
      /invalid-schema\.js" has an invalid payload_schema for job type "bad\.schema"/,
    ],
    [
      'an export that is not an array',
      join(FIXTURES, 'not-an-array.js'),
      /not-an-array\.js" must export an array of handler definitions/,
    ],
    [
      'the same module twice',
      `${EXAMPLES},${EXAMPLES}`,
      /defines job type "text\.stats", already defined by ".*examples\/handlers"/,
    ],
  ];

  /** The message of the fatal log line, as the operator reads it. */
  const fatalMessage = (output: string): string | undefined =>
    output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Json)
      .find((line) => line.level === 60)?.msg;

  it.each(cases)('%s: exit code 1 and a message naming it', async (_name, modules, message) => {
    await Promise.all(
      ['api', 'worker'].map(async (role) => {
        const service = await spawnService({
          APP_ROLE: role,
          DATABASE_URL: db.url,
          HANDLER_MODULES: modules,
        });
        const exit = await Promise.race([
          service.exited,
          new Promise((resolve) => setTimeout(() => resolve('still running'), 30_000)),
        ]);
        if (exit === 'still running') service.kill('SIGKILL');
        expect({ role, exit, message: fatalMessage(service.output()) }).toEqual({
          role,
          exit: { code: 1, signal: null },
          message: expect.stringMatching(message),
        });
        expect(fatalMessage(service.output())).toMatch(/^cannot start: HANDLER_MODULES: "/);
      }),
    );
  });
});
