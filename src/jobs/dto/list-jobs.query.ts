import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Max, Min, MaxLength } from 'class-validator';
import { JOB_STATES, JobState } from '../../persistence/job-state';

export class ListJobsQuery {
  @ApiPropertyOptional({ enum: JOB_STATES, example: 'pending' })
  @IsOptional()
  @IsIn(JOB_STATES)
  state?: JobState;

  @ApiPropertyOptional({ example: 'echo' })
  @IsOptional()
  @IsString()
  @MaxLength(100)
  job_type?: string;

  @ApiPropertyOptional({ minimum: 1, maximum: 100, default: 20, example: 20 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100)
  limit?: number;

  @ApiPropertyOptional({
    description: 'next_cursor from the previous page (opaque)',
    example: 'MDE5MzcyYjQtNzVhYi03...',
  })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  cursor?: string;
}
