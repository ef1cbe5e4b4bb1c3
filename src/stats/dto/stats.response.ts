import { ApiProperty } from '@nestjs/swagger';

export class JobsByStateResponse {
  @ApiProperty({ type: 'integer', minimum: 0, example: 1204 }) pending!: number;
  @ApiProperty({ type: 'integer', minimum: 0, example: 37 }) running!: number;
  @ApiProperty({ type: 'integer', minimum: 0, example: 912345 }) completed!: number;
  @ApiProperty({ type: 'integer', minimum: 0, example: 812 }) failed!: number;
  @ApiProperty({ type: 'integer', minimum: 0, example: 15 }) cancelled!: number;
}

export class JobTypeStatsResponse extends JobsByStateResponse {
  @ApiProperty({ example: 'email.send' }) job_type!: string;
  @ApiProperty({
    description: 'Workers do not claim this type (POST /job-types/{job_type}/pause)',
    example: false,
  })
  paused!: boolean;
}

export class FinishedLastMinuteResponse {
  @ApiProperty({ type: 'integer', minimum: 0, example: 2310 }) completed!: number;
  @ApiProperty({ type: 'integer', minimum: 0, example: 4 }) failed!: number;
  @ApiProperty({ type: 'integer', minimum: 0, example: 0 }) cancelled!: number;
}

export class StatsResponse {
  @ApiProperty({ type: JobsByStateResponse, description: 'Jobs in each state, every job type together' })
  by_state!: JobsByStateResponse;

  @ApiProperty({
    type: [JobTypeStatsResponse],
    description:
      'Per job type, sorted by name: every registered type, and any other that has jobs or is paused',
  })
  by_type!: JobTypeStatsResponse[];

  @ApiProperty({
    type: 'integer',
    minimum: 0,
    nullable: true,
    example: 850,
    description:
      'How long the longest-waiting claimable job has been due (paused types included); null when no job is due',
  })
  oldest_due_age_ms!: number | null;

  @ApiProperty({
    type: FinishedLastMinuteResponse,
    description: 'Jobs that reached each terminal state within the last minute (counted by whole seconds)',
  })
  finished_last_minute!: FinishedLastMinuteResponse;
}
