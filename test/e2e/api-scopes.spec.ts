import { Controller, Get, type INestApplication } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { v7 as uuidv7 } from 'uuid';
import { fastifyOf } from '../../src/app.factory';
import { ApiKeyGuard } from '../../src/common/api-key.guard';
import { ProblemDetailsFilter } from '../../src/common/problem-details.filter';
import { loadConfig, type ApiScope } from '../../src/config/app-config';
import { ConfigModule } from '../../src/config/config.module';
import { createLogger } from '../../src/logging/logger';
import { expectRefused, type Json } from '../support/problems';
import { startTestApp } from '../support/test-app';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

const KEYS = { read: 'k-read-7f3a9', write: 'k-write-1c8e2', admin: 'k-admin-d45b0' } as const;
const SCOPES: ApiScope[] = ['read', 'write', 'admin'];

/** Every route of the app and who may call it: a route missing here (or here and not in the app) fails. */
const ROUTES: Record<string, ApiScope | 'public'> = {
  'GET /health/live': 'public',
  'GET /health/ready': 'public',
  'GET /docs-json': 'public',
  'GET /docs-yaml': 'public',
  'GET /docs': 'public',
  'GET /docs/*': 'public',
  'GET /docs/index.html': 'public',
  'GET /docs/swagger-ui-init.js': 'public',
  'GET /docs/docs/swagger-ui-init.js': 'public',
  'GET /docs/LICENSE': 'public',
  'GET /ui': 'public',
  'GET /ui/*': 'public',
  'GET /metrics': 'read',
  'GET /jobs': 'read',
  'GET /jobs/:job_id': 'read',
  'GET /job-types': 'read',
  'GET /stats': 'read',
  'GET /stats/finished-per-minute': 'read',
  'GET /auth/whoami': 'read',
  'POST /jobs': 'write',
  'POST /jobs/batch': 'write',
  'POST /jobs/cancel': 'admin',
  'POST /jobs/:job_id/cancel': 'admin',
  'POST /jobs/:job_id/retry': 'admin',
  'POST /job-types/:job_type/pause': 'admin',
  'POST /job-types/:job_type/resume': 'admin',
};

const BODIES: Record<string, unknown> = {
  'POST /jobs': { job_type: 'echo', payload: { n: 1 } },
  'POST /jobs/batch': { jobs: [{ job_type: 'echo' }] },
  'POST /jobs/cancel': { job_type: 'sleep' },
  'POST /jobs/:job_id/cancel': {},
};

/**
 * The routes Fastify actually serves, as "METHOD /path" (Nest controllers, Swagger and the dashboard
 * alike), read from its route tree; the HEAD twin of every GET is left out.
 */
function servedRoutes(app: INestApplication): string[] {
  const routes = new Set<string>();
  const parents: string[] = [];
  for (const line of fastifyOf(app).printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^([│ ]*)[├└]── (\S+) \(([A-Z, ]+)\)$/.exec(line);
    if (!match) continue;
    const depth = match[1].length / 4;
    parents.length = depth;
    const path = parents.join('') + match[2];
    parents.push(match[2]);
    for (const method of match[3].split(', ')) {
      if (method !== 'HEAD')
        routes.add(
          `${method} ${path.endsWith('*') && !path.endsWith('/*') ? path.replace(/\*$/, '/*') : path}`,
        );
    }
  }
  return [...routes].sort();
}

