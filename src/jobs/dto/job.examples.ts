import type { ProblemExample } from '../../common/api-responses';
import { toProblem } from '../../common/problem-details.filter';
import {
  IdempotencyKeyReusedError,
  JobNotFoundError,
  JobStateConflictError,
  JobTypeNotFoundError,
  RequestValidationError,
} from '../jobs.errors';
import type { CreateJobDto } from './create-job.dto';
import {
  EXAMPLE_JOB_ID,
  type AttemptResponse,
  type JobDetailResponse,
  type JobResponse,
} from './job.response';

/**
 * The examples Swagger UI shows for the jobs endpoints. Each job is one the database allows (result only
 * when completed, error only when failed or cancelled, finished_at only when terminal, next_attempt_at only
 * while a retry waits); test/e2e/openapi-document.spec.ts checks every one of them against those rules.
 */

const NEWER_JOB_ID = '019ac9a4-0c11-7d02-8a3e-5b6f7c8d9e0f';
const WORKER = 'worker-7c9f-1234-a1b2c3';
const example = <T>(summary: string, value: T): { summary: string; value: T } => ({ summary, value });

const pendingJob: JobResponse = {
  job_id: EXAMPLE_JOB_ID,
  job_type: 'echo',
  state: 'pending',
  payload: { message: 'hello' },
  result: null,
  error: null,
  priority: 0,
  run_at: '2026-11-28T12:20:44.092Z',
  attempts: 0,
  max_attempts: 3,
  timeout_ms: 300000,
  created_at: '2026-11-28T12:20:44.092Z',
  updated_at: '2026-11-28T12:20:44.092Z',
  started_at: null,
  finished_at: null,
  next_attempt_at: null,
  cancel_requested_at: null,
  retry_of: null,
  callback: null,
};

const succeeded: AttemptResponse = {
  attempt: 1,
  worker_id: WORKER,
  started_at: '2026-11-28T12:20:44.098Z',
  finished_at: '2026-11-28T12:20:44.104Z',
  outcome: 'succeeded',
  error: null,
};

const completedJob: JobDetailResponse = {
  ...pendingJob,
  state: 'completed',
  result: { message: 'hello' },
  attempts: 1,
  updated_at: '2026-11-28T12:20:44.104Z',
  started_at: '2026-11-28T12:20:44.098Z',
  finished_at: '2026-11-28T12:20:44.104Z',
  attempt_history: [succeeded],
};

const failedAttempt = (attempt: number, startedAt: string, finishedAt: string): AttemptResponse => ({
  attempt,
  worker_id: WORKER,
  started_at: startedAt,
  finished_at: finishedAt,
  outcome: 'failed',
  error: { code: 'requested_failure', message: 'upstream refused the request' },
});

const waitingForRetryJob: JobDetailResponse = {
  ...pendingJob,
  job_type: 'fail',
  payload: { message: 'upstream refused the request' },
  state: 'running',
  attempts: 1,
  updated_at: '2026-11-28T12:20:44.110Z',
  started_at: '2026-11-28T12:20:44.098Z',
  next_attempt_at: '2026-11-28T12:20:45.032Z',
  attempt_history: [failedAttempt(1, '2026-11-28T12:20:44.098Z', '2026-11-28T12:20:44.110Z')],
};

const failedJob: JobDetailResponse = {
  ...waitingForRetryJob,
  state: 'failed',
  error: { code: 'requested_failure', message: 'upstream refused the request' },
  attempts: 3,
  updated_at: '2026-11-28T12:20:47.301Z',
  finished_at: '2026-11-28T12:20:47.301Z',
  next_attempt_at: null,
  attempt_history: [
    failedAttempt(1, '2026-11-28T12:20:44.098Z', '2026-11-28T12:20:44.110Z'),
    failedAttempt(2, '2026-11-28T12:20:45.040Z', '2026-11-28T12:20:45.051Z'),
    failedAttempt(3, '2026-11-28T12:20:47.290Z', '2026-11-28T12:20:47.301Z'),
  ],
};

const runningJob: JobDetailResponse = {
  ...pendingJob,
  job_type: 'sleep',
  payload: { ms: 60000 },
  state: 'running',
  attempts: 1,
  updated_at: '2026-11-28T12:20:44.098Z',
  started_at: '2026-11-28T12:20:44.098Z',
  attempt_history: [{ ...succeeded, finished_at: null, outcome: 'running' }],
};

const cancelRequestedJob: JobDetailResponse = {
  ...runningJob,
  updated_at: '2026-11-28T12:20:50.000Z',
  cancel_requested_at: '2026-11-28T12:20:50.000Z',
};

const cancelledJob: JobDetailResponse = {
  ...pendingJob,
  state: 'cancelled',
  error: { code: 'cancelled', message: 'Customer withdrew the order' },
  updated_at: '2026-11-28T12:20:50.000Z',
  finished_at: '2026-11-28T12:20:50.000Z',
  cancel_requested_at: '2026-11-28T12:20:50.000Z',
  attempt_history: [],
};

const retryJob: JobResponse = {
  ...pendingJob,
  job_id: NEWER_JOB_ID,
  job_type: 'fail',
  payload: { message: 'upstream refused the request' },
  run_at: '2026-11-28T12:30:00.000Z',
  created_at: '2026-11-28T12:30:00.000Z',
  updated_at: '2026-11-28T12:30:00.000Z',
  retry_of: EXAMPLE_JOB_ID,
};

