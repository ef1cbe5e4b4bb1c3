import type { INestApplication } from '@nestjs/common';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import createClient from 'openapi-fetch';
import type { paths } from '../support/generated/job-service-api';
import { startTestApp } from '../support/test-app';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

/**
 * A client as our users make one: types generated from /docs-json with openapi-typescript, calls made with
 * openapi-fetch. The typecheck compiles this file against the committed types, so a change of the document
 * that breaks such a client breaks the build; the first test keeps the committed types equal to what the
 * document generates.
 */

const ROOT = join(__dirname, '..', '..');
const TYPES_FILE = join(ROOT, 'test', 'support', 'generated', 'job-service-api.ts');

describe('a client generated from the OpenAPI document (openapi-typescript + openapi-fetch)', () => {
  it('is generated from /docs-json as committed (npm run api:types regenerates it)', async () => {
    // openapi-typescript is an ES module: it runs in a process of its own, as a user would run it.
    const generated = execFileSync(
      process.execPath,
      [join(ROOT, 'scripts', 'generate-api-types.mjs'), process.env.TEST_OPENAPI_DOCUMENT!],
      { encoding: 'utf8' },
    );
    if (process.env.UPDATE_API_TYPES === '1') writeFileSync(TYPES_FILE, generated);
    expect(existsSync(TYPES_FILE)).toBe(true);
    // On failure: the document changed; run `npm run api:types` and commit the result.
    expect(readFileSync(TYPES_FILE, 'utf8')).toBe(generated);
  });

  describe('against the service (APP_ROLE=all)', () => {
    let db: TestDatabase;
    let app: INestApplication;
    let client: ReturnType<typeof createClient<paths>>;

    beforeAll(async () => {
      db = await createTestDatabase();
      app = await startTestApp(db.url, { role: 'all' });
      await app.listen(0, '127.0.0.1');
      const { port } = app.getHttpServer().address() as AddressInfo;
      client = createClient<paths>({ baseUrl: `http://127.0.0.1:${port}` });
    });

    afterAll(async () => {
      await app?.close();
      await db?.drop();
    });

    it('creates a job, waits for it with a long poll, reads its result, and finds it in the list', async () => {
      const created = await client.POST('/jobs', {
        body: { job_type: 'sleep', payload: { ms: 20 }, priority: 5 },
      });
      expect(created.response.status).toBe(201);
      const jobId = created.data?.job_id;
      if (jobId === undefined) throw new Error(`no job: ${JSON.stringify(created.error)}`);
      expect(created.response.headers.get('location')).toBe(`/jobs/${jobId}`);

      const waited = await client.GET('/jobs/{job_id}', {
        params: { path: { job_id: jobId }, query: { wait_ms: 10_000 } },
      });
      const job = waited.data;
      expect(job?.state).toBe('completed');
      expect(job?.result?.slept_ms).toBeGreaterThanOrEqual(20);
      expect(job?.error).toBeNull();
      expect(job?.attempt_history.map((attempt) => attempt.outcome)).toEqual(['succeeded']);
      const startedAt: string | null | undefined = job?.started_at;
      expect(Date.parse(startedAt ?? '')).toBeGreaterThanOrEqual(Date.parse(job?.created_at ?? ''));

      const listed = await client.GET('/jobs', { params: { query: { job_type: 'sleep', limit: 1 } } });
      const nextCursor: string | null | undefined = listed.data?.next_cursor;
      expect(nextCursor).toBeNull();
      expect(listed.data?.items.map((item) => [item.job_id, item.state, item.priority])).toEqual([
        [jobId, 'completed', 5],
      ]);
    });

    it('gets the problem of a refused request as a typed error', async () => {
      const missing = await client.GET('/jobs/{job_id}', {
        params: { path: { job_id: '019ac9a2-5b3e-7c41-9d6a-2f0e4b8c1d23' } },
      });
      expect(missing.data).toBeUndefined();
      expect(missing.response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect([missing.error?.status, missing.error?.code]).toEqual([404, 'job_not_found']);

      const invalid = await client.POST('/jobs', { body: { job_type: 'sleep', payload: { ms: 1.5 } } });
      expect(invalid.error?.code).toBe('validation_failed');
      expect(invalid.error?.errors?.map((error) => error.field)).toEqual(['payload.ms']);
    });
  });
});