describe('scoped API keys (APP_ROLE=api)', () => {
  let db: TestDatabase;
  let app: INestApplication;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestApp(db.url, {
      role: 'api',
      apiKeys: SCOPES.map((scope) => ({ key: KEYS[scope], scope })),
    });
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  const http = () => request(app.getHttpServer());

  function send(route: string, authorization?: string): request.Test {
    const [method, pattern] = route.split(' ');
    const path = pattern.replace(':job_id', uuidv7()).replace(':job_type', 'echo');
    const call =
      method === 'GET'
        ? http().get(path)
        : http()
            .post(path)
            .send(BODIES[route] as object);
    return authorization === undefined ? call : call.set('Authorization', authorization);
  }

  it('knows every route the app serves, and declares nothing it does not serve', () => {
    expect(servedRoutes(app)).toEqual(Object.keys(ROUTES).sort());
  });

  it.each(Object.keys(ROUTES))('%s answers each scope exactly as declared', async (route) => {
    const needed = ROUTES[route];
    if (needed === 'public') {
      for (const authorization of [undefined, 'Bearer wrong', `Bearer ${KEYS.read}`]) {
        const response = await send(route, authorization);
        expect([route, authorization, response.status]).toEqual([route, authorization, expect.any(Number)]);
        expect([401, 403]).not.toContain(response.status);
        expect(response.status).toBeLessThan(500);
      }
      return;
    }
    for (const authorization of [
      undefined,
      'Bearer wrong-key',
      `Basic ${KEYS.admin}`,
      `Bearer ${KEYS.admin}x`,
    ]) {
      const problem = await expectRefused(db, () => send(route, authorization), 401, 'unauthorized');
      expect(JSON.stringify(problem)).not.toContain(KEYS.admin);
    }
    for (const scope of SCOPES) {
      const allowed = SCOPES.indexOf(scope) >= SCOPES.indexOf(needed);
      if (!allowed) {
        const problem = await expectRefused(db, () => send(route, `Bearer ${KEYS[scope]}`), 403, 'forbidden');
        expect(problem.detail).toContain(`scope ${needed}`);
        expect(JSON.stringify(problem)).not.toContain(KEYS[scope]);
        continue;
      }
      const response = await send(route, `Bearer ${KEYS[scope]}`);
      // Allowed: whatever the endpoint answers (201, 404 for an unknown id, ...) but not an auth refusal.
      expect({ route, scope, status: response.status }).toEqual({ route, scope, status: expect.any(Number) });
      expect([401, 403]).not.toContain(response.status);
      expect(response.status).toBeLessThan(500);
    }
  });

  it('serves the Swagger UI and its assets without a key', async () => {
    const page = await http().get('/docs/').expect(200);
    const assets = [...page.text.matchAll(/(?:src|href)="\.?\/?([^"]+\.(?:js|css))"/g)].map((m) => m[1]);
    expect(assets.length).toBeGreaterThan(2);
    for (const asset of assets) await http().get(`/docs/${asset}`).expect(200);
  });

  it('accepts a key with surrounding spaces in the header and any case of Bearer', async () => {
    await http().get('/jobs').set('Authorization', `bearer   ${KEYS.read} `).expect(200);
  });
});

describe('a route that declares no scope', () => {
  @Controller('undeclared')
  class UndeclaredController {
    @Get()
    get(): Json {
      return { reached: true };
    }
  }

  async function appWith(apiKeys: string | undefined): Promise<INestApplication> {
    const config = loadConfig({ API_KEYS: apiKeys });
    const module = await Test.createTestingModule({
      imports: [ConfigModule.forRoot(config)],
      controllers: [UndeclaredController],
      providers: [{ provide: APP_GUARD, useClass: ApiKeyGuard }],
    }).compile();
    const app = module.createNestApplication(new FastifyAdapter(), { logger: false });
    app.useGlobalFilters(new ProblemDetailsFilter(createLogger('silent')));
    await app.init();
    await fastifyOf(app).ready();
    return app;
  }

  it.each([
    ['with keys, even to an admin key', 'k-admin'],
    ['without keys', undefined],
  ])('is refused %s (fail closed)', async (_name, apiKeys) => {
    const app = await appWith(apiKeys);
    try {
      const response = await request(app.getHttpServer())
        .get('/undeclared')
        .set('Authorization', 'Bearer k-admin')
        .expect(403);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.body).toMatchObject({
        code: 'forbidden',
        detail: expect.stringContaining('no access scope'),
      });
    } finally {
      await app.close();
    }
  });
});
