import { Inject, Injectable } from '@nestjs/common';
import { randomFillSync } from 'node:crypto';
import { types, type Pool, type PoolClient, type QueryResultRow } from 'pg';
import type { DataSource, SelectQueryBuilder } from 'typeorm';
import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import * as CALLBACK_SQL from './callback.sql';
import { CallbackDeliveryEntity, type CallbackDeliveryState } from './callback-delivery.entity';
import { JobAttemptEntity } from './job-attempt.entity';
import type { ClosingOutcome, JobErrorBody } from './job-state';
import { JobState } from './job-state';
import { JobEntity } from './job.entity';
import * as SQL from './job.sql';
import { JOBS_DATABASE, JobsDatabase } from './jobs-database';
import { DatabaseUnavailableError, isConnectionError } from './persistence.errors';

/** A job to create; the database gives it its job_id. */
export interface NewJob {
  jobType: string;
  payload: Record<string, unknown>;
  priority: number;
  runAt: Date | null;
  maxAttempts: number;
  timeoutMs: number;
  idempotencyKey: string | null;
  requestHash: string | null;
  callbackUrl: string | null;
}

/** A callback delivery a worker has just claimed: attempt `attempt` is its own (fencing token). */
export interface ClaimedCallback {
  jobId: string;
  url: string;
  attempt: number;
  createdAt: Date;
}

/** What became of one delivery attempt: delivered, given up (`failed`), or due again after `retryInMs`. */
export type CallbackAttemptOutcome =
  | { state: 'delivered'; status: number }
  | { state: 'failed'; status: number | null; error: string }
  | { state: 'retry'; retryInMs: number; status: number | null; error: string };

/** An attempt a worker has just opened: everything it needs to run and to write back (fencing token). */
export interface ClaimedJob {
  jobId: string;
  jobType: string;
  payload: Record<string, unknown>;
  attempt: number;
  failedAttempts: number;
  maxAttempts: number;
  timeoutMs: number;
  /** How long the job had been due when this attempt started, in ms on the database clock. */
  claimLatencyMs: number;
}

export interface AttemptRef {
  jobId: string;
  attempt: number;
}

/** A live attempt whose lease was renewed; `cancelRequested` when an operator asked to cancel its job. */
export interface RenewedAttempt extends AttemptRef {
  cancelRequested: boolean;
}

/** Which unfinished jobs a bulk cancel applies to; an absent field matches any. */
export interface CancelFilter {
  jobType?: string;
  state?: JobState.Pending | JobState.Running;
  createdBefore?: Date;
}

export interface Completion extends AttemptRef {
  /** The result, already serialised (JSON text). */
  resultJson: string;
}

export interface RescuedAttempt extends AttemptRef {
  jobType: string;
  workerId: string;
  state: JobState;
}

/** One batch of a rescue sweep: the leases it closed, and the jobs whose lease the database refused to close. */
export interface RescueBatch {
  rescued: RescuedAttempt[];
  refused: { jobId: string; reason: string }[];
}

export interface ListJobsQuery {
  state?: JobState;
  jobType?: string;
  /** Keyset cursor: only jobs with a smaller job_id (older) than this. */
  beforeJobId?: string;
  limit: number;
}

export interface JobWithAttempts {
  job: JobEntity;
  attempts: JobAttemptEntity[];
}

type RawRow = Record<string, unknown>;

function toRescuedAttempt(row: RawRow): RescuedAttempt {
  return {
    jobId: row.job_id as string,
    jobType: row.job_type as string,
    attempt: row.attempt as number,
    workerId: row.worker_id as string,
    state: row.state as JobState,
  };
}

/** The states job_state_listing holds (see listJobs). */
const LISTED_STATES: readonly JobState[] = [JobState.Failed, JobState.Cancelled];

/** The driver's own parser for timestamptz text, the one that reads the job's columns. */
const parseTimestamp = types.getTypeParser(types.builtins.TIMESTAMPTZ) as (text: string) => Date;

/**
 * A job just inserted: what the database decided (its id, its payload in stored form, its created_at, and
 * its run_at when none was given: the same now()), the rest as sent, and the values the database allows a
 * new job only (see NEW_JOB_RETURNS).
 */
