import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import { validateDto } from '../common/dto-validation';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { HandlerRegistry, type JobTypeDescription } from '../handlers/handler-registry';
import { MetricsService } from '../metrics/metrics.service';
import type { JobEntity } from '../persistence/job.entity';
import { JobRepository, type NewJob } from '../persistence/job.repository';
import { CreateJobDto } from './dto/create-job.dto';
import type { JobDetailResponse, JobListResponse, JobResponse } from './dto/job.response';
import type { ListJobsQuery } from './dto/list-jobs.query';
import { JobInsertBatcher } from './job-insert-batcher';
import { presentJob, presentJobDetail } from './job.presenter';
import {
  IdempotencyKeyReusedError,
  JobNotFoundError,
  RequestValidationError,
  type FieldError,
} from './jobs.errors';

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;
const DEFAULT_PAGE_SIZE = 20;

export interface CreatedJob {
  job: JobResponse;
  /** True when an Idempotency-Key matched an earlier request and its job is returned instead. */
  replayed: boolean;
}

/** The API's rules: what a valid job is, defaults, idempotency, paging. It never runs a job. */
@Injectable()
export class JobsService {
  constructor(
    private readonly repository: JobRepository,
    private readonly inserter: JobInsertBatcher,
    private readonly registry: HandlerRegistry,
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async create(body: CreateJobDto, idempotencyKey: string | undefined): Promise<CreatedJob> {
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY_PATTERN.test(idempotencyKey)) {
      throw new RequestValidationError([
        { field: 'Idempotency-Key', message: 'must be 1 to 255 visible ASCII characters' },
      ]);
    }
    const problems = await this.validatePayload(body);
    if (problems.length > 0) throw new RequestValidationError(problems);

    const requestHash = idempotencyKey === undefined ? null : hashRequest(body);
    const [created] = await this.repository.insertJobs([
      this.toNewJob(body, idempotencyKey ?? null, requestHash),
    ]);
    if (created) {
      this.metrics.jobsCreated.inc({ job_type: created.jobType });
      return { job: presentJob(created), replayed: false };
    }
    // The key was taken: the insert did nothing. Same body -> the first job; another body -> refuse.
    const existing = await this.repository.findByIdempotencyKey(idempotencyKey!);
    if (!existing) throw new Error('An idempotency key conflicted but its job cannot be found');
    if (existing.requestHash !== requestHash) throw new IdempotencyKeyReusedError(existing.jobId);
    return { job: presentJob(existing), replayed: true };
  }

  /** Creates every job or none; a 400 names the index and field of every invalid item. */
  async createBatch(items: unknown[]): Promise<JobResponse[]> {
    const problems: FieldError[] = [];
    const jobs: CreateJobDto[] = [];
    for (const [index, item] of items.entries()) {
      const { value: job, problems: itemProblems } = await validateDto(CreateJobDto, item);
      // The payload can only be checked against a valid job type; then both kinds of problem are listed.
      if (!itemProblems.some((problem) => problem.field === 'job_type' || problem.field === 'payload')) {
        itemProblems.push(...(await this.validatePayload(job)));
      }
      for (const problem of itemProblems) problems.push({ index, ...problem });
      jobs.push(job);
    }
    if (problems.length > 0) throw new RequestValidationError(problems);
    const created = await this.repository.insertJobs(jobs.map((job) => this.toNewJob(job, null, null)));
    for (const job of created) this.metrics.jobsCreated.inc({ job_type: job.jobType });
    return created.map(presentJob);
  }

  async get(jobId: string): Promise<JobDetailResponse> {
    if (!UUID_PATTERN.test(jobId)) {
      throw new RequestValidationError([{ field: 'job_id', message: 'job_id must be a UUID' }]);
    }
    const found = await this.repository.findJobWithAttempts(jobId);
    if (!found) throw new JobNotFoundError(jobId);
    return presentJobDetail(found.job, found.attempts);
  }

  async list(query: ListJobsQuery): Promise<JobListResponse> {
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    const beforeJobId = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    const rows: JobEntity[] = await this.repository.listJobs({
      state: query.state,
      jobType: query.job_type,
      beforeJobId,
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    const hasMore = rows.length > limit;
    return {
      items: page.map(presentJob),
      next_cursor: hasMore ? encodeCursor(page[page.length - 1].jobId) : null,
    };
  }

  jobTypes(): JobTypeDescription[] {
    return this.registry.describe();
  }

  private validatePayload(body: CreateJobDto): Promise<FieldError[]> {
    return this.registry.validatePayload(body.job_type, body.payload ?? {});
  }

  private toNewJob(body: CreateJobDto, idempotencyKey: string | null, requestHash: string | null): NewJob {
    return {
      jobId: uuidv7(),
      jobType: body.job_type,
      payload: body.payload ?? {},
      priority: body.priority ?? 0,
      runAt: body.run_at === undefined ? null : new Date(body.run_at),
      maxAttempts: body.max_attempts ?? this.config.defaultMaxAttempts,
      timeoutMs: body.timeout_ms ?? this.config.defaultTimeoutMs,
      idempotencyKey,
      requestHash,
    };
  }
}

/** A stable hash of the request body: the same JSON with keys in any order hashes the same. */
export function hashRequest(body: CreateJobDto): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function encodeCursor(jobId: string): string {
  return Buffer.from(jobId, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string {
  const jobId = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!UUID_PATTERN.test(jobId)) {
    throw new RequestValidationError([
      { field: 'cursor', message: 'cursor is not a cursor this API returned' },
    ]);
  }
  return jobId;
}
