import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Matches, Max, Min, MaxLength } from 'class-validator';
import { JOB_STATES, JobState } from '../../persistence/job-state';
import { JOB_TYPE_MESSAGE, JOB_TYPE_PATTERN } from './create-job.dto';

export class ListJobsQuery {
  @ApiPropertyOptional({ enum: JOB_STATES, description: 'Only jobs in this state' })
  @IsOptional()
  @IsIn(JOB_STATES)
  state?: JobState;

  @ApiPropertyOptional({ description: 'Only jobs of this type', pattern: JOB_TYPE_PATTERN.source })
  @IsOptional()
  @IsString()
  @Matches(JOB_TYPE_PATTERN, { message: JOB_TYPE_MESSAGE })
  job_type?: string;

  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 100, default: 20, example: 20 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100)
  limit?: number;

  @ApiPropertyOptional({
    description: 'next_cursor from the previous page (opaque)',
    maxLength: 200,
  })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  cursor?: string;
}
