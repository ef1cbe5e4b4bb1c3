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
const MAX_DETAILS = 20;
const MAX_DETAIL_LENGTH = 1_000;

/**
 * Whether a handler's error fails the job at once: PermanentJobError, or, from a handler module that does
 * not import the service's classes, any error with `permanent: true`.
 */
export function isPermanentFailure(error: unknown): boolean {
  return error instanceof Error && (error as { permanent?: unknown }).permanent === true;
}

/**
 * The delay a handler's error asks for before the next attempt (RetryLaterError, or any error with a
 * non-negative `retryAfterMs`), or undefined for the usual backoff.
 */
export function requestedRetryDelayMs(error: unknown): number | undefined {
  if (!(error instanceof Error)) return undefined;
  const delay = (error as { retryAfterMs?: unknown }).retryAfterMs;
  return typeof delay === 'number' && Number.isFinite(delay) && delay >= 0 ? Math.round(delay) : undefined;
}

/**
 * The `{ code, message }` recorded for a failed attempt, always storable: the message is cut without
 * splitting a character, and characters PostgreSQL cannot store become U+FFFD. Stack traces go to the
 * log, not the job.
 */
export function toJobError(error: unknown): JobErrorBody {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      ...errorDetails((error as { details?: unknown }).details),
      code: typeof code === 'string' && CODE_PATTERN.test(code) ? code : 'handler_error',
      message: storableText(error.message || error.name, MAX_MESSAGE_LENGTH),
    };
  }
  return { code: 'handler_error', message: storableText(describe(error), MAX_MESSAGE_LENGTH) };
}

/** The scalar entries of an error's `details` object (a few, short), for the job's `error`. */
function errorDetails(details: unknown): Record<string, string | number | boolean | null> {
  if (details === null || typeof details !== 'object' || Array.isArray(details)) return {};
  const kept: Record<string, string | number | boolean | null> = {};
  for (const [key, value] of Object.entries(details).slice(0, MAX_DETAILS)) {
    if (!CODE_PATTERN.test(key)) continue;
    if (typeof value === 'string') kept[key] = storableText(value, MAX_DETAIL_LENGTH);
    else if (
      (typeof value === 'number' && Number.isFinite(value)) ||
      typeof value === 'boolean' ||
      value === null
    )
      kept[key] = value;
  }
  return kept;
}

/** A thrown non-Error as text; some values (an object without a prototype) cannot even be converted. */
function describe(thrown: unknown): string {
  try {
    return String(thrown);
  } catch {
    return 'The handler threw a value that cannot be shown as text';
  }
}
