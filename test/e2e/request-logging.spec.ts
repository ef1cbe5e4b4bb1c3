import { eventually } from '../support/job-factory';
import { spawnService, waitForHttp, type ServiceProcess } from '../support/service-process';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const START_TIMEOUT_MS = 120_000;

/** The JSON log lines a process printed so far. */
function logLines(service: ServiceProcess): Record<string, unknown>[] {
  return service
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function requestLine(service: ServiceProcess, requestId: string): Promise<Record<string, unknown>> {
  return eventually(async () => logLines(service).find((line) => line.request_id === requestId), 5_000);
}

describe('request and job logs, through real HTTP', () => {
  let db: TestDatabase;
  let service: ServiceProcess;

  beforeAll(async () => {
    db = await createTestDatabase();
    service = await spawnService({
      APP_ROLE: 'all',
      DATABASE_URL: db.url,
      LOG_LEVEL: 'debug',
      WORKER_ID: 'logging-worker',
      WORKER_POLL_INTERVAL_MS: '100',
    });
    await waitForHttp(service, '/health/ready', 200, START_TIMEOUT_MS);
  }, START_TIMEOUT_MS + 10_000);
  afterAll(async () => {
    service?.kill('SIGKILL');
    await service?.exited;
    await db.drop();
  });

  it('echoes a sane X-Request-Id and logs one line for the request with it', async () => {
    const response = await fetch(`${service.baseUrl}/jobs?limit=1`, {
      headers: { 'X-Request-Id': 'trace-4bf92f35.00f067aa:1' },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toBe('trace-4bf92f35.00f067aa:1');
    const line = await requestLine(service, 'trace-4bf92f35.00f067aa:1');
    expect(line).toMatchObject({
      level: 30,
      method: 'GET',
      url: '/jobs?limit=1',
      status: 200,
      duration_ms: expect.any(Number),
      msg: expect.stringMatching(/^GET \/jobs\?limit=1 200 [\d.]+ ms$/),
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(
      logLines(service).filter((entry) => entry.request_id === 'trace-4bf92f35.00f067aa:1'),
    ).toHaveLength(1);
  });

  it('generates an id when there is none, and for one that is not sane', async () => {
    const insane = ['x'.repeat(129), 'two words', '<script>', 'é'];
    for (const given of [undefined, ...insane]) {
      const response = await fetch(`${service.baseUrl}/job-types`, {
        headers: given === undefined ? {} : { 'X-Request-Id': given },
      });
      expect(response.status).toBe(200);
      const id = response.headers.get('x-request-id')!;
      expect(id).toMatch(UUID);
      expect(await requestLine(service, id)).toMatchObject({ method: 'GET', url: '/job-types', status: 200 });
    }
    expect(service.output()).not.toContain('<script>');
  });

  it('gives refused requests an id too, and logs their status', async () => {
    const response = await fetch(`${service.baseUrl}/jobs`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Request-Id': 'refused-1' },
      body: '{"job_type":',
    });
    expect(response.status).toBe(400);
    expect(response.headers.get('x-request-id')).toBe('refused-1');
    expect(await requestLine(service, 'refused-1')).toMatchObject({
      method: 'POST',
      url: '/jobs',
      status: 400,
    });
    const missing = await fetch(`${service.baseUrl}/no-such-page`, { headers: { 'X-Request-Id': 'lost-1' } });
    expect(missing.status).toBe(404);
    expect(await requestLine(service, 'lost-1')).toMatchObject({ status: 404 });
  });

  it('logs probes at debug, not info', async () => {
    const response = await fetch(`${service.baseUrl}/health/live`, {
      headers: { 'X-Request-Id': 'probe-1' },
    });
    expect(response.headers.get('x-request-id')).toBe('probe-1');
    expect(await requestLine(service, 'probe-1')).toMatchObject({ level: 20, url: '/health/live' });
  });

  it('tags job log lines with job_id, job_type, attempt and worker_id', async () => {
    const response = await fetch(`${service.baseUrl}/jobs`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ job_type: 'fail', payload: { message: 'for the log' }, max_attempts: 1 }),
    });
    const job = (await response.json()) as { job_id: string };
    const expected = { job_id: job.job_id, job_type: 'fail', attempt: 1, worker_id: 'logging-worker' };
    const lines = await eventually(async () => {
      const mine = logLines(service).filter((line) => line.job_id === job.job_id);
      return mine.some((line) => line.msg === 'attempt finished') ? mine : undefined;
    }, 20_000);
    expect(lines.map((line) => line.msg)).toEqual([
      'attempt started',
      'attempt failed',
      'job failed',
      'attempt finished',
    ]);
    for (const line of lines) expect(line).toMatchObject(expected);
  });
});

describe('log format', () => {
  it(
    'prints readable lines, not JSON, with LOG_FORMAT=pretty',
    async () => {
      const db = await createTestDatabase();
      const service = await spawnService({
        APP_ROLE: 'api',
        DATABASE_URL: db.url,
        LOG_LEVEL: 'info',
        LOG_FORMAT: 'pretty',
      });
      try {
        await waitForHttp(service, '/health/ready', 200, START_TIMEOUT_MS);
        const response = await fetch(`${service.baseUrl}/jobs`, { headers: { 'X-Request-Id': 'pretty-1' } });
        expect(response.status).toBe(200);
        const line = await eventually(
          async () =>
            service
              .output()
              .split('\n')
              .find((text) => text.includes('pretty-1')),
          5_000,
        );
        expect(line).toMatch(/INFO.*GET \/jobs 200 [\d.]+ ms/);
        expect(line.startsWith('{')).toBe(false);
        expect(service.output()).not.toMatch(/^\{"level"/m);
      } finally {
        service.kill('SIGKILL');
        await service.exited;
        await db.drop();
      }
    },
    START_TIMEOUT_MS + 30_000,
  );
});
