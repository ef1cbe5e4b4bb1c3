import type { INestApplication } from '@nestjs/common';
import { createConfig, lintFromString } from '@redocly/openapi-core';
import { createServer, type Server } from 'node:http';
import { STATUS_CODES } from 'node:http';
import request from 'supertest';
import { jobInvariantViolations } from '../support/job-invariants';
import { OpenApiContract, servedContract, takeViolations, watchServer } from '../support/openapi-contract';
import type { Json } from '../support/problems';
import { startTestApp } from '../support/test-app';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

/**
 * The OpenAPI document the api serves at /docs-json: lint-clean, every example true (valid against its
 * schema, each error example that very error, each job one the database allows), "Try it out" bodies that
 * create jobs which run now; and the contract check that every e2e response goes through really catches a
 * response the document does not describe.
 */

const PROBLEM_JSON = 'application/problem+json';
const JOB_SCHEMAS = ['JobResponse', 'JobDetailResponse'];

const document = (): Json => servedContract().document;

interface MediaExample {
  where: string;
  schema: Json;
  value: unknown;
  status?: string;
  mediaType: string;
  path: string;
}

/** Every example of every request body and response of the document, with the schema it illustrates. */
function mediaExamples(): MediaExample[] {
  const found: MediaExample[] = [];
  for (const [path, pathItem] of Object.entries<Json>(document().paths)) {
    for (const [method, operation] of Object.entries<Json>(pathItem)) {
      const media: [string, string | undefined, Json][] = [];
      for (const [mediaType, content] of Object.entries<Json>(operation.requestBody?.content ?? {})) {
        media.push([mediaType, undefined, content]);
      }
      for (const [status, response] of Object.entries<Json>(operation.responses ?? {})) {
        for (const [mediaType, content] of Object.entries<Json>(response.content ?? {})) {
          media.push([mediaType, status, content]);
        }
      }
      for (const [mediaType, status, content] of media) {
        const named = Object.entries<Json>(content.examples ?? {}).map(([name, example]) => [
          name,
          example.value,
        ]);
        if ('example' in content) named.push(['example', content.example]);
        for (const [name, value] of named) {
          const where = `${method.toUpperCase()} ${path} ${status ?? 'request'} ${mediaType} example ${name}`;
          found.push({ where, schema: content.schema ?? {}, value, status, mediaType, path });
        }
      }
    }
  }
  return found;
}

function resolve(schema: Json): Json {
  return schema.$ref ? resolve(document().components.schemas[schema.$ref.split('/').pop()]) : schema;
}

/** The example Swagger UI builds from a schema's property examples when an operation gives none. */
function composedExample(schema: Json): unknown {
  const target = resolve(schema);
  if ('example' in target) return target.example;
  if (target.allOf) return Object.assign({}, ...target.allOf.map(composedExample));
  if (target.anyOf) return composedExample(target.anyOf[0]);
  if (target.enum) return target.enum[0];
  switch (target.type) {
    case 'object':
      return Object.fromEntries(
        Object.entries<Json>(target.properties ?? {}).map(([name, property]) => [
          name,
          composedExample(property),
        ]),
      );
    case 'array':
      return [composedExample(target.items ?? {})];
    case 'integer':
    case 'number':
      return target.minimum ?? 0;
    case 'boolean':
      return true;
    default:
      if (target.format === 'date-time') return new Date().toISOString();
      if (target.format === 'uuid') return '3fa85f64-5717-4562-b3fc-2c963f66afa6';
      return 'string';
  }
}

/**
 * The jobs inside an example value: the value itself, or the items of a page or batch. Of a choice of
 * schemas (a whole job, or with Prefer: return=minimal its id alone), the one the value is valid by.
 */
