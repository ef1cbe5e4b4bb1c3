import { Inject, Injectable } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { HandlerRegistry } from '../handlers/handler-registry';
import { PermanentJobError, type JobContext, type JobLogger } from '../handlers/job-handler';
import { LOGGER, type Logger } from '../logging/logger';
import { MetricsService } from '../metrics/metrics.service';
import { AttemptOutcome } from '../persistence/job-state';
import { unstorableJsonReason } from '../persistence/storable-text';
import {
  AttemptTimeoutError,
  JobCancelledError,
  LeaseLostError,
  WorkerShutdownError,
  isPermanentFailure,
  requestedRetryDelayMs,
  toJobError,
} from './attempt-errors';
import { AttemptRecorder, type CompletionSink, type CompletionWrite } from './attempt-recorder.service';
import type { AbortListener, AttemptGroup, AttemptSlots, LiveAttempt } from './live-attempt';
import { decideAfterFailure, retryDelayMs } from './retry-policy';

/**
 * Attempts started together with the same timeout_ms share one timer (a claim's jobs usually all do): at
 * the timeout it aborts those whose handlers are still running, and it is cleared once none is.
 */
class TimeoutGroup implements AttemptGroup {
  private readonly attempts: LiveAttempt[] = [];
  private running = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly timeoutMs: number,
    readonly slots: AttemptSlots,
  ) {
    this.timer = setTimeout(() => this.expire(), timeoutMs);
  }

  add(attempt: LiveAttempt): void {
    this.attempts.push(attempt);
    this.running++;
    attempt.group = this;
  }

  /** One of the group's handlers settled. */
  handlerSettled(): void {
    if (--this.running > 0) return;
    clearTimeout(this.timer);
    this.attempts.length = 0;
  }

  private expire(): void {
    for (const attempt of this.attempts) {
      if (!attempt.handlerSettled) attempt.abort(new AttemptTimeoutError(this.timeoutMs));
    }
  }
}

/** What a handler gets besides its payload; its logger is made only if the handler uses it. */
class HandlerContext implements JobContext {
  readonly jobId: string;
  readonly attempt: number;
  private log: JobLogger | undefined;

  constructor(
    private readonly live: LiveAttempt,
    private readonly runner: JobRunner,
  ) {
    this.jobId = live.job.jobId;
    this.attempt = live.job.attempt;
  }

  get signal(): AbortSignal {
    return this.live.signal;
  }

  get logger(): JobLogger {
    if (!this.log) {
      const log = (): Logger => this.runner.attemptLogger(this.live);
      this.log = {
        info: (message, fields) => log().info(fields ?? {}, message),
        warn: (message, fields) => log().warn(fields ?? {}, message),
        error: (message, fields) => log().error(fields ?? {}, message),
      };
    }
    return this.log;
  }
}

/**
 * Runs attempts: calls each handler with an AbortSignal, bounds it by timeout_ms, and records the outcome.
 * A handler failure is an outcome, never a crash. Every attempt of a busy worker passes through here, so
 * the path of an attempt that succeeds is a few method calls on the attempt itself: no async function, no
 * promise or closure of its own unless its handler returns a promise.
 */
@Injectable()
export class JobRunner implements CompletionSink {
  /** Settles an attempt's handler as soon as the attempt is aborted: one that ignores its signal frees its slot. */
  private readonly abortedWhileRunning: AbortListener = (attempt, reason) => this.aborted(attempt, reason);

  constructor(
    private readonly registry: HandlerRegistry,
    private readonly recorder: AttemptRecorder,
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    metrics.trackDueWithoutHandler(() => this.jobTypes());
  }

  /** The job types this worker can run: the only ones it claims. */
  jobTypes(): readonly string[] {
    return this.registry.types();
  }

  /** The attempt's own logger (its job, attempt and worker on every line), made on first use. */
  attemptLogger(attempt: LiveAttempt): Logger {
    return (attempt.logger ??= this.logger.child(attempt.logFields(this.config.workerId)));
  }

