import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import {
  ApiAcceptedResponse,
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
import { RequireScope } from '../common/api-key.guard';
import { ProblemResponse } from '../common/problem.response';
import { CancelJobDto, CancelMatchingJobsDto } from './dto/cancel-jobs.dto';
import { CreateJobDto, CreateJobsBatchDto } from './dto/create-job.dto';
import {
  CancelMatchingResponse,
  JobBatchResponse,
  JobDetailResponse,
  JobListResponse,
  JobResponse,
  JobTypeResponse,
} from './dto/job.response';
import { GetJobQuery } from './dto/get-job.query';
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
  @RequireScope('write')
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
  @RequireScope('write')
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
  @RequireScope('read')
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
  @RequireScope('read')
  @ApiOperation({
    summary: 'One job with its attempt history',
    description:
      'With wait_ms, a long poll: the answer comes as soon as the job is completed, failed or cancelled, or ' +
      'after wait_ms with the job as it is then.',
  })
  @ApiParam({ name: 'job_id', format: 'uuid', example: '019ac9a2-5b3e-7c41-9d6a-2f0e4b8c1d23' })
  @ApiOkResponse({ type: JobDetailResponse })
  @ApiBadRequestResponse({ type: ProblemResponse, description: 'job_id is not a UUID, or a bad wait_ms' })
  @ApiNotFoundResponse({ type: ProblemResponse })
  async get(@Param('job_id') jobId: string, @Query() query: GetJobQuery): Promise<JobDetailResponse> {
    return query.wait_ms ? this.jobs.waitFor(jobId, query.wait_ms) : this.jobs.get(jobId);
  }

  @Post('jobs/cancel')
  @RequireScope('admin')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Cancel every unfinished job matching a filter',
    description:
      'At least one of job_type, state and created_before. Jobs with no live attempt are cancelled at once; ' +
      'running attempts are stopped by their workers. Done in rounds of 1,000 jobs, each its own transaction.',
  })
  @ApiAcceptedResponse({ type: CancelMatchingResponse })
  @ApiBadRequestResponse({ type: ProblemResponse, description: 'No filter field, or an invalid one' })
  async cancelMatching(@Body() body: CancelMatchingJobsDto): Promise<CancelMatchingResponse> {
    return this.jobs.cancelMatching(body);
  }

  @Post('jobs/:job_id/cancel')
  @RequireScope('admin')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Cancel a job',
    description:
      'A job with no live attempt (pending, or waiting for a retry) is cancelled at once. A running attempt ' +
      'is stopped through its AbortSignal by the worker holding it, within about a second, and the job ends ' +
      'cancelled; if the handler finishes first, the job keeps that outcome (cancel_requested_at shows the ' +
      'request). Repeating the request for a job still being stopped answers it as it is.',
  })
  @ApiParam({ name: 'job_id', format: 'uuid', example: '019ac9a2-5b3e-7c41-9d6a-2f0e4b8c1d23' })
  @ApiOkResponse({ type: JobDetailResponse })
  @ApiBadRequestResponse({ type: ProblemResponse })
  @ApiNotFoundResponse({ type: ProblemResponse })
  @ApiConflictResponse({
    type: ProblemResponse,
    description: 'The job is already completed, failed or cancelled',
  })
  async cancel(@Param('job_id') jobId: string, @Body() body: CancelJobDto): Promise<JobDetailResponse> {
    return this.jobs.cancel(jobId, body ?? {});
  }

  @Post('jobs/:job_id/retry')
  @RequireScope('admin')
  @HttpCode(201)
  @ApiOperation({
    summary: 'Run a failed or cancelled job again, as a new job',
    description:
      'Creates a job with the same job_type, payload, priority, max_attempts and timeout_ms, due now, whose ' +
      'retry_of names the old one. The old job does not change.',
  })
  @ApiParam({ name: 'job_id', format: 'uuid', example: '019ac9a2-5b3e-7c41-9d6a-2f0e4b8c1d23' })
  @ApiCreatedResponse({ type: JobResponse, description: 'The new job; Location points at it' })
  @ApiBadRequestResponse({ type: ProblemResponse })
  @ApiNotFoundResponse({ type: ProblemResponse })
  @ApiConflictResponse({ type: ProblemResponse, description: 'The job is not failed or cancelled' })
  async retry(
    @Param('job_id') jobId: string,
    @Res({ passthrough: true }) response: Response,
  ): Promise<JobResponse> {
    const job = await this.jobs.retry(jobId);
    response.location(`/jobs/${job.job_id}`);
    return job;
  }

  @Get('job-types')
  @RequireScope('read')
  @ApiOperation({
    summary: 'The registered job types, the payload each expects (JSON Schema), and whether paused',
  })
  @ApiOkResponse({ type: [JobTypeResponse] })
  async jobTypes(): Promise<JobTypeResponse[]> {
    return this.jobs.jobTypes();
  }

  @Post('job-types/:job_type/pause')
  @RequireScope('admin')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Stop workers claiming jobs of this type',
    description:
      'Takes effect at the next claim of every worker (the claim statement reads the pause). Running attempts ' +
      'finish; jobs wait, pending, until the type is resumed. Pausing a paused type changes nothing.',
  })
  @ApiParam({ name: 'job_type', example: 'email.send' })
  @ApiOkResponse({ type: JobTypeResponse })
  @ApiNotFoundResponse({ type: ProblemResponse, description: 'No such job type is registered' })
  async pause(@Param('job_type') jobType: string): Promise<JobTypeResponse> {
    return this.jobs.pause(jobType);
  }

  @Post('job-types/:job_type/resume')
  @RequireScope('admin')
  @HttpCode(200)
  @ApiOperation({ summary: 'Let workers claim jobs of this type again', description: 'Wakes every worker.' })
  @ApiParam({ name: 'job_type', example: 'email.send' })
  @ApiOkResponse({ type: JobTypeResponse })
  @ApiNotFoundResponse({ type: ProblemResponse, description: 'No such job type is registered' })
  async resume(@Param('job_type') jobType: string): Promise<JobTypeResponse> {
    return this.jobs.resume(jobType);
  }
}
