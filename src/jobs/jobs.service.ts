import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { acceptedQuickly, validateDto } from '../common/dto-validation';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { HandlerRegistry, type JobTypeDescription } from '../handlers/handler-registry';
import { MetricsService } from '../metrics/metrics.service';
import { OutboundHttpClient } from '../outbound/outbound-http.client';
import type { JobEntity } from '../persistence/job.entity';
import { JobRepository, type NewJob } from '../persistence/job.repository';
import { CreateJobDto } from './dto/create-job.dto';
import type { JobDetailResponse, JobIdResponse, JobListResponse, JobResponse } from './dto/job.response';
import type { ListJobsQuery } from './dto/list-jobs.query';
import { JobFinishWaiters } from './job-finish-waiters';
import { JobInsertBatcher } from './job-insert-batcher';
import { presentJob, presentJobDetail } from './job.presenter';
import { JobState, TERMINAL_STATES } from '../persistence/job-state';
import type { CancelJobDto, CancelMatchingJobsDto } from './dto/cancel-jobs.dto';
import {
  IdempotencyKeyReusedError,
  JobNotFoundError,
  JobStateConflictError,
  JobTypeNotFoundError,
  RequestValidationError,
  type FieldError,
} from './jobs.errors';

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;
const DEFAULT_PAGE_SIZE = 20;
const ABSOLUTE_HTTP_URL = /^https?:\/\/\S+$/i;
/** Jobs per statement of a bulk cancel: each round is a short transaction of its own. */
const CANCEL_ROUND_SIZE = 1_000;
/** A long poll reads the job again at least this often, whatever it hears. */
const LONG_POLL_LOOK_AGAIN_MS = 15_000;

export interface CreatedJob {
  job: JobResponse;
  /** True when an Idempotency-Key matched an earlier request and its job is returned instead. */
  replayed: boolean;
}

/** The API's rules: what a valid job is, defaults, idempotency, paging. It never runs a job. */
@Injectable()
export class JobsService {
  private readonly readsInFlight = new Map<string, Promise<JobDetailResponse>>();

  constructor(
    private readonly repository: JobRepository,
    private readonly inserter: JobInsertBatcher,
    private readonly registry: HandlerRegistry,
    private readonly finishWaiters: JobFinishWaiters,
    private readonly metrics: MetricsService,
    private readonly outbound: OutboundHttpClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async create(body: CreateJobDto, idempotencyKey: string | undefined): Promise<CreatedJob> {
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY_PATTERN.test(idempotencyKey)) {
      throw new RequestValidationError([
        { field: 'Idempotency-Key', message: 'must be 1 to 255 visible ASCII characters' },
      ]);
    }
    const problems = [...(await this.validatePayload(body)), ...this.validateCallbackUrl(body)];
    if (problems.length > 0) throw new RequestValidationError(problems);

    const requestHash = idempotencyKey === undefined ? null : hashRequest(body);
    const created = await this.inserter.insert(this.toNewJob(body, idempotencyKey ?? null, requestHash));
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
    const stored = await this.repository.insertJobs(await this.validBatch(items));
    // Without idempotency keys every job of the batch is inserted.
    const created = stored.filter((job): job is JobEntity => job !== null);
    this.countCreated(created.map((job) => job.jobType));
    return created.map(presentJob);
  }

  /** createBatch answering only the new jobs' ids, in request order (`Prefer: return=minimal`). */
  async createBatchIds(items: unknown[]): Promise<JobIdResponse[]> {
    const jobs = await this.validBatch(items);
    const ids = await this.repository.insertJobIds(jobs);
    const created: JobIdResponse[] = [];
    const createdTypes: string[] = [];
    for (const [index, jobId] of ids.entries()) {
      if (jobId === null) continue;
      createdTypes.push(jobs[index].jobType);
      created.push({ job_id: jobId });
    }
    this.countCreated(createdTypes);
    return created;
  }

