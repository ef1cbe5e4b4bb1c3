import { ApiProperty, type ApiPropertyOptions } from '@nestjs/swagger';

export class LivenessResponse {
  @ApiProperty({ enum: ['ok'], example: 'ok' }) status!: 'ok';
}

/** One map of checks by name, each `{ status, ...what it reported }`. */
const checks = (description: string, example: Record<string, unknown>): ApiPropertyOptions => ({
  type: 'object',
  description,
  additionalProperties: {
    type: 'object',
    required: ['status'],
    properties: { status: { type: 'string', enum: ['up', 'down'] } },
    additionalProperties: true,
  },
  example,
});

const READY_CHECKS = {
  shutdown: { status: 'up' },
  database: { status: 'up' },
  schema: { status: 'up', migrations: 6 },
  worker: { status: 'up', live_attempts: 3 },
  rescue: { status: 'up', last_completed_ms_ago: 1840 },
};

/** What @nestjs/terminus answers when every check is up (a failing check answers 503 problem+json). */
export class ReadinessResponse {
  @ApiProperty({ enum: ['ok'], example: 'ok' }) status!: 'ok';
  @ApiProperty(
    checks('The checks that are up: database, and in a worker the claim loop and rescue', READY_CHECKS),
  )
  info!: Record<string, unknown>;
  @ApiProperty(checks('The checks that are down: none when ready', {}))
  error!: Record<string, unknown>;
  @ApiProperty(checks('Every check', READY_CHECKS))
  details!: Record<string, unknown>;
}
