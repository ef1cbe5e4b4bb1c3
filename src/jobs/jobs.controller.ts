import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiHeader,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiPayloadTooLargeResponse,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiUnsupportedMediaTypeResponse,
} from '@nestjs/swagger';
import type { Response } from 'express';
import { ProblemResponse } from '../common/problem.response';
import { CreateJobDto, CreateJobsBatchDto } from './dto/create-job.dto';
import {
  JobBatchResponse,
  JobDetailResponse,
  JobListResponse,
  JobResponse,
  JobTypeResponse,
} from './dto/job.response';
import { ListJobsQuery } from './dto/list-jobs.query';
import { JobsService } from './jobs.service';

@ApiTags('jobs')
@ApiBearerAuth()
@ApiServiceUnavailableResponse({
  description: 'The database is unreachable; retry later',
  type: ProblemResponse,
})
@Controller()
export class JobsController {
  constructor(private readonly jobs: JobsService) {}

  @Post('jobs')
  @HttpCode(201)
  @ApiOperation({
    summary: 'Create a job',
    description:
      'Stores the job and returns it; a worker runs it once it is due. Without an Idempotency-Key two identical ' +
      'requests create two jobs. With one, repeating the request returns the first job (header ' +
      'Idempotent-Replayed: true) and reusing the key with another body is refused with 409.',
  })
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: '1-255 visible ASCII characters' })
  @ApiCreatedResponse({ type: JobResponse, description: 'The job is committed; Location points at it' })
  @ApiBadRequestResponse({
    type: ProblemResponse,
    description: 'Invalid body, unknown job_type or invalid payload',
  })
  @ApiConflictResponse({ type: ProblemResponse, description: 'Idempotency-Key reused with a different body' })
  @ApiPayloadTooLargeResponse({ type: ProblemResponse, description: 'Body larger than MAX_BODY_BYTES' })
  @ApiUnsupportedMediaTypeResponse({ type: ProblemResponse, description: 'Body is not application/json' })
  async create(
    @Body() body: CreateJobDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) response: Response,
  ): Promise<JobResponse> {
    const { job, replayed } = await this.jobs.create(body, idempotencyKey);
    response.location(`/jobs/${job.job_id}`);
    if (replayed) response.setHeader('Idempotent-Replayed', 'true');
    return job;
  }

  @Post('jobs/batch')
  @HttpCode(201)
  @ApiOperation({
    summary: 'Create up to 1,000 jobs at once',
    description: 'All-or-nothing in one transaction. A 400 lists the index and field of every invalid job.',
  })
  @ApiCreatedResponse({ type: JobBatchResponse })
  @ApiBadRequestResponse({ type: ProblemResponse })
  @ApiPayloadTooLargeResponse({ type: ProblemResponse })
  @ApiUnsupportedMediaTypeResponse({ type: ProblemResponse })
  async createBatch(@Body() body: CreateJobsBatchDto): Promise<JobBatchResponse> {
    return { items: await this.jobs.createBatch(body.jobs) };
  }

  @Get('jobs')
  @ApiOperation({
    summary: 'List jobs, newest first',
    description: 'Keyset paging: pass next_cursor as cursor.',
  })
  @ApiOkResponse({ type: JobListResponse })
  @ApiBadRequestResponse({ type: ProblemResponse })
  async list(@Query() query: ListJobsQuery): Promise<JobListResponse> {
    return this.jobs.list(query);
  }

  @Get('jobs/:job_id')
  @ApiOperation({ summary: 'One job with its attempt history' })
  @ApiParam({ name: 'job_id', format: 'uuid', example: '019ac9a2-5b3e-7c41-9d6a-2f0e4b8c1d23' })
  @ApiOkResponse({ type: JobDetailResponse })
  @ApiBadRequestResponse({ type: ProblemResponse, description: 'job_id is not a UUID' })
  @ApiNotFoundResponse({ type: ProblemResponse })
  async get(@Param('job_id') jobId: string): Promise<JobDetailResponse> {
    return this.jobs.get(jobId);
  }

  @Get('job-types')
  @ApiOperation({ summary: 'The registered job types and the payload each expects (JSON Schema)' })
  @ApiOkResponse({ type: [JobTypeResponse] })
  jobTypes(): JobTypeResponse[] {
    return this.jobs.jobTypes();
  }
}
