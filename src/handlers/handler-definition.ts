/**
 * The types a handler module is written against (HANDLER_MODULES). This file depends on nothing, so a
 * handler package can copy it, or reference it, to type its definitions. A module exports an array of
 * HandlerDefinition: `module.exports = [...]` or `export default [...]`.
 *
 * A handler fails its attempt by throwing; the error's `code` (letters, digits, `_.:-`) becomes
 * `error.code` of the job. Set `permanent: true` on the error to fail the job at once, or `retryAfterMs`
 * to set when the next attempt starts (capped by RETRY_MAX_MS). A `details` object of scalars is added
 * to the job's `error` beside `code` and `message`.
 */

/** What a handler gets besides its payload. */
export interface JobContext {
  jobId: string;
  /** The attempt number, 1 for the first run; together with jobId it identifies this execution. */
  attempt: number;
  /**
   * Fires when the attempt must stop: its timeout passed, the job was cancelled, the worker lost its
   * lease, or the worker is shutting down. A handler that ignores it may run on, but nothing it returns
   * is recorded.
   */
  signal: AbortSignal;
  logger: JobLogger;
}

export interface JobLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** A JSON Schema (draft-07 or 2019-09 keywords, as `ajv` reads them). */
export type JsonSchema = Record<string, unknown>;

/** One job type, as a plain object: no NestJS, no decorators. */
export interface HandlerDefinition<TPayload = Record<string, unknown>, TResult = unknown> {
  /** The job_type clients submit, e.g. `report.render`: letters, digits and `_.:-`, up to 100 characters. */
  type: string;
  /** Shown in GET /job-types. */
  description: string;
  /** Every payload is checked against it at POST /jobs; a payload that fails is refused with 400. */
  payload_schema: JsonSchema;
  /** Returns a JSON-serialisable result (or a promise of one), or throws. */
  run(payload: TPayload, context: JobContext): TResult | Promise<TResult>;
}
