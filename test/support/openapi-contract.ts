import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The service's OpenAPI document as a contract: does a response the service sent agree with it (status,
 * content type, headers, body schema)? Every e2e test's HTTP responses are checked through this (see
 * contract-setup.ts), so a response the document does not describe fails the test that received it.
 */

export interface ObservedResponse {
  method: string;
  url: string;
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** False for a worker process: it serves the probes and /metrics, and no other path of the document. */
  servesApi?: boolean;
}

/** What a worker serves of the document; every other path is not found there. */
const WORKER_PATHS = /^\/(?:health\/|metrics$)/;

type Json = Record<string, any>;

/** Headers the API sends with a meaning of their own: whenever one is sent, the document must declare it. */
const API_HEADERS = ['location', 'retry-after', 'idempotent-replayed', 'www-authenticate'];

/**
 * Paths outside the API document: Swagger UI and the document itself (/docs, /docs-json, /docs-yaml), and
 * the operator dashboard. Any other path the document does not list must answer a 404 problem.
 */
const OUTSIDE_THE_DOCUMENT = /^\/(?:docs(?:$|[-/])|ui(?:$|\/))/;

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const BODY_METHODS = ['post', 'put', 'patch'];

export class OpenApiContract {
  private readonly ajv: Ajv;
  private readonly validators = new WeakMap<object, ValidateFunction>();
  private readonly routes: { template: string; segments: string[]; pathItem: Json }[];

  constructor(readonly document: Json) {
    this.ajv = new Ajv({ strict: false, allErrors: true });
    addFormats(this.ajv);
    const definitions: Json = {};
    for (const [name, schema] of Object.entries<Json>(document.components?.schemas ?? {})) {
      definitions[name] = toJsonSchema(schema);
    }
    this.ajv.addSchema({ $id: 'openapi', definitions });
    this.routes = Object.entries<Json>(document.paths).map(([template, pathItem]) => ({
      template,
      segments: template.split('/'),
      pathItem,
    }));
  }

  /** What is wrong with `response` by the document; empty when the document describes it. */
  violations(response: ObservedResponse): string[] {
    const url = new URL(response.url, 'http://localhost');
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
    const method = response.method.toLowerCase();
    const served = response.servesApi !== false || WORKER_PATHS.test(path);
    const route = served ? this.route(path, method) : undefined;
    if (!route) return this.unroutedViolations(path, method, response);
    const operation = route.pathItem[method] as Json;
    const where = `${response.method.toUpperCase()} ${route.template}`;
    const status = String(response.status);
    const declared = (operation.responses[status] ?? operation.responses[`${status[0]}XX`]) as
      Json | undefined;
    if (!declared) {
      return [
        `${where} answered ${status}, which the document does not list (${Object.keys(operation.responses)})`,
      ];
    }
    return [
      ...this.headerViolations(where, status, declared, response),
      ...this.bodyViolations(where, status, declared, response),
    ];
  }

  /** The template that routes `path` for `method`; literal segments win over parameters. */
  private route(path: string, method: string): (typeof this.routes)[number] | undefined {
    const segments = path.split('/');
    let best: (typeof this.routes)[number] | undefined;
    let bestLiterals = -1;
    for (const route of this.routes) {
      if (!route.pathItem[method] || route.segments.length !== segments.length) continue;
      let literals = 0;
      const matches = route.segments.every((segment, index) => {
        if (/^\{[^}]+\}$/.test(segment)) return segments[index] !== '';
        literals += 1;
        return segment === segments[index];
      });
      if (matches && literals > bestLiterals) {
        best = route;
        bestLiterals = literals;
      }
    }
    return best;
  }

  private unroutedViolations(path: string, method: string, response: ObservedResponse): string[] {
    // A CORS preflight is answered by the CORS layer, not by an operation.
    if (method === 'options') return [];
    if (OUTSIDE_THE_DOCUMENT.test(path)) return [];
    const where = `${response.method.toUpperCase()} ${path}`;
    // The body parser reads a request before routing: a body it refuses is answered (400, 413, 415) on any
    // path, routed or not, as it is on the operations that declare those answers.
    const refusedBody = BODY_METHODS.includes(method) && [400, 413, 415].includes(response.status);
    if (!HTTP_METHODS.includes(method) || (response.status !== 404 && !refusedBody)) {
      return [`${where} is no operation of the document, yet answered ${response.status}`];
    }
    const problemSchema = { $ref: 'openapi#/definitions/ProblemResponse' };
    return this.bodyViolations(
      where,
      String(response.status),
      { content: { 'application/problem+json': { schema: problemSchema } } },
      response,
    );
  }

  private headerViolations(
    where: string,
    status: string,
    declared: Json,
    response: ObservedResponse,
  ): string[] {
    const problems: string[] = [];
    const headers = declared.headers ?? {};
    const declaredNames = Object.keys(headers).map((name) => name.toLowerCase());
    for (const [name, header] of Object.entries<Json>(headers)) {
      const value = headerValue(response.headers, name);
      if (value === undefined) {
        if (header.required) problems.push(`${where} ${status}: the required header ${name} is missing`);
        continue;
      }
      const schema = header.schema ?? {};
      const typed = schema.type === 'integer' && /^-?\d+$/.test(value) ? Number(value) : value;
      const validate = this.validator(schema);
      if (!validate(typed)) {
        problems.push(
          `${where} ${status}: header ${name}: ${JSON.stringify(value)} ${this.ajv.errorsText(validate.errors)}`,
        );
      }
    }
    for (const name of API_HEADERS) {
      if (headerValue(response.headers, name) !== undefined && !declaredNames.includes(name)) {
        problems.push(`${where} ${status}: sends the header ${name}, which the document does not declare`);
      }
    }
    return problems;
  }

  private bodyViolations(
    where: string,
    status: string,
    declared: Json,
    response: ObservedResponse,
  ): string[] {
    const content = (declared.content ?? {}) as Json;
    const contentType = headerValue(response.headers, 'content-type');
    if (Object.keys(content).length === 0) {
      return response.body === '' ? [] : [`${where} ${status}: has a body, but the document declares none`];
    }
    if (!contentType)
      return [`${where} ${status}: no Content-Type; the document declares ${Object.keys(content)}`];
    const mediaType = contentType.split(';')[0].trim().toLowerCase();
    const media = content[mediaType] as Json | undefined;
    if (!media) {
      return [`${where} ${status}: Content-Type ${mediaType}, the document declares ${Object.keys(content)}`];
    }
    let body: unknown = response.body;
    if (/[/+]json$/.test(mediaType)) {
      try {
        body = JSON.parse(response.body);
      } catch {
        return [`${where} ${status}: the body is not JSON: ${response.body.slice(0, 200)}`];
      }
    }
    const validate = this.validator(media.schema ?? {});
    if (validate(body)) return [];
    return [
      `${where} ${status}: the body does not match the schema: ${this.ajv.errorsText(validate.errors, { separator: '; ' })}` +
        `\n  body: ${response.body.slice(0, 500)}`,
    ];
  }

  /** What is wrong with `value` by `schema` (an OpenAPI schema of the document), or an empty list. */
  schemaViolations(schema: Json, value: unknown): string[] {
    const validate = this.validator(schema);
    return validate(value) ? [] : [this.ajv.errorsText(validate.errors, { separator: '; ' })];
  }

  private validator(schema: Json): ValidateFunction {
    let validate = this.validators.get(schema);
    if (!validate) {
      validate = this.ajv.compile(toJsonSchema(schema));
      this.validators.set(schema, validate);
    }
    return validate;
  }
}

