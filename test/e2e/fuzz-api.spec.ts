import type { INestApplication } from '@nestjs/common';
import fc from 'fast-check';
import type { AddressInfo } from 'node:net';
import { v7 as uuidv7 } from 'uuid';
import {
  deepNesting,
  hostileString,
  jsonText,
  numberToken,
  percentEncoded,
  PROTOTYPE_KEYS,
  withoutNegativeZero,
} from '../support/fuzz-arbitraries';
import { countJobs } from '../support/problems';
import { startTestApp } from '../support/test-app';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

/**
 * A stack frame or a database error's wording. (Not SQL keywords as such: a problem may quote the
 * client's own field names back, and the generated ones include injection strings.)
 */
const INTERNALS =
  /\n\s+at |\.[jt]s:\d+|node_modules|QueryFailedError|relation \\?"|syntax error at|violates|duplicate key|"stack"/;
/** Node answers a request head over 16 KB with a bare 431 before any application code: stay below it. */
const MAX_URL_CHARS = 6_000;

const RUNS_PER_ENDPOINT = 2_000;
const IN_FLIGHT = 20;
const ADMIN = 'fuzz-admin-key';

interface FuzzRequest {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
}

interface Outcome {
  request: FuzzRequest;
  status: number;
  contentType: string;
  replayed: boolean;
  text: string;
}

/** Header values a client can actually send (fetch refuses control characters and non-Latin-1). */
const headerValue = fc.oneof(
  fc.stringMatching(/^[\x21-\x7e]{0,300}$/),
  fc.constantFrom('', ' ', '\u00e9', 'a'.repeat(2_000), "' OR 1=1 --"),
);
const contentType = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=latin1',
  'application/merge-patch+json',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  '',
);
const authorization = fc.oneof(
  { weight: 12, arbitrary: fc.constant(`Bearer ${ADMIN}`) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('', 'Bearer ', `bearer ${ADMIN}`, `Bearer ${ADMIN}x`, 'Basic YQ=='),
  },
);
const headers = fc.record(
  {
    authorization,
    'content-type': contentType,
    'idempotency-key': headerValue,
    'x-forwarded-for': headerValue,
    accept: fc.constantFrom('application/json', '*/*', 'text/html', 'application/xml'),
  },
  { requiredKeys: ['authorization', 'content-type'] },
);

const jobField = (name: string, value: fc.Arbitrary<string>) =>
  fc.option(
    value.map((text) => `${JSON.stringify(name)}:${text}`),
    { nil: undefined, freq: 2 },
  );
const fieldValue = fc.oneof(
  numberToken,
  jsonText,
  hostileString.map((s) => JSON.stringify(s)),
);
const jobTypeValue = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('"echo"', '"noop"', '"sleep"', '"fail"') },
  { weight: 2, arbitrary: hostileString.map((s) => JSON.stringify(s)) },
  { weight: 1, arbitrary: fieldValue },
);
const runAtValue = fc.oneof(
  fc
    .date({ min: new Date(-8.64e15), max: new Date(8.64e15), noInvalidDate: true })
    .map((d) => `"${d.toISOString()}"`),
  fc.constantFrom('"2024-02-30T00:00:00Z"', '"now"', '"+275760-09-13T00:00:00.001Z"', '"1970-01-01"'),
  fieldValue,
);

/** A job body: mostly well-formed with hostile values, sometimes with extra or prototype keys. */
const jobBody: fc.Arbitrary<string> = fc
  .tuple(
    jobField('job_type', jobTypeValue),
    jobField('payload', fc.oneof({ weight: 5, arbitrary: jsonText }, { weight: 1, arbitrary: deepNesting })),
    jobField('priority', fieldValue),
    jobField('run_at', runAtValue),
    jobField('max_attempts', fieldValue),
    jobField('timeout_ms', fieldValue),
    jobField(fc.sample(fc.constantFrom(...PROTOTYPE_KEYS), 1)[0], jsonText),
  )
  .map((fields) => `{${fields.filter((f) => f !== undefined).join(',')}}`);

/** A body that is surely valid: in an all-or-nothing batch, these make sure some batches are accepted. */
const surelyValidJobBody: fc.Arbitrary<string> = fc
  .integer()
  .map((n) => `{"job_type":"echo","payload":{"n":${n}}}`);

/** A body that is valid but for its payload, so that acceptances (and their payloads) are checked often. */
const validJobBody: fc.Arbitrary<string> = jsonText.map(
  (payload) => `{"job_type":"echo","payload":${payload}}`,
);

/** Any body: a job-like one, JSON of any shape, broken JSON, deep nesting, or none at all. */
const anyBody = (likely: fc.Arbitrary<string>): fc.Arbitrary<string | undefined> =>
  fc.oneof(
    { weight: 10, arbitrary: likely },
    { weight: 2, arbitrary: jsonText },
    { weight: 1, arbitrary: deepNesting },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
    { weight: 1, arbitrary: likely.map((text) => text.slice(0, Math.max(1, text.length - 1))) },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );

