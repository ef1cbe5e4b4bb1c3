import {
  applyDecorators,
  ForbiddenException,
  ServiceUnavailableException,
  UnauthorizedException,
  type Type,
} from '@nestjs/common';
import { errorCodes } from 'fastify';
import {
  ApiBearerAuth,
  ApiExtraModels,
  ApiResponse,
  getSchemaPath,
  type HeadersObject,
  type OpenAPIObject,
  type OperationObject,
  type ParameterObject,
  type ResponseObject,
} from '@nestjs/swagger';
import { ThrottlerException } from '@nestjs/throttler';
import { DatabaseUnavailableError } from '../persistence/persistence.errors';
import type { ApiScope } from '../config/app-config';
import { API_KEY_REQUIRED, RequireScope, scopeTooSmall } from './api-key.guard';
import {
  MALFORMED_JSON,
  problemBody,
  toProblem,
  UNSUPPORTED_MEDIA_TYPE,
  type Problem,
} from './problem-details.filter';
import { NotReadyProblemResponse, PROBLEM_CONTENT_TYPE, ProblemResponse } from './problem.response';

/**
 * OpenAPI declarations of the error responses, built from the very functions that send them (toProblem,
 * problemBody), so that each example in Swagger UI is the body the service sends for that error.
 */

/** A named example of one problem an operation can answer. */
export interface ProblemExample {
  summary: string;
  problem: Problem;
}

const RETRY_AFTER_HEADER: HeadersObject = {
  'Retry-After': {
    description: 'Seconds to wait before trying again',
    required: true,
    schema: { type: 'integer', minimum: 0, example: 1 },
  },
};

/** Filled in by completeProblemExamples() with the path of each operation the example belongs to. */
const INSTANCE_OF_THE_OPERATION = '';

/** Declares the `status` answer of an operation: problem+json, with one example per problem it stands for. */
export function ApiProblemResponse(
  status: number,
  description: string,
  examples: Record<string, ProblemExample>,
  schema: Type<ProblemResponse> = ProblemResponse,
): MethodDecorator & ClassDecorator {
  for (const [name, { problem }] of Object.entries(examples)) {
    if (problem.status !== status) {
      throw new Error(`The problem example ${name} has status ${problem.status}, declared under ${status}`);
    }
  }
  const headers: HeadersObject = {
    ...(status === 503 || status === 429 ? RETRY_AFTER_HEADER : {}),
    ...(status === 401
      ? {
          'WWW-Authenticate': {
            description: 'The authentication scheme to use',
            required: true,
            schema: { type: 'string', enum: ['Bearer'] },
          },
        }
      : {}),
  };
  return applyDecorators(
    ApiExtraModels(schema),
    ApiResponse({
      status,
      description,
      ...(Object.keys(headers).length > 0 ? { headers } : {}),
      content: {
        [PROBLEM_CONTENT_TYPE]: {
          schema: { $ref: getSchemaPath(schema) },
          examples: Object.fromEntries(
            Object.entries(examples).map(([name, { summary, problem }]) => [
              name,
              { summary, value: problemBody(problem, INSTANCE_OF_THE_OPERATION) },
            ]),
          ),
        },
      },
    }),
  );
}

const PROBLEMS = {
  malformedJson: { summary: 'The body is not valid JSON', problem: MALFORMED_JSON },
  unsupportedMediaType: { summary: 'The body is not JSON', problem: UNSUPPORTED_MEDIA_TYPE },
  payloadTooLarge: {
    summary: 'The body is over MAX_BODY_BYTES',
    problem: toProblem(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE()),
  },
  apiKeyRequired: {
    summary: 'No key, or a key API_KEYS does not list',
    problem: toProblem(new UnauthorizedException(API_KEY_REQUIRED)),
  },
  rateLimited: {
    summary: 'Over RATE_LIMIT_PER_MINUTE for this key',
    problem: toProblem(new ThrottlerException()),
  },
  databaseUnavailable: {
    summary: 'The database does not answer',
    problem: toProblem(new DatabaseUnavailableError(new Error('connect ECONNREFUSED'))),
  },
  notReady: {
    summary: 'The database does not answer the probe',
    problem: toProblem(
      new ServiceUnavailableException({
        status: 'error',
        info: {},
        error: { database: { status: 'down', reason: 'no answer within 2 s' } },
        details: { database: { status: 'down', reason: 'no answer within 2 s' } },
      }),
    ),
  },
} satisfies Record<string, ProblemExample>;