function newJobEntity(
  job: NewJob,
  jobId: string,
  payload: Record<string, unknown>,
  runAt: Date,
  createdAt: Date,
): JobEntity {
  return Object.assign(new JobEntity(), {
    jobId,
    jobType: job.jobType,
    state: JobState.Pending,
    payload,
    result: null,
    error: null,
    priority: job.priority,
    runAt,
    availableAt: new Date(runAt.getTime()),
    attempts: 0,
    failedAttempts: 0,
    maxAttempts: job.maxAttempts,
    timeoutMs: job.timeoutMs,
    workerId: null,
    attemptStartedAt: null,
    leaseExpiresAt: null,
    idempotencyKey: job.idempotencyKey,
    requestHash: job.requestHash,
    createdAt,
    updatedAt: new Date(createdAt.getTime()),
    startedAt: null,
    finishedAt: null,
    cancelRequestedAt: null,
    cancelReason: null,
    retryOf: null,
    callbackUrl: job.callbackUrl,
  } satisfies Omit<JobEntity, 'callbackDelivery'>);
}

/**
 * Every query the service runs. Each method runs one statement (or one transaction) and decides
 * nothing; connection failures surface as DatabaseUnavailableError.
 */
@Injectable()
export class JobRepository {
  private readonly dataSource: DataSource;
  private jobColumns: ColumnMetadata[] | undefined;

  constructor(@Inject(JOBS_DATABASE) private readonly database: JobsDatabase) {
    this.dataSource = database.dataSource;
  }

  /**
   * Inserts all jobs atomically. The answer has one entry per input job, in input order: the stored row,
   * or null where the job's idempotency key was already taken (nothing was inserted for it).
   */
  async insertJobs(jobs: NewJob[]): Promise<(JobEntity | null)[]> {
    if (jobs.length === 1) return [await this.insertJob(jobs[0])];
    const [row] = await this.insertMany('insert-jobs', SQL.INSERT_JOBS, jobs);
    const stored: (JobEntity | null)[] = jobs.map(() => null);
    const createdAt = row.created_at as Date;
    for (const [ord, jobId, payload] of row.jobs as [number, string, Record<string, unknown>][]) {
      const job = jobs[ord - 1];
      // run_at as sent is exact: a millisecond time, which the database holds to the microsecond.
      const runAt = new Date((job.runAt ?? createdAt).getTime());
      stored[ord - 1] = newJobEntity(job, jobId, payload, runAt, new Date(createdAt.getTime()));
    }
    return stored;
  }

  /** insertJobs answering only the new jobs' ids: null where the idempotency key was already taken. */
  async insertJobIds(jobs: NewJob[]): Promise<(string | null)[]> {
    if (jobs.length === 1) return [(await this.insertJob(jobs[0]))?.jobId ?? null];
    const [row] = await this.insertMany('insert-job-ids', SQL.INSERT_JOB_IDS, jobs);
    const ids: (string | null)[] = jobs.map(() => null);
    for (const [ord, jobId] of row.ids as [number, string][]) ids[ord - 1] = jobId;
    return ids;
  }

  private insertMany(name: string, sql: string, jobs: NewJob[]): Promise<RawRow[]> {
    return this.prepared(
      name,
      sql,
      [
        // A field left out reads as NULL; sent as null, it about doubled the text of a plain job.
        JSON.stringify(
          jobs.map((job) => ({
            job_type: job.jobType,
            payload: job.payload,
            priority: job.priority,
            run_at: job.runAt?.toISOString(),
            max_attempts: job.maxAttempts,
            timeout_ms: job.timeoutMs,
            idempotency_key: job.idempotencyKey ?? undefined,
            request_hash: job.requestHash ?? undefined,
            callback_url: job.callbackUrl ?? undefined,
          })),
        ),
        // The random bits of the jobs' ids: one call to the cryptographic generator for the statement,
        // instead of one per job in the database (see job_id_v7(bytea)).
        randomFillSync(Buffer.allocUnsafe(8 * jobs.length)),
      ],
      this.pool,
    );
  }

  private async insertJob(job: NewJob): Promise<JobEntity | null> {
    const [row] = await this.prepared(
      'insert-job',
      SQL.INSERT_JOB,
      [
        job.jobType,
        JSON.stringify(job.payload),
        job.priority,
        job.runAt?.toISOString() ?? null,
        job.maxAttempts,
        job.timeoutMs,
        job.idempotencyKey,
        job.requestHash,
        job.callbackUrl,
      ],
      this.pool,
    );
    return row
      ? newJobEntity(
          job,
          row.job_id as string,
          row.payload as Record<string, unknown>,
          row.run_at as Date,
          row.created_at as Date,
        )
      : null;
  }

