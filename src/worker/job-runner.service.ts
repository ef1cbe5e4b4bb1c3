import { Inject, Injectable } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { HandlerRegistry } from '../handlers/handler-registry';
import { PermanentJobError, type JobContext, type JobHandler } from '../handlers/job-handler';
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
import { AttemptRecorder } from './attempt-recorder.service';
import type { LiveAttempt } from './live-attempt';
import { decideAfterFailure, retryDelayMs } from './retry-policy';

type Execution =
  | { kind: 'returned'; result: unknown }
  | { kind: 'threw'; error: unknown }
  | { kind: 'aborted'; reason: unknown };

/**
 * Runs one attempt: calls the handler with an AbortSignal, bounds it by timeout_ms, and records the
 * outcome. A handler failure is an outcome, never a crash: run() never rejects.
 */
@Injectable()
export class JobRunner {
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

  /**
   * Runs the attempt and records its outcome. `onHandlerDone` is called as soon as the handler has
   * settled (or been abandoned), before the outcome is written, so the caller can reuse the slot while
   * the write is in flight.
   */
  async run(attempt: LiveAttempt, onHandlerDone: () => void = () => undefined): Promise<void> {
    const { job } = attempt;
    let log: Logger | undefined;
    // Most attempts never log at the usual levels: build the child logger only when something is said.
    const logger = (): Logger => (log ??= this.logger.child(attempt.logFields(this.config.workerId)));
    const debug = this.logger.isLevelEnabled('debug');
    if (debug) logger().debug('attempt started');
    const started = performance.now();
    const registered = this.registry.get(job.jobType);
    const execution: Execution = registered
      ? await this.execute(registered.handler, attempt, logger)
      : {
          kind: 'threw',
          error: new PermanentJobError(`No handler is registered for "${job.jobType}"`, 'unknown_job_type'),
        };
    const seconds = (performance.now() - started) / 1000;
    onHandlerDone();
    try {
      const outcome = await this.record(attempt, execution, logger);
      if (debug) logger().debug({ outcome, duration_ms: Math.round(seconds * 1000) }, 'attempt finished');
      this.metrics.attemptFinished(job.jobType, outcome, seconds);
    } catch (error) {
      logger().error({ err: error }, 'could not record the outcome of an attempt');
    }
  }

