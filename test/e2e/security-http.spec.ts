import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import type { AppConfig } from '../../src/config/app-config';
import { expectRefused } from '../support/problems';
import { startTestApp } from '../support/test-app';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

const READ = 'k-read-51e0c';
const OTHER_READ = 'k-read-93b7d';

describe('security headers, CORS, rate limit and /metrics (APP_ROLE=api)', () => {
  let db: TestDatabase;
  const apps: INestApplication[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
  });

  afterAll(async () => {
    for (const app of apps) await app.close();
    await db?.drop();
  });

  async function appWith(overrides: Partial<AppConfig>): Promise<ReturnType<typeof request>> {
    const app = await startTestApp(db.url, {
      role: 'api',
      apiKeys: [
        { key: READ, scope: 'read' },
        { key: OTHER_READ, scope: 'read' },
      ],
      ...overrides,
    });
    apps.push(app);
    return request(app.getHttpServer());
  }

  describe('with the defaults', () => {
    let http: ReturnType<typeof request>;
    beforeAll(async () => {
      http = await appWith({});
    });

    it('sends security headers on answers, refusals and body-parser problems alike', async () => {
      const answers = [
        await http.get('/jobs').set('Authorization', `Bearer ${READ}`),
        await http.get('/jobs'),
        await http.post('/jobs').set('Content-Type', 'text/plain').send('x'),
        await http.get('/health/live'),
      ];
      for (const response of answers) {
        expect(response.headers).toMatchObject({
          'content-security-policy': expect.stringContaining("default-src 'self'"),
          'x-content-type-options': 'nosniff',
          'x-frame-options': 'SAMEORIGIN',
          'strict-transport-security': expect.any(String),
        });
        expect(response.headers['x-powered-by']).toBeUndefined();
      }
    });

    it('serves Swagger UI under that policy: no inline script, every asset from the same origin loads', async () => {
      const page = await http.get('/docs/').expect(200);
      expect(page.headers['content-security-policy']).toMatch(/script-src 'self'(;|$)/);
      const scripts = [...page.text.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
      expect(scripts.length).toBeGreaterThan(0);
      for (const [, attributes, inline] of scripts) {
        expect(attributes).toMatch(/src="/);
        expect(inline.trim()).toBe('');
      }
      const assets = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]);
      expect(assets.filter((asset) => /^(https?:)?\/\//.test(asset))).toEqual([]);
      for (const asset of assets.filter((a) => /\.(js|css|png)$/.test(a))) {
        const response = await http.get(`/docs/${asset.replace(/^\.\//, '')}`).expect(200);
        expect(response.headers['content-type']).toMatch(/javascript|css|image/);
      }
      const spec = await http.get('/docs-json').expect(200);
      expect(spec.body.paths['/jobs']).toBeDefined();
    });

    it('sends no CORS headers, not even to a preflight', async () => {
      const preflight = await http
        .options('/jobs')
        .set('Origin', 'https://evil.example.com')
        .set('Access-Control-Request-Method', 'POST');
      expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
      const get = await http
        .get('/jobs')
        .set('Origin', 'https://evil.example.com')
        .set('Authorization', `Bearer ${READ}`)
        .expect(200);
      expect(get.headers['access-control-allow-origin']).toBeUndefined();
    });

    it('needs a read key for /metrics', async () => {
      await expectRefused(db, () => http.get('/metrics'), 401, 'unauthorized');
      const metrics = await http.get('/metrics').set('Authorization', `Bearer ${READ}`).expect(200);
      expect(metrics.text).toContain('jobs_by_state');
    });

    it('does not limit the rate', async () => {
      for (let i = 0; i < 20; i += 1) {
        await http.get('/job-types').set('Authorization', `Bearer ${READ}`).expect(200);
      }
    });
  });

  it('serves /metrics without a key when METRICS_PUBLIC=true, and nothing else', async () => {
    const http = await appWith({ metricsPublic: true });
    await http.get('/metrics').expect(200);
    await expectRefused(db, () => http.get('/jobs'), 401);
  });

  it('answers CORS for the origins of CORS_ORIGINS only', async () => {
    const http = await appWith({ corsOrigins: ['https://ops.example.com'] });
    const preflight = await http
      .options('/jobs')
      .set('Origin', 'https://ops.example.com')
      .set('Access-Control-Request-Method', 'POST')
      .set('Access-Control-Request-Headers', 'authorization,content-type');
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('https://ops.example.com');
    expect(preflight.headers['access-control-allow-headers']).toMatch(/Authorization/);
    const other = await http
      .get('/jobs')
      .set('Origin', 'https://evil.example.com')
      .set('Authorization', `Bearer ${READ}`);
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('limits each key to RATE_LIMIT_PER_MINUTE with a 429 problem and Retry-After; probes are not counted', async () => {
    const http = await appWith({ rateLimitPerMinute: 3 });
    for (let i = 0; i < 3; i += 1) {
      await http.get('/jobs').set('Authorization', `Bearer ${READ}`).expect(200);
    }
    const problem = await expectRefused(
      db,
      () => http.get('/jobs').set('Authorization', `Bearer ${READ}`),
      429,
      'too_many_requests',
    );
    expect(JSON.stringify(problem)).not.toContain(READ);
    const refused = await http.get('/job-types').set('Authorization', `Bearer ${READ}`).expect(429);
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Another key has its own budget; probes have none.
    await http.get('/jobs').set('Authorization', `Bearer ${OTHER_READ}`).expect(200);
    for (let i = 0; i < 5; i += 1) await http.get('/health/live').expect(200);
  });
});
