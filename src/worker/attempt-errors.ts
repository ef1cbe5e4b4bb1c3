import type { JobErrorBody } from '../persistence/job-state';
import { storableText } from '../persistence/storable-text';

/** Abort reason: the attempt ran past its job's timeout_ms. */
export class AttemptTimeoutError extends Error {
  readonly code = 'timeout';
  constructor(readonly timeoutMs: number) {
    super(`The attempt exceeded its timeout of ${timeoutMs} ms`);
    this.name = 'AttemptTimeoutError';
  }
}

/** Abort reason: this worker can no longer prove it holds the lease, so it must stop and write nothing. */
export class LeaseLostError extends Error {
  readonly code = 'lease_lost';
  constructor(reason: string) {
    super(`The worker lost its lease: ${reason}`);
    this.name = 'LeaseLostError';
  }
}

/** Abort reason: an operator cancelled the job; the attempt closes `cancelled` and the job with it. */
export class JobCancelledError extends Error {
  readonly code = 'cancelled';
  constructor() {
    super('The job was cancelled on request');
    this.name = 'JobCancelledError';
  }
}

/** Abort reason: the worker is shutting down and releases the attempt for another worker. */
export class WorkerShutdownError extends Error {
  readonly code = 'worker_shutdown';
  constructor() {
    super('The worker shut down before the attempt finished; it was released for another worker');
    this.name = 'WorkerShutdownError';
  }
}

const MAX_MESSAGE_LENGTH = 10_000;
const CODE_PATTERN = /^[A-Za-z0-9_.:-]{1,100}$/;

/**
 * The `{ code, message }` recorded for a failed attempt, always storable: the message is cut without
 * splitting a character, and characters PostgreSQL cannot store become U+FFFD. Stack traces go to the
 * log, not the job.
 */
export function toJobError(error: unknown): JobErrorBody {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      code: typeof code === 'string' && CODE_PATTERN.test(code) ? code : 'handler_error',
      message: storableText(error.message || error.name, MAX_MESSAGE_LENGTH),
    };
  }
  return { code: 'handler_error', message: storableText(describe(error), MAX_MESSAGE_LENGTH) };
}

/** A thrown non-Error as text; some values (an object without a prototype) cannot even be converted. */
function describe(thrown: unknown): string {
  try {
    return String(thrown);
  } catch {
    return 'The handler threw a value that cannot be shown as text';
  }
}