  /**
   * Calls the handler once the current turn of the event loop is over (the claim loop publishes the new
   * leases to the watchdog first) and settles with what became of it. Every attempt of a busy worker
   * passes through here, so it is one promise and a few closures, not an async function racing others.
   */
  private execute(handler: JobHandler, attempt: LiveAttempt, log: () => Logger): Promise<Execution> {
    const { job } = attempt;
    return new Promise<Execution>((settle) => {
      let settled = false;
      const finish = (execution: Execution): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        attempt.onAbort(undefined);
        settle(execution);
      };
      const failed = (error: unknown): void =>
        finish(attempt.aborted ? { kind: 'aborted', reason: attempt.abortReason } : { kind: 'threw', error });
      const timer = setTimeout(() => attempt.abort(new AttemptTimeoutError(job.timeoutMs)), job.timeoutMs);
      // Settles as soon as the attempt is aborted, so a handler that ignores its signal cannot hold the slot.
      attempt.onAbort((reason) => finish({ kind: 'aborted', reason }));
      if (attempt.aborted) {
        finish({ kind: 'aborted', reason: attempt.abortReason });
        return;
      }
      queueMicrotask(() => {
        // Aborted before it began: the handler is not called at all.
        if (settled) return;
        let running: unknown;
        try {
          running = handler.run(job.payload, handlerContext(attempt, log));
        } catch (error) {
          failed(error);
          return;
        }
        Promise.resolve(running).then((result) => finish({ kind: 'returned', result }), failed);
      });
    });
  }

  /** Writes the outcome and returns it; `lost` when nothing could be written for the attempt. */
  private async record(
    attempt: LiveAttempt,
    execution: Execution,
    log: () => Logger,
  ): Promise<AttemptOutcome> {
    const { job } = attempt;
    if (execution.kind === 'returned') {
      // Serialised once, here: a value that is not JSON, or that PostgreSQL cannot store, fails this
      // attempt on its own instead of the completion statement it would share with other jobs.
      let resultJson: string;
      try {
        resultJson = JSON.stringify(execution.result ?? null) ?? 'null';
      } catch (error) {
        return this.recordFailure(
          attempt,
          AttemptOutcome.Failed,
          toJobError(
            Object.assign(new Error(`The handler returned a value that is not JSON: ${String(error)}`), {
              code: 'result_not_serializable',
            }),
          ),
          false,
          log,
        );
      }
      const unstorable = unstorableJsonReason(resultJson);
      const written = unstorable ? 'refused' : await this.recorder.complete(attempt, resultJson);
      if (written === 'completed') {
        this.metrics.jobFinished(job.jobType, 'completed');
        return AttemptOutcome.Succeeded;
      }
      if (written === 'refused') {
        return this.recordFailure(
          attempt,
          AttemptOutcome.Failed,
          {
            code: 'result_not_storable',
            message: `The handler's result cannot be stored: ${unstorable ?? 'the database refused it'}`,
          },
          false,
          log,
        );
      }
      log().warn('the attempt succeeded after its lease was lost; the result was not recorded');
      return AttemptOutcome.Lost;
    }
    if (execution.kind === 'aborted') {
      const reason = execution.reason;
      if (reason instanceof LeaseLostError) {
        log().warn({ reason: reason.message }, 'attempt aborted: lease lost, writing nothing for it');
        return AttemptOutcome.Lost;
      }
      if (reason instanceof JobCancelledError) {
        if (!(await this.recorder.cancel(attempt))) return AttemptOutcome.Lost;
        this.metrics.jobFinished(job.jobType, 'cancelled');
        log().info('attempt stopped: the job was cancelled');
        return AttemptOutcome.Cancelled;
      }
      if (reason instanceof WorkerShutdownError) {
        const released = await this.recorder.release(attempt, toJobError(reason));
        log().info({ released }, 'attempt released at shutdown');
        return AttemptOutcome.Interrupted;
      }
      const error = reason instanceof AttemptTimeoutError ? reason : new AttemptTimeoutError(job.timeoutMs);
      return this.recordFailure(attempt, AttemptOutcome.TimedOut, toJobError(error), false, log);
    }
    const permanent = isPermanentFailure(execution.error);
    if (!permanent) log().warn({ err: execution.error }, 'attempt failed');
    return this.recordFailure(
      attempt,
      AttemptOutcome.Failed,
      toJobError(execution.error),
      permanent,
      log,
      requestedRetryDelayMs(execution.error),
    );
  }

  private async recordFailure(
    attempt: LiveAttempt,
    outcome: AttemptOutcome.Failed | AttemptOutcome.TimedOut,
    error: ReturnType<typeof toJobError>,
    permanent: boolean,
    log: () => Logger,
    requestedDelayMs?: number,
  ): Promise<AttemptOutcome> {
    const { job } = attempt;
    const failures = job.failedAttempts + 1;
    if (decideAfterFailure(failures, job.maxAttempts, permanent) === 'fail') {
      if (!(await this.recorder.fail(attempt, outcome, error))) return AttemptOutcome.Lost;
      this.metrics.jobFinished(job.jobType, 'failed');
      log().info({ error }, 'job failed');
      return outcome;
    }
    // A delay the handler asked for (a server's Retry-After) replaces the backoff, within the same cap.
    const delayMs =
      requestedDelayMs === undefined
        ? retryDelayMs(failures, this.config.retryBaseMs, this.config.retryMaxMs)
        : Math.min(requestedDelayMs, this.config.retryMaxMs);
    if (!(await this.recorder.scheduleRetry(attempt, outcome, error, delayMs))) return AttemptOutcome.Lost;
    log().info({ error, retry_in_ms: delayMs }, 'attempt failed; retry scheduled');
    return outcome;
  }
}

/** What a handler gets besides its payload; its logger is made only if the handler uses it. */
function handlerContext(attempt: LiveAttempt, log: () => Logger): JobContext {
  let logger: JobContext['logger'] | undefined;
  return {
    jobId: attempt.job.jobId,
    attempt: attempt.job.attempt,
    get signal() {
      return attempt.signal;
    },
    get logger() {
      return (logger ??= {
        info: (message, fields) => log().info(fields ?? {}, message),
        warn: (message, fields) => log().warn(fields ?? {}, message),
        error: (message, fields) => log().error(fields ?? {}, message),
      });
    },
  };
}
