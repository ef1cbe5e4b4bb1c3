export interface FieldError {
  /** Position in a batch request, when the error belongs to one of its jobs. */
  index?: number;
  field: string;
  message: string;
}

/** The request is malformed; `errors` names every offending field. Maps to 400. */
export class RequestValidationError extends Error {
  constructor(
    readonly errors: FieldError[],
    message = 'The request is invalid',
  ) {
    super(message);
    this.name = 'RequestValidationError';
  }
}

/** Maps to 404. */
export class JobNotFoundError extends Error {
  constructor(readonly jobId: string) {
    super(`No job has id ${jobId}`);
    this.name = 'JobNotFoundError';
  }
}

/** The Idempotency-Key was first used with a different request body. Maps to 409. */
export class IdempotencyKeyReusedError extends Error {
  constructor(readonly jobId: string) {
    super(`This Idempotency-Key was already used for a different request (job ${jobId})`);
    this.name = 'IdempotencyKeyReusedError';
  }
}

/** The job's state does not allow the request (cancel a finished job, retry one that did not fail). Maps to 409. */
export class JobStateConflictError extends Error {
  constructor(
    readonly jobId: string,
    readonly state: string,
    action: string,
  ) {
    super(`Job ${jobId} is ${state}: it cannot be ${action}`);
    this.name = 'JobStateConflictError';
  }
}

/** Maps to 404. */
export class JobTypeNotFoundError extends Error {
  constructor(
    readonly jobType: string,
    known: readonly string[],
  ) {
    super(`No job type "${jobType}" is registered; known types: ${known.join(', ')}`);
    this.name = 'JobTypeNotFoundError';
  }
}
