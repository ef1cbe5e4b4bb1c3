import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { JOB_STATES } from '../../persistence/job-state';

export class JobErrorResponse {
  @ApiProperty({ example: 'timeout' }) code!: string;
  @ApiProperty({ example: 'The attempt exceeded its timeout of 60000 ms' }) message!: string;
}

export class AttemptResponse {
  @ApiProperty({ example: 1 }) attempt!: number;
  @ApiProperty({ example: 'worker-7c9f-1234-a1b2c3' }) worker_id!: string;
  @ApiProperty({ format: 'date-time' }) started_at!: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) finished_at!: string | null;
  @ApiProperty({
    enum: ['running', 'succeeded', 'failed', 'timed_out', 'lost', 'interrupted', 'cancelled'],
    example: 'succeeded',
  })
  outcome!: string;
  @ApiProperty({ type: JobErrorResponse, nullable: true }) error!: JobErrorResponse | null;
}

export class JobCallbackResponse {
  @ApiProperty({ example: 'https://hooks.example.com/jobs/finished' }) url!: string;
  @ApiProperty({
    enum: ['waiting', 'pending', 'delivered', 'failed'],
    example: 'delivered',
    description:
      'waiting: the job has not finished; pending: to be delivered (or being retried); delivered: a 2xx ' +
      'answer came; failed: given up after CALLBACK_MAX_ATTEMPTS attempts',
  })
  state!: string;
  @ApiProperty({ description: 'Delivery attempts started so far', example: 1 }) attempts!: number;
}

export class JobResponse {
  @ApiProperty({ format: 'uuid', example: '019ac9a2-5b3e-7c41-9d6a-2f0e4b8c1d23' }) job_id!: string;
  @ApiProperty({ example: 'echo' }) job_type!: string;
  @ApiProperty({ enum: JOB_STATES, example: 'completed' }) state!: string;
  @ApiProperty({ type: 'object', additionalProperties: true, example: { message: 'hello' } })
  payload!: Record<string, unknown>;
  @ApiProperty({
    description: 'What the handler returned; null unless completed',
    nullable: true,
    example: { message: 'hello' },
  })
  result!: unknown;
  @ApiProperty({
    type: JobErrorResponse,
    nullable: true,
    description: 'Why the job failed or was cancelled (code `cancelled`); null otherwise',
  })
  error!: JobErrorResponse | null;
  @ApiProperty({ example: 0 }) priority!: number;
  @ApiProperty({ format: 'date-time' }) run_at!: string;
  @ApiProperty({ description: 'Attempts started so far', example: 1 }) attempts!: number;
  @ApiProperty({ example: 3 }) max_attempts!: number;
  @ApiProperty({ example: 300000 }) timeout_ms!: number;
  @ApiProperty({ format: 'date-time' }) created_at!: string;
  @ApiProperty({ format: 'date-time' }) updated_at!: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) started_at!: string | null;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) finished_at!: string | null;
  @ApiProperty({
    format: 'date-time',
    nullable: true,
    type: String,
    description: 'While a failed attempt waits for its retry: when the next attempt may start',
  })
  next_attempt_at!: string | null;
  @ApiProperty({
    format: 'date-time',
    nullable: true,
    type: String,
    description: 'When a cancel was requested; a running job stays running until its worker stops it',
  })
  cancel_requested_at!: string | null;
  @ApiProperty({
    format: 'uuid',
    nullable: true,
    type: String,
    description: 'The failed or cancelled job this one retries (POST /jobs/{job_id}/retry)',
  })
  retry_of!: string | null;
  @ApiProperty({
    type: JobCallbackResponse,
    nullable: true,
    description: 'The completion callback (callback_url); null when the job has none',
  })
  callback!: JobCallbackResponse | null;
}

export class JobDetailResponse extends JobResponse {
  @ApiProperty({ type: [AttemptResponse], description: 'Every attempt, oldest first' })
  attempt_history!: AttemptResponse[];
}

export class JobListResponse {
  @ApiProperty({ type: [JobResponse] }) items!: JobResponse[];
  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: 'Pass as `cursor` for the next page; null on the last',
  })
  next_cursor!: string | null;
}

export class JobBatchResponse {
  @ApiProperty({ type: [JobResponse], description: 'The created jobs, in request order' })
  items!: JobResponse[];
}

export class JobTypeResponse {
  @ApiProperty({ example: 'sleep' }) job_type!: string;
  @ApiProperty({ example: 'Waits `ms` milliseconds' }) description!: string;
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    example: { type: 'object', properties: { ms: { type: 'integer', minimum: 0 } }, required: ['ms'] },
  })
  payload_schema!: object;
  @ApiProperty({ description: 'True while workers do not claim jobs of this type', example: false })
  paused!: boolean;
}

export class CancelMatchingResponse {
  @ApiProperty({ description: 'Unfinished jobs cancelled, or whose cancel was requested', example: 120 })
  matched!: number;
}
