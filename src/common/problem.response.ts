import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class ProblemFieldError {
  @ApiPropertyOptional({ type: 'integer', description: 'Index of the job in a batch request', example: 3 })
  index?: number;
  @ApiProperty({ example: 'payload.ms' }) field!: string;
  @ApiProperty({ example: 'ms must be an integer number' }) message!: string;
}

/** RFC 9457 problem details, the body of every error response (application/problem+json). */
export class ProblemResponse {
  @ApiProperty({ description: 'Always about:blank: `code` tells problems apart', example: 'about:blank' })
  type!: string;
  @ApiProperty({ description: 'The HTTP reason phrase of `status`', example: 'Not Found' }) title!: string;
  @ApiProperty({ type: 'integer', example: 404 }) status!: number;
  @ApiProperty({ example: 'No job has id 019ac9a2-5b3e-7c41-9d6a-2f0e4b8c1d23' }) detail!: string;
  @ApiProperty({
    description: 'The path of the request, without its query',
    example: '/jobs/019ac9a2-5b3e-7c41-9d6a-2f0e4b8c1d23',
  })
  instance!: string;
  @ApiProperty({ description: 'Machine-readable error code', example: 'job_not_found' }) code!: string;
  @ApiPropertyOptional({
    type: [ProblemFieldError],
    description: 'With `validation_failed`: every field that is wrong',
  })
  errors?: ProblemFieldError[];
}

/** A failed readiness probe: the problem, and the state of each check so that an operator sees which failed. */
export class NotReadyProblemResponse extends ProblemResponse {
  @ApiProperty({
    type: 'object',
    description: 'Each check by name: `status` up or down, and what it reported',
    additionalProperties: {
      type: 'object',
      required: ['status'],
      properties: { status: { type: 'string', enum: ['up', 'down'] } },
      additionalProperties: true,
    },
    example: { database: { status: 'down', reason: 'no answer within 2 s' } },
  })
  checks!: Record<string, { status: 'up' | 'down'; [detail: string]: unknown }>;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
