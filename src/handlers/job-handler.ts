import { SetMetadata, type Type } from '@nestjs/common';

/** What a handler gets besides its payload. */
export interface JobContext {
  jobId: string;
  /** The attempt number, 1 for the first run; together with jobId it identifies this execution. */
  attempt: number;
  /**
   * Fires when the attempt must stop: its timeout passed, the worker lost its lease, or the worker is
   * shutting down. A handler that ignores it may run on, but nothing it returns is recorded.
   */
  signal: AbortSignal;
  logger: JobLogger;
}

export interface JobLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/**
 * A job handler: a NestJS provider decorated with @JobHandler. `run` returns a JSON-serialisable result
 * or throws; throw PermanentJobError to fail the job without further retries.
 */
export interface JobHandler<TPayload extends object = object, TResult = unknown> {
  run(payload: TPayload, context: JobContext): Promise<TResult> | TResult;
}

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
  constructor(
    message: string,
    readonly code = 'permanent_failure',
  ) {
    super(message);
    this.name = 'PermanentJobError';
  }
}
