import { Inject, Injectable } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { LOGGER, type Logger } from '../logging/logger';
import { AttemptOutcome, type ClosingOutcome, type JobErrorBody } from '../persistence/job-state';
import { JobRepository } from '../persistence/job.repository';
import { DatabaseUnavailableError } from '../persistence/persistence.errors';
import type { LiveAttempt } from './live-attempt';

const RETRY_WRITE_EVERY_MS = 250;

/**
 * What became of a completion: written; not ours any more (the lease was lost); or refused by the
 * database for this job alone (its result cannot be stored), so the caller records a failure instead.
 */
export type CompletionWrite = 'completed' | 'not_ours' | 'refused';

/** Told what became of a completion (the runner). */
export interface CompletionSink {
  completionWritten(attempt: LiveAttempt, written: CompletionWrite): void;
}

/** A completion waiting for its statement; also what markCompleted writes of it. */
interface PendingCompletion {
  readonly jobId: string;
  readonly attempt: number;
  readonly resultJson: string;
  readonly live: LiveAttempt;
  readonly sink: CompletionSink;
}

/** Written for a failure whose own error the database refused, so that the failure is still recorded. */
const UNSTORABLE_ERROR: JobErrorBody = {
  code: 'error_not_storable',
  message: 'The attempt failed, but its error could not be stored; see the worker log for it',
};

/**
 * Writes the outcome of attempts, always fenced by (job_id, attempt, worker_id) and the lease. Successes
 * that finish close together are written in one statement; if the database refuses that statement, each
 * is written on its own, so one job's unstorable result is never another job's problem. A write that
 * cannot reach the database is retried while this worker still holds the lease, and abandoned after: the
 * rescue sweep then takes over.
 */
@Injectable()
export class AttemptRecorder {
  private queue: PendingCompletion[] = [];
  private flushScheduled = false;

  constructor(
    private readonly repository: JobRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /**
   * Writes the completion of `attempt` with `resultJson`, and tells `sink` once it is written, known not
   * to be ours, or refused. A callback, not a promise: every successful attempt passes through here.
   */
  complete(attempt: LiveAttempt, resultJson: string, sink: CompletionSink): void {
    const { jobId, attempt: number } = attempt.job;
    this.queue.push({ jobId, attempt: number, resultJson, live: attempt, sink });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // Completions that land in the same turn of the event loop share one statement.
      setImmediate(this.flushSoon);
    }
  }

  private readonly flushSoon = (): void => void this.flush();

  /** Closes the attempt and schedules the next one after `delayMs`. False: the attempt was no longer ours. */
  scheduleRetry(
    attempt: LiveAttempt,
    outcome: ClosingOutcome,
    error: JobErrorBody,
    delayMs: number,
  ): Promise<boolean> {
    return this.closeAttempt(attempt, error, (storable) =>
      this.repository.scheduleRetry(this.config.workerId, attempt.ref, outcome, storable, delayMs),
    );
  }

  /** Closes the attempt and fails the job. False: the attempt was no longer ours. */
  fail(attempt: LiveAttempt, outcome: ClosingOutcome, error: JobErrorBody): Promise<boolean> {
    return this.closeAttempt(attempt, error, (storable) =>
      this.repository.markFailed(this.config.workerId, attempt.ref, outcome, storable),
    );
  }

  /** Closes the attempt `cancelled` and cancels its job, as requested. False: the attempt was no longer ours. */
  async cancel(attempt: LiveAttempt): Promise<boolean> {
    try {
      return (
        (await this.whileLeaseHolds([attempt], () =>
          this.repository.markCancelled(this.config.workerId, attempt.ref),
        )) ?? false
      );
    } catch (error) {
      this.logger.error(
        { err: error, ...attempt.logFields(this.config.workerId) },
        'recording a cancelled attempt failed',
      );
      return false;
    }
  }

  /** Hands the attempt back at shutdown: not a failure, claimable again at once. */
  release(attempt: LiveAttempt, error: JobErrorBody): Promise<boolean> {
    return this.scheduleRetry(attempt, AttemptOutcome.Interrupted, error, 0);
  }

  private async flush(): Promise<void> {
    const batch = this.queue;
    this.queue = [];
    this.flushScheduled = false;
    const written = await this.writeCompletions(batch);
    const outcome = (item: PendingCompletion, of: typeof written): CompletionWrite =>
      of === 'refused' ? 'refused' : of?.has(item.jobId) ? 'completed' : 'not_ours';
    if (written !== 'refused' || batch.length === 1) {
      for (const item of batch) item.sink.completionWritten(item.live, outcome(item, written));
      return;
    }
    // The database refused the shared statement: find the one it refuses by writing each on its own.
    await Promise.all(
      batch.map(async (item) =>
        item.sink.completionWritten(item.live, outcome(item, await this.writeCompletions([item]))),
      ),
    );
  }

  /** The job ids completed; undefined when the leases ran out first; 'refused' when the database said no. */
  private async writeCompletions(batch: PendingCompletion[]): Promise<Set<string> | undefined | 'refused'> {
    try {
      return await this.whileLeaseHolds(
        batch.map((item) => item.live),
        () =>
          this.repository.markCompleted(
            this.config.workerId,
            batch.filter((item) => item.live.holdsLease()),
          ),
      );
    } catch (error) {
      this.logger.warn(
        {
          err: error,
          job_ids: batch.map((item) => item.jobId),
          worker_id: this.config.workerId,
        },
        'the database refused a completion write',
      );
      return 'refused';
    }
  }

  /**
   * Closes the attempt with `error`; if the database refuses that write (not a lost connection), writes
   * it again with a plain error saying the real one could not be stored, so the attempt still closes now
   * instead of waiting out its lease. False: the attempt was no longer ours.
   */
  private async closeAttempt(
    attempt: LiveAttempt,
    error: JobErrorBody,
    write: (error: JobErrorBody) => Promise<boolean>,
  ): Promise<boolean> {
    try {
      return (await this.whileLeaseHolds([attempt], () => write(error))) ?? false;
    } catch (refusal) {
      this.logger.error(
        { err: refusal, ...attempt.logFields(this.config.workerId), error },
        'the database refused the error of an attempt; recording a plain one instead',
      );
    }
    try {
      return (await this.whileLeaseHolds([attempt], () => write(UNSTORABLE_ERROR))) ?? false;
    } catch (refusal) {
      this.logger.error(
        { err: refusal, ...attempt.logFields(this.config.workerId) },
        'recording an attempt outcome failed',
      );
      return false;
    }
  }

  /**
   * Runs `write` until it succeeds, retrying only when the database is unreachable and only while at
   * least one of the attempts still holds its lease. Undefined when it gave up; any other error is thrown.
   */
  private async whileLeaseHolds<T>(attempts: LiveAttempt[], write: () => Promise<T>): Promise<T | undefined> {
    for (;;) {
      if (!attempts.some((attempt) => attempt.holdsLease())) return undefined;
      try {
        return await write();
      } catch (error) {
        if (!(error instanceof DatabaseUnavailableError)) throw error;
        this.logger.warn(
          { jobs: attempts.length, worker_id: this.config.workerId },
          'database unavailable while recording an attempt outcome; retrying',
        );
        await sleep(RETRY_WRITE_EVERY_MS);
      }
    }
  }
}