  /** The job holding idempotency key `key`, with its callback delivery when it has one (same statement). */
  async findByIdempotencyKey(key: string): Promise<JobEntity | null> {
    return this.guard(() => this.jobsWithDeliveries().where('job.idempotency_key = :key', { key }).getOne());
  }

  /**
   * Asks the database to announce job `jobId`'s finish for the next `ms` milliseconds. Once this returns,
   * a transition that was under way has committed, and any later one will be announced.
   */
  async watchJob(jobId: string, ms: number): Promise<void> {
    await this.prepared('watch-job', SQL.WATCH_JOB, [jobId, Math.ceil(ms)]);
  }

  async forgetExpiredWatches(): Promise<void> {
    await this.query(SQL.FORGET_EXPIRED_WATCHES, []);
  }

  /** One job and its closed attempt records (oldest first), read from one snapshot; null if no such job. */
  async findJobWithAttempts(jobId: string): Promise<JobWithAttempts | null> {
    const [row] = await this.prepared('find-job-with-attempts', SQL.FIND_JOB_WITH_ATTEMPTS, [jobId]);
    if (!row) return null;
    const records = row.attempt_records as RawRow[];
    const job = this.toJobEntity(row);
    const delivery = row.callback_delivery as { url: string; state: string; attempts: number } | null;
    job.callbackDelivery = delivery
      ? Object.assign(new CallbackDeliveryEntity(), {
          jobId,
          url: delivery.url,
          state: delivery.state as CallbackDeliveryState,
          attempts: delivery.attempts,
        })
      : null;
    return {
      job,
      attempts: records.map((record) =>
        Object.assign(new JobAttemptEntity(), {
          jobId,
          attempt: record.attempt as number,
          workerId: record.worker_id as string,
          startedAt: parseTimestamp(record.started_at as string),
          finishedAt: parseTimestamp(record.finished_at as string),
          outcome: record.outcome as ClosingOutcome,
          error: record.error as JobErrorBody,
        }),
      ),
    };
  }

  /**
   * One page of jobs, newest first (job_id is a UUIDv7, so id order is creation order), each with its
   * callback delivery when it has one (same statement). Failed and cancelled jobs are found through
   * job_state_listing, a type's jobs through job_type_listing (when the state is not one of those), newest
   * first along the listing's primary key, each then read by its own id; the cursor bounds that walk too,
   * since PostgreSQL carries equalities across a join but not ranges. Other states have no listing: their
   * jobs are the newest (pending, running) or most of the table (completed), and the walk down the primary
   * key finds a page soon.
   */
  async listJobs(query: ListJobsQuery): Promise<JobEntity[]> {
    return this.guard(() => {
      const builder = this.jobsWithDeliveries().setParameters({
        state: query.state,
        jobType: query.jobType,
        before: query.beforeJobId,
      });
      const byState = query.state !== undefined && LISTED_STATES.includes(query.state);
      if (byState) {
        builder.innerJoin(
          'job_state_listing',
          'listing',
          'listing.job_id = job.job_id AND listing.state = :state',
        );
        if (query.jobType) builder.andWhere('job.job_type = :jobType');
      } else if (query.jobType) {
        builder.innerJoin(
          'job_type_listing',
          'listing',
          'listing.job_id = job.job_id AND listing.job_type = :jobType',
        );
      }
      if (query.beforeJobId && (byState || query.jobType)) builder.andWhere('listing.job_id < :before');
      if (query.state) builder.andWhere('job.state = :state');
      if (query.beforeJobId) builder.andWhere('job.job_id < :before');
      return builder.orderBy('job.job_id', 'DESC').limit(query.limit).getMany();
    });
  }

  /**
   * Atomically opens an attempt on up to `limit` due jobs of `jobTypes` for this worker; never hands one
   * job to two claimers, and never a job of a type outside `jobTypes`.
   */
  async claimDue(
    limit: number,
    workerId: string,
    leaseMs: number,
    jobTypes: readonly string[],
  ): Promise<ClaimedJob[]> {
    // The statement names its columns as ClaimedJob's fields (see CLAIMED_COLUMNS).
    return this.prepared<ClaimedJob>('claim-due', SQL.CLAIM_DUE, [limit, workerId, leaseMs, jobTypes]);
  }

