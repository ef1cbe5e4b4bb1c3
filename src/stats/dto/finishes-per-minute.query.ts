import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, Max, Min } from 'class-validator';

/** The per-second finish counts are kept for a little over an hour (the retention task drops older ones). */
export const MAX_FINISHES_MINUTES = 60;

export class FinishesPerMinuteQuery {
  @ApiPropertyOptional({
    type: 'integer',
    description:
      'How many minutes to return, the current one included (default 60). A client that keeps the history ' +
      'asks for the hour once, then for the last 2 minutes on each refresh.',
    minimum: 1,
    maximum: MAX_FINISHES_MINUTES,
    default: MAX_FINISHES_MINUTES,
    example: 60,
  })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(MAX_FINISHES_MINUTES)
  minutes?: number;
}
