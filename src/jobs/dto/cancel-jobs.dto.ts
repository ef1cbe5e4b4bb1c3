import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsString, Matches, MaxLength, ValidateIf } from 'class-validator';
import { JobState } from '../../persistence/job-state';
import { IsTimestamp } from './create-job.dto';

/** Optional, but when present it must be valid: `null` is refused rather than read as "absent". */
const IfPresent = (): PropertyDecorator => ValidateIf((_object, value) => value !== undefined);

export const MAX_CANCEL_REASON_LENGTH = 1_000;

export class CancelJobDto {
  @ApiPropertyOptional({
    description: "Why; stored as the cancelled job's error message",
    maxLength: MAX_CANCEL_REASON_LENGTH,
    example: 'Customer withdrew the order',
  })
  @IfPresent()
  @IsString()
  @MaxLength(MAX_CANCEL_REASON_LENGTH)
  reason?: string;
}

export class CancelMatchingJobsDto extends CancelJobDto {
  @ApiPropertyOptional({ description: 'Only jobs of this type', example: 'email.send' })
  @IfPresent()
  @IsString()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/, {
    message: 'job_type must be a job type name such as email.send',
  })
  job_type?: string;

  @ApiPropertyOptional({ enum: [JobState.Pending, JobState.Running], description: 'Only jobs in this state' })
  @IfPresent()
  @IsIn([JobState.Pending, JobState.Running])
  state?: JobState.Pending | JobState.Running;

  @ApiPropertyOptional({
    format: 'date-time',
    description: 'Only jobs created before this time',
    example: '2026-12-01T09:00:00Z',
  })
  @IfPresent()
  @IsTimestamp()
  created_before?: string;
}
