import { ApiProperty, type ApiPropertyOptions, type SchemaObject } from '@nestjs/swagger';
import { JOB_STATES } from '../../persistence/job-state';

/**
 * The schemas below say what the service sends: every field is always present (`required`), null where
 * the contract says so (`nullable`), counts are integers. Property examples compose into one completed
 * job, as a job really looks once done.
 */

export const EXAMPLE_JOB_ID = '019ac9a2-5b3e-7c41-9d6a-2f0e4b8c1d23';

export class JobErrorResponse {
  code!: string;
  message!: string;
}

/**
 * `{ code, message }`, written inline rather than as a reference: OpenAPI 3.0 has no unambiguous way to
 * make a referenced schema nullable. Handlers may add fields of their own.
 */
const nullableJobError = (description: string): ApiPropertyOptions => ({
  type: 'object',
  nullable: true,
  description,
  required: ['code', 'message'],
  properties: {
    code: { type: 'string', description: 'Machine-readable, e.g. timeout, cancelled, lease_expired' },
    message: { type: 'string' },
  },
  additionalProperties: true,
  example: null,
});

/**
 * Any JSON value, null included, spelled out: in OpenAPI 3.0 `nullable` needs a `type`, so an untyped
 * schema cannot say "or null", and tools read a bare `{}` differently.
 */
const ANY_JSON_VALUE: SchemaObject[] = [
  { type: 'object', additionalProperties: {}, nullable: true },
  { type: 'array', items: {} },
  { type: 'string' },
  { type: 'number' },
  { type: 'boolean' },
];

const ATTEMPT_OUTCOMES = ['running', 'succeeded', 'failed', 'timed_out', 'lost', 'interrupted', 'cancelled'];

export class AttemptResponse {
  @ApiProperty({ type: 'integer', minimum: 1, example: 1 }) attempt!: number;
  @ApiProperty({ example: 'worker-7c9f-1234-a1b2c3' }) worker_id!: string;
  @ApiProperty({ format: 'date-time', example: '2026-11-28T12:20:44.098Z' }) started_at!: string;
  @ApiProperty({
    format: 'date-time',
    nullable: true,
    type: String,
    description: 'null while the attempt runs',
    example: '2026-11-28T12:20:44.104Z',
  })
  finished_at!: string | null;
  @ApiProperty({ enum: ATTEMPT_OUTCOMES, example: 'succeeded' }) outcome!: string;
  @ApiProperty(nullableJobError('Why the attempt did not succeed; null while running and once succeeded'))
  error!: JobErrorResponse | null;
}

export class JobCallbackResponse {
  url!: string;
  state!: string;
  attempts!: number;
}

const CALLBACK_STATES = ['waiting', 'pending', 'delivered', 'failed'];

