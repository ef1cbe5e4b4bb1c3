import { ArgumentsHost, Catch, HttpException, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { STATUS_CODES } from 'node:http';
import {
  IdempotencyKeyReusedError,
  JobNotFoundError,
  JobStateConflictError,
  JobTypeNotFoundError,
  RequestValidationError,
  type FieldError,
} from '../jobs/jobs.errors';
import type { Logger } from '../logging/logger';
import { requestIdOf } from '../logging/request-logging';
import { DatabaseUnavailableError } from '../persistence/persistence.errors';
import { PROBLEM_CONTENT_TYPE } from './problem.response';

export interface Problem {
  status: number;
  code: string;
  detail: string;
  errors?: FieldError[];
  /** For a failed readiness probe: the state of each check, so that an operator sees which one failed. */
  checks?: Record<string, unknown>;
}

export const MALFORMED_JSON: Problem = {
  status: 400,
  code: 'malformed_json',
  detail: 'The request body is not valid JSON',
};

export const UNSUPPORTED_MEDIA_TYPE: Problem = {
  status: 415,
  code: 'unsupported_media_type',
  detail: 'Request bodies must be JSON (Content-Type: application/json)',
};

export const PAYLOAD_TOO_LARGE: Problem = {
  status: 413,
  code: 'payload_too_large',
  detail: 'The request body is larger than the limit',
};

/** A body that could not be read (400 unless the error that says so carries another 4xx status). */
export const UNREADABLE_BODY: Problem = {
  status: 400,
  code: 'unreadable_body',
  detail: 'The request body could not be read',
};

/** An answer decided before routing (by the body parser, say): its problem is sent as it is. */
export class ProblemError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail);
    this.name = 'ProblemError';
  }
}

/** Errors Fastify raises itself while reading a request, by their code. */
const FASTIFY_PROBLEMS: Record<string, Problem> = {
  FST_ERR_CTP_BODY_TOO_LARGE: PAYLOAD_TOO_LARGE,
  FST_ERR_BAD_URL: { status: 400, code: 'bad_request', detail: 'The request URL is malformed' },
  FST_ERR_MAX_PARAM_LENGTH: {
    status: 400,
    code: 'bad_request',
    detail: 'A path segment of the URL is too long',
  },
};

/** Maps any error to RFC 9457 problem details. Unknown errors become a bare 500: no stack, no SQL. */
export function toProblem(error: unknown): Problem {
  if (error instanceof ProblemError) return error.problem;
  if (error instanceof RequestValidationError) {
    return { status: 400, code: 'validation_failed', detail: error.message, errors: error.errors };
  }
  if (error instanceof JobNotFoundError) return { status: 404, code: 'job_not_found', detail: error.message };
  if (error instanceof JobTypeNotFoundError) {
    return { status: 404, code: 'job_type_not_found', detail: error.message };
  }
  if (error instanceof JobStateConflictError) {
    return { status: 409, code: 'job_state_conflict', detail: error.message };
  }
  if (error instanceof IdempotencyKeyReusedError) {
    return { status: 409, code: 'idempotency_key_reused', detail: error.message };
  }
  if (error instanceof DatabaseUnavailableError) {
    return {
      status: 503,
      code: 'database_unavailable',
      detail: 'The database is unavailable; retry shortly',
    };
  }
  const fastifyCode = (error as { code?: unknown } | null)?.code;
  if (typeof fastifyCode === 'string' && Object.hasOwn(FASTIFY_PROBLEMS, fastifyCode)) {
    return FASTIFY_PROBLEMS[fastifyCode];
  }
  // Other client errors raised while reading the body (a length that does not match, an aborted upload).
  const clientStatus = (error as { statusCode?: unknown } | null)?.statusCode;
  if (
    typeof clientStatus === 'number' &&
    clientStatus >= 400 &&
    clientStatus < 500 &&
    !(error instanceof HttpException)
  ) {
    return { ...UNREADABLE_BODY, status: clientStatus };
  }
  if (error instanceof HttpException) {
    const status = error.getStatus();
    const body = error.getResponse();
    const checks = (body as { details?: unknown } | null)?.details;
    if (status === 503 && checks !== null && typeof checks === 'object') {
      return {
        status,
        code: 'not_ready',
        detail: 'A readiness check failed; see checks',
        checks: checks as Record<string, unknown>,
      };
    }
    const detail =
      typeof body === 'string' ? body : ((body as { message?: unknown }).message ?? error.message);
    return {
      status,
      code: (STATUS_CODES[status] ?? 'error').toLowerCase().replace(/[^a-z0-9]+/g, '_'),
      detail: Array.isArray(detail) ? detail.join('; ') : String(detail),
    };
  }
  return { status: 500, code: 'internal_error', detail: 'An unexpected error occurred' };
}

/** The RFC 9457 body of `problem` for a request to `instance` (its path, without the query). */
export function problemBody(problem: Problem, instance: string): Record<string, unknown> {
  return {
    type: 'about:blank',
    title: STATUS_CODES[problem.status] ?? 'Error',
    status: problem.status,
    detail: problem.detail,
    instance,
    code: problem.code,
    ...(problem.errors ? { errors: problem.errors } : {}),
    ...(problem.checks ? { checks: problem.checks } : {}),
  };
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, problem: Problem): void {
  if (problem.status === 503) reply.header('Retry-After', '1');
  if (problem.status === 401) reply.header('WWW-Authenticate', 'Bearer');
  reply
    .code(problem.status)
    .type(PROBLEM_CONTENT_TYPE)
    .send(JSON.stringify(problemBody(problem, request.url.split('?')[0])));
}

@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(error: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const problem = toProblem(error);
    if (problem.status >= 500 && problem.code !== 'not_ready') {
      this.logger.error(
        { err: error, request_id: requestIdOf(request), method: request.method, url: request.url },
        'request failed',
      );
    }
    if (reply.sent) return;
    sendProblem(request, reply, problem);
  }
}