  /** Counts a batch's created jobs once per job type: a labelled increment per job cost a lookup each. */
  private countCreated(jobTypes: string[]): void {
    const perType = new Map<string, number>();
    for (const jobType of jobTypes) perType.set(jobType, (perType.get(jobType) ?? 0) + 1);
    for (const [jobType, count] of perType) this.metrics.jobsCreated.inc({ job_type: jobType }, count);
  }

  /** The batch's jobs with their defaults, or a 400 naming the index and field of every invalid item. */
  private async validBatch(items: unknown[]): Promise<NewJob[]> {
    const problems: FieldError[] = [];
    const jobs: CreateJobDto[] = [];
    for (const [index, item] of items.entries()) {
      const accepted = this.acceptedQuickly(item);
      if (accepted) {
        jobs.push(accepted);
        continue;
      }
      const { value: job, problems: itemProblems } = await validateDto(CreateJobDto, item);
      // The payload can only be checked against a valid job type; then both kinds of problem are listed.
      if (!itemProblems.some((problem) => problem.field === 'job_type' || problem.field === 'payload')) {
        itemProblems.push(...(await this.validatePayload(job)));
      }
      if (!itemProblems.some((problem) => problem.field === 'callback_url')) {
        itemProblems.push(...this.validateCallbackUrl(job));
      }
      for (const problem of itemProblems) problems.push({ index, ...problem });
      jobs.push(job);
    }
    if (problems.length > 0) throw new RequestValidationError(problems);
    return jobs.map((job) => this.toNewJob(job, null, null));
  }

  /**
   * The item as a job when every check accepts it at once, as most items of a batch are; undefined when one
   * cannot tell, and the item goes through the full checks, which also name its problems.
   */
  private acceptedQuickly(item: unknown): CreateJobDto | undefined {
    const job = acceptedQuickly(CreateJobDto, item);
    if (!job || this.registry.payloadProblemsQuickly(job.job_type, job.payload ?? {})?.length !== 0) {
      return undefined;
    }
    return job.callback_url === undefined || this.validateCallbackUrl(job).length === 0 ? job : undefined;
  }

  /**
   * The job with its history. With `waitMs`, a long poll: answers once the job is terminal, or when the
   * time is up. A missed announcement (or a hand-written change) is caught by a look every few seconds.
   */
  async waitFor(jobId: string, waitMs: number): Promise<JobDetailResponse> {
    assertJobId(jobId);
    const deadline = Date.now() + waitMs;
    for (;;) {
      const wait = this.finishWaiters.start(jobId, Math.min(deadline - Date.now(), LONG_POLL_LOOK_AGAIN_MS));
      try {
        await this.finishWaiters.watch(jobId, deadline);
        const job = await this.readShared(jobId);
        if (TERMINAL_STATES.includes(job.state as JobState) || Date.now() >= deadline) return job;
        await wait.finished;
      } finally {
        wait.cancel();
      }
    }
  }

  /**
   * One read of the job for everyone asking at once: a thousand long polls woken by the same
   * announcement cost one query, not a thousand.
   */
  private readShared(jobId: string): Promise<JobDetailResponse> {
    let read = this.readsInFlight.get(jobId);
    if (!read) {
      read = this.get(jobId).finally(() => this.readsInFlight.delete(jobId));
      this.readsInFlight.set(jobId, read);
    }
    return read;
  }

