import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, Max, Min } from 'class-validator';

export const MAX_WAIT_MS = 60_000;

export class GetJobQuery {
  @ApiPropertyOptional({
    type: 'integer',
    description:
      'Long poll: answer as soon as the job is completed, failed or cancelled, or after this many ms with ' +
      'its current state. 0 (the default) answers at once.',
    minimum: 0,
    maximum: MAX_WAIT_MS,
    default: 0,
  })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(MAX_WAIT_MS)
  wait_ms?: number;
}