  /**
   * Runs the attempts one claim took, calling their handlers now, and tells `slots` of each: when its
   * handler is done (before the outcome is written, so the slot can be reused while the write is in
   * flight) and when it is over. The caller publishes the new leases to the watchdog first: a handler
   * may block the thread for good.
   */
  runAll(attempts: readonly LiveAttempt[], slots: AttemptSlots): void {
    const groups = new Map<number, TimeoutGroup>();
    for (const attempt of attempts) {
      const { timeoutMs } = attempt.job;
      let group = groups.get(timeoutMs);
      if (!group) groups.set(timeoutMs, (group = new TimeoutGroup(timeoutMs, slots)));
      group.add(attempt);
    }
    for (const attempt of attempts) this.start(attempt);
  }

  private start(attempt: LiveAttempt): void {
    const { job } = attempt;
    if (this.logger.isLevelEnabled('debug')) this.attemptLogger(attempt).debug('attempt started');
    attempt.handlerStartedAt = performance.now();
    const registered = this.registry.get(job.jobType);
    if (!registered) {
      return this.threw(
        attempt,
        new PermanentJobError(`No handler is registered for "${job.jobType}"`, 'unknown_job_type'),
      );
    }
    // Aborted before it began: the handler is not called at all.
    if (attempt.aborted) return this.aborted(attempt, attempt.abortReason!);
    attempt.onAbort(this.abortedWhileRunning);
    let running: unknown;
    try {
      running = registered.handler.run(job.payload, new HandlerContext(attempt, this));
      if (isThenable(running)) {
        Promise.resolve(running).then(
          (result) => this.returned(attempt, result),
          (error) => this.threw(attempt, error),
        );
        return;
      }
    } catch (error) {
      return this.threw(attempt, error);
    }
    // Outside the try: only the handler's own errors are its attempt's failure.
    this.returned(attempt, running);
  }

  /**
   * Marks the handler of `attempt` settled; false when it already was (a handler that settles after its
   * attempt was aborted, or twice). Frees the attempt's slot.
   */
  private settle(attempt: LiveAttempt): boolean {
    if (attempt.handlerSettled) return false;
    attempt.handlerSettled = true;
    attempt.handlerSeconds = (performance.now() - attempt.handlerStartedAt) / 1000;
    attempt.onAbort(undefined);
    const group = attempt.group!;
    group.handlerSettled();
    group.slots.handlerDone(attempt);
    return true;
  }

  private returned(attempt: LiveAttempt, result: unknown): void {
    if (!this.settle(attempt)) return;
    // Serialised once, here: a value that is not JSON, or that PostgreSQL cannot store, fails this
    // attempt on its own instead of the completion statement it would share with other jobs.
    let resultJson: string;
    try {
      resultJson = JSON.stringify(result ?? null) ?? 'null';
    } catch (error) {
      return this.writeSlowly(
        attempt,
        this.recordFailure(
          attempt,
          AttemptOutcome.Failed,
          toJobError(
            Object.assign(new Error(`The handler returned a value that is not JSON: ${String(error)}`), {
              code: 'result_not_serializable',
            }),
          ),
          false,
        ),
      );
    }
    const unstorable = unstorableJsonReason(resultJson);
    if (unstorable) return this.resultNotStorable(attempt, unstorable);
    this.recorder.complete(attempt, resultJson, this);
  }

  /** The recorder's answer to a completion (see AttemptRecorder.complete). */
  completionWritten(attempt: LiveAttempt, written: CompletionWrite): void {
    if (written === 'completed') {
      this.metrics.jobFinished(attempt.job.jobType, 'completed');
      return this.over(attempt, AttemptOutcome.Succeeded);
    }
    if (written === 'refused') return this.resultNotStorable(attempt, 'the database refused it');
    this.attemptLogger(attempt).warn(
      'the attempt succeeded after its lease was lost; the result was not recorded',
    );
    this.over(attempt, AttemptOutcome.Lost);
  }

  private resultNotStorable(attempt: LiveAttempt, reason: string): void {
    this.writeSlowly(
      attempt,
      this.recordFailure(
        attempt,
        AttemptOutcome.Failed,
        { code: 'result_not_storable', message: `The handler's result cannot be stored: ${reason}` },
        false,
      ),
    );
  }

