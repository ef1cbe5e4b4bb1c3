import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { startTestApp } from '../support/test-app';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

/**
 * The answers of the create endpoints. `Prefer: return=minimal` (RFC 7240): the same jobs are created, the
 * answer holds their ids only and says so in Preference-Applied; any other preference gets the whole jobs.
 * Large answers are sent as bytes encoded once, small ones as text: either way the client gets the same
 * JSON, with a Content-Length that counts its UTF-8 bytes, not its characters.
 */
describe('the answers of POST /jobs and POST /jobs/batch', () => {
  let db: TestDatabase;
  let app: INestApplication;
  const server = () => app.getHttpServer();

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestApp(db.url, { role: 'api' });
  });

  afterAll(async () => {
    await app.close();
    await db.drop();
  });

  beforeEach(() => db.reset());

  const batchOf = (count: number) =>
    Array.from({ length: count }, (_, n) => ({
      job_type: 'echo',
      payload: { n },
      priority: n,
    }));

  it('creates every job of a batch and answers their ids alone, in request order', async () => {
    const jobs = batchOf(7);
    const response = await request(server())
      .post('/jobs/batch')
      .set('Prefer', 'return=minimal')
      .send({ jobs });
    expect(response.status).toBe(201);
    expect(response.headers['preference-applied']).toBe('return=minimal');
    expect(Object.keys(response.body)).toEqual(['items']);
    expect(response.body.items).toHaveLength(jobs.length);
    for (const [index, item] of (response.body.items as { job_id: string }[]).entries()) {
      expect(Object.keys(item)).toEqual(['job_id']);
      const stored = await request(server()).get(`/jobs/${item.job_id}`);
      expect(stored.body).toMatchObject({
        job_type: jobs[index].job_type,
        payload: { n: index },
        priority: index,
        state: 'pending',
      });
    }
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM jobs');
    expect(rows[0].n).toBe(jobs.length);
  });

  it('counts the created jobs of a batch per job type in /metrics, whichever answer it gets', async () => {
    const createdSoFar = async (jobType: string) => {
      const { text } = await request(server()).get('/metrics').expect(200);
      const line = new RegExp(`^jobs_created_total\\{job_type="${jobType}"\\} (\\d+)$`, 'm').exec(text);
      return line ? Number(line[1]) : 0;
    };
    const [echoBefore, noopBefore] = [await createdSoFar('echo'), await createdSoFar('noop')];
    const mixed = [...batchOf(3), { job_type: 'noop' }, { job_type: 'noop' }];
    await request(server())
      .post('/jobs/batch')
      .set('Prefer', 'return=minimal')
      .send({ jobs: mixed })
      .expect(201);
    await request(server()).post('/jobs/batch').send({ jobs: mixed }).expect(201);
    expect([(await createdSoFar('echo')) - echoBefore, (await createdSoFar('noop')) - noopBefore]).toEqual([
      6, 4,
    ]);
  });

  it('answers a batch of one, which takes the single-job insert, the same way', async () => {
    const response = await request(server())
      .post('/jobs/batch')
      .set('Prefer', 'return=minimal')
      .send({ jobs: [{ job_type: 'echo', payload: { only: true } }] });
    expect(response.status).toBe(201);
    expect(response.headers['preference-applied']).toBe('return=minimal');
    expect(response.body).toEqual({ items: [{ job_id: expect.any(String) }] });
    const stored = await request(server()).get(`/jobs/${response.body.items[0].job_id}`);
    expect(stored.body).toMatchObject({ job_type: 'echo', payload: { only: true } });
  });

  it('answers POST /jobs with the id and Location, and a replayed Idempotency-Key with the first id', async () => {
    const send = () =>
      request(server())
        .post('/jobs')
        .set('Prefer', 'return=minimal')
        .set('Idempotency-Key', 'minimal-once')
        .send({ job_type: 'echo', payload: { hello: 'world' } });
    const first = await send();
    expect(first.status).toBe(201);
    expect(first.body).toEqual({ job_id: expect.any(String) });
    expect(first.headers.location).toBe(`/jobs/${first.body.job_id}`);
    expect(first.headers['preference-applied']).toBe('return=minimal');
    expect(first.headers['idempotent-replayed']).toBeUndefined();

    const replay = await send();
    expect(replay.status).toBe(201);
    expect(replay.body).toEqual({ job_id: first.body.job_id });
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.headers['preference-applied']).toBe('return=minimal');
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM jobs');
    expect(rows[0].n).toBe(1);
  });

  it.each([
    ['no Prefer header', undefined, false],
    ['return=representation', 'return=representation', false],
    ['an unknown preference only', 'handling=lenient', false],
    ['the first return preference, when two disagree', 'return=representation, return=minimal', false],
    ['another preference, then return=minimal with a parameter', 'respond-async, return=minimal; x=1', true],
    ['a quoted value and an upper-case name', 'RETURN="minimal"', true],
  ])('with %s (%s) answers ids only: %s', async (_case, prefer, minimal) => {
    const batch = request(server()).post('/jobs/batch');
    if (prefer !== undefined) batch.set('Prefer', prefer);
    const response = await batch.send({ jobs: batchOf(2) });
    expect(response.status).toBe(201);
    if (minimal) {
      expect(response.headers['preference-applied']).toBe('return=minimal');
      expect(response.body.items).toEqual([{ job_id: expect.any(String) }, { job_id: expect.any(String) }]);
    } else {
      expect(response.headers['preference-applied']).toBeUndefined();
      expect(response.body.items.map((job: { payload: unknown }) => job.payload)).toEqual([
        { n: 0 },
        { n: 1 },
      ]);
      expect(response.body.items[0]).toMatchObject({ state: 'pending', job_type: 'echo', attempts: 0 });
    }
  });

  it('refuses an invalid batch as it would without the preference: 400, nothing created, nothing applied', async () => {
    const response = await request(server())
      .post('/jobs/batch')
      .set('Prefer', 'return=minimal')
      .send({ jobs: [...batchOf(2), { job_type: 'no-such-type' }] });
    expect(response.status).toBe(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.headers['preference-applied']).toBeUndefined();
    expect(response.body.errors).toEqual([expect.objectContaining({ index: 2, field: 'job_type' })]);
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM jobs');
    expect(rows[0].n).toBe(0);
  });

  it('gives each job of a batch an id of its own random bits, drawn by the api for the statement', async () => {
    const response = await request(server())
      .post('/jobs/batch')
      .set('Prefer', 'return=minimal')
      .send({ jobs: batchOf(200) });
    expect(response.status).toBe(201);
    const ids = (response.body.items as { job_id: string }[]).map((item) => item.job_id);
    for (const id of ids)
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // The last 62 bits are the random ones: all different, whatever the clock gave.
    expect(new Set(ids.map((id) => id.slice(19))).size).toBe(ids.length);
  });

  const payloads = (count: number) =>
    Array.from({ length: count }, (_, n) => ({ n, text: `Grüße, 世界 ${n} 🎉`, emoji: '👩‍💻'.repeat(n % 5) }));

  it.each([
    ['a batch answer far over 16 KB', 300],
    ['a batch answer under it', 2],
  ])('%s arrives whole as JSON, its Content-Length its bytes', async (_case, count) => {
    const sent = payloads(count);
    const response = await request(server())
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