export class JobResponse {
  @ApiProperty({ format: 'uuid', example: EXAMPLE_JOB_ID }) job_id!: string;
  @ApiProperty({ example: 'echo' }) job_type!: string;
  @ApiProperty({ enum: JOB_STATES, example: 'completed' }) state!: string;
  @ApiProperty({
    type: 'object',
    additionalProperties: {},
    description: "The job's input as it was sent: any JSON object",
    example: { message: 'hello' },
  })
  payload!: Record<string, unknown>;
  @ApiProperty({
    // With a schema combinator, `type: Array` makes @nestjs/swagger leave `type` out (it would say object).
    type: Array,
    anyOf: ANY_JSON_VALUE,
    description:
      'What the handler returned, any JSON value; null unless completed (and when the handler returned nothing)',
    example: { message: 'hello' },
  })
  result!: unknown;
  @ApiProperty(nullableJobError('Why the job failed or was cancelled (code `cancelled`); null otherwise'))
  error!: JobErrorResponse | null;
  @ApiProperty({ type: 'integer', minimum: -1000, maximum: 1000, example: 0 }) priority!: number;
  @ApiProperty({ format: 'date-time', example: '2026-11-28T12:20:44.092Z' }) run_at!: string;
  @ApiProperty({ type: 'integer', minimum: 0, description: 'Attempts started so far', example: 1 })
  attempts!: number;
  @ApiProperty({ type: 'integer', minimum: 1, example: 3 }) max_attempts!: number;
  @ApiProperty({ type: 'integer', minimum: 1, example: 300000 }) timeout_ms!: number;
  @ApiProperty({ format: 'date-time', example: '2026-11-28T12:20:44.092Z' }) created_at!: string;
  @ApiProperty({ format: 'date-time', example: '2026-11-28T12:20:44.104Z' }) updated_at!: string;
  @ApiProperty({
    format: 'date-time',
    nullable: true,
    type: String,
    description: 'The first claim; null while pending, and for a job cancelled before any claim',
    example: '2026-11-28T12:20:44.098Z',
  })
  started_at!: string | null;
  @ApiProperty({
    format: 'date-time',
    nullable: true,
    type: String,
    description: 'When the job became completed, failed or cancelled; null before',
    example: '2026-11-28T12:20:44.104Z',
  })
  finished_at!: string | null;
  @ApiProperty({
    format: 'date-time',
    nullable: true,
    type: String,
    description:
      'While a failed attempt waits for its retry: when the next attempt may start; null otherwise',
    example: null,
  })
  next_attempt_at!: string | null;
  @ApiProperty({
    format: 'date-time',
    nullable: true,
    type: String,
    description: 'When a cancel was requested; a running job stays running until its worker stops it',
    example: null,
  })
  cancel_requested_at!: string | null;
  @ApiProperty({
    format: 'uuid',
    nullable: true,
    type: String,
    description: 'The failed or cancelled job this one retries (POST /jobs/{job_id}/retry)',
    example: null,
  })
  retry_of!: string | null;
  // Inline, as `error` is: a nullable object.
  @ApiProperty({
    type: 'object',
    nullable: true,
    description: 'The completion callback (callback_url); null when the job has none',
    required: ['url', 'state', 'attempts'],
    properties: {
      url: { type: 'string', example: 'https://hooks.example.com/jobs/finished' },
      state: {
        type: 'string',
        enum: CALLBACK_STATES,
        description:
          'waiting: the job has not finished; pending: to be delivered (or being retried); delivered: a 2xx ' +
          'answer came; failed: given up after CALLBACK_MAX_ATTEMPTS attempts',
      },
      attempts: { type: 'integer', minimum: 0, description: 'Delivery attempts started so far' },
    },
    example: null,
  })
  callback!: JobCallbackResponse | null;
}

export class JobDetailResponse extends JobResponse {
  @ApiProperty({ type: [AttemptResponse], description: 'Every attempt, oldest first' })
  attempt_history!: AttemptResponse[];
}

export class JobListResponse {
  @ApiProperty({ type: [JobResponse] }) items!: JobResponse[];
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Pass as `cursor` for the next page; null on the last page (always present)',
    example: null,
  })
  next_cursor!: string | null;
}

export class JobBatchResponse {
  @ApiProperty({ type: [JobResponse], description: 'The created jobs, in request order' })
  items!: JobResponse[];
}

/** A created job as `Prefer: return=minimal` answers it: its id alone. */
export class JobIdResponse {
  @ApiProperty({ format: 'uuid', example: EXAMPLE_JOB_ID }) job_id!: string;
}

export class JobIdBatchResponse {
  @ApiProperty({ type: [JobIdResponse], description: "The created jobs' ids, in request order" })
  items!: JobIdResponse[];
}

export class JobTypeResponse {
  @ApiProperty({ example: 'sleep' }) job_type!: string;
  @ApiProperty({ example: 'Waits `ms` milliseconds and returns { slept_ms }' }) description!: string;
  @ApiProperty({
    type: 'object',
    additionalProperties: {},
    description: 'JSON Schema of the payload the type accepts',
    example: { type: 'object', properties: { ms: { type: 'integer', minimum: 0 } }, required: ['ms'] },
  })
  payload_schema!: object;
  @ApiProperty({ description: 'True while workers do not claim jobs of this type', example: false })
  paused!: boolean;
}

export class CancelMatchingResponse {
  @ApiProperty({
    type: 'integer',
    minimum: 0,
    description: 'Unfinished jobs cancelled, or whose cancel was requested',
    example: 120,
  })
  matched!: number;
}