  /**
   * Extends the leases this worker still holds; the answer lists exactly those (others were rescued).
   * Runs on the lease pool, never queued behind job writes waiting for a connection of the main pool.
   */
  async renewLeases(workerId: string, attempts: AttemptRef[], leaseMs: number): Promise<RenewedAttempt[]> {
    if (attempts.length === 0) return [];
    const live = JSON.stringify(attempts.map((a) => ({ job_id: a.jobId, attempt: a.attempt })));
    const rows = await this.prepared(
      'renew-leases',
      SQL.RENEW_LEASES,
      [workerId, live, leaseMs],
      this.database.leasePool,
    );
    return rows.map((row) => ({
      jobId: row.job_id as string,
      attempt: row.attempt as number,
      cancelRequested: row.cancel_requested as boolean,
    }));
  }

  /** Completes the given attempts (each fenced on its own); returns the job ids actually completed. */
  async markCompleted(workerId: string, completions: Completion[]): Promise<Set<string>> {
    if (completions.length === 0) return new Set();
    // The results are JSON text already: embed them rather than parse and serialise them again.
    const done = `[${completions
      .map((c) => `{"job_id":${JSON.stringify(c.jobId)},"attempt":${c.attempt},"result":${c.resultJson}}`)
      .join(',')}]`;
    const rows = await this.prepared('mark-completed', SQL.MARK_COMPLETED, [workerId, done]);
    return new Set(rows.map((row) => row.job_id as string));
  }

  /** Closes a live attempt and schedules the next one after `delayMs`. False: the attempt was no longer ours. */
  async scheduleRetry(
    workerId: string,
    ref: AttemptRef,
    outcome: ClosingOutcome,
    error: JobErrorBody,
    delayMs: number,
  ): Promise<boolean> {
    const rows = await this.prepared('schedule-retry', SQL.SCHEDULE_RETRY, [
      ref.jobId,
      ref.attempt,
      workerId,
      outcome,
      JSON.stringify(error),
      Math.max(0, Math.round(delayMs)),
    ]);
    return rows.length === 1;
  }

  /** Closes a live attempt and fails the job with `error`. False: the attempt was no longer ours. */
  async markFailed(
    workerId: string,
    ref: AttemptRef,
    outcome: ClosingOutcome,
    error: JobErrorBody,
  ): Promise<boolean> {
    const rows = await this.prepared('mark-failed', SQL.MARK_FAILED, [
      ref.jobId,
      ref.attempt,
      workerId,
      outcome,
      JSON.stringify(error),
    ]);
    return rows.length === 1;
  }

  /**
   * Closes a live attempt as `cancelled` and cancels its job, when a cancel was requested for it. False:
   * the attempt was no longer ours (or no cancel was requested).
   */
  async markCancelled(workerId: string, ref: AttemptRef): Promise<boolean> {
    const rows = await this.prepared('mark-cancelled', SQL.MARK_CANCELLED, [
      ref.jobId,
      ref.attempt,
      workerId,
    ]);
    return rows.length === 1;
  }

  /**
   * Requests the cancel of one job (see CANCEL_JOB). Returns the job as changed, or null when nothing
   * changed: the job is unknown, terminal, or its cancel was already requested.
   */
  async cancelJob(jobId: string, reason: string | null): Promise<JobEntity | null> {
    const [row] = await this.query(SQL.CANCEL_JOB, [reason, jobId]);
    return row ? this.toJobEntity(row) : null;
  }

  /** Requests the cancel of up to `limit` unfinished jobs matching `filter`; returns how many it changed. */
  async cancelMatching(filter: CancelFilter, reason: string | null, limit: number): Promise<number> {
    const rows = await this.query(SQL.CANCEL_MATCHING, [
      reason,
      filter.jobType ?? null,
      filter.state ?? null,
      filter.createdBefore ?? null,
      limit,
    ]);
    return rows.length;
  }

  /** Creates a new job repeating a failed or cancelled one; null when that job is in any other state. */
  async retryAsNewJob(jobId: string): Promise<JobEntity | null> {
    const [row] = await this.query(SQL.RETRY_AS_NEW_JOB, [jobId]);
    return row ? this.toJobEntity(row) : null;
  }

