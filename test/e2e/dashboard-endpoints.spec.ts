import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { DASHBOARD_CONTENT_SECURITY_POLICY } from '../../src/dashboard/serve-dashboard';
import { startTestApp } from '../support/test-app';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

type Json = Record<string, any>;

const ADMIN = 'k-admin-3c9e1f';
const WRITE = 'k-write-51aa0d';
const READ = 'k-read-77b2e4';

/** What the dashboard needs from the api role besides the job endpoints: its files, whoami, the chart. */
describe('dashboard: /ui, GET /auth/whoami, GET /stats/finished-per-minute', () => {
  let db: TestDatabase;
  let api: INestApplication;
  const others: INestApplication[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startTestApp(db.url, {
      role: 'api',
      apiKeys: [
        { key: ADMIN, scope: 'admin' },
        { key: WRITE, scope: 'write' },
        { key: READ, scope: 'read' },
      ],
    });
  });
  afterAll(async () => {
    for (const app of [api, ...others]) await app?.close();
    await db?.drop();
  });
  const http = (): ReturnType<typeof request> => request(api.getHttpServer());

  describe('/ui', () => {
    it('serves index.html at /ui and /ui/, never cached, under the strict policy, with no key', async () => {
      for (const path of ['/ui', '/ui/']) {
        const page = await http().get(path).expect(200);
        expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
        expect(page.headers['cache-control']).toBe('no-store');
        expect(page.headers['content-security-policy']).toBe(DASHBOARD_CONTENT_SECURITY_POLICY);
        expect(page.headers['x-content-type-options']).toBe('nosniff');
        expect(page.text).toContain('<div id="app"></div>');
      }
      expect(DASHBOARD_CONTENT_SECURITY_POLICY).toContain("script-src 'self';");
      expect(DASHBOARD_CONTENT_SECURITY_POLICY).toContain("style-src 'self';");
      expect(DASHBOARD_CONTENT_SECURITY_POLICY).not.toMatch(/unsafe-|data:|https?:|upgrade-insecure/);
    });

    it('has no inline script or style; every asset is same-origin, content-hashed and cached for a year', async () => {
      const page = await http().get('/ui/').expect(200);
      expect(page.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(page.text).not.toMatch(/<style|\sstyle=/);
      const assets = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]);
      expect(assets.length).toBeGreaterThanOrEqual(2);
      for (const asset of assets) {
        expect(asset).toMatch(/^\/ui\/assets\/[\w.-]+-[\w-]{8}\.(js|css|svg)$/);
        const response = await http().get(asset).expect(200);
        expect(response.headers['cache-control']).toBe('public, max-age=31536000, immutable');
        expect(response.headers['content-type']).toMatch(/javascript|css|svg/);
        await http().get(asset).set('If-None-Match', response.headers.etag).expect(304);
      }
      const script = assets.find((asset) => asset.endsWith('.js'))!;
      const zipped = await http().get(script).set('Accept-Encoding', 'gzip').expect(200);
      expect(zipped.headers['content-encoding']).toBe('gzip');
      expect(Number(zipped.headers['content-length'])).toBeLessThan(
        Number((await http().get(script).set('Accept-Encoding', 'identity')).headers['content-length']),
      );
    });

    it('answers 404 problems for any other path below /ui and for other methods', async () => {
      for (const path of [
        '/ui/assets/nope-12345678.js',
        '/ui/index.html',
        '/ui/../package.json',
        '/ui/jobs',
      ]) {
        const response = await http().get(path).expect(404);
        expect(response.headers['content-type']).toMatch(/application\/problem\+json/);
      }
      await http().post('/ui').set('Authorization', `Bearer ${ADMIN}`).send({}).expect(404);
    });

    it('is served by the api role only', async () => {
      const worker = await startTestApp(db.url, { role: 'worker' });
      others.push(worker);
      await request(worker.getHttpServer()).get('/ui/').expect(404);
    });
  });

  describe('GET /auth/whoami', () => {
    it("names the key's scope, and refuses a missing or unknown key", async () => {
      for (const [key, scope] of [
        [ADMIN, 'admin'],
        [WRITE, 'write'],
        [READ, 'read'],
      ]) {
        const { body, headers } = await http()
          .get('/auth/whoami')
          .set('Authorization', `Bearer ${key}`)
          .expect(200);
        expect(body).toEqual({ scope, key_required: true });
        expect(headers['cache-control']).toBe('no-store');
        expect(JSON.stringify(body)).not.toContain(key);
      }
      await http().get('/auth/whoami').expect(401);
      await http().get('/auth/whoami').set('Authorization', 'Bearer k-unknown').expect(401);
    });

    it('says no key is needed, with every action open, when the API has no keys', async () => {
      const open = await startTestApp(db.url, { role: 'api', apiKeys: [] });
      others.push(open);
      const { body } = await request(open.getHttpServer()).get('/auth/whoami').expect(200);
      expect(body).toEqual({ scope: 'admin', key_required: false });
    });
  });

  describe('GET /stats/finished-per-minute', () => {
    beforeEach(async () => {
      await db.reset();
      await db.pool.query('DELETE FROM job_finishes');
    });
    const read = (query = ''): request.Test =>
      http().get(`/stats/finished-per-minute${query}`).set('Authorization', `Bearer ${READ}`);

    it('counts the jobs finished in each minute of the last hour, over every shard, zero-filled', async () => {
      // Older finishes written as the counter triggers write them (per second, type, state and shard): a
      // job row cannot be made to have finished in the past.
      const { rows: seconds } = await db.pool.query(
        `INSERT INTO job_finishes (finished_second, job_type, state, shard, jobs)
         VALUES (date_trunc('second', now() - interval '10 minutes'), 'echo', 'completed', 0, 4),
                (date_trunc('second', now() - interval '10 minutes'), 'echo', 'completed', 5, 1),
                (date_trunc('second', now() - interval '10 minutes'), 'noop', 'completed', 2, 2),
                (date_trunc('second', now() - interval '30 minutes'), 'fail', 'failed', 3, 2),
                (date_trunc('second', now() - interval '70 minutes'), 'echo', 'completed', 0, 100)
         RETURNING finished_second, state, jobs`,
      );
      // And jobs that finish now, through the API: the triggers count them.
      const runAt = new Date(Date.now() + 3_600_000).toISOString();
      for (let i = 0; i < 3; i += 1) {
        await http()
          .post('/jobs')
          .set('Authorization', `Bearer ${ADMIN}`)
          .send({ job_type: 'echo', run_at: runAt })
          .expect(201);
      }
      await http()
        .post('/jobs/cancel')
        .set('Authorization', `Bearer ${ADMIN}`)
        .send({ job_type: 'echo' })
        .expect(202);
      const { rows: cancelled } = await db.pool.query(
        `SELECT finished_at AS finished_second, 'cancelled' AS state, 1 AS jobs FROM jobs WHERE state = 'cancelled'`,
      );
      expect(cancelled).toHaveLength(3);

      const { body } = await read().expect(200);
      const minutes: Json[] = body.minutes;
      expect(minutes).toHaveLength(60);
      for (let i = 1; i < minutes.length; i += 1) {
        expect(Date.parse(minutes[i].minute) - Date.parse(minutes[i - 1].minute)).toBe(60_000);
      }
      const now = Date.now();
      expect(now - Date.parse(minutes[59].minute)).toBeLessThan(65_000);

      const expected = new Map<string, Json>();
      for (const row of [...seconds, ...cancelled]) {
        const at = row.finished_second as Date;
        const key = new Date(at.getTime() - (at.getTime() % 60_000)).toISOString();
        const entry = expected.get(key) ?? { completed: 0, failed: 0, cancelled: 0 };
        entry[row.state] += Number(row.jobs);
        expected.set(key, entry);
      }
      for (const entry of minutes) {
        expect(entry).toEqual({
          minute: entry.minute,
          ...(expected.get(entry.minute) ?? { completed: 0, failed: 0, cancelled: 0 }),
        });
      }
      const total = (state: string): number => minutes.reduce((sum, entry) => sum + entry[state], 0);
      expect([total('completed'), total('failed'), total('cancelled')]).toEqual([7, 2, 3]);
    });

    it('returns only the minutes asked for, the current one last', async () => {
      const { body } = await read('?minutes=2').expect(200);
      expect(body.minutes).toHaveLength(2);
      const { body: hour } = await read('?minutes=60').expect(200);
      expect(hour.minutes.slice(-2).map((m: Json) => m.minute)).toEqual(
        body.minutes.map((m: Json) => m.minute),
      );
    });

    it('refuses a bad minutes value or an unknown parameter, and a missing key', async () => {
      for (const query of ['?minutes=0', '?minutes=61', '?minutes=1.5', '?minutes=x', '?since=1']) {
        const { body } = await read(query).expect(400);
        expect(body.code).toBe('validation_failed');
      }
      await http().get('/stats/finished-per-minute').expect(401);
    });
  });
});
