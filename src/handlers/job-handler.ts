import { SetMetadata, type Type } from '@nestjs/common';
import type { FieldProblem } from '../common/dto-validation';
import type { JobContext } from './handler-definition';

export type { JobContext, JobLogger } from './handler-definition';

/**
 * A job handler: a NestJS provider decorated with @JobHandler. `run` returns a JSON-serialisable result
 * or throws; throw PermanentJobError to fail the job without further retries.
 */
export interface JobHandler<TPayload extends object = object, TResult = unknown> {
  run(payload: TPayload, context: JobContext): Promise<TResult> | TResult;
  /**
   * Checks a payload its DTO has already accepted against rules a DTO cannot express (e.g. the
   * deployment's allowlist); the API refuses the job with these problems, fields under `payload`.
   */
  checkPayload?(payload: TPayload): FieldProblem[];
}

/** Scalars a handler's error may carry next to `code` and `message`, e.g. `{ status: 503 }`. */
export type JobErrorDetails = Record<string, string | number | boolean | null>;

export interface JobHandlerOptions {
  /** The job_type clients submit, e.g. `email.send`. */
  type: string;
  /**
   * A class-validator DTO for the payload; the API refuses jobs whose payload does not satisfy it, and
   * fields the DTO does not declare. Leave it out to accept any JSON object.
   */
  payload?: Type<object>;
  description: string;
}

export const JOB_HANDLER_METADATA = Symbol('JOB_HANDLER_METADATA');

/** Registers the decorated provider as the handler of `options.type`. */
export function JobHandler(options: JobHandlerOptions): ClassDecorator {
  return SetMetadata(JOB_HANDLER_METADATA, options);
}

/** Thrown by a handler to fail the job at once, whatever attempts remain. */
export class PermanentJobError extends Error {
  readonly permanent = true;
  constructor(
    message: string,
    readonly code = 'permanent_failure',
    readonly details?: JobErrorDetails,
  ) {
    super(message);
    this.name = 'PermanentJobError';
  }
}

/**
 * Thrown by a handler to fail this attempt and have the next one start `retryAfterMs` from now (capped by
 * RETRY_MAX_MS) instead of after the usual backoff, e.g. when a server answered with Retry-After. When no
 * attempts remain, the job fails as with any error.
 */
export class RetryLaterError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs: number,
    readonly code = 'retry_later',
    readonly details?: JobErrorDetails,
  ) {
    super(message);
    this.name = 'RetryLaterError';
  }
}
