import type { INestApplication } from '@nestjs/common';
import fc from 'fast-check';
import request from 'supertest';
import { MAX_JSON_DEPTH } from '../../src/common/storable-json';
import { withoutNegativeZero } from '../support/fuzz-arbitraries';
import { insertJobs } from '../support/job-factory';
import { countJobs, expectInvalid, expectRefused, type Json } from '../support/problems';
import { startTestApp } from '../support/test-app';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

/** `{"a":{"a":...{"a":1}...}}` with `levels` objects. */
const nested = (levels: number): string => `${'{"a":'.repeat(levels - 1)}{"a":1}${'}'.repeat(levels - 1)}`;

describe('input fidelity: stored exactly as sent, or refused (APP_ROLE=api)', () => {
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
    await insertJobs(db.pool, 2);
  });

  const http = () => request(app.getHttpServer());
  const postRaw = (path: string, text: string) => () =>
    http().post(path).set('Content-Type', 'application/json').send(text);
  const getJob = async (jobId: string): Promise<Json> =>
    (await http().get(`/jobs/${jobId}`).expect(200)).body as Json;

  /** POST /jobs and POST /jobs/batch (as the second item) with `payload`, both refused naming `field`. */
  async function expectPayloadRefused(payloadText: string, field: string): Promise<void> {
    await expectInvalid(db, postRaw('/jobs', `{"job_type":"echo","payload":${payloadText}}`), field);
    const problem = await expectInvalid(
      db,
      postRaw('/jobs/batch', `{"jobs":[{"job_type":"echo"},{"job_type":"echo","payload":${payloadText}}]}`),
      field,
    );
    expect(problem.errors).toContainEqual(expect.objectContaining({ index: 1, field }));
  }

  describe('strings PostgreSQL cannot store', () => {
    it.each([
      ['a lone high surrogate', '{"text":"a\\ud800b"}', 'payload.text'],
      ['a lone low surrogate', '{"text":"\\udc00"}', 'payload.text'],
      ['a surrogate pair in the wrong order', '{"text":"\\udc00\\ud800"}', 'payload.text'],
      ['a lone surrogate at the end', '{"text":"\\ud83d"}', 'payload.text'],
      ['a lone surrogate in an array item', '{"list":["ok","\\ud800"]}', 'payload.list[1]'],
      ['a lone surrogate in a key', '{"k\\ud800":1}', 'payload["k\\ud800"]'],
      ['a NUL character', '{"text":"a\\u0000b"}', 'payload.text'],
      ['a NUL character in a key', '{"a\\u0000b":1}', 'payload["a\\u0000b"]'],
      ['a NUL character deep down', '{"a":{"b":[{"c":"\\u0000"}]}}', 'payload.a.b[0].c'],
    ])('refuses a payload holding %s, naming the field', async (_name, payload, field) => {
      await expectPayloadRefused(payload, field);
    });

    it.each([
      ['CESU-8 for a lone surrogate', [0xed, 0xa0, 0x80]],
      ['a byte that never starts a character', [0xff]],
      ['an overlong NUL', [0xc0, 0x80]],
      ['a character cut short', [0xe2, 0x82]],
    ])('refuses a body that is not UTF-8 (%s) instead of storing U+FFFD', async (_name, bytes) => {
      const body = Buffer.concat([
        Buffer.from('{"job_type":"echo","payload":{"text":"'),
        Buffer.from(bytes),
        Buffer.from('"}}'),
      ]);
      const problem = await expectRefused(
        db,
        // The bytes as they are: superagent would send a Buffer given for JSON as {"type":"Buffer",...}.
        () =>
          http()
            .post('/jobs')
            .set('Content-Type', 'application/json')
            .serialize((raw: unknown) => raw as string)
            .send(body as unknown as string),
        400,
        'malformed_json',
      );
      expect(problem.detail).toContain('UTF-8');
    });

    it('reads JSON escapes and raw UTF-8 for the same characters as the same string', async () => {
      const created = await http()
        .post('/jobs')
        .set('Content-Type', 'application/json')
        .send('{"job_type":"echo","payload":{"text":"\\u00e9 é \\ud83d\\ude00 😀"}}')
        .expect(201);
      expect((await getJob(created.body.job_id)).payload).toEqual({ text: 'é é 😀 😀' });
    });

    it('refuses GET /jobs?job_type= with a NUL character or one that is no job type name', async () => {
      for (const jobType of ['%00', 'echo%00', '%ED%A0%80', 'e%20cho', '%F0%9F%98%80']) {
        await expectInvalid(db, () => http().get(`/jobs?job_type=${jobType}`), 'job_type');
      }
    });

    it('refuses a NUL or a surrogate in a job_id or cursor', async () => {
      await expectInvalid(db, () => http().get('/jobs/%00'), 'job_id');
      await expectInvalid(db, () => http().get('/jobs?cursor=%00'), 'cursor');
      // Not even a string: the router cannot decode it, and answers 400 before any route runs.
      await expectRefused(db, () => http().get('/jobs/%ED%A0%80'), 400);
    });
  });

  describe('numbers JSON cannot carry exactly', () => {
    it.each([
      ['too large for a double (1e400)', '{"n":1e400}', 'payload.n'],
      ['too large and negative (-1e400)', '{"n":-1e400}', 'payload.n'],
      ['too small for a double (1e-400)', '{"n":1e-400}', 'payload.n'],
      ['an integer beyond 2^53 (12345678901234567890)', '{"n":12345678901234567890}', 'payload.n'],
      ['2^53 + 1', '{"n":9007199254740993}', 'payload.n'],
      [
        'a decimal with more digits than a double holds',
        '{"n":0.1000000000000000055511151231257827}',
        'payload.n',
      ],
      ['an overflowing array item', '{"list":[1,2,1E+400]}', 'payload.list[2]'],
      ['a number under a key that needs quoting', '{"a b":[{"c.d":1e-400}]}', 'payload["a b"][0]["c.d"]'],
    ])('refuses a payload number %s, naming the field', async (_name, payload, field) => {
      await expectPayloadRefused(payload, field);
    });

    it('refuses inexact numbers in job fields too (priority 1e-400 would be read as 0)', async () => {
      await expectInvalid(db, postRaw('/jobs', '{"job_type":"echo","priority":1e-400}'), 'priority');
      await expectInvalid(
        db,
        postRaw('/jobs', '{"job_type":"echo","max_attempts":3.0000000000000001}'),
        'max_attempts',
      );
      const problem = await expectInvalid(
        db,
        postRaw('/jobs/batch', '{"jobs":[{"job_type":"echo"},{"job_type":"echo","timeout_ms":1e400}]}'),
        'timeout_ms',
      );
      expect(problem.errors).toContainEqual(expect.objectContaining({ index: 1, field: 'timeout_ms' }));
    });

    it('lists every inexact number of a body', async () => {
      const problem = await expectInvalid(
        db,
        postRaw('/jobs', '{"job_type":"echo","payload":{"a":1e400,"b":"1e400","c":[0.5,1e-400]}}'),
        'payload.a',
      );
      expect(problem.errors.map((error: Json) => error.field).sort()).toEqual(['payload.a', 'payload.c[1]']);
    });
  });

  describe('keys with a meaning in JavaScript', () => {
    it.each([
      ['__proto__', '{"__proto__":{"polluted":true}}', 'payload.__proto__'],
      ['__proto__ deeper down', '{"a":[{"__proto__":null}]}', 'payload.a[0].__proto__'],
    ])('refuses a payload key %s, naming it', async (_name, payload, field) => {
      await expectPayloadRefused(payload, field);
    });

    it.each(['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'])(
      'refuses %s as an unknown field of POST /jobs and of a batch item',
      async (key) => {
        await expectInvalid(db, postRaw('/jobs', `{"job_type":"echo","${key}":{}}`), key);
        const problem = await expectInvalid(
          db,
          postRaw('/jobs/batch', `{"jobs":[{"job_type":"echo"},{"job_type":"echo","${key}":{}}]}`),
          key,
        );
        expect(problem.errors).toContainEqual(expect.objectContaining({ index: 1, field: key }));
      },
    );

    it.each(['__proto__', 'constructor', 'toString'])(
      'refuses %s as an unknown field of the batch body itself',
      async (key) => {
        await expectInvalid(db, postRaw('/jobs/batch', `{"jobs":[{"job_type":"echo"}],"${key}":{}}`), key);
      },
    );

    it.each(['constructor', 'toString', 'hasOwnProperty', 'prototype'])(
      'refuses %s as an unknown field of a payload whose job type declares its fields',
      async (key) => {
        await expectInvalid(
          db,
          postRaw('/jobs', `{"job_type":"fail","payload":{"message":"m","${key}":1}}`),
          `payload.${key}`,
        );
        await expectInvalid(
          db,
          postRaw('/jobs', `{"job_type":"sleep","payload":{"ms":1,"${key}":1}}`),
          `payload.${key}`,
        );
      },
    );

    it.each(['__proto__', 'constructor', 'toString'])(
      'refuses GET /jobs?%s=x as an unknown query field',
      async (key) => {
        await expectInvalid(db, () => http().get(`/jobs?${key}=x`), key);
      },
    );

    it('tells two bodies apart that differ only in a payload key such as toString (Idempotency-Key)', async () => {
      await http()
        .post('/jobs')
        .set('Idempotency-Key', 'proto-keys')
        .send({ job_type: 'echo', payload: { toString: 1 } })
        .expect(201);
      await expectRefused(
        db,
        () =>
          http()
            .post('/jobs')
            .set('Idempotency-Key', 'proto-keys')
            .send({ job_type: 'echo', payload: { toString: 2 } }),
        409,
        'idempotency_key_reused',
      );
    });
  });

  describe('nesting', () => {
    it(`accepts objects nested to the limit (${MAX_JSON_DEPTH} levels) and refuses one more, naming where`, async () => {
      // The body is level 1 and the payload level 2: MAX_JSON_DEPTH - 1 levels are left for the payload.
      const deepest = nested(MAX_JSON_DEPTH - 1);
      const created = await http()
        .post('/jobs')
        .set('Content-Type', 'application/json')
        .send(`{"job_type":"echo","payload":${deepest}}`)
        .expect(201);
      expect((await getJob(created.body.job_id)).payload).toEqual(JSON.parse(deepest));

      const problem = await expectInvalid(
        db,
        postRaw('/jobs', `{"job_type":"echo","payload":${nested(MAX_JSON_DEPTH)}}`),
        `payload${'.a'.repeat(MAX_JSON_DEPTH - 1)}`,
      );
      expect(problem.errors).toHaveLength(1);
    });
  });

  describe('what is accepted comes back from GET /jobs/{id} exactly as sent', () => {
    const tricky: Json = {
      planes: [
        'ASCII ~ "quotes" \\ backslash / slash \b\f\n\r\t \u0001\u001f\u007f',
        'Latin-1 é ß ÿ, BMP 中文 Ελληνικά עברית \u2028\u2029 \ufeff \ufffd \uffff',
        'astral: \u{10000} \u{1f600}\u{1f469}\u200d\u{1f4bb} \u{2a6d6} \u{30000} \u{e0001} \u{f0000} \u{10ffff}',
        '\ud83d\ude00 is a paired surrogate',
      ],
      keys: {
        constructor: { prototype: { constructor: 'x' } },
        prototype: 1,
        toString: 'a string',
        hasOwnProperty: [],
        valueOf: null,
        __defineGetter__: false,
        isPrototypeOf: { toString: { valueOf: 0 } },
        '': 'empty key',
        ' ': 'space',
        'a.b': 'dotted',
        '0': 'index-like',
        '\u{1f600}': 'emoji key',
        'é\u2028': 'separator key',
      },
      numbers: [
        0, 1, -1, 9007199254740991, -9007199254740991, 1e308, -1e308, 1.7976931348623157e308, 5e-324, -5e-324,
        2.2250738585072014e-308, 0.1, 0.30000000000000004, 123456.789, 1e21, 1e-7, 4294967296.5,
      ],
      empties: { array: [], object: {}, string: '', nothing: null, yes: true, no: false },
      long: `${'x'.repeat(200_000)}\u{1f600}${'é'.repeat(50_000)}`,
    };

    it('returns a payload of tricky-but-storable values deep-equal (POST /jobs)', async () => {
      const created = await http().post('/jobs').send({ job_type: 'echo', payload: tricky }).expect(201);
      expect(created.body.payload).toEqual(tricky);
      expect((await getJob(created.body.job_id)).payload).toEqual(tricky);
    });

    it('returns every payload of a batch deep-equal (POST /jobs/batch)', async () => {
      const payloads = [tricky, { constructor: 'only' }, {}, { nested: { toString: [tricky.keys] } }];
      const created = await http()
        .post('/jobs/batch')
        .send({ jobs: payloads.map((payload) => ({ job_type: 'echo', payload })) })
        .expect(201);
      for (const [index, item] of (created.body.items as Json[]).entries()) {
        expect((await getJob(item.job_id)).payload).toEqual(payloads[index]);
      }
    });

    it('accepts a job type whose payload DTO is validated, with its payload unchanged', async () => {
      const payload = { message: '\u{1f600} constructor toString \ud83d\ude00', permanent: true };
      const created = await http().post('/jobs').send({ job_type: 'fail', payload }).expect(201);
      expect((await getJob(created.body.job_id)).payload).toEqual(payload);
    });

    it('reads numbers as their value: 1.10, 11e-1 and 1.1 are one number; -0 is stored as 0', async () => {
      const text =
        '{"a":1.10,"b":11e-1,"c":1E2,"d":100e-2,"e":0.5e1,"f":-0,"g":[-0.0,-0e5],"h":1.0e21,"i":0E-400}';
      const created = await http()
        .post('/jobs')
        .set('Content-Type', 'application/json')
        .send(`{"job_type":"echo","payload":${text}}`)
        .expect(201);
      const stored = (await getJob(created.body.job_id)).payload;
      expect(stored).toEqual({ a: 1.1, b: 1.1, c: 100, d: 1, e: 5, f: 0, g: [0, 0], h: 1e21, i: 0 });
      expect(Object.is(stored.f, 0)).toBe(true);
    });
  });

  describe('generated JSON (fast-check)', () => {
    /** A JSON text, the value it denotes, and whether the API must refuse it. */
    interface Sample {
      text: string;
      bad: boolean;
    }

    const badString = (text: string): boolean =>
      text.includes('\u0000') || !(text as unknown as { isWellFormed(): boolean }).isWellFormed();
    const char = fc.oneof(
      { weight: 30, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
      {
        weight: 1,
        arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((unit) => String.fromCharCode(unit)),
      },
      { weight: 1, arbitrary: fc.constant('\u0000') },
    );
    const text = fc.string({ unit: char, maxLength: 12 });
    const string: fc.Arbitrary<Sample> = text.map((value) => ({
      text: JSON.stringify(value),
      bad: badString(value),
    }));
    const key: fc.Arbitrary<{ key: string; bad: boolean }> = fc
      .oneof(
        { weight: 5, arbitrary: text },
        {
          weight: 1,
          arbitrary: fc.constantFrom(
            'constructor',
            'prototype',
            'toString',
            'hasOwnProperty',
            '',
            '__proto__',
          ),
        },
      )
      .map((value) => ({ key: value, bad: value === '__proto__' || badString(value) }));
    const exactNumber: fc.Arbitrary<string> = fc.oneof(
      fc.integer().map(String),
      fc.double({ noNaN: true, noDefaultInfinity: true }).map((value) => JSON.stringify(value)),
      fc.constantFrom(
        '-0',
        '0.0',
        '1.10',
        '11e-1',
        '1E2',
        '9007199254740991',
        '-9007199254740991',
        '1e308',
        '5e-324',
        '1.7976931348623157e308',
        '0E-400',
      ),
    );
    const inexactNumber = fc.constantFrom(
      '1e400',
      '-1e400',
      '1e-400',
      '12345678901234567890',
      '9007199254740993',
      '0.1000000000000000055511151231257827',
      '-2.47e-324',
    );
    const number: fc.Arbitrary<Sample> = fc.oneof(
      { weight: 10, arbitrary: exactNumber.map((token) => ({ text: token, bad: false })) },
      { weight: 1, arbitrary: inexactNumber.map((token) => ({ text: token, bad: true })) },
    );
    const scalar: fc.Arbitrary<Sample> = fc.oneof(
      string,
      number,
      fc.constantFrom('true', 'false', 'null').map((token) => ({ text: token, bad: false })),
    );
    const { object } = fc.letrec<{ value: Sample; array: Sample; object: Sample }>((tie) => ({
      value: fc.oneof({ depthSize: 'small', maxDepth: 5 }, scalar, tie('object'), tie('array')),
      array: fc.array(tie('value'), { maxLength: 4 }).map((items) => ({
        text: `[${items.map((item) => item.text).join(',')}]`,
        bad: items.some((i) => i.bad),
      })),
      object: fc
        .uniqueArray(fc.tuple(key, tie('value')), { maxLength: 4, selector: ([entry]) => entry.key })
        .map((entries) => ({
          text: `{${entries.map(([entry, value]) => `${JSON.stringify(entry.key)}:${value.text}`).join(',')}}`,
          bad: entries.some(([entry, value]) => entry.bad || value.bad),
        })),
    }));

    it('answers 201 and returns the payload deep-equal, or 400 with no row created; never anything else', async () => {
      let accepted = 0;
      let refused = 0;
      await fc.assert(
        fc.asyncProperty(object, fc.boolean(), async (payload, inBatch) => {
          const before = await countJobs(db);
          const response = inBatch
            ? await postRaw('/jobs/batch', `{"jobs":[{"job_type":"echo","payload":${payload.text}}]}`)()
            : await postRaw('/jobs', `{"job_type":"echo","payload":${payload.text}}`)();
          expect({ status: response.status, body: response.body }).toEqual({
            status: payload.bad ? 400 : 201,
            body: expect.anything(),
          });
          if (payload.bad) {
            refused += 1;
            expect(response.body.code).toBe('validation_failed');
            expect(await countJobs(db)).toBe(before);
            return;
          }
          accepted += 1;
          const job = inBatch ? response.body.items[0] : response.body;
          expect((await getJob(job.job_id)).payload).toEqual(withoutNegativeZero(JSON.parse(payload.text)));
          expect(await countJobs(db)).toBe(before + 1);
        }),
        { numRuns: 300, interruptAfterTimeLimit: 90_000 },
      );
      // Both sides of the property were exercised.
      expect(accepted).toBeGreaterThan(30);
      expect(refused).toBeGreaterThan(30);
    }, 120_000);
  });
});