export const JOB_EXAMPLES = {
  created: {
    pending: example('Stored; a worker runs it once run_at has come', pendingJob),
    minimal: example('Stored, answered with Prefer: return=minimal', { job_id: pendingJob.job_id }),
  },
  detail: {
    completed: example('Completed: its result, no error', completedJob),
    pending: example('Waiting for a worker', { ...pendingJob, attempt_history: [] }),
    running: example('An attempt is running', runningJob),
    waiting_for_retry: example(
      'An attempt failed; next_attempt_at says when the next starts',
      waitingForRetryJob,
    ),
    failed: example('Failed: every attempt failed', failedJob),
    cancelled: example('Cancelled before any worker claimed it', cancelledJob),
  },
  cancel: {
    cancelled: example('It had no live attempt: cancelled at once', cancelledJob),
    cancel_requested: example('Its running attempt is being stopped by its worker', cancelRequestedJob),
  },
  retry: { retry: example('A new job, due now, naming the one it repeats', retryJob) },
  list: {
    page: example('A page with more to come', {
      items: [retryJob, withoutHistory(completedJob)],
      // The cursor is the last id of the page, encoded.
      next_cursor: Buffer.from(EXAMPLE_JOB_ID, 'utf8').toString('base64url'),
    }),
    last_page: example('The last page', { items: [withoutHistory(failedJob)], next_cursor: null }),
  },
  batch: {
    created: example('Every job stored, in request order', {
      items: [
        { ...pendingJob, payload: { n: 1 } },
        { ...pendingJob, job_id: NEWER_JOB_ID, payload: { n: 2 } },
      ],
    }),
    minimal: example('Every job stored, answered with Prefer: return=minimal', {
      items: [{ job_id: pendingJob.job_id }, { job_id: NEWER_JOB_ID }],
    }),
  },
};

function withoutHistory(job: JobResponse & { attempt_history?: unknown }): JobResponse {
  const { attempt_history: _history, ...rest } = job;
  return rest;
}

/** "Try it out" starts from the first one: a job that runs at once. */
export const CREATE_JOB_EXAMPLES: Record<string, { summary: string; value: CreateJobDto }> = {
  echo: example('Runs now and completes with its payload as the result', {
    job_type: 'echo',
    payload: { message: 'hello' },
  }),
  sleep: example('Runs now, first among the due jobs, for two seconds', {
    job_type: 'sleep',
    payload: { ms: 2000 },
    priority: 10,
    max_attempts: 5,
    timeout_ms: 60000,
  }),
  later: example('Waits until run_at', {
    job_type: 'noop',
    run_at: '2030-01-01T00:00:00Z',
  }),
};

export const JOB_PROBLEMS = {
  invalidPayload: {
    summary: "The payload does not satisfy the job type's schema",
    problem: toProblem(
      new RequestValidationError([{ field: 'payload.ms', message: 'ms must be an integer number' }]),
    ),
  },
  unknownJobType: {
    summary: 'No handler is registered for job_type',
    problem: toProblem(
      new RequestValidationError([
        { field: 'job_type', message: 'unknown job type "email.sned"; known types: echo, fail, noop, sleep' },
      ]),
    ),
  },
  invalidBatchItem: {
    summary: 'Every invalid job, by its index in the batch',
    problem: toProblem(
      new RequestValidationError([
        { index: 0, field: 'job_type', message: 'job_type must be a string' },
        { index: 3, field: 'payload.ms', message: 'ms must be an integer number' },
      ]),
    ),
  },
  invalidJobId: {
    summary: 'job_id is not a UUID',
    problem: toProblem(new RequestValidationError([{ field: 'job_id', message: 'job_id must be a UUID' }])),
  },
  invalidQuery: {
    summary: 'A query value out of range',
    problem: toProblem(
      new RequestValidationError([{ field: 'limit', message: 'limit must not be greater than 100' }]),
    ),
  },
  invalidWait: {
    summary: 'wait_ms out of range',
    problem: toProblem(
      new RequestValidationError([{ field: 'wait_ms', message: 'wait_ms must not be greater than 60000' }]),
    ),
  },
  noCancelFilter: {
    summary: 'No filter field',
    problem: toProblem(
      new RequestValidationError([
        { field: '(body)', message: 'give at least one of job_type, state and created_before' },
      ]),
    ),
  },
  reasonTooLong: {
    summary: 'A reason over 1,000 characters',
    problem: toProblem(
      new RequestValidationError([
        { field: 'reason', message: 'reason must be shorter than or equal to 1000 characters' },
      ]),
    ),
  },
  jobNotFound: { summary: 'No job has this id', problem: toProblem(new JobNotFoundError(EXAMPLE_JOB_ID)) },
  jobTypeNotFound: {
    summary: 'No such job type is registered',
    problem: toProblem(new JobTypeNotFoundError('email.send', ['echo', 'fail', 'noop', 'sleep'])),
  },
  idempotencyKeyReused: {
    summary: 'The Idempotency-Key was used with another body',
    problem: toProblem(new IdempotencyKeyReusedError(EXAMPLE_JOB_ID)),
  },
  alreadyFinished: {
    summary: 'The job is already completed, failed or cancelled',
    problem: toProblem(new JobStateConflictError(EXAMPLE_JOB_ID, 'completed', 'cancelled')),
  },
  notRetryable: {
    summary: 'Only failed and cancelled jobs can be retried',
    problem: toProblem(
      new JobStateConflictError(EXAMPLE_JOB_ID, 'running', 'retried (only failed and cancelled jobs can be)'),
    ),
  },
} satisfies Record<string, ProblemExample>;