  /**
   * Atomically opens an attempt on up to `limit` due callback deliveries for this worker, leased for
   * `leaseMs`; never hands one delivery to two claimers while the lease holds.
   */
  async claimDueCallbacks(limit: number, workerId: string, leaseMs: number): Promise<ClaimedCallback[]> {
    const rows = await this.prepared('claim-due-callbacks', CALLBACK_SQL.CLAIM_DUE_CALLBACKS, [
      limit,
      workerId,
      leaseMs,
    ]);
    return rows.map((row) => ({
      jobId: row.job_id as string,
      url: row.url as string,
      attempt: row.attempts as number,
      createdAt: row.created_at as Date,
    }));
  }

  /**
   * Records the outcome of this worker's delivery attempt. False: the attempt was no longer ours (its
   * lease ran out and another worker claimed the delivery), and nothing changed.
   */
  async recordCallbackAttempt(
    workerId: string,
    callback: ClaimedCallback,
    outcome: CallbackAttemptOutcome,
  ): Promise<boolean> {
    const rows = await this.prepared('record-callback-attempt', CALLBACK_SQL.RECORD_CALLBACK_ATTEMPT, [
      callback.jobId,
      callback.attempt,
      workerId,
      outcome.state,
      outcome.state === 'retry' ? Math.max(0, Math.round(outcome.retryInMs)) : 0,
      outcome.status,
      outcome.state === 'delivered' ? null : outcome.error,
    ]);
    return rows.length === 1;
  }

  /** Stops every worker claiming jobs of `jobType` from its next claim on (idempotent). */
  async pauseJobType(jobType: string): Promise<void> {
    await this.query(SQL.PAUSE_JOB_TYPE, [jobType]);
  }

  /** Lets workers claim jobs of `jobType` again (idempotent). */
  async resumeJobType(jobType: string): Promise<void> {
    await this.query(SQL.RESUME_JOB_TYPE, [jobType]);
  }

  async pausedJobTypes(): Promise<Set<string>> {
    const rows = await this.query(SQL.LIST_PAUSED_JOB_TYPES, []);
    return new Set(rows.map((row) => row.job_type as string));
  }

  /**
   * Closes up to `limit` expired leases as lost, passing over the jobs in `skip`, unless another sweep
   * started within `minIntervalMs` (then it returns null at once). Safe to call from every worker: one
   * sweep runs at a time. If the database refuses the batch, each lease is closed on its own, so one row
   * that cannot be closed is reported in `refused` and never holds back the others.
   */
  async rescueExpiredLeases(
    limit: number,
    minIntervalMs = 0,
    skip: string[] = [],
  ): Promise<RescueBatch | null> {
    const error = JSON.stringify({ code: 'lease_expired', message: 'The worker stopped renewing its lease' });
    return this.transaction(async (client) => {
      const { rows: turn } = await client.query<{ acquired: boolean }>(SQL.TAKE_SWEEP_TURN, [minIntervalMs]);
      if (turn.length === 0) return null;
      const batch: RescueBatch = { rescued: [], refused: [] };
      const { rows: check } = await client.query<{ may_have_expired: boolean }>(SQL.LEASE_MAY_HAVE_EXPIRED);
      if (!check[0].may_have_expired) {
        await client.query(SQL.DROP_PAST_LEASE_EXPIRIES);
        return batch;
      }
      await client.query('SAVEPOINT batch');
      try {
        const { rows } = await client.query<RawRow>(SQL.RESCUE_EXPIRED_LEASES, [limit, error, skip]);
        batch.rescued = rows.map(toRescuedAttempt);
      } catch (failure) {
        if (isConnectionError(failure)) throw failure;
        await client.query('ROLLBACK TO SAVEPOINT batch');
        const { rows: expired } = await client.query<RawRow>(SQL.FIND_EXPIRED_LEASES, [skip, limit]);
        for (const { job_id: jobId } of expired) {
          await client.query('SAVEPOINT one');
          try {
            const { rows } = await client.query<RawRow>(SQL.RESCUE_EXPIRED_LEASE_OF_JOB, [1, error, jobId]);
            batch.rescued.push(...rows.map(toRescuedAttempt));
            await client.query('RELEASE SAVEPOINT one');
          } catch (refusal) {
            if (isConnectionError(refusal)) throw refusal;
            await client.query('ROLLBACK TO SAVEPOINT one');
            batch.refused.push({ jobId: jobId as string, reason: (refusal as Error).message });
          }
        }
      }
      return batch;
    });
  }

  /** Records that a sweep went through every expired lease it could close. */
  async markSweepCompleted(): Promise<void> {
    await this.query(SQL.MARK_SWEEP_COMPLETED, []);
  }

