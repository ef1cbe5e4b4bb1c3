import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { startTestApp } from '../support/test-app';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

/**
 * Large answers are sent as bytes encoded once, small ones as text: either way the client gets the same
 * JSON, with a Content-Length that counts its UTF-8 bytes, not its characters.
 */
describe('answers large and small, with text outside ASCII', () => {
  let db: TestDatabase;
  let app: INestApplication;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestApp(db.url, { role: 'api' });
  });

  afterAll(async () => {
    await app.close();
    await db.drop();
  });

  const payloads = (count: number) =>
    Array.from({ length: count }, (_, n) => ({ n, text: `Grüße, 世界 ${n} 🎉`, emoji: '👩‍💻'.repeat(n % 5) }));

  it.each([
    ['a batch answer far over 16 KB', 300],
    ['a batch answer under it', 2],
  ])('%s arrives whole as JSON, its Content-Length its bytes', async (_case, count) => {
    const sent = payloads(count);
    const response = await request(app.getHttpServer())
      .post('/jobs/batch')
      .send({ jobs: sent.map((payload) => ({ job_type: 'echo', payload })) });
    expect(response.status).toBe(201);
    expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
    const text = response.text;
    expect(Number(response.headers['content-length'])).toBe(Buffer.byteLength(text, 'utf8'));
    expect(text.length > 16_384).toBe(count > 100);
    expect(Buffer.byteLength(text, 'utf8')).toBeGreaterThan(text.length);
    const answer = JSON.parse(text) as { items: { payload: unknown }[] };
    expect(answer.items.map((job) => job.payload)).toEqual(sent);
  });
});
