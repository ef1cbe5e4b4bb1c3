import type { INestApplication } from '@nestjs/common';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import request from 'supertest';
import { v7 as uuidv7 } from 'uuid';
import { insertJobs } from '../support/job-factory';
import { countJobs, expectInvalid, expectRefused, LEAK, type Json } from '../support/problems';
import { startTestApp } from '../support/test-app';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

const KNOWN_TYPES = ['noop', 'echo', 'sleep', 'fail'];
/** Bytes sent as they are (superagent would otherwise write a Buffer as JSON, the Content-Type being JSON). */
const sentAsIs = (body: unknown): string => body as string;

describe('API errors (APP_ROLE=api)', () => {
  let db: TestDatabase;
  let app: INestApplication;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestApp(db.url, { role: 'api' });
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  beforeEach(async () => {
    await db.reset();
    // Some rows already there, so "creates nothing" is checked against a non-empty table.
    await insertJobs(db.pool, 3);
  });

  const http = () => request(app.getHttpServer());
  const postJob = (body: unknown) => () =>
    http()
      .post('/jobs')
      .send(body as object);

  describe('400 for an invalid POST /jobs body', () => {
    it('refuses a body without job_type', async () => {
      await expectInvalid(db, postJob({ payload: {} }), 'job_type');
    });

    it('refuses an empty body, and a request with no body at all', async () => {
      await expectInvalid(db, postJob({}), 'job_type');
      await expectInvalid(db, () => http().post('/jobs'), 'job_type');
    });

    it.each([
      ['a number', 42],
      ['an object', { name: 'noop' }],
      ['an array', ['noop']],
      ['null', null],
    ])('refuses a job_type that is %s', async (_name, jobType) => {
      await expectInvalid(db, postJob({ job_type: jobType }), 'job_type');
    });

    it('refuses an unknown job_type and lists the known ones', async () => {
      const problem = await expectInvalid(db, postJob({ job_type: 'email.send', payload: {} }), 'job_type');
      const text = [problem.detail, ...problem.errors.map((error: Json) => error.message)].join(' ');
      for (const type of KNOWN_TYPES) expect(text).toContain(type);
    });

    it('refuses an unknown top-level field', async () => {
      await expectInvalid(db, postJob({ job_type: 'echo', colour: 'red' }), 'colour');
    });

    it.each([
      ['an array', [1, 2]],
      ['a string', 'hello'],
      ['null', null],
      ['a number', 7],
    ])('refuses a payload that is %s', async (_name, payload) => {
      await expectInvalid(db, postJob({ job_type: 'echo', payload }), 'payload');
    });

    it.each([
      ['above 1000', 1001],
      ['below -1000', -1001],
      ['not an integer', 1.5],
      ['a numeric string', '5'],
      ['a boolean', true],
      ['null', null],
    ])('refuses a priority that is %s', async (_name, priority) => {
      await expectInvalid(db, postJob({ job_type: 'echo', priority }), 'priority');
    });

    it.each([
      ['free text', 'tomorrow'],
      ['a date in another format', '01/12/2026 09:00'],
      ['an impossible date', '2026-13-45T00:00:00Z'],
      ['a number', 1764300000000],
      ['an empty string', ''],
    ])('refuses a run_at that is %s', async (_name, runAt) => {
      await expectInvalid(db, postJob({ job_type: 'echo', run_at: runAt }), 'run_at');
    });

    it.each([
      ['0', 0],
      ['negative', -1],
      ['a numeric string', '3'],
      ['not an integer', 2.5],
    ])('refuses a max_attempts that is %s', async (_name, maxAttempts) => {
      await expectInvalid(db, postJob({ job_type: 'echo', max_attempts: maxAttempts }), 'max_attempts');
    });

    it.each([
      ['negative', -5],
      ['0', 0],
      ['not an integer', 10.5],
      ['a string', '1000'],
    ])('refuses a timeout_ms that is %s', async (_name, timeoutMs) => {
      await expectInvalid(db, postJob({ job_type: 'echo', timeout_ms: timeoutMs }), 'timeout_ms');
    });

    it('lists every invalid field of one body', async () => {
      const problem = await expectInvalid(
        db,
        postJob({ job_type: 'echo', priority: 5000, max_attempts: 0, timeout_ms: -1 }),
        'priority',
      );
      const fields = problem.errors.map((error: Json) => error.field);
      expect(fields).toEqual(expect.arrayContaining(['priority', 'max_attempts', 'timeout_ms']));
    });

    describe("an invalid payload for the job type's handler", () => {
      it('refuses sleep with ms that is not a number (payload.ms)', async () => {
        await expectInvalid(db, postJob({ job_type: 'sleep', payload: { ms: 'x' } }), 'payload.ms');
      });

      it('refuses sleep without ms', async () => {
        await expectInvalid(db, postJob({ job_type: 'sleep', payload: {} }), 'payload.ms');
      });

      it('refuses sleep without any payload (the default {} lacks ms)', async () => {
        await expectInvalid(db, postJob({ job_type: 'sleep' }), 'payload.ms');
      });

      it('refuses sleep with a negative ms', async () => {
        await expectInvalid(db, postJob({ job_type: 'sleep', payload: { ms: -1 } }), 'payload.ms');
      });

      it('refuses sleep with a field its payload does not have (payload.extra)', async () => {
        await expectInvalid(
          db,
          postJob({ job_type: 'sleep', payload: { ms: 10, extra: true } }),
          'payload.extra',
        );
      });

      it('refuses fail without message (payload.message)', async () => {
        await expectInvalid(
          db,
          postJob({ job_type: 'fail', payload: { permanent: true } }),
          'payload.message',
        );
      });

      it('refuses fail with a permanent flag that is not a boolean (payload.permanent)', async () => {
        await expectInvalid(
          db,
          postJob({ job_type: 'fail', payload: { message: 'boom', permanent: 'yes' } }),
          'payload.permanent',
        );
      });

      it('refuses noop with any payload field', async () => {
        await expectInvalid(db, postJob({ job_type: 'noop', payload: { anything: 1 } }), 'payload.anything');
      });
    });

    it('refuses a malformed JSON body', async () => {
      await expectRefused(
        db,
        () => http().post('/jobs').set('Content-Type', 'application/json').send('{"job_type": "echo",'),
        400,
        'malformed_json',
      );
    });

    it('refuses a JSON body that is not an object', async () => {
      for (const body of ['"noop"', '42', 'null', 'true']) {
        await expectRefused(
          db,
          () => http().post('/jobs').set('Content-Type', 'application/json').send(body),
          400,
        );
      }
    });

    it('refuses a JSON array as the body of POST /jobs', async () => {
      await expectRefused(
        db,
        () => http().post('/jobs').set('Content-Type', 'application/json').send('[{"job_type":"echo"}]'),
        400,
      );
    });

    it('refuses an Idempotency-Key of 300 characters', async () => {
      await expectInvalid(
        db,
        () => http().post('/jobs').set('Idempotency-Key', 'k'.repeat(300)).send({ job_type: 'echo' }),
        'Idempotency-Key',
      );
    });

    it('refuses an Idempotency-Key with spaces or non-ASCII characters', async () => {
      for (const key of ['has spaces', 'clé-unique', '']) {
        await expectInvalid(
          db,
          () => http().post('/jobs').set('Idempotency-Key', key).send({ job_type: 'echo' }),
          'Idempotency-Key',
        );
      }
    });

    it('accepts a noop job with no payload or an empty one, alone or in a batch', async () => {
      const before = await countJobs(db);
      await http().post('/jobs').send({ job_type: 'noop' }).expect(201);
      await http().post('/jobs').send({ job_type: 'noop', payload: {} }).expect(201);
      await http()
        .post('/jobs/batch')
        .send({ jobs: [{ job_type: 'noop' }, { job_type: 'echo' }] })
        .expect(201);
      expect(await countJobs(db)).toBe(before + 4);
    });

    it('still accepts a valid body (the refusals above are about the input, not the endpoint)', async () => {
      const before = await countJobs(db);
      const created = await http()
        .post('/jobs')
        .send({
          job_type: 'sleep',
          payload: { ms: 10 },
          priority: -1000,
          run_at: '2030-01-01T00:00:00Z',
          max_attempts: 1,
          timeout_ms: 1,
        })
        .expect(201);
      expect(created.headers['content-type']).toMatch(/^application\/json/);
      expect(created.body).toMatchObject({ job_type: 'sleep', state: 'pending', priority: -1000 });
      expect(await countJobs(db)).toBe(before + 1);
    });
  });

  describe('400 for a bad job_id or query', () => {
    it.each([
      'not-a-uuid',
      '12345',
      '019ac9a2-5b3e-7c41-9d6a-2f0e4b8c1d2',
      'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz',
    ])('refuses GET /jobs/%s', async (jobId) => {
      await expectInvalid(db, () => http().get(`/jobs/${jobId}`), 'job_id');
    });

    it('refuses a job_id of 1,000 characters as any other bad job_id', async () => {
      await expectInvalid(db, () => http().get(`/jobs/${'a'.repeat(1_000)}`), 'job_id');
    });

    it('refuses a path segment past the router limit, and one it cannot decode', async () => {
      await expectRefused(db, () => http().get(`/jobs/${'a'.repeat(5_000)}`), 400, 'bad_request');
      await expectRefused(db, () => http().get('/jobs/%E0%A4%A'), 400, 'bad_request');
    });

    it("refuses a SQL-looking job_id without echoing the database's words", async () => {
      await expectInvalid(db, () => http().get(`/jobs/${encodeURIComponent("1' OR '1'='1")}`), 'job_id');
    });

    it.each([
      ['state=bogus', 'state=bogus', 'state'],
      ['state=PENDING', 'state=PENDING', 'state'],
      ['state=pending&state=running', 'state=pending&state=running', 'state'],
      ['limit=0', 'limit=0', 'limit'],
      ['limit=101', 'limit=101', 'limit'],
      ['limit=abc', 'limit=abc', 'limit'],
      ['limit=-1', 'limit=-1', 'limit'],
      ['limit=2.5', 'limit=2.5', 'limit'],
      ['limit=', 'limit=', 'limit'],
      ['cursor=garbage', 'cursor=garbage', 'cursor'],
      [
        'cursor=<a base64url string that is not a job id>',
        `cursor=${Buffer.from('not-a-job-id').toString('base64url')}`,
        'cursor',
      ],
      ['cursor=<500 characters>', `cursor=${'A'.repeat(500)}`, 'cursor'],
      ['job_type=<101 characters>', `job_type=${'a'.repeat(101)}`, 'job_type'],
    ])('refuses GET /jobs?%s', async (_label, query, field) => {
      await expectInvalid(db, () => http().get(`/jobs?${query}`), field);
    });
  });

  describe('404', () => {
    it('answers 404 for a well-formed job_id no job has', async () => {
      const jobId = uuidv7();
      const problem = await expectRefused(db, () => http().get(`/jobs/${jobId}`), 404, 'job_not_found');
      expect(problem.detail).toContain(jobId);
    });

    it('answers 404 problem+json for an unknown route', async () => {
      await expectRefused(db, () => http().get('/no-such-route'), 404);
      await expectRefused(db, () => http().post('/no-such-route').send({ job_type: 'echo' }), 404);
      await expectRefused(db, () => http().delete('/jobs'), 404);
    });
  });

  describe('Idempotency-Key', () => {
    it('refuses the same key with a different body (409) and leaves the first job unchanged', async () => {
      const key = `order-${uuidv7()}`;
      const first = await http()
        .post('/jobs')
        .set('Idempotency-Key', key)
        .send({ job_type: 'echo', payload: { order: 1 } })
        .expect(201);

      const problem = await expectRefused(
        db,
        () =>
          http()
            .post('/jobs')
            .set('Idempotency-Key', key)
            .send({ job_type: 'echo', payload: { order: 2 } }),
        409,
        'idempotency_key_reused',
      );
      expect(problem.detail).not.toMatch(LEAK);

      // Another field differing is a different body as well.
      await expectRefused(
        db,
        () =>
          http()
            .post('/jobs')
            .set('Idempotency-Key', key)
            .send({ job_type: 'echo', payload: { order: 1 }, priority: 9 }),
        409,
        'idempotency_key_reused',
      );

      const now = await http().get(`/jobs/${first.body.job_id}`).expect(200);
      const { attempt_history: history, ...job } = now.body as Json;
      expect(history).toEqual([]);
      expect(job).toEqual(first.body);
    });

    it('replays the same key with the same body: 201, the same job_id, Idempotent-Replayed, one row', async () => {
      const key = `order-${uuidv7()}`;
      const body = { job_type: 'echo', payload: { order: 7, lines: ['a', 'b'] }, priority: 3 };
      const before = await countJobs(db);
      const first = await http().post('/jobs').set('Idempotency-Key', key).send(body).expect(201);
      expect(first.headers['idempotent-replayed']).toBeUndefined();

      const again = await http().post('/jobs').set('Idempotency-Key', key).send(body).expect(201);
      expect(again.body.job_id).toBe(first.body.job_id);
      expect(again.body).toEqual(first.body);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.headers.location).toBe(`/jobs/${first.body.job_id}`);

      // The same JSON with its keys in another order is the same body.
      const reordered = await http()
        .post('/jobs')
        .set('Idempotency-Key', key)
        .send({ priority: 3, payload: { lines: ['a', 'b'], order: 7 }, job_type: 'echo' })
        .expect(201);
      expect(reordered.body.job_id).toBe(first.body.job_id);
      expect(reordered.headers['idempotent-replayed']).toBe('true');

      expect(await countJobs(db)).toBe(before + 1);
      const { rows } = await db.pool.query('SELECT job_id FROM jobs WHERE idempotency_key = $1', [key]);
      expect(rows).toEqual([{ job_id: first.body.job_id }]);
    });

    it('accepts a key of 255 characters', async () => {
      const key = 'k'.repeat(254) + '!';
      const first = await http()
        .post('/jobs')
        .set('Idempotency-Key', key)
        .send({ job_type: 'echo' })
        .expect(201);
      const again = await http()
        .post('/jobs')
        .set('Idempotency-Key', key)
        .send({ job_type: 'echo' })
        .expect(201);
      expect(again.body.job_id).toBe(first.body.job_id);
    });

    it('creates one job when the same key and body arrive concurrently', async () => {
      const key = `burst-${uuidv7()}`;
      const before = await countJobs(db);
      const responses = await Promise.all(
        Array.from({ length: 10 }, () =>
          http()
            .post('/jobs')
            .set('Idempotency-Key', key)
            .send({ job_type: 'echo', payload: { burst: true } }),
        ),
      );
      expect(responses.map((response) => response.status)).toEqual(Array(10).fill(201));
      expect(new Set(responses.map((response) => response.body.job_id)).size).toBe(1);
      expect(responses.filter((response) => response.headers['idempotent-replayed'] === 'true')).toHaveLength(
        9,
      );
      expect(await countJobs(db)).toBe(before + 1);
    });

    it('refuses with 409 all but one of concurrent requests using one key with different bodies', async () => {
      const key = `race-${uuidv7()}`;
      const before = await countJobs(db);
      const responses = await Promise.all(
        Array.from({ length: 8 }, (_, n) =>
          http().post('/jobs').set('Idempotency-Key', key).send({ job_type: 'echo', payload: { n } }),
        ),
      );
      expect(responses.map((response) => response.status).sort()).toEqual([201, ...Array(7).fill(409)]);
      for (const response of responses.filter((r) => r.status === 409)) {
        expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(response.body.code).toBe('idempotency_key_reused');
      }
      expect(await countJobs(db)).toBe(before + 1);
    });

    it('without an Idempotency-Key, two identical POSTs create two jobs (documented)', async () => {
      const before = await countJobs(db);
      const body = { job_type: 'echo', payload: { same: true } };
      const first = await http().post('/jobs').send(body).expect(201);
      const second = await http().post('/jobs').send(body).expect(201);
      expect(second.body.job_id).not.toBe(first.body.job_id);
      expect(second.headers['idempotent-replayed']).toBeUndefined();
      expect(await countJobs(db)).toBe(before + 2);
    });
  });

  describe('415 for a body that is not JSON', () => {
    it('refuses it before routing, on a path that is no operation too', async () => {
      await expectRefused(
        db,
        () => http().post('/job-types//pause').set('Content-Type', 'text/plain').send('pause'),
        415,
        'unsupported_media_type',
      );
    });

    it('refuses text/plain', async () => {
      await expectRefused(
        db,
        () => http().post('/jobs').set('Content-Type', 'text/plain').send('{"job_type":"echo"}'),
        415,
        'unsupported_media_type',
      );
    });

    it('refuses application/x-www-form-urlencoded', async () => {
      await expectRefused(
        db,
        () =>
          http().post('/jobs').set('Content-Type', 'application/x-www-form-urlencoded').send('job_type=echo'),
        415,
        'unsupported_media_type',
      );
    });

    it('refuses JSON in a charset other than UTF-8', async () => {
      await expectRefused(
        db,
        () =>
          http()
            .post('/jobs')
            .set('Content-Type', 'application/json; charset=latin1')
            .send('{"job_type":"echo"}'),
        415,
        'unsupported_media_type',
      );
    });

    it.each([
      ['gzip', gzipSync],
      ['deflate', deflateSync],
      ['br', brotliCompressSync],
    ])('reads a body compressed with Content-Encoding %s', async (encoding, compress) => {
      const response = await http()
        .post('/jobs')
        .set('Content-Type', 'application/json')
        .set('Content-Encoding', encoding)
        .serialize(sentAsIs)
        .send(compress(JSON.stringify({ job_type: 'echo', payload: { text: 'zipped ü' } })))
        .expect(201);
      expect(response.body).toMatchObject({ job_type: 'echo', payload: { text: 'zipped ü' } });
    });

    it('refuses a Content-Encoding it does not support', async () => {
      await expectRefused(
        db,
        () =>
          http()
            .post('/jobs')
            .set('Content-Type', 'application/json')
            .set('Content-Encoding', 'compress')
            .send('{"job_type":"echo"}'),
        415,
        'unsupported_media_type',
      );
    });

    it('closes the connection of a refused body, whose rest the client may still be sending', async () => {
      for (const [contentType, body] of [
        ['text/plain', 'x'],
        ['application/json', '{"job_type":'],
      ]) {
        const response = await http()
          .post('/jobs')
          .set('Connection', 'keep-alive')
          .set('Content-Type', contentType)
          .send(body);
        expect([response.status, response.headers.connection]).toEqual([expect.any(Number), 'close']);
        expect(response.status).toBeGreaterThanOrEqual(400);
      }
      // An accepted body keeps it.
      const accepted = await http()
        .post('/jobs')
        .set('Connection', 'keep-alive')
        .send({ job_type: 'echo' })
        .expect(201);
      expect(accepted.headers.connection).not.toBe('close');
    });

    it('refuses a batch sent as text/plain', async () => {
      await expectRefused(
        db,
        () =>
          http()
            .post('/jobs/batch')
            .set('Content-Type', 'text/plain')
            .send(JSON.stringify({ jobs: [{ job_type: 'echo' }] })),
        415,
        'unsupported_media_type',
      );
    });
  });

  describe('POST /jobs/batch', () => {
    const postBatch = (body: unknown) => () =>
      http()
        .post('/jobs/batch')
        .send(body as object);

    it('lists the index and field of every invalid item and creates none of the jobs', async () => {
      const problem = await expectInvalid(
        db,
        postBatch({
          jobs: [
            { job_type: 'echo' },
            { job_type: 'echo', priority: 'high' },
            { job_type: 'echo', payload: { ok: true } },
            { job_type: 'sleep', payload: { ms: 'x' } },
            { job_type: 'echo', priority: 1 },
          ],
        }),
        'priority',
      );
      expect(problem.errors).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ index: 1, field: 'priority' }),
          expect.objectContaining({ index: 3, field: 'payload.ms' }),
        ]),
      );
      expect(new Set(problem.errors.map((error: Json) => error.index))).toEqual(new Set([1, 3]));
    });

    it('names the one bad job among 1000 plain ones, with the messages of a job refused alone, and creates none', async () => {
      const jobs: object[] = Array.from({ length: 1000 }, (_, n) => ({ job_type: 'echo', payload: { n } }));
      jobs[998] = { job_type: 'echo', priority: 1.5, max_attempts: null, extra: true };
      const alone = await expectInvalid(db, postBatch({ jobs: [jobs[998]] }), 'priority');
      const problem = await expectInvalid(db, postBatch({ jobs }), 'priority');
      expect(problem.errors).toEqual(alone.errors.map((error: Json) => ({ ...error, index: 998 })));
      expect(new Set(problem.errors.map((error: Json) => error.field))).toEqual(
        new Set(['extra', 'max_attempts', 'priority']),
      );
    });

    it('lists every item whose payload is invalid for its job type', async () => {
      const problem = await expectInvalid(
        db,
        postBatch({
          jobs: [
            { job_type: 'fail', payload: {} },
            { job_type: 'echo' },
            { job_type: 'sleep', payload: { ms: 5, extra: 1 } },
            { job_type: 'no.such.type' },
          ],
        }),
        'payload.message',
      );
      expect(problem.errors).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ index: 0, field: 'payload.message' }),
          expect.objectContaining({ index: 2, field: 'payload.extra' }),
          expect.objectContaining({ index: 3, field: 'job_type' }),
        ]),
      );
      expect(new Set(problem.errors.map((error: Json) => error.index))).toEqual(new Set([0, 2, 3]));
    });

    it('lists every item whose fields are invalid', async () => {
      const problem = await expectInvalid(
        db,
        postBatch({
          jobs: [
            { job_type: 'echo', max_attempts: 0 },
            { job_type: 'echo' },
            { job_type: 'echo', run_at: 'soon' },
          ],
        }),
        'max_attempts',
      );
      expect(problem.errors).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ index: 0, field: 'max_attempts' }),
          expect.objectContaining({ index: 2, field: 'run_at' }),
        ]),
      );
    });

    it('refuses an empty jobs array', async () => {
      await expectInvalid(db, postBatch({ jobs: [] }), 'jobs');
    });

    it('refuses a body without jobs, or with jobs that is not an array', async () => {
      await expectInvalid(db, postBatch({}), 'jobs');
      await expectInvalid(db, postBatch({ jobs: { job_type: 'echo' } }), 'jobs');
      await expectInvalid(db, postBatch({ jobs: 'noop' }), 'jobs');
    });

    it('refuses an unknown top-level field', async () => {
      await expectInvalid(db, postBatch({ jobs: [{ job_type: 'echo' }], atomic: false }), 'atomic');
    });

    it('refuses more than 1000 jobs', async () => {
      const jobs = Array.from({ length: 1001 }, () => ({ job_type: 'echo' }));
      await expectInvalid(db, postBatch({ jobs }), 'jobs');
    });

    it('refuses a malformed JSON batch', async () => {
      await expectRefused(
        db,
        () =>
          http().post('/jobs/batch').set('Content-Type', 'application/json').send('{"jobs": [ {"job_type": '),
        400,
        'malformed_json',
      );
    });

    it('creates a valid batch: 201 with items in request order', async () => {
      const before = await countJobs(db);
      const jobs = [
        { job_type: 'echo', payload: { n: 0 } },
        { job_type: 'sleep', payload: { ms: 100 }, priority: 5 },
        { job_type: 'fail', payload: { message: 'later', permanent: true }, max_attempts: 1 },
        { job_type: 'echo', run_at: '2031-06-01T12:00:00Z' },
        { job_type: 'echo', payload: { n: 4 }, timeout_ms: 1000 },
      ];
      const response = await http().post('/jobs/batch').send({ jobs }).expect(201);
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      const items = response.body.items as Json[];
      expect(items.map((item) => item.job_type)).toEqual(jobs.map((job) => job.job_type));
      expect(items.map((item) => item.payload)).toEqual([
        { n: 0 },
        { ms: 100 },
        { message: 'later', permanent: true },
        {},
        { n: 4 },
      ]);
      expect(items[1].priority).toBe(5);
      expect(items[2].max_attempts).toBe(1);
      expect(Date.parse(items[3].run_at)).toBe(Date.parse('2031-06-01T12:00:00Z'));
      expect(items[4].timeout_ms).toBe(1000);
      for (const item of items) expect(item.state).toBe('pending');
      expect(new Set(items.map((item) => item.job_id)).size).toBe(jobs.length);
      expect(await countJobs(db)).toBe(before + jobs.length);
    });

    it('creates a batch of exactly 1000 jobs', async () => {
      const before = await countJobs(db);
      const jobs = Array.from({ length: 1000 }, (_, n) => ({ job_type: 'echo', payload: { n } }));
      const response = await http().post('/jobs/batch').send({ jobs }).expect(201);
      expect(response.body.items.map((item: Json) => item.payload.n)).toEqual(jobs.map((_, n) => n));
      expect(await countJobs(db)).toBe(before + 1000);
    });
  });

  describe('awkward inputs still get a 4xx, never a 5xx', () => {
    it('refuses a payload holding a NUL character (PostgreSQL jsonb cannot store \\u0000)', async () => {
      await expectRefused(db, postJob({ job_type: 'echo', payload: { text: 'a\u0000b' } }), 400);
    });

    it('refuses a payload key holding a NUL character', async () => {
      await expectRefused(db, postJob({ job_type: 'echo', payload: { 'a\u0000b': 1 } }), 400);
    });

    it('refuses a batch in which one payload holds a NUL character', async () => {
      await expectRefused(
        db,
        () =>
          http()
            .post('/jobs/batch')
            .send({ jobs: [{ job_type: 'echo' }, { job_type: 'echo', payload: { text: '\u0000' } }] }),
        400,
      );
    });

    it('refuses a gzip Content-Encoding whose body is not gzip with a 4xx problem', async () => {
      const before = await countJobs(db);
      const response = await http()
        .post('/jobs')
        .set('Content-Type', 'application/json')
        .set('Content-Encoding', 'gzip')
        .send('{"job_type":"echo"}');
      expect({ status: response.status, text: response.text }).toEqual({
        status: response.status >= 400 && response.status < 500 ? response.status : 'a 4xx',
        text: expect.any(String),
      });
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.text).not.toMatch(LEAK);
      expect(await countJobs(db)).toBe(before);
    });

    it('answers a very deeply nested payload with 201 or a 4xx, never a 5xx', async () => {
      const depth = 20_000;
      const body = `{"job_type":"echo","payload":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`;
      const response = await http().post('/jobs').set('Content-Type', 'application/json').send(body);
      expect({ status: response.status, text: response.text.slice(0, 300) }).toEqual({
        status: response.status < 500 ? response.status : 'not a 5xx',
        text: expect.any(String),
      });
      expect(response.text).not.toMatch(LEAK);
    });

    it.each([
      ['an ISO week date', '2026-W05-3'],
      ['an ISO ordinal date', '2026-032'],
      ['year 0000', '0000-01-01T00:00:00Z'],
    ])('answers a run_at that is %s with 201 or a 400 problem, never a 5xx', async (_name, runAt) => {
      const response = await http().post('/jobs').send({ job_type: 'echo', run_at: runAt });
      // Shows the body when it fails.
      const accepted = [201, 400].includes(response.status);
      expect({ status: response.status, text: response.text }).toEqual({
        status: accepted ? response.status : '201 or 400',
        text: expect.any(String),
      });
      if (!accepted) return;
      expect(response.headers['content-type']).toMatch(
        response.status === 201 ? /^application\/json/ : /^application\/problem\+json/,
      );
    });
  });
});