const query = (keys: string[]): fc.Arbitrary<string> =>
  fc
    .array(
      fc.tuple(
        fc.oneof(fc.constantFrom(...keys, ...PROTOTYPE_KEYS), percentEncoded),
        fc.oneof(percentEncoded, numberToken.map(encodeURIComponent)),
      ),
      { maxLength: 4 },
    )
    .map((pairs) => (pairs.length ? `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}` : ''));

describe('fuzzed API: no 5xx, clean problems, nothing created but by a 201, payloads kept exactly', () => {
  let db: TestDatabase;
  let app: INestApplication;
  let baseUrl: string;
  let knownIds: string[];

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestApp(db.url, { role: 'api', apiKeys: [{ key: ADMIN, scope: 'admin' }] });
    await app.listen(0, '127.0.0.1');
    baseUrl = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  });

  // Fresh pending jobs for each endpoint: an earlier bulk cancel must not leave only terminal ones.
  beforeEach(async () => {
    knownIds = [];
    for (let i = 0; i < 10; i += 1) {
      const response = await fetch(`${baseUrl}/jobs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ job_type: 'echo', payload: { i } }),
      });
      knownIds.push(((await response.json()) as { job_id: string }).job_id);
    }
    // Half of them cancelled, so that a retry can succeed.
    for (const id of knownIds.slice(0, 5)) {
      const response = await fetch(`${baseUrl}/jobs/${id}/cancel`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body: '{}',
      });
      expect(response.status).toBe(200);
    }
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  const jobId = (): fc.Arbitrary<string> =>
    fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(...knownIds) },
      { weight: 2, arbitrary: fc.constant(null).map(() => uuidv7()) },
      { weight: 1, arbitrary: fc.uuid() },
      { weight: 3, arbitrary: percentEncoded.filter((s) => s.length > 0 && s !== '.' && s !== '..') },
    );

  async function send(request: FuzzRequest): Promise<Outcome> {
    const response = await fetch(`${baseUrl}${request.path}`, {
      method: request.method,
      headers: request.headers,
      body: request.method === 'POST' ? request.body : undefined,
    });
    return {
      request,
      status: response.status,
      contentType: response.headers.get('content-type') ?? '',
      replayed: response.headers.get('idempotent-replayed') === 'true',
      text: await response.text(),
    };
  }

  /** Sends every request, IN_FLIGHT at a time. */
  async function sendAll(requests: FuzzRequest[]): Promise<Outcome[]> {
    const outcomes: Outcome[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < requests.length) {
          const request = requests[next++];
          outcomes.push(await send(request));
        }
      }),
    );
    return outcomes;
  }

  async function storedPayload(id: string): Promise<unknown> {
    const response = await fetch(`${baseUrl}/jobs/${id}`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(response.status).toBe(200);
    return ((await response.json()) as { payload: unknown }).payload;
  }

  /** How many jobs a successful answer created (201 only). */
  function created(outcome: Outcome): { id: string; sentPayload?: unknown }[] {
    // A replay (same Idempotency-Key and body) answers 201 with the job created before.
    if (outcome.status !== 201 || outcome.replayed) return [];
    const body = JSON.parse(outcome.text) as { job_id?: string; items?: { job_id: string }[] };
    const sent = outcome.request.body ? (JSON.parse(outcome.request.body) as Record<string, unknown>) : {};
    if (outcome.request.path.startsWith('/jobs/batch')) {
      const items = (sent.jobs as { payload?: unknown }[]) ?? [];
      return body.items!.map((item, index) => ({
        id: item.job_id,
        sentPayload: items[index]?.payload ?? {},
      }));
    }
    if (outcome.request.path.endsWith('/retry')) return [{ id: body.job_id! }];
    return [{ id: body.job_id!, sentPayload: sent.payload ?? {} }];
  }

  function checkAnswer(outcome: Outcome): void {
    const where = `${outcome.request.method} ${outcome.request.path} -> ${outcome.status}: ${outcome.text.slice(0, 300)}`;
    expect({ where, serverError: outcome.status >= 500 }).toEqual({ where, serverError: false });
    if (outcome.status >= 400) {
      expect({ where, contentType: outcome.contentType }).toEqual({
        where,
        contentType: expect.stringMatching(/^application\/problem\+json/),
      });
      const problem = JSON.parse(outcome.text) as Record<string, unknown>;
      expect({ where, status: problem.status, code: typeof problem.code }).toEqual({
        where,
        status: outcome.status,
        code: 'string',
      });
      expect({
        where,
        leak: INTERNALS.test(outcome.text),
      }).toEqual({
        where,
        leak: false,
      });
    }
  }

  const ENDPOINTS: [string, () => fc.Arbitrary<FuzzRequest>][] = [
    [
      'POST /jobs',
      () =>
        fc.record({
          method: fc.constant('POST' as const),
          path: query(['job_type']).map((q) => `/jobs${q}`),
          headers,
          body: anyBody(fc.oneof(jobBody, validJobBody)),
        }),
    ],
    [
      'POST /jobs/batch',
      () =>
        fc.record({
          method: fc.constant('POST' as const),
          path: fc.constant('/jobs/batch'),
          headers,
          body: anyBody(
            fc
              .tuple(
                // A batch is all-or-nothing: a share of all-valid batches makes sure some are accepted.
                fc.oneof(
                  fc.array(fc.oneof(jobBody, validJobBody), { maxLength: 5 }),
                  fc.array(fc.oneof(validJobBody, surelyValidJobBody, surelyValidJobBody), {
                    minLength: 1,
                    maxLength: 5,
                  }),
                ),
                fc.option(fc.constantFrom(...PROTOTYPE_KEYS), { freq: 5 }),
              )
              .map(([jobs, extra]) => `{"jobs":[${jobs.join(',')}]${extra ? `,"${extra}":1` : ''}}`),
          ),
        }),
    ],
    [
      'GET /jobs',
      () =>
        fc.record({
          method: fc.constant('GET' as const),
          path: query(['state', 'job_type', 'limit', 'cursor']).map((q) => `/jobs${q}`),
          headers,
        }),
    ],
    [
      'GET /jobs/{job_id}',
      () =>
        fc.record({
          method: fc.constant('GET' as const),
          // wait_ms only with values that are not a wait: a valid one would hold the request open.
          path: fc
            .tuple(jobId(), fc.option(fc.constantFrom('-1', '0', '1.5', 'abc', '60001', '1e3', '%00')))
            .map(([id, wait]) => `/jobs/${id}${wait === null ? '' : `?wait_ms=${wait}`}`),
          headers,
        }),
    ],
    [
      'GET /job-types',
      () =>
        fc.record({
          method: fc.constant('GET' as const),
          path: query(['job_type']).map((q) => `/job-types${q}`),
          headers,
        }),
    ],
    [
      'POST /jobs/cancel',
      () => {
        const filter = fc
          .tuple(
            jobField('job_type', jobTypeValue),
            jobField('state', fc.oneof(fc.constantFrom('"pending"', '"running"', '"failed"'), fieldValue)),
            jobField('created_before', runAtValue),
          )
          .map((fields) => `{${fields.filter((f) => f !== undefined).join(',')}}`);
        return fc.record({
          method: fc.constant('POST' as const),
          path: fc.constant('/jobs/cancel'),
          headers,
          body: anyBody(filter),
        });
      },
    ],
    [
      'POST /jobs/{job_id}/cancel',
      () =>
        fc.record({
          method: fc.constant('POST' as const),
          path: jobId().map((id) => `/jobs/${id}/cancel`),
          headers,
          body: anyBody(fc.option(fieldValue).map((reason) => (reason ? `{"reason":${reason}}` : '{}'))),
        }),
    ],
    [
      'POST /jobs/{job_id}/retry',
      () =>
        fc.record({
          method: fc.constant('POST' as const),
          path: jobId().map((id) => `/jobs/${id}/retry`),
          headers,
          body: anyBody(fc.constant('{}')),
        }),
    ],
    [
      'POST /job-types/{job_type}/pause and resume',
      () =>
        fc.record({
          method: fc.constant('POST' as const),
          path: fc
            .tuple(
              fc.oneof(fc.constantFrom('echo', 'noop'), percentEncoded),
              fc.constantFrom('pause', 'resume'),
            )
            .filter(([type]) => type.length > 0 && type !== '.' && type !== '..')
            .map(([type, action]) => `/job-types/${type}/${action}`),
          headers,
          body: anyBody(fc.constant('{}')),
        }),
    ],
  ];

  it.each(ENDPOINTS)(
    '%s: 2,000 generated requests',
    async (_name, arbitrary) => {
      const requests = fc
        .sample(
          arbitrary().filter((r) => r.path.length <= MAX_URL_CHARS),
          RUNS_PER_ENDPOINT,
        )
        .map((r) => r as FuzzRequest);
      for (const request of requests) {
        if (request.headers['content-type'] === '') delete request.headers['content-type'];
      }
      const before = await countJobs(db);
      const outcomes = await sendAll(requests);
      expect(outcomes).toHaveLength(RUNS_PER_ENDPOINT);
      outcomes.forEach(checkAnswer);

      const newJobs = outcomes.flatMap(created);
      expect(await countJobs(db)).toBe(before + newJobs.length);
      for (const job of newJobs) {
        if (job.sentPayload === undefined) continue;
        expect(await storedPayload(job.id)).toEqual(withoutNegativeZero(job.sentPayload));
      }
      const statuses = new Map<number, number>();
      for (const { status } of outcomes) statuses.set(status, (statuses.get(status) ?? 0) + 1);
      // Both refusals and successes were exercised, so the checks above had something to check.
      expect([...statuses.keys()].some((status) => status < 300)).toBe(true);
      expect([...statuses.keys()].some((status) => status >= 400)).toBe(true);
    },
    120_000,
  );
});
