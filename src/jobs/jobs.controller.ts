import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBody,
  ApiCreatedResponse,
  ApiExtraModels,
  ApiHeader,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
  getSchemaPath,
  type HeadersObject,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import {
  ApiDatabaseUnavailable,
  ApiJsonBodyProblems,
  ApiKeyRequired,
  ApiProblemResponse,
  ApiRequireScope,
} from '../common/api-responses';
import { PREFERENCE_APPLIED_HEADER, prefersMinimalReturn, RETURN_MINIMAL } from '../common/prefer-header';
import { CancelJobDto, CancelMatchingJobsDto } from './dto/cancel-jobs.dto';
import { CreateJobDto, CreateJobsBatchDto } from './dto/create-job.dto';
import { CREATE_JOB_EXAMPLES, JOB_EXAMPLES, JOB_PROBLEMS } from './dto/job.examples';
import {
  CancelMatchingResponse,
  EXAMPLE_JOB_ID,
  JobBatchResponse,
  JobDetailResponse,
  JobIdBatchResponse,
  JobIdResponse,
  JobListResponse,
  JobResponse,
  JobTypeResponse,
} from './dto/job.response';
import { GetJobQuery } from './dto/get-job.query';
import { ListJobsQuery } from './dto/list-jobs.query';
import { JobsService } from './jobs.service';

const LOCATION_HEADER: HeadersObject = {
  Location: {
    description: 'The path of the job: /jobs/{job_id}',
    required: true,
    schema: { type: 'string', example: `/jobs/${EXAMPLE_JOB_ID}` },
  },
};

const PREFER_MINIMAL = {
  name: 'Prefer',
  required: false,
  description:
    "return=minimal: the answer gives each created job's id only (RFC 7240). The jobs are created the same " +
    'way; the answer to a batch of 1,000 plain jobs is about an eighth of the bytes.',
  schema: { type: 'string', example: RETURN_MINIMAL },
} as const;

const PREFERENCE_APPLIED: HeadersObject = {
  [PREFERENCE_APPLIED_HEADER]: {
    description: 'return=minimal when the request asked for it: the answer holds the ids only',
    required: false,
    schema: { type: 'string', enum: [RETURN_MINIMAL] },
  },
};

/** A 201 body: the whole job(s), or with Prefer: return=minimal the id(s) alone. */
const fullOrMinimal = (full: new () => object, minimal: new () => object) => ({
  anyOf: [{ $ref: getSchemaPath(full) }, { $ref: getSchemaPath(minimal) }],
});

const JOB_ID_PARAM = { name: 'job_id', format: 'uuid', example: EXAMPLE_JOB_ID } as const;
/** These endpoints take no body; one that is sent must still be JSON, as for every endpoint. */
const NO_BODY = 'a body that is not JSON (none is needed)';
const JOB_NOT_FOUND = { job_not_found: JOB_PROBLEMS.jobNotFound };
const BAD_JOB_ID = { invalid_job_id: JOB_PROBLEMS.invalidJobId };

@ApiTags('jobs')
@ApiExtraModels(JobResponse, JobIdResponse, JobBatchResponse, JobIdBatchResponse)
@ApiKeyRequired()
@ApiDatabaseUnavailable()
@Controller()
export class JobsController {
  constructor(private readonly jobs: JobsService) {}