  /** Milliseconds since a sweep last completed, on the database clock; null if none ever did. */
  async sweepCompletedAgeMs(): Promise<number | null> {
    const [row] = await this.query(SQL.SWEEP_COMPLETED_AGE, []);
    return row?.age_ms === null || row?.age_ms === undefined ? null : Number(row.age_ms);
  }

  /** How many due jobs wait for each job type outside `jobTypes` (claimable by nobody who lacks them). */
  async countDueWithoutHandler(jobTypes: readonly string[]): Promise<Map<string, number>> {
    const rows = await this.query(SQL.COUNT_DUE_WITHOUT_HANDLER, [jobTypes]);
    return new Map(rows.map((row) => [row.job_type as string, row.due as number]));
  }

  /**
   * Queue depth per job type and state, recent finishes, paused types and the oldest due job (see
   * READ_JOB_STATS). Reads counters the database keeps, never the job rows, so it costs the same at any
   * table size. One statement: every figure comes from one snapshot.
   */
  async readJobStats(): Promise<JobStats> {
    const [row] = await this.query(SQL.READ_JOB_STATS, []);
    const counts = row.counts as { job_type: string; state: JobState; jobs: number; live: number }[];
    return {
      counts: counts.map((count) => ({
        jobType: count.job_type,
        state: count.state,
        jobs: Number(count.jobs),
        live: Number(count.live),
      })),
      finishedLastMinute: Object.fromEntries(
        Object.entries(row.finished as Record<string, number>).map(([state, jobs]) => [state, Number(jobs)]),
      ),
      pausedJobTypes: row.paused as string[],
      oldestDueAgeMs: row.oldest_due_age_ms === null ? null : Math.max(0, Number(row.oldest_due_age_ms)),
    };
  }

  /**
   * Jobs finished per minute and terminal state over the last `minutes` minutes, oldest first, the
   * current minute last (see READ_FINISHES_PER_MINUTE): reads the per-second counters, never the jobs.
   */
  async readFinishesPerMinute(minutes: number): Promise<FinishesInMinute[]> {
    const rows = await this.query(SQL.READ_FINISHES_PER_MINUTE, [minutes]);
    return rows.map((row) => ({
      minute: row.minute as Date,
      completed: Number(row.completed),
      failed: Number(row.failed),
      cancelled: Number(row.cancelled),
    }));
  }

  /**
   * One batch of the retention task, in one transaction: unless another worker took the turn within
   * `minIntervalMs` (then it returns null at once), it drops finish counts older than `finishesKeptMs`
   * and, with a `retention` policy, deletes up to `limit` expired jobs along the walk of the primary key
   * (see DELETE_RETAINED_JOBS) and saves how far the walk came. One worker deletes at a time: the turn
   * is a row lock held until commit.
   */
  async sweepRetention(options: RetentionBatchOptions): Promise<RetentionBatch | null> {
    return this.transaction(async (client) => {
      const { rows: turn } = await client.query<{ walked_to: string }>(SQL.TAKE_RETENTION_TURN, [
        options.minIntervalMs,
      ]);
      if (turn.length === 0) return null;
      await client.query(SQL.PRUNE_JOB_FINISHES, [options.finishesKeptMs]);
      const batch: RetentionBatch = { deleted: {}, caughtUp: true };
      const { retention } = options;
      if (retention) {
        const { rows } = await client.query<RawRow>(SQL.DELETE_RETAINED_JOBS, [
          turn[0].walked_to,
          options.horizonMs,
          retention.completedMs,
          retention.failedMs,
          retention.cancelledMs,
          options.limit,
        ]);
        const [result] = rows;
        batch.deleted = result.deleted as Partial<Record<JobState, number>>;
        batch.caughtUp = (result.scanned as number) < options.limit;
        await client.query(SQL.SAVE_RETENTION_WALK, [result.walked_to, batch.caughtUp, options.lapMs]);
      }
      return batch;
    });
  }