  async get(jobId: string): Promise<JobDetailResponse> {
    assertJobId(jobId);
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

  /**
   * Cancels a job with no live attempt at once; for a live one, requests the cancel, which its worker
   * carries out. A job already cancel-requested is answered as it is; a terminal one is a conflict.
   */
  async cancel(jobId: string, body: CancelJobDto): Promise<JobDetailResponse> {
    assertJobId(jobId);
    const changed = await this.repository.cancelJob(jobId, body.reason ?? null);
    const job = await this.get(jobId);
    if (!changed && TERMINAL_STATES.includes(job.state as JobState)) {
      throw new JobStateConflictError(jobId, job.state, 'cancelled');
    }
    return job;
  }

  /** Requests the cancel of every unfinished job matching the filter, in rounds; returns how many. */
  async cancelMatching(body: CancelMatchingJobsDto): Promise<{ matched: number }> {
    if (body.job_type === undefined && body.state === undefined && body.created_before === undefined) {
      throw new RequestValidationError([
        { field: '(body)', message: 'give at least one of job_type, state and created_before' },
      ]);
    }
    const filter = {
      jobType: body.job_type,
      state: body.state,
      createdBefore: body.created_before === undefined ? undefined : new Date(body.created_before),
    };
    let matched = 0;
    // Each round skips rows locked at that instant (being claimed or finished); a later round finds them.
    for (;;) {
      const changed = await this.repository.cancelMatching(filter, body.reason ?? null, CANCEL_ROUND_SIZE);
      matched += changed;
      if (changed === 0) return { matched };
    }
  }

  /** Creates a new job repeating a failed or cancelled one; the old job does not change. */
  async retry(jobId: string): Promise<JobResponse> {
    assertJobId(jobId);
    const created = await this.repository.retryAsNewJob(jobId);
    if (created) {
      this.metrics.jobsCreated.inc({ job_type: created.jobType });
      return presentJob(created);
    }
    const found = await this.repository.findJobWithAttempts(jobId);
    if (!found) throw new JobNotFoundError(jobId);
    throw new JobStateConflictError(
      jobId,
      found.job.state,
      'retried (only failed and cancelled jobs can be)',
    );
  }

  async pause(jobType: string): Promise<JobTypeDescription & { paused: boolean }> {
    this.assertJobType(jobType);
    await this.repository.pauseJobType(jobType);
    return this.jobType(jobType);
  }

  async resume(jobType: string): Promise<JobTypeDescription & { paused: boolean }> {
    this.assertJobType(jobType);
    await this.repository.resumeJobType(jobType);
    return this.jobType(jobType);
  }

  async jobTypes(): Promise<(JobTypeDescription & { paused: boolean })[]> {
    const paused = await this.repository.pausedJobTypes();
    return this.registry.describe().map((type) => ({ ...type, paused: paused.has(type.job_type) }));
  }

  private async jobType(jobType: string): Promise<JobTypeDescription & { paused: boolean }> {
    return (await this.jobTypes()).find((type) => type.job_type === jobType)!;
  }

  private assertJobType(jobType: string): void {
    if (!this.registry.get(jobType)) throw new JobTypeNotFoundError(jobType, this.registry.types());
  }

  private async validatePayload(body: CreateJobDto): Promise<FieldError[]> {
    const payload = body.payload ?? {};
    return (
      this.registry.payloadProblemsQuickly(body.job_type, payload) ??
      this.registry.validatePayload(body.job_type, payload)
    );
  }

  /** A callback_url must be one this deployment may call: the rules of HTTP targets (HTTP_TARGET_ALLOW). */
  private validateCallbackUrl(body: CreateJobDto): FieldError[] {
    if (typeof body.callback_url !== 'string') return [];
    // Exactly as given, no blanks around it: what is stored is what the URL parser read.
    const refusal = ABSOLUTE_HTTP_URL.test(body.callback_url)
      ? this.outbound.refusalOfUrl(body.callback_url)
      : 'must be an absolute http or https URL';
    return refusal ? [{ field: 'callback_url', message: `callback_url: ${refusal}` }] : [];
  }

  private toNewJob(body: CreateJobDto, idempotencyKey: string | null, requestHash: string | null): NewJob {
    return {
      jobType: body.job_type,
      payload: body.payload ?? {},
      priority: body.priority ?? 0,
      runAt: body.run_at === undefined ? null : new Date(body.run_at),
      maxAttempts: body.max_attempts ?? this.config.defaultMaxAttempts,
      timeoutMs: body.timeout_ms ?? this.config.defaultTimeoutMs,
      idempotencyKey,
      requestHash,
      callbackUrl: body.callback_url ?? null,
    };
  }
}

function assertJobId(jobId: string): void {
  if (!UUID_PATTERN.test(jobId)) {
    throw new RequestValidationError([{ field: 'job_id', message: 'job_id must be a UUID' }]);
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
