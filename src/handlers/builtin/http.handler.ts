import { Injectable } from '@nestjs/common';
import { Allow, IsIn, IsObject, IsOptional, IsString, MaxLength } from 'class-validator';
import { JSONSchema } from 'class-validator-jsonschema';
import type { FieldProblem } from '../../common/dto-validation';
import { OutboundHttpClient, type OutboundResponse } from '../../outbound/outbound-http.client';
import { targetRefusalOf } from '../../outbound/outbound.errors';
import { storableText } from '../../persistence/storable-text';
import { JobHandler, PermanentJobError, RetryLaterError, type JobContext } from '../job-handler';
import { retryAfterMs } from '../../outbound/retry-after';
import { responseBody } from './http-response';

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
type HttpMethod = (typeof HTTP_METHODS)[number];

const MAX_HEADERS = 50;
const MAX_HEADER_VALUE_LENGTH = 8_192;
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}$/;
/** What HTTP (and undici) accepts in a value: tab, visible ASCII and Latin-1; no control character. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** Set by the service on every request, or by HTTP itself: a job cannot choose them. */
const RESERVED_HEADERS = new Set([
  'job-id',
  'job-attempt',
  'idempotency-key',
  'job-signature',
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
]);
/** A failed attempt worth repeating: the server timed out, was too early, too busy, or failed. */
const RETRYABLE_STATUSES = new Set([408, 425, 429]);
const STATUS_MESSAGE_BODY_LENGTH = 300;

export class HttpPayload {
  /** The URL to call; its host must be allowed by HTTP_TARGET_ALLOW. */
  @IsString()
  @MaxLength(8_192)
  @JSONSchema({ format: 'uri', description: 'http or https URL allowed by HTTP_TARGET_ALLOW' })
  url!: string;

  @IsOptional()
  @IsIn(HTTP_METHODS)
  @JSONSchema({ default: 'POST' })
  method?: HttpMethod;

  @IsOptional()
  @IsObject()
  @JSONSchema({
    type: 'object',
    additionalProperties: { type: 'string' },
    description: `Up to ${MAX_HEADERS} request headers; Job-Id, Job-Attempt, Idempotency-Key and Job-Signature are set by the service`,
  })
  headers?: Record<string, string>;

  /** Sent as it is when a string (text/plain), else as JSON (application/json), unless `headers` say otherwise. */
  @IsOptional()
  @Allow()
  @JSONSchema({ description: 'A string is sent as it is, anything else as JSON' })
  body?: unknown;
}

export interface HttpResult {
  status: number;
  headers: Record<string, string>;
  body: unknown;
  truncated?: true;
}

/**
 * Calls a URL and completes with its answer. 2xx completes; 408, 425, 429, 5xx and network errors fail the
 * attempt (retried, after Retry-After when the server sent one); any other status fails the job at once.
 */
@Injectable()
@JobHandler({
  type: 'http',
  payload: HttpPayload,
  description:
    'Sends an HTTP request (POST by default) to an allowed URL with Job-Id, Job-Attempt and Idempotency-Key ' +
    'headers (and Job-Signature when signing is on). 2xx completes with { status, headers, body }; 408, 425, ' +
    '429, 5xx and network errors are retried (honouring Retry-After); any other status fails the job.',
})
export class HttpHandler implements JobHandler<HttpPayload, HttpResult> {
  constructor(private readonly outbound: OutboundHttpClient) {}

  checkPayload(payload: HttpPayload): FieldProblem[] {
    const problems: FieldProblem[] = [];
    const refusal = this.outbound.refusalOfUrl(payload.url);
    if (refusal) problems.push({ field: 'payload.url', message: `url ${refusal}` });
    const headers = Object.entries(payload.headers ?? {});
    if (headers.length > MAX_HEADERS) {
      problems.push({ field: 'payload.headers', message: `headers may hold at most ${MAX_HEADERS} entries` });
    }
    for (const [name, value] of headers.slice(0, MAX_HEADERS + 1)) {
      const field = `payload.headers[${JSON.stringify(name.slice(0, 64))}]`;
      if (!HEADER_NAME.test(name)) {
        problems.push({ field, message: 'is not a valid header name' });
      } else if (RESERVED_HEADERS.has(name.toLowerCase())) {
        problems.push({ field, message: `${name} is set by the service and cannot be given` });
      } else if (
        typeof value !== 'string' ||
        value.length > MAX_HEADER_VALUE_LENGTH ||
        !HEADER_VALUE.test(value)
      ) {
        problems.push({
          field,
          message: `must be a string of at most ${MAX_HEADER_VALUE_LENGTH} Latin-1 characters without line breaks`,
        });
      }
    }
    if (payload.body !== undefined && payload.method === 'GET') {
      problems.push({ field: 'payload.body', message: 'a GET request carries no body' });
    }
    return problems;
  }