  @Post('jobs')
  @ApiRequireScope('write')
  @HttpCode(201)
  @ApiOperation({
    summary: 'Create a job',
    description:
      'Stores the job and returns it; a worker runs it once it is due. Without an Idempotency-Key two identical ' +
      'requests create two jobs. With one, repeating the request returns the first job (header ' +
      'Idempotent-Replayed: true) and reusing the key with another body is refused with 409.',
  })
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: '1-255 visible ASCII characters' })
  @ApiHeader(PREFER_MINIMAL)
  @ApiBody({ type: CreateJobDto, examples: CREATE_JOB_EXAMPLES })
  @ApiCreatedResponse({
    schema: fullOrMinimal(JobResponse, JobIdResponse),
    description: 'The job is committed; Location points at it. A replay answers the first job again.',
    headers: {
      ...LOCATION_HEADER,
      ...PREFERENCE_APPLIED,
      'Idempotent-Replayed': {
        description:
          'Present, and true, when an Idempotency-Key repeated an earlier request: no job was created',
        required: false,
        schema: { type: 'string', enum: ['true'] },
      },
    },
    examples: JOB_EXAMPLES.created,
  })
  @ApiJsonBodyProblems('Invalid body or Idempotency-Key, unknown job_type, or a payload its type refuses', {
    invalid_payload: JOB_PROBLEMS.invalidPayload,
    unknown_job_type: JOB_PROBLEMS.unknownJobType,
  })
  @ApiProblemResponse(409, 'The Idempotency-Key was used before with a different body', {
    idempotency_key_reused: JOB_PROBLEMS.idempotencyKeyReused,
  })
  async create(
    @Body() body: CreateJobDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Headers('prefer') prefer: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobResponse | JobIdResponse> {
    const { job, replayed } = await this.jobs.create(body, idempotencyKey);
    reply.header('Location', `/jobs/${job.job_id}`);
    if (replayed) reply.header('Idempotent-Replayed', 'true');
    if (!prefersMinimalReturn(prefer)) return job;
    reply.header(PREFERENCE_APPLIED_HEADER, RETURN_MINIMAL);
    return { job_id: job.job_id };
  }

  @Post('jobs/batch')
  @ApiRequireScope('write')
  @HttpCode(201)
  @ApiOperation({
    summary: 'Create up to 1,000 jobs at once',
    description: 'All-or-nothing in one transaction. A 400 lists the index and field of every invalid job.',
  })
  @ApiHeader(PREFER_MINIMAL)
  @ApiCreatedResponse({
    schema: fullOrMinimal(JobBatchResponse, JobIdBatchResponse),
    headers: PREFERENCE_APPLIED,
    examples: JOB_EXAMPLES.batch,
  })
  @ApiJsonBodyProblems('Invalid jobs: each problem names the index of its job', {
    invalid_items: JOB_PROBLEMS.invalidBatchItem,
  })
  async createBatch(
    @Body() body: CreateJobsBatchDto,
    @Headers('prefer') prefer: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobBatchResponse | JobIdBatchResponse> {
    if (!prefersMinimalReturn(prefer)) return { items: await this.jobs.createBatch(body.jobs) };
    const items = await this.jobs.createBatchIds(body.jobs);
    reply.header(PREFERENCE_APPLIED_HEADER, RETURN_MINIMAL);
    return { items };
  }

  @Get('jobs')
  @ApiRequireScope('read')
  @ApiOperation({
    summary: 'List jobs, newest first',
    description: 'Keyset paging: pass next_cursor as cursor.',
  })
  @ApiOkResponse({ type: JobListResponse, examples: JOB_EXAMPLES.list })
  @ApiProblemResponse(400, 'A query value is invalid, or the cursor is not one this API returned', {
    invalid_query: JOB_PROBLEMS.invalidQuery,
  })
  async list(@Query() query: ListJobsQuery): Promise<JobListResponse> {
    return this.jobs.list(query);
  }

  @Get('jobs/:job_id')
  @ApiRequireScope('read')
  @ApiOperation({
    summary: 'One job with its attempt history',
    description:
      'With wait_ms, a long poll: the answer comes as soon as the job is completed, failed or cancelled, or ' +
      'after wait_ms with the job as it is then.',
  })
  @ApiParam(JOB_ID_PARAM)
  @ApiOkResponse({ type: JobDetailResponse, examples: JOB_EXAMPLES.detail })
  @ApiProblemResponse(400, 'job_id is not a UUID, or a bad wait_ms', {
    ...BAD_JOB_ID,
    invalid_wait_ms: JOB_PROBLEMS.invalidWait,
  })
  @ApiProblemResponse(404, 'No job has this id', JOB_NOT_FOUND)
  async get(@Param('job_id') jobId: string, @Query() query: GetJobQuery): Promise<JobDetailResponse> {
    return query.wait_ms ? this.jobs.waitFor(jobId, query.wait_ms) : this.jobs.get(jobId);
  }

  @Post('jobs/cancel')
  @ApiRequireScope('admin')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Cancel every unfinished job matching a filter',
    description:
      'At least one of job_type, state and created_before. Jobs with no live attempt are cancelled at once; ' +
      'running attempts are stopped by their workers. Done in rounds of 1,000 jobs, each its own transaction.',
  })
  @ApiBody({
    type: CancelMatchingJobsDto,
    examples: {
      pending_of_a_type: {
        summary: 'Every pending job of one type',
        value: { job_type: 'sleep', state: 'pending', reason: 'Incident 4711' },
      },
    },
  })
  @ApiAcceptedResponse({ type: CancelMatchingResponse })
  @ApiJsonBodyProblems('No filter field, or an invalid one', { no_filter: JOB_PROBLEMS.noCancelFilter })
  async cancelMatching(@Body() body: CancelMatchingJobsDto): Promise<CancelMatchingResponse> {
    return this.jobs.cancelMatching(body);
  }

  @Post('jobs/:job_id/cancel')
  @ApiRequireScope('admin')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Cancel a job',
    description:
      'A job with no live attempt (pending, or waiting for a retry) is cancelled at once. A running attempt ' +
      'is stopped through its AbortSignal by the worker holding it, within about a second, and the job ends ' +
      'cancelled; if the handler finishes first, the job keeps that outcome (cancel_requested_at shows the ' +
      'request). Repeating the request for a job still being stopped answers it as it is.',
  })
  @ApiParam(JOB_ID_PARAM)
  @ApiBody({
    type: CancelJobDto,
    required: false,
    examples: { with_reason: { summary: 'With a reason', value: { reason: 'Customer withdrew the order' } } },
  })
  @ApiOkResponse({ type: JobDetailResponse, examples: JOB_EXAMPLES.cancel })
  @ApiJsonBodyProblems('job_id is not a UUID, or an invalid body', {
    ...BAD_JOB_ID,
    reason_too_long: JOB_PROBLEMS.reasonTooLong,
  })
  @ApiProblemResponse(404, 'No job has this id', JOB_NOT_FOUND)
  @ApiProblemResponse(409, 'The job is already completed, failed or cancelled', {
    job_state_conflict: JOB_PROBLEMS.alreadyFinished,
  })
  async cancel(@Param('job_id') jobId: string, @Body() body: CancelJobDto): Promise<JobDetailResponse> {
    return this.jobs.cancel(jobId, body ?? {});
  }

  @Post('jobs/:job_id/retry')
  @ApiRequireScope('admin')
  @HttpCode(201)
  @ApiOperation({
    summary: 'Run a failed or cancelled job again, as a new job',
    description:
      'Creates a job with the same job_type, payload, priority, max_attempts and timeout_ms, due now, whose ' +
      'retry_of names the old one. The old job does not change.',
  })
  @ApiParam(JOB_ID_PARAM)
  @ApiCreatedResponse({
    type: JobResponse,
    description: 'The new job; Location points at it',
    headers: LOCATION_HEADER,
    examples: JOB_EXAMPLES.retry,
  })
  @ApiJsonBodyProblems(`job_id is not a UUID, or ${NO_BODY}`, BAD_JOB_ID)
  @ApiProblemResponse(404, 'No job has this id', JOB_NOT_FOUND)
  @ApiProblemResponse(409, 'The job is not failed or cancelled', {
    job_state_conflict: JOB_PROBLEMS.notRetryable,
  })
  async retry(
    @Param('job_id') jobId: string,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobResponse> {
    const job = await this.jobs.retry(jobId);
    reply.header('Location', `/jobs/${job.job_id}`);
    return job;
  }

  @Get('job-types')
  @ApiRequireScope('read')
  @ApiOperation({
    summary: 'The registered job types, the payload each expects (JSON Schema), and whether paused',
  })
  @ApiOkResponse({ type: [JobTypeResponse] })
  async jobTypes(): Promise<JobTypeResponse[]> {
    return this.jobs.jobTypes();
  }

  @Post('job-types/:job_type/pause')
  @ApiRequireScope('admin')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Stop workers claiming jobs of this type',
    description:
      'Takes effect at the next claim of every worker (the claim statement reads the pause). Running attempts ' +
      'finish; jobs wait, pending, until the type is resumed. Pausing a paused type changes nothing.',
  })
  @ApiParam({ name: 'job_type', example: 'email.send' })
  @ApiOkResponse({ type: JobTypeResponse })
  @ApiJsonBodyProblems(NO_BODY, {})
  @ApiProblemResponse(404, 'No such job type is registered', {
    job_type_not_found: JOB_PROBLEMS.jobTypeNotFound,
  })
  async pause(@Param('job_type') jobType: string): Promise<JobTypeResponse> {
    return this.jobs.pause(jobType);
  }

  @Post('job-types/:job_type/resume')
  @ApiRequireScope('admin')
  @HttpCode(200)
  @ApiOperation({ summary: 'Let workers claim jobs of this type again', description: 'Wakes every worker.' })
  @ApiParam({ name: 'job_type', example: 'email.send' })
  @ApiOkResponse({ type: JobTypeResponse })
  @ApiJsonBodyProblems(NO_BODY, {})
  @ApiProblemResponse(404, 'No such job type is registered', {
    job_type_not_found: JOB_PROBLEMS.jobTypeNotFound,
  })
  async resume(@Param('job_type') jobType: string): Promise<JobTypeResponse> {
    return this.jobs.resume(jobType);
  }
}