  private threw(attempt: LiveAttempt, error: unknown): void {
    // A handler that fails because its signal fired ends as what aborted it, not as its own error.
    if (attempt.aborted) return this.aborted(attempt, attempt.abortReason!);
    if (!this.settle(attempt)) return;
    const permanent = isPermanentFailure(error);
    if (!permanent) this.attemptLogger(attempt).warn({ err: error }, 'attempt failed');
    this.writeSlowly(
      attempt,
      this.recordFailure(
        attempt,
        AttemptOutcome.Failed,
        toJobError(error),
        permanent,
        requestedRetryDelayMs(error),
      ),
    );
  }

  private aborted(attempt: LiveAttempt, reason: Error): void {
    if (!this.settle(attempt)) return;
    this.writeSlowly(attempt, this.recordAborted(attempt, reason));
  }

  /** Ends the attempt once `writing` (an outcome other than a plain success) is written. */
  private writeSlowly(attempt: LiveAttempt, writing: Promise<AttemptOutcome>): void {
    writing.then(
      (outcome) => this.over(attempt, outcome),
      (error: unknown) => {
        this.attemptLogger(attempt).error({ err: error }, 'could not record the outcome of an attempt');
        attempt.group!.slots.attemptOver(attempt);
      },
    );
  }

  private over(attempt: LiveAttempt, outcome: AttemptOutcome): void {
    if (this.logger.isLevelEnabled('debug')) {
      this.attemptLogger(attempt).debug(
        { outcome, duration_ms: Math.round(attempt.handlerSeconds * 1000) },
        'attempt finished',
      );
    }
    this.metrics.attemptFinished(attempt.job.jobType, outcome, attempt.handlerSeconds);
    attempt.group!.slots.attemptOver(attempt);
  }

  private async recordAborted(attempt: LiveAttempt, reason: Error): Promise<AttemptOutcome> {
    const { job } = attempt;
    if (reason instanceof LeaseLostError) {
      this.attemptLogger(attempt).warn(
        { reason: reason.message },
        'attempt aborted: lease lost, writing nothing for it',
      );
      return AttemptOutcome.Lost;
    }
    if (reason instanceof JobCancelledError) {
      if (!(await this.recorder.cancel(attempt))) return AttemptOutcome.Lost;
      this.metrics.jobFinished(job.jobType, 'cancelled');
      this.attemptLogger(attempt).info('attempt stopped: the job was cancelled');
      return AttemptOutcome.Cancelled;
    }
    if (reason instanceof WorkerShutdownError) {
      const released = await this.recorder.release(attempt, toJobError(reason));
      this.attemptLogger(attempt).info({ released }, 'attempt released at shutdown');
      return AttemptOutcome.Interrupted;
    }
    const error = reason instanceof AttemptTimeoutError ? reason : new AttemptTimeoutError(job.timeoutMs);
    return this.recordFailure(attempt, AttemptOutcome.TimedOut, toJobError(error), false);
  }

  private async recordFailure(
    attempt: LiveAttempt,
    outcome: AttemptOutcome.Failed | AttemptOutcome.TimedOut,
    error: ReturnType<typeof toJobError>,
    permanent: boolean,
    requestedDelayMs?: number,
  ): Promise<AttemptOutcome> {
    const { job } = attempt;
    const failures = job.failedAttempts + 1;
    if (decideAfterFailure(failures, job.maxAttempts, permanent) === 'fail') {
      if (!(await this.recorder.fail(attempt, outcome, error))) return AttemptOutcome.Lost;
      this.metrics.jobFinished(job.jobType, 'failed');
      this.attemptLogger(attempt).info({ error }, 'job failed');
      return outcome;
    }
    // A delay the handler asked for (a server's Retry-After) replaces the backoff, within the same cap.
    const delayMs =
      requestedDelayMs === undefined
        ? retryDelayMs(failures, this.config.retryBaseMs, this.config.retryMaxMs)
        : Math.min(requestedDelayMs, this.config.retryMaxMs);
    if (!(await this.recorder.scheduleRetry(attempt, outcome, error, delayMs))) return AttemptOutcome.Lost;
    this.attemptLogger(attempt).info({ error, retry_in_ms: delayMs }, 'attempt failed; retry scheduled');
    return outcome;
  }
}

/** A value to wait for: a promise or anything with a `then` method, as `await` sees it. */
function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
