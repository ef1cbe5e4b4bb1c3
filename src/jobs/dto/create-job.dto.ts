import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsInt,
  IsISO8601,
  IsNotEmpty,
  IsObject,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateBy,
  ValidateIf,
} from 'class-validator';

/** Optional, but when present it must be valid: `null` is refused rather than read as "absent". */
const IfPresent = (): PropertyDecorator => ValidateIf((_object, value) => value !== undefined);

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2}))?$/i;

/** A calendar date, or a date and time with its offset (RFC 3339), that this process can also parse. */
export const IsTimestamp = (): PropertyDecorator =>
  ValidateBy({
    name: 'isTimestamp',
    validator: {
      validate: (value: unknown) =>
        typeof value === 'string' && TIMESTAMP.test(value) && Number.isFinite(Date.parse(value)),
      defaultMessage: (args) =>
        `${args?.property ?? 'run_at'} must be an ISO 8601 date or date-time with an offset, e.g. 2026-12-01T09:00:00Z`,
    },
  });

export const MAX_BATCH_SIZE = 1_000;
/** The shape of a job type name: POST /jobs takes no other, so GET /jobs?job_type= can match no other. */
export const JOB_TYPE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/;
export const JOB_TYPE_MESSAGE = 'job_type must be a job type name such as email.send';

/** The fields of CreateJobDto; every other key is refused. */
const CREATE_JOB_FIELDS = new Set([
  'job_type',
  'payload',
  'priority',
  'run_at',
  'max_attempts',
  'timeout_ms',
  'callback_url',
]);

const isIntegerIn = (value: unknown, min: number, max: number): boolean =>
  Number.isInteger(value) && (value as number) >= min && (value as number) <= max;

export class CreateJobDto {
  /**
   * True only of a job its decorators below accept (see PlainCheck): a batch validates a thousand of
   * these, and most are plain. `run_at` and anything unusual go through class-validator. A change to a
   * decorator needs the same change here; test/unit/create-job-plain-check.spec.ts holds the two together.
   */
  static acceptsPlain(plain: Record<string, unknown>): boolean {
    for (const key of Object.keys(plain)) if (!CREATE_JOB_FIELDS.has(key)) return false;
    const { job_type, payload, priority, run_at, max_attempts, timeout_ms, callback_url } = plain;
    return (
      typeof job_type === 'string' &&
      JOB_TYPE_PATTERN.test(job_type) &&
      (payload === undefined ||
        (typeof payload === 'object' && payload !== null && !Array.isArray(payload))) &&
      (priority === undefined || isIntegerIn(priority, -1000, 1000)) &&
      run_at === undefined &&
      (max_attempts === undefined || isIntegerIn(max_attempts, 1, 1000)) &&
      (timeout_ms === undefined || isIntegerIn(timeout_ms, 1, 86_400_000)) &&
      (callback_url === undefined || (typeof callback_url === 'string' && callback_url.length <= 2048))
    );
  }

  @ApiProperty({ description: 'A registered job type (see GET /job-types)', example: 'echo' })
  @IsString()
  @IsNotEmpty()
  @Matches(JOB_TYPE_PATTERN, { message: JOB_TYPE_MESSAGE })
  job_type!: string;

  @ApiPropertyOptional({
    description: "The job's input, validated against the job type's payload schema. Default {}.",
    type: 'object',
    additionalProperties: {},
    example: { message: 'hello' },
  })
  @IfPresent()
  @IsObject()
  payload?: Record<string, unknown>;

  @ApiPropertyOptional({
    type: 'integer',
    description: 'Higher runs first',
    minimum: -1000,
    maximum: 1000,
    default: 0,
    example: 0,
  })
  @IfPresent()
  @IsInt()
  @Min(-1000)
  @Max(1000)
  priority?: number;

  // No example: Swagger UI would put a fixed date in every "Try it out" body, and a job due later.
  @ApiPropertyOptional({
    description:
      'Not claimable before this time (ISO 8601 with an offset, e.g. 2030-01-01T00:00:00Z). Default: now.',
    format: 'date-time',
  })
  @IfPresent()
  @IsISO8601({ strict: true, strictSeparator: true })
  @IsTimestamp()
  run_at?: string;

  @ApiPropertyOptional({
    type: 'integer',
    description: 'How many attempts may fail before the job does. Default: DEFAULT_MAX_ATTEMPTS.',
    minimum: 1,
    maximum: 1000,
    example: 3,
  })
  @IfPresent()
  @IsInt()
  @Min(1)
  @Max(1000)
  max_attempts?: number;

  @ApiPropertyOptional({
    type: 'integer',
    description: 'The longest one attempt may run, in ms. Default: DEFAULT_TIMEOUT_MS.',
    minimum: 1,
    maximum: 86_400_000,
    example: 60000,
  })
  @IfPresent()
  @IsInt()
  @Min(1)
  @Max(86_400_000)
  timeout_ms?: number;

  @ApiPropertyOptional({
    description:
      'Absolute http(s) URL allowed by HTTP_TARGET_ALLOW. When the job is completed, failed or cancelled, ' +
      'the job (as GET /jobs/{job_id} shows it) is POSTed there, signed like HTTP targets, at least once.',
    format: 'uri',
    maxLength: 2048,
    example: 'https://hooks.example.com/jobs/finished',
  })
  @IfPresent()
  @IsString()
  @MaxLength(2048)
  callback_url?: string;
}

export class CreateJobsBatchDto {
  @ApiProperty({
    type: [CreateJobDto],
    minItems: 1,
    maxItems: MAX_BATCH_SIZE,
    description: `1 to ${MAX_BATCH_SIZE} jobs, created all-or-nothing in one transaction`,
    example: [
      { job_type: 'echo', payload: { n: 1 } },
      { job_type: 'sleep', payload: { ms: 100 }, priority: 5 },
    ],
  })
  // Items are validated one by one by JobsService, so that a 400 lists the problems of every item,
  // field errors and payload errors alike.
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_BATCH_SIZE)
  jobs!: unknown[];
}