  async run(payload: HttpPayload, context: JobContext): Promise<HttpResult> {
    const method = payload.method ?? 'POST';
    const headers: Record<string, string> = { ...payload.headers };
    const given = new Set(Object.keys(headers).map((name) => name.toLowerCase()));
    if (!given.has('user-agent')) headers['User-Agent'] = 'job-service';
    let body: Buffer | undefined;
    if (payload.body !== undefined) {
      const text = typeof payload.body === 'string';
      body = Buffer.from(text ? (payload.body as string) : JSON.stringify(payload.body));
      if (!given.has('content-type')) {
        headers['Content-Type'] = text ? 'text/plain; charset=utf-8' : 'application/json';
      }
    }
    Object.assign(headers, {
      'Job-Id': context.jobId,
      'Job-Attempt': String(context.attempt),
      // The same on every attempt: the receiver's way to do the work once however often it is asked.
      'Idempotency-Key': context.jobId,
    });
    const target = describeUrl(method, payload.url);
    let response: OutboundResponse;
    try {
      response = await this.outbound.send({
        url: payload.url,
        method,
        headers,
        body,
        signal: context.signal,
      });
    } catch (error) {
      const refusal = targetRefusalOf(error);
      if (refusal) throw new PermanentJobError(refusal.message, refusal.code);
      // An abort (timeout, cancel, shutdown) is the runner's to record, under its own reason.
      if (context.signal.aborted) throw error;
      throw Object.assign(new Error(`${target} failed: ${networkReason(error)}`), { code: 'network_error' });
    }
    const result: HttpResult = {
      status: response.status,
      headers: resultHeaders(response.headers),
      body: responseBody(response.body, response.truncated, response.headers['content-type']),
    };
    if (response.truncated) result.truncated = true;
    if (response.status >= 200 && response.status < 300) return result;

    const message = `${target} answered ${response.status}${snippet(result.body)}`;
    const details = { status: response.status };
    if (RETRYABLE_STATUSES.has(response.status) || (response.status >= 500 && response.status < 600)) {
      const delayMs = retryAfterMs(response.headers['retry-after']);
      if (delayMs !== undefined) throw new RetryLaterError(message, delayMs, 'http_status', details);
      throw Object.assign(new Error(message), { code: 'http_status', details });
    }
    throw new PermanentJobError(message, 'http_status', details);
  }
}

/** Method, origin and path: a query string may carry a token, which has no place in errors and logs. */
function describeUrl(method: string, url: string): string {
  try {
    const parsed = new URL(url);
    return `${method} ${parsed.origin}${parsed.pathname}`;
  } catch {
    return `${method} (an invalid URL)`;
  }
}

/** Cookies a target sets are not the job's to keep. */
function resultHeaders(headers: Record<string, string>): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name !== 'set-cookie') kept[name] = storableText(value, MAX_HEADER_VALUE_LENGTH);
  }
  return kept;
}

function snippet(body: unknown): string {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  if (!text) return '';
  const cut = storableText(text, STATUS_MESSAGE_BODY_LENGTH);
  return `: ${cut}${cut.length < text.length ? '…' : ''}`;
}

/** The innermost cause's message and code: undici wraps socket errors in "fetch failed"-style ones. */
function networkReason(error: unknown): string {
  let innermost: unknown = error;
  while (innermost instanceof Error && innermost.cause instanceof Error) innermost = innermost.cause;
  if (!(innermost instanceof Error)) return String(innermost);
  const code = (innermost as { code?: unknown }).code;
  return typeof code === 'string' ? `${innermost.message} (${code})` : innermost.message;
}
