import { v7 as uuidv7 } from 'uuid';
import { spawnService, waitForHttp, type ServiceProcess } from '../support/service-process';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

/** The built service as a real process: what it refuses at start, and what its logs never show. */
describe('security of the running service (node dist/main)', () => {
  let db: TestDatabase;
  const services: ServiceProcess[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
  });

  afterAll(async () => {
    for (const service of services) {
      service.kill('SIGKILL');
      await service.exited;
    }
    await db?.drop();
  });

  async function start(env: Record<string, string>): Promise<ServiceProcess> {
    const service = await spawnService({ DATABASE_URL: db.url, APP_ROLE: 'api', ...env });
    services.push(service);
    return service;
  }

  it('refuses to start an api in production without API_KEYS, naming API_KEYS and AUTH_DISABLED', async () => {
    for (const role of ['api', 'all']) {
      const service = await start({ NODE_ENV: 'production', APP_ROLE: role });
      expect((await service.exited).code).toBe(1);
      expect(service.output()).toMatch(/API_KEYS is required when NODE_ENV=production/);
      expect(service.output()).toMatch(/AUTH_DISABLED=true/);
    }
  });

  it('starts in production with AUTH_DISABLED=true, says so in a warning, and serves without a key', async () => {
    const service = await start({ NODE_ENV: 'production', AUTH_DISABLED: 'true' });
    await waitForHttp(service, '/health/ready');
    const warning = service
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { level: number; msg: string })
      .find((line) => line.msg.includes('AUTH_DISABLED'));
    expect(warning).toMatchObject({ level: 40, msg: expect.stringContaining('without an API key') });
    expect((await fetch(`${service.baseUrl}/jobs`)).status).toBe(200);
  });

  it('never writes a key to its logs, at debug level, whatever the requests', async () => {
    const keys = ['Sk-admin-4bd29c1e', 'Sk-read-0a7f3e55', 'Sk-write-9c12d0aa'];
    const wrong = 'Sk-wrong-77e1b3c0';
    const service = await start({
      LOG_LEVEL: 'debug',
      API_KEYS: `${keys[0]},${keys[1]}:read,${keys[2]}:write`,
    });
    await waitForHttp(service, '/health/ready');
    const calls: [string, string, string | undefined][] = [
      ['GET', '/jobs', keys[1]],
      ['POST', '/jobs', keys[1]],
      ['POST', '/jobs', keys[2]],
      ['POST', `/jobs/${uuidv7()}/cancel`, keys[2]],
      ['POST', `/jobs/${uuidv7()}/cancel`, keys[0]],
      ['GET', '/jobs/not-a-uuid', keys[0]],
      ['GET', '/metrics', wrong],
      ['GET', '/jobs', undefined],
    ];
    const statuses: number[] = [];
    for (const [method, path, key] of calls) {
      const response = await fetch(`${service.baseUrl}${path}`, {
        method,
        headers: {
          'content-type': 'application/json',
          ...(key ? { authorization: `Bearer ${key}` } : {}),
        },
        body: method === 'GET' ? undefined : JSON.stringify(path === '/jobs' ? { job_type: 'echo' } : {}),
      });
      statuses.push(response.status);
      await response.text();
    }
    expect(statuses).toEqual([200, 403, 201, 403, 404, 400, 401, 401]);
    // A bad API_KEYS entry is reported by position, not by its text.
    const refused = await start({ API_KEYS: `${keys[0]}:superuser` });
    expect((await refused.exited).code).toBe(1);
    expect(refused.output()).toMatch(/API_KEYS entry 1 must be key or key:scope/);

    service.kill('SIGTERM');
    await service.exited;
    const logs = service.output() + refused.output();
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).toMatch(/job service ready/);
    for (const secret of [...keys, wrong]) expect(logs).not.toContain(secret);
  });
});