  /**
   * Runs `work` in one transaction on a connection of its own: committed if it resolves, rolled back if
   * it throws. The pool listens for errors only on idle connections; without a listener of our own, a
   * connection the server ends between two statements (a restart, pg_terminate_backend) would emit an
   * error nobody handles, and the process would die. A connection that broke is destroyed, not handed to
   * the next caller.
   */
  private async transaction<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    return this.guard(async () => {
      const client = await this.pool.connect();
      let lost: Error | undefined;
      const onLost = (error: Error): void => {
        lost = error;
      };
      client.on('error', onLost);
      try {
        await client.query('BEGIN');
        const result = await work(client);
        await client.query('COMMIT');
        return result;
      } catch (failure) {
        if (isConnectionError(failure)) lost ??= failure as Error;
        if (!lost) await client.query('ROLLBACK').catch(() => undefined);
        throw failure;
      } finally {
        client.off('error', onLost);
        client.release(lost);
      }
    });
  }

  /** Resolves when the database answers a trivial query. */
  async ping(): Promise<void> {
    await this.query('SELECT 1', []);
  }

  /**
   * Runs a hot-path statement as a named prepared statement: each connection parses and plans it once,
   * not on every call, which matters for small, frequent claims and completions. With prepared statements
   * off (DB_PREPARED_STATEMENTS=false) it runs unnamed, parsed on every call: a transaction pooler that
   * hands each transaction to any server session (PgBouncer before 1.21) loses named statements between
   * transactions ("prepared statement ... does not exist", or "already exists" in the next session).
   */
  private async prepared<Row extends object = RawRow>(
    name: string,
    text: string,
    values: unknown[],
    pool: Pool = this.pool,
  ): Promise<Row[]> {
    const statement = this.database.preparedStatements ? { name, text, values } : { text, values };
    return this.guard(async () => (await pool.query<Row & QueryResultRow>(statement)).rows);
  }

  /** Other statements go straight to the pg pool too: plain rows, no ORM work per call. */
  private async query(sql: string, params: unknown[]): Promise<RawRow[]> {
    return this.guard(async () => (await this.pool.query<RawRow>(sql, params)).rows);
  }

  /** Jobs, each with its callback delivery (or none) as `callbackDelivery`. */
  private jobsWithDeliveries(): SelectQueryBuilder<JobEntity> {
    return this.dataSource
      .getRepository(JobEntity)
      .createQueryBuilder('job')
      .leftJoinAndMapOne(
        'job.callbackDelivery',
        CallbackDeliveryEntity,
        'delivery',
        'delivery.job_id = job.job_id',
      );
  }

  /** Maps a raw `jobs` row by the entity's own column metadata, so the two can never disagree. */
  private toJobEntity(row: RawRow): JobEntity {
    const job = new JobEntity();
    this.jobColumns ??= this.dataSource.getMetadata(JobEntity).columns;
    for (const column of this.jobColumns) {
      column.setEntityValue(job, row[column.databaseName]);
    }
    return job;
  }

  private get pool(): Pool {
    return (this.dataSource.driver as PostgresDriver).master as Pool;
  }

  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (isConnectionError(error)) throw new DatabaseUnavailableError(error);
      throw error;
    }
  }
}

/** Jobs of one type in one state, and how many of them hold a live attempt. */
export interface JobTypeStateCount {
  jobType: string;
  state: JobState;
  jobs: number;
  live: number;
}

export interface JobStats {
  /** Only the (type, state) pairs with jobs in them. */
  counts: JobTypeStateCount[];
  /** Jobs that reached each terminal state within the last minute (whole seconds); absent: none. */
  finishedLastMinute: Partial<Record<JobState, number>>;
  pausedJobTypes: string[];
  /** How long the longest-waiting claimable job has been due; null when none is due. */
  oldestDueAgeMs: number | null;
}

/** Jobs that reached each terminal state within one minute (starting at `minute`). */
export interface FinishesInMinute {
  minute: Date;
  completed: number;
  failed: number;
  cancelled: number;
}

/** How long terminal jobs are kept after they finished, per state; 0 keeps them forever. */
export interface RetentionPolicy {
  completedMs: number;
  failedMs: number;
  cancelledMs: number;
}

export interface RetentionBatchOptions {
  /** Take the turn only if no batch (of any worker) ran within this many ms. */
  minIntervalMs: number;
  /** Null: delete nothing, only drop old finish counts. */
  retention: RetentionPolicy | null;
  /** Look only at jobs created at least this many ms ago (more than a minute: younger ones cannot be deleted). */
  horizonMs: number;
  /** Jobs looked at (and so deleted, at most) per batch. */
  limit: number;
  /** How often the walk starts again from the oldest job. */
  lapMs: number;
  finishesKeptMs: number;
}

export interface RetentionBatch {
  deleted: Partial<Record<JobState, number>>;
  /** The walk reached the horizon: nothing more to look at until jobs age past it. */
  caughtUp: boolean;
}