describe('413 for a body over MAX_BODY_BYTES', () => {
  let db: TestDatabase;
  let app: INestApplication;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestApp(db.url, { role: 'api', maxBodyBytes: 2048 });
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  it('refuses a 4 KB POST /jobs with 413 and creates nothing', async () => {
    await expectRefused(
      db,
      () =>
        request(app.getHttpServer())
          .post('/jobs')
          .send({ job_type: 'echo', payload: { data: 'x'.repeat(4096) } }),
      413,
      'payload_too_large',
    );
  });

  it('refuses a 4 KB batch with 413 and creates nothing', async () => {
    const jobs = Array.from({ length: 100 }, (_, n) => ({ job_type: 'echo', payload: { n } }));
    await expectRefused(
      db,
      () => request(app.getHttpServer()).post('/jobs/batch').send({ jobs }),
      413,
      'payload_too_large',
    );
  });

  it('refuses an oversized body even when its Content-Type is not JSON (415 or 413, never 5xx)', async () => {
    const response = await request(app.getHttpServer())
      .post('/jobs')
      .set('Content-Type', 'text/plain')
      .send('x'.repeat(4096));
    expect([413, 415]).toContain(response.status);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  it('refuses a compressed body that is over the limit once decompressed, and creates nothing', async () => {
    const body = JSON.stringify({ job_type: 'echo', payload: { data: 'x'.repeat(64 * 1024) } });
    const compressed = gzipSync(body);
    expect(compressed.length).toBeLessThan(2048);
    await expectRefused(
      db,
      () =>
        request(app.getHttpServer())
          .post('/jobs')
          .set('Content-Type', 'application/json')
          .set('Content-Encoding', 'gzip')
          .serialize(sentAsIs)
          .send(compressed),
      413,
      'payload_too_large',
    );
  });

  it('still accepts a body under the limit', async () => {
    await request(app.getHttpServer())
      .post('/jobs')
      .send({ job_type: 'echo', payload: { data: 'x'.repeat(1024) } })
      .expect(201);
  });
});

describe('401 when API_KEYS is set', () => {
  let db: TestDatabase;
  let app: INestApplication;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestApp(db.url, { role: 'api', apiKeys: [{ key: 'secret-key', scope: 'admin' }] });
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  const http = () => request(app.getHttpServer());

  it('refuses POST /jobs without Authorization', async () => {
    const problem = await expectRefused(
      db,
      () => http().post('/jobs').send({ job_type: 'echo' }),
      401,
      'unauthorized',
    );
    expect(problem.detail).not.toContain('secret-key');
  });

  it('refuses a wrong key, a key without Bearer, and another scheme', async () => {
    for (const authorization of ['Bearer wrong-key', 'secret-key', 'Basic c2VjcmV0LWtleQ==', 'Bearer ']) {
      await expectRefused(
        db,
        () => http().post('/jobs').set('Authorization', authorization).send({ job_type: 'echo' }),
        401,
      );
    }
  });

  it('refuses reading jobs without a key', async () => {
    await expectRefused(db, () => http().get('/jobs'), 401);
    await expectRefused(db, () => http().get(`/jobs/${uuidv7()}`), 401);
    await expectRefused(
      db,
      () =>
        http()
          .post('/jobs/batch')
          .send({ jobs: [{ job_type: 'echo' }] }),
      401,
    );
  });

  it('accepts POST /jobs with Authorization: Bearer secret-key', async () => {
    const before = await countJobs(db);
    const created = await http()
      .post('/jobs')
      .set('Authorization', 'Bearer secret-key')
      .send({ job_type: 'echo' })
      .expect(201);
    expect(await countJobs(db)).toBe(before + 1);
    await http().get(`/jobs/${created.body.job_id}`).set('Authorization', 'Bearer secret-key').expect(200);
  });

  it('serves /health/live without a key', async () => {
    await http().get('/health/live').expect(200);
  });
});
