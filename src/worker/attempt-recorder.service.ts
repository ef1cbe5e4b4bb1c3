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

interface PendingCompletion {
  attempt: LiveAttempt;
  resultJson: string;
  resolve: (recorded: boolean) => void;
}

/**
 * Writes the outcome of attempts, always fenced by (job_id, attempt, worker_id) and the lease. Successes
 * that finish close together are written in one statement. A write that cannot reach the database is
 * retried while this worker still holds the lease, and abandoned after: the rescue sweep then takes over.
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

  /** Resolves true once the job is completed with `resultJson`, false if the attempt was no longer ours. */
  complete(attempt: LiveAttempt, resultJson: string): Promise<boolean> {
    return new Promise((resolve) => {
      this.queue.push({ attempt, resultJson, resolve });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // Completions that land in the same turn of the event loop share one statement.
        setImmediate(() => void this.flush());
      }
    });
  }

  /** Closes the attempt and schedules the next one after `delayMs`. False: the attempt was no longer ours. */
  scheduleRetry(
    attempt: LiveAttempt,
    outcome: ClosingOutcome,
    error: JobErrorBody,
    delayMs: number,
  ): Promise<boolean> {
    return this.whileLeaseHolds([attempt], () =>
      this.repository.scheduleRetry(this.config.workerId, attempt.ref, outcome, error, delayMs),
    ).then((written) => written ?? false);
  }

  /** Closes the attempt and fails the job. False: the attempt was no longer ours. */
  fail(attempt: LiveAttempt, outcome: ClosingOutcome, error: JobErrorBody): Promise<boolean> {
    return this.whileLeaseHolds([attempt], () =>
      this.repository.markFailed(this.config.workerId, attempt.ref, outcome, error),
    ).then((written) => written ?? false);
  }

  /** Hands the attempt back at shutdown: not a failure, claimable again at once. */
  release(attempt: LiveAttempt, error: JobErrorBody): Promise<boolean> {
    return this.scheduleRetry(attempt, AttemptOutcome.Interrupted, error, 0);
  }

  private async flush(): Promise<void> {
    const batch = this.queue;
    this.queue = [];
    this.flushScheduled = false;
    const completed = await this.whileLeaseHolds(
      batch.map((item) => item.attempt),
      () => {
        const stillHeld = batch.filter((item) => item.attempt.holdsLease());
        return this.repository.markCompleted(
          this.config.workerId,
          stillHeld.map((item) => ({ ...item.attempt.ref, resultJson: item.resultJson })),
        );
      },
    );
    for (const item of batch) item.resolve(completed?.has(item.attempt.job.jobId) ?? false);
  }

  /**
   * Runs `write` until it succeeds, retrying only when the database is unreachable and only while at
   * least one of the attempts still holds its lease. Undefined when it gave up.
   */
  private async whileLeaseHolds<T>(attempts: LiveAttempt[], write: () => Promise<T>): Promise<T | undefined> {
    for (;;) {
      if (!attempts.some((attempt) => attempt.holdsLease())) return undefined;
      try {
        return await write();
      } catch (error) {
        if (!(error instanceof DatabaseUnavailableError)) {
          this.logger.error({ err: error }, 'recording an attempt outcome failed');
          return undefined;
        }
        this.logger.warn('database unavailable while recording an attempt outcome; retrying');
        await sleep(RETRY_WRITE_EVERY_MS);
      }
    }
  }
}