/**
 * An OpenAPI 3.0 schema as JSON Schema for ajv: `nullable` becomes a type that admits null, references
 * point into the registered components, and an object that lists its properties admits no others, so that
 * a field the service sends but the document does not name is caught.
 */
export function toJsonSchema(schema: unknown): any {
  if (Array.isArray(schema)) return schema.map(toJsonSchema);
  if (schema === null || typeof schema !== 'object') return schema;
  const { nullable, example: _example, examples: _examples, ...rest } = schema as Json;
  const converted: Json = {};
  for (const [key, value] of Object.entries(rest)) {
    if (key === '$ref' && typeof value === 'string') {
      converted.$ref = value.replace('#/components/schemas/', 'openapi#/definitions/');
    } else if (key === 'properties' || key === 'definitions') {
      converted[key] = Object.fromEntries(
        Object.entries(value as Json).map(([name, property]) => [name, toJsonSchema(property)]),
      );
    } else {
      converted[key] = toJsonSchema(value);
    }
  }
  if (nullable === true && converted.type !== undefined) {
    converted.type = [converted.type, 'null'];
    if (Array.isArray(converted.enum)) converted.enum = [...converted.enum, null];
  }
  if (converted.type === 'object' && converted.properties && converted.additionalProperties === undefined) {
    converted.additionalProperties = false;
  }
  return converted;
}

function headerValue(headers: ObservedResponse['headers'], name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === wanted) return Array.isArray(value) ? value.join(', ') : value;
  }
  return undefined;
}

let contract: OpenApiContract | undefined;

/** The document the api serves at /docs-json, fetched once per test run by global-setup.js. */
export function servedContract(): OpenApiContract {
  if (!contract) {
    const file = process.env.TEST_OPENAPI_DOCUMENT;
    if (!file) throw new Error('TEST_OPENAPI_DOCUMENT is not set: run the tests through jest (npm test)');
    contract = new OpenApiContract(JSON.parse(readFileSync(file, 'utf8')) as Json);
  }
  return contract;
}

const violations: string[] = [];
let checkedResponses = 0;

/** Checks one response the service sent; what disagrees with the document waits for takeViolations(). */
export function recordResponse(response: ObservedResponse): void {
  checkedResponses += 1;
  violations.push(...servedContract().violations(response));
}

/** The violations recorded since the last call, and how many responses were checked in all. */
export function takeViolations(): { violations: string[]; checkedResponses: number } {
  return { violations: violations.splice(0), checkedResponses };
}

/** Servers and origins of the service under test: fetch() calls to them are checked against the document. */
export interface Watched {
  /** False for a worker: see ObservedResponse.servesApi. */
  servesApi: boolean;
}

const watchedServers = new Map<Server, Watched>();
const watchedOrigins = new Map<string, Watched>();

export function watchServer(server: Server, watched: Watched): void {
  watchedServers.set(server, watched);
}

export function watchOrigin(baseUrl: string, watched: Watched): void {
  watchedOrigins.set(new URL(baseUrl).origin, watched);
}

/** How the server a supertest request went to is watched, if it is. */
export function watchedServer(server: unknown): Watched | undefined {
  return watchedServers.get(server as Server);
}

/** How the server at `url` is watched, if it is. */
export function watchedUrl(url: URL): Watched | undefined {
  const origin = watchedOrigins.get(url.origin);
  if (origin) return origin;
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) return undefined;
  for (const [server, watched] of watchedServers) {
    const address = server.address() as AddressInfo | null;
    if (address && typeof address === 'object' && String(address.port) === url.port) return watched;
  }
  return undefined;
}