/** 400, 413 and 415: what the JSON body parser refuses before a request reaches its controller. */
export function ApiJsonBodyProblems(
  badRequestDescription: string,
  badRequests: Record<string, ProblemExample>,
): MethodDecorator {
  return applyDecorators(
    ApiProblemResponse(400, badRequestDescription, {
      ...badRequests,
      malformed_json: PROBLEMS.malformedJson,
    }),
    ApiProblemResponse(413, 'The body is larger than MAX_BODY_BYTES', {
      payload_too_large: PROBLEMS.payloadTooLarge,
    }),
    ApiProblemResponse(415, 'The body is not JSON (Content-Type: application/json)', {
      unsupported_media_type: PROBLEMS.unsupportedMediaType,
    }),
  );
}

/** An endpoint behind API_KEYS: 401 without a valid key, 429 over the rate limit. */
export function ApiKeyRequired(): ClassDecorator & MethodDecorator {
  return applyDecorators(
    ApiBearerAuth(),
    ApiProblemResponse(401, 'API_KEYS is set and the request has no valid `Authorization: Bearer <key>`', {
      unauthorized: PROBLEMS.apiKeyRequired,
    }),
    ApiProblemResponse(429, 'Over RATE_LIMIT_PER_MINUTE for this key; Retry-After says when to try again', {
      too_many_requests: PROBLEMS.rateLimited,
    }),
  );
}

/**
 * RequireScope, and the 403 it brings in the document: a key of a smaller scope is refused. Every key has
 * at least `read`, so a `read` endpoint never answers 403.
 */
export function ApiRequireScope(scope: ApiScope): MethodDecorator {
  if (scope === 'read') return RequireScope(scope);
  const smaller = scope === 'admin' ? 'write' : 'read';
  return applyDecorators(
    RequireScope(scope),
    ApiProblemResponse(403, `The key's scope is smaller than ${scope}`, {
      forbidden: {
        summary: `A ${smaller} key`,
        problem: toProblem(new ForbiddenException(scopeTooSmall(scope, smaller))),
      },
    }),
  );
}

/** 503 when the database does not answer: the request changed nothing, and may be repeated. */
export function ApiDatabaseUnavailable(): ClassDecorator & MethodDecorator {
  return ApiProblemResponse(503, 'The database is unreachable; the request changed nothing, retry later', {
    database_unavailable: PROBLEMS.databaseUnavailable,
  });
}

export function ApiNotReady(description: string): MethodDecorator {
  return ApiProblemResponse(503, description, { not_ready: PROBLEMS.notReady }, NotReadyProblemResponse);
}

/**
 * Sets the `instance` of every problem example to the path its operation would be called with, the path
 * parameters filled with their examples: decorators do not know the route they decorate.
 */
export function completeProblemExamples(generated: OpenAPIObject): OpenAPIObject {
  // A copy without shared objects: a class-level decorator's example belongs to each of its operations.
  const document = JSON.parse(JSON.stringify(generated)) as OpenAPIObject;
  for (const [template, pathItem] of Object.entries(document.paths)) {
    for (const operation of Object.values(pathItem) as OperationObject[]) {
      if (typeof operation !== 'object' || !operation?.responses) continue;
      const path = template.replace(/\{([^}]+)\}/g, (_match, name: string) => {
        const parameter = (operation.parameters ?? []).find(
          (candidate): candidate is ParameterObject => 'name' in candidate && candidate.name === name,
        );
        const schema = parameter?.schema as { example?: unknown } | undefined;
        return encodeURIComponent(String(parameter?.example ?? schema?.example ?? name));
      });
      for (const response of Object.values(operation.responses) as ResponseObject[]) {
        const examples = response.content?.[PROBLEM_CONTENT_TYPE]?.examples;
        for (const example of Object.values(examples ?? {})) {
          const value = (example as { value?: { instance?: string } }).value;
          if (value?.instance === INSTANCE_OF_THE_OPERATION) value.instance = path;
        }
      }
    }
  }
  return document;
}