function jobsIn(value: Json, schema: Json): Json[] {
  if (schema.anyOf) {
    const matching = (schema.anyOf as Json[]).find(
      (choice) => servedContract().schemaViolations(choice, value).length === 0,
    );
    return matching ? jobsIn(value, matching) : [];
  }
  const name = schema.$ref?.split('/').pop();
  if (JOB_SCHEMAS.includes(name)) return [value];
  // A page or a batch: items whose schema is a job's (not, say, the ids alone).
  const itemName = resolve(schema).properties?.items?.items?.$ref?.split('/').pop();
  if (JOB_SCHEMAS.includes(itemName) && Array.isArray(value?.items)) return value.items as Json[];
  return [];
}

describe('the OpenAPI document at /docs-json', () => {
  it('passes the recommended rules of the Redocly linter with no error, and warns only of the probes', async () => {
    const config = await createConfig({ extends: ['recommended'] });
    const problems = await lintFromString({
      source: JSON.stringify(document()),
      absoluteRef: 'openapi.json',
      config,
    });
    const described = problems.map(
      (problem) =>
        `${problem.severity} ${problem.ruleId}: ${problem.message} ${problem.location[0]?.pointer}`,
    );
    expect(described.filter((line) => line.startsWith('error'))).toEqual([]);
    // Probes answer 200 or 503: there is no client error for them to document.
    expect(described.filter((line) => !line.startsWith('error'))).toEqual([
      expect.stringMatching(/^warn operation-4xx-response: .* #\/paths\/~1health~1live\/get\/responses$/),
      expect.stringMatching(/^warn operation-4xx-response: .* #\/paths\/~1health~1ready\/get\/responses$/),
    ]);
  });

  it('declares opaque bearer keys, not JWTs, on every operation but the probes', () => {
    expect(document().components.securitySchemes).toEqual({
      bearer: { type: 'http', scheme: 'bearer', description: expect.any(String) },
    });
    for (const [path, pathItem] of Object.entries<Json>(document().paths)) {
      for (const operation of Object.values<Json>(pathItem)) {
        expect({ path, security: operation.security }).toEqual({
          path,
          security: path.startsWith('/health/') ? [{}] : [{ bearer: [] }],
        });
        if (!path.startsWith('/health/')) {
          expect(Object.keys(operation.responses)).toEqual(expect.arrayContaining(['401', '429']));
        }
      }
    }
  });

  it('declares 403 exactly where a key can be too small: every GET needs read, which every key has', () => {
    for (const [path, pathItem] of Object.entries<Json>(document().paths)) {
      for (const [method, operation] of Object.entries<Json>(pathItem)) {
        expect({ path, method, forbidden: '403' in operation.responses }).toEqual({
          path,
          method,
          forbidden: method === 'post',
        });
      }
    }
  });

  it('has examples that are valid by their schemas, no field left out or added', () => {
    const examples = mediaExamples();
    expect(examples.length).toBeGreaterThan(40);
    const problems = examples.flatMap(({ where, schema, value }) =>
      servedContract()
        .schemaViolations(schema, value)
        .map((problem) => `${where}: ${problem}`),
    );
    expect(problems).toEqual([]);
  });

  it('has error examples that are each the very error: its status, problem+json, the path of its operation', () => {
    const problems = mediaExamples().filter(({ status }) => status !== undefined && Number(status) >= 400);
    expect(problems.length).toBeGreaterThan(30);
    for (const { where, value, status, mediaType, path } of problems) {
      const problem = value as Json;
      expect({ where, mediaType }).toEqual({ where, mediaType: PROBLEM_JSON });
      expect({ where, status: problem.status, title: problem.title }).toEqual({
        where,
        status: Number(status),
        title: STATUS_CODES[Number(status)],
      });
      const pattern = new RegExp(`^${path.replace(/\{[^}]+\}/g, '[^/]+')}$`);
      expect({ where, instance: problem.instance }).toEqual({
        where,
        instance: expect.stringMatching(pattern),
      });
    }
  });

  it('has job examples that the database would allow', () => {
    const jobs = mediaExamples().flatMap(({ where, schema, value }) =>
      jobsIn(value as Json, schema).map((job) => ({ where, job })),
    );
    expect(jobs.length).toBeGreaterThan(10);
    const problems = jobs.flatMap(({ where, job }) =>
      jobInvariantViolations(job).map((problem) => `${where} (${job.state}): ${problem}`),
    );
    expect(problems).toEqual([]);
  });

  it('builds, from property examples, values that are valid, and jobs the database would allow', () => {
    const schemas = Object.keys(document().components.schemas);
    const problems: string[] = [];
    for (const name of schemas) {
      const schema = { $ref: `#/components/schemas/${name}` };
      const value = composedExample(schema) as Json;
      for (const problem of servedContract().schemaViolations(schema, value))
        problems.push(`${name}: ${problem}`);
      if (JOB_SCHEMAS.includes(name)) {
        for (const problem of jobInvariantViolations(value)) problems.push(`${name}: ${problem}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('types every count and limit as an integer', () => {
    const numbers: string[] = [];
    const visit = (node: unknown, pointer: string): void => {
      if (node === null || typeof node !== 'object') return;
      if ((node as Json).type === 'number') numbers.push(pointer);
      for (const [key, child] of Object.entries(node as Json)) visit(child, `${pointer}/${key}`);
    };
    visit(document(), '#');
    // The only non-integer numbers a job may carry are JSON values of its own (result).
    expect(numbers).toEqual([
      '#/components/schemas/JobResponse/properties/result/anyOf/3',
      '#/components/schemas/JobDetailResponse/properties/result/anyOf/3',
    ]);
  });
});

describe('"Try it out" with the examples of the document (APP_ROLE=all)', () => {
  let db: TestDatabase;
  let app: INestApplication;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestApp(db.url, { role: 'all' });
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  const http = (): ReturnType<typeof request> => request(app.getHttpServer());

  it('creates, with the body Swagger UI fills in first, a job that runs at once and completes', async () => {
    const content = document().paths['/jobs'].post.requestBody.content['application/json'];
    const [first] = Object.values<Json>(content.examples);
    const created = await http().post('/jobs').send(first.value).expect(201);
    const done = await http().get(`/jobs/${created.body.job_id}?wait_ms=10000`).expect(200);
    expect(done.body).toMatchObject({ state: 'completed', result: first.value.payload ?? {} });
  });

  it('creates a batch, with the example of its body, whose jobs all run at once', async () => {
    const schema = document().paths['/jobs/batch'].post.requestBody.content['application/json'].schema;
    const created = await http()
      .post('/jobs/batch')
      .send(composedExample(schema) as Json)
      .expect(201);
    for (const job of created.body.items as Json[]) {
      const done = await http().get(`/jobs/${job.job_id}?wait_ms=10000`).expect(200);
      expect(done.body.state).toBe('completed');
    }
  });

  it('accepts every request example of POST /jobs', async () => {
    const content = document().paths['/jobs'].post.requestBody.content['application/json'];
    for (const example of Object.values<Json>(content.examples)) {
      await http().post('/jobs').send(example.value).expect(201);
    }
  });
});

describe('the contract check every e2e response goes through', () => {
  const contract = (): OpenApiContract => servedContract();
  const job = (): Json => ({
    ...(document().paths['/jobs'].post.responses['201'].content['application/json'].examples.pending
      .value as Json),
  });
  const created = (overrides: Partial<{ status: number; headers: Json; body: unknown }> = {}) => ({
    method: 'POST',
    url: 'http://127.0.0.1:1/jobs',
    status: overrides.status ?? 201,
    headers: overrides.headers ?? { 'content-type': 'application/json; charset=utf-8', location: '/jobs/x' },
    body: JSON.stringify(overrides.body ?? job()),
  });

  it('passes a response the document describes', () => {
    expect(contract().violations(created())).toEqual([]);
  });

  it('catches a status, content type, header or body the document does not describe', () => {
    const cases: [string, ReturnType<typeof created>][] = [
      ['answered 202', created({ status: 202 })],
      ['Content-Type text/html', created({ headers: { 'content-type': 'text/html', location: '/jobs/x' } })],
      ['required header Location is missing', created({ headers: { 'content-type': 'application/json' } })],
      [
        'retry-after, which the document does not declare',
        created({ headers: { 'content-type': 'application/json', location: '/x', 'retry-after': '1' } }),
      ],
      ['must be integer', created({ body: { ...job(), attempts: 1.5 } })],
      ['must NOT have additional properties', created({ body: { ...job(), secret: 1 } })],
      ["must have required property 'retry_of'", created({ body: { ...job(), retry_of: undefined } })],
      ['must be string,null', created({ body: { ...job(), finished_at: 3 } })],
    ];
    for (const [expected, response] of cases) {
      expect({ expected, violations: contract().violations(response).join('\n') }).toEqual({
        expected,
        violations: expect.stringContaining(expected),
      });
    }
  });

  it('requires next_cursor on every page, null on the last', () => {
    const page = (body: Json) => ({
      method: 'GET',
      url: 'http://127.0.0.1:1/jobs?limit=2',
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(contract().violations(page({ items: [], next_cursor: null }))).toEqual([]);
    expect(
      contract()
        .violations(page({ items: [] }))
        .join(),
    ).toContain("required property 'next_cursor'");
  });

  it('lets an unknown path answer only a 404 problem', () => {
    const unknown = (status: number, body: string) => ({
      method: 'GET',
      url: 'http://127.0.0.1:1/nope',
      status,
      headers: { 'content-type': status === 404 ? PROBLEM_JSON : 'application/json' },
      body,
    });
    const notFound = {
      type: 'about:blank',
      title: 'Not Found',
      status: 404,
      detail: 'Cannot GET /nope',
      instance: '/nope',
      code: 'not_found',
    };
    expect(contract().violations(unknown(404, JSON.stringify(notFound)))).toEqual([]);
    expect(contract().violations(unknown(200, '{}'))).toEqual([
      'GET /nope is no operation of the document, yet answered 200',
    ]);
  });

  it('holds a worker to the probes and /metrics: the jobs API is not found there', () => {
    const fromWorker = (path: string, status: number, body: unknown) => ({
      method: 'GET',
      url: `http://127.0.0.1:1${path}`,
      status,
      headers: { 'content-type': status === 404 ? PROBLEM_JSON : 'application/json' },
      body: JSON.stringify(body),
      servesApi: false,
    });
    const notFound = {
      type: 'about:blank',
      title: 'Not Found',
      status: 404,
      detail: 'Cannot GET /jobs',
      instance: '/jobs',
      code: 'not_found',
    };
    expect(contract().violations(fromWorker('/jobs', 404, notFound))).toEqual([]);
    expect(contract().violations({ ...fromWorker('/jobs', 404, notFound), servesApi: true })).toEqual([
      expect.stringContaining('GET /jobs answered 404'),
    ]);
    expect(contract().violations(fromWorker('/health/live', 200, { status: 'ok' }))).toEqual([]);
    expect(contract().violations(fromWorker('/jobs', 200, { items: [], next_cursor: null }))).toEqual([
      'GET /jobs is no operation of the document, yet answered 200',
    ]);
  });

  it('sees the responses of supertest and of fetch() to a watched server', async () => {
    // A stand-in for the service that answers POST /jobs with 200 and text: the document says otherwise.
    const server: Server = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/plain' }).end('hello');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      watchServer(server, { servesApi: true });
      const before = takeViolations();
      expect(before.violations).toEqual([]);
      await request(server).post('/jobs').send({});
      const { port } = server.address() as { port: number };
      await fetch(`http://127.0.0.1:${port}/jobs`, { method: 'POST', body: '{}' });
      const after = takeViolations();
      expect(after.checkedResponses).toBe(before.checkedResponses + 2);
      expect(after.violations).toEqual([
        expect.stringContaining('POST /jobs answered 200'),
        expect.stringContaining('POST /jobs answered 200'),
      ]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
