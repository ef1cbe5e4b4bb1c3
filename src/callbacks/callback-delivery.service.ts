import { Inject, Injectable, type BeforeApplicationShutdown } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { presentJobDetail } from '../jobs/job.presenter';
import { LOGGER, type Logger } from '../logging/logger';
import { MetricsService } from '../metrics/metrics.service';
import { OutboundHttpClient } from '../outbound/outbound-http.client';
import { targetRefusalOf } from '../outbound/outbound.errors';
import { retryAfterMs } from '../outbound/retry-after';
import { DatabaseNotifications } from '../persistence/database-notifications';
import {
  JobRepository,
  type CallbackAttemptOutcome,
  type ClaimedCallback,
} from '../persistence/job.repository';
import { callbackRetryDelayMs } from './callback-backoff';
import { ShutdownGrace } from '../common/shutdown-grace';
import { WakeSignal } from '../common/wake-signal';

const POLL_INTERVAL = 'callback-poll';
/** Deliveries one worker has under way at once: each is one outbound request, mostly waiting. */
const CONCURRENCY = 10;

/** A delivery under way here; `abort` stops its request (shutdown). */
interface InFlight {
  abort: AbortController;
  done: Promise<void>;
}

/**
 * Delivers completion callbacks. The database creates a delivery in the transaction that makes a job with
 * a callback_url terminal; every worker claims due deliveries (SKIP LOCKED, with a lease of twice
 * CALLBACK_TIMEOUT_MS) and POSTs the job, exactly as GET /jobs/{job_id} shows it at that moment, signed
 * like HTTP targets. A 2xx answer settles it `delivered`; anything else makes it due again after a backoff
 * (CALLBACK_RETRY_BASE_MS doubling up to CALLBACK_RETRY_MAX_MS), or after the answer's Retry-After (at most
 * CALLBACK_RETRY_MAX_MS), until CALLBACK_MAX_ATTEMPTS attempts have been made, then `failed`. A worker
 * killed mid-request leaves the delivery to be claimed again once its lease is over: at-least-once. Woken
 * by NOTIFY when a delivery is created; polls as the safety net.
 */
@Injectable()
export class CallbackDeliveryService implements BeforeApplicationShutdown {
  private readonly inFlight = new Map<string, InFlight>();
  private started = false;
  private stopping = false;
  private loopDone: Promise<void> = Promise.resolve();
  private readonly wakeSignal = new WakeSignal();

  constructor(
    private readonly repository: JobRepository,
    private readonly outbound: OutboundHttpClient,
    private readonly notifications: DatabaseNotifications,
    private readonly scheduler: SchedulerRegistry,
    private readonly metrics: MetricsService,
    private readonly grace: ShutdownGrace,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** Starts delivering; called with the rest of the worker, once the process is fully up. */
  start(): void {
    if (this.started || this.stopping) return;
    this.started = true;
    this.scheduler.addInterval(
      POLL_INTERVAL,
      setInterval(() => this.wake(), this.config.workerPollIntervalMs),
    );
    this.notifications.onCallbacksDue(() => this.wake());
    this.loopDone = this.loop();
  }

  /**
   * Claims stop at once; requests under way get what is left of the process's grace period (shared with the
   * running attempts), then are aborted and made due again.
   */
  async beforeApplicationShutdown(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (!this.started) return;
    this.grace.begin();
    this.wake();
    await this.loopDone;
    if (this.scheduler.doesExist('interval', POLL_INTERVAL)) this.scheduler.deleteInterval(POLL_INTERVAL);
    const timers = new AbortController();
    const allDone = (): Promise<unknown> =>
      Promise.allSettled([...this.inFlight.values()].map((d) => d.done));
    await Promise.race([
      allDone(),
      sleep(this.grace.remainingMs(), undefined, { signal: timers.signal }).catch(() => undefined),
    ]);
    for (const delivery of this.inFlight.values()) delivery.abort.abort();
    await allDone();
    timers.abort();
  }

  private wake(): void {
    this.wakeSignal.wake();
  }

  /** Claims while there are free slots and due deliveries; sleeps until woken otherwise. Never throws. */
  private async loop(): Promise<void> {
    while (!this.stopping) {
      this.wakeSignal.clear();
      const free = CONCURRENCY - this.inFlight.size;
      if (free > 0) {
        try {
          const claimed = await this.repository.claimDueCallbacks(free, this.config.workerId, this.leaseMs());
          for (const callback of claimed) this.track(callback);
          // A full claim may have left more due: claim again as soon as a slot frees.
          if (claimed.length === free) this.wake();
        } catch (error) {
          this.logger.warn({ err: error }, 'claiming callback deliveries failed; retrying at the next poll');
        }
      }
      if (this.stopping) continue;
      await this.wakeSignal.sleep();
    }
  }

  /** A request may take CALLBACK_TIMEOUT_MS; the lease leaves as much again for reading the job and writing back. */
  private leaseMs(): number {
    return 2 * this.config.callbackTimeoutMs;
  }

  private track(callback: ClaimedCallback): void {
    const abort = new AbortController();
    const done = this.deliver(callback, abort.signal).finally(() => {
      this.inFlight.delete(callback.jobId);
      this.wake();
    });
    this.inFlight.set(callback.jobId, { abort, done });
  }

  /** One attempt: send, then record its outcome. Never throws. */
  private async deliver(callback: ClaimedCallback, stop: AbortSignal): Promise<void> {
    const log = {
      job_id: callback.jobId,
      callback_attempt: callback.attempt,
      worker_id: this.config.workerId,
    };
    try {
      const outcome = await this.attempt(callback, stop);
      const recorded = await this.repository.recordCallbackAttempt(this.config.workerId, callback, outcome);
      this.metrics.callbackAttempts.inc({ outcome: recorded ? outcome.state : 'lost' });
      if (!recorded) {
        this.logger.warn(log, 'callback attempt outlived its lease; another worker delivers it');
      } else if (outcome.state === 'delivered') {
        this.logger.info({ ...log, status: outcome.status }, 'callback delivered');
      } else if (outcome.state === 'retry') {
        this.logger.warn(
          { ...log, status: outcome.status, error: outcome.error, retry_in_ms: outcome.retryInMs },
          'callback not delivered; retrying',
        );
      } else {
        this.logger.error({ ...log, status: outcome.status, error: outcome.error }, 'callback given up');
      }
    } catch (error) {
      // Its lease runs out and it is claimed again: at-least-once holds without this write.
      this.logger.warn(
        { ...log, err: error },
        'a callback attempt could not be completed; it is retried once its claim runs out',
      );
    }
  }

  private async attempt(callback: ClaimedCallback, stop: AbortSignal): Promise<CallbackAttemptOutcome> {
    const found = await this.repository.findJobWithAttempts(callback.jobId);
    // Cannot happen while the delivery is pending (the database keeps its job), but never send nothing.
    if (!found) return { state: 'failed', status: null, error: 'the job no longer exists' };
    const body = Buffer.from(JSON.stringify(presentJobDetail(found.job, found.attempts)));
    const timeout = AbortSignal.timeout(this.config.callbackTimeoutMs);
    let status: number | null = null;
    let error: string;
    let askedDelayMs: number | undefined;
    try {
      const response = await this.outbound.send({
        url: callback.url,
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'Job-Id': callback.jobId,
          'Idempotency-Key': `callback:${callback.jobId}`,
          'Callback-Attempt': String(callback.attempt),
        },
        body,
        signal: AbortSignal.any([timeout, stop]),
      });
      status = response.status;
      if (status >= 200 && status < 300) return { state: 'delivered', status };
      error = `the receiver answered ${status}`;
      askedDelayMs = retryAfterMs(response.headers['retry-after']);
    } catch (failure) {
      const refusal = targetRefusalOf(failure);
      // A rule of this deployment, not a passing fault: no later attempt can succeed.
      if (refusal) return { state: 'failed', status: null, error: refusal.message };
      error = timeout.aborted
        ? `no answer within CALLBACK_TIMEOUT_MS (${this.config.callbackTimeoutMs} ms)`
        : stop.aborted
          ? 'stopped by the worker shutting down'
          : failureMessage(failure);
    }
    if (stop.aborted && !timeout.aborted) return { state: 'retry', retryInMs: 0, status, error };
    if (callback.attempt >= this.config.callbackMaxAttempts) {
      return { state: 'failed', status, error: `${error} (attempt ${callback.attempt}, the last)` };
    }
    const { callbackRetryBaseMs, callbackRetryMaxMs } = this.config;
    // A receiver that says when to come back (429, 503 with Retry-After) is taken at its word, within the cap.
    const retryInMs =
      askedDelayMs === undefined
        ? callbackRetryDelayMs(callback.attempt, callbackRetryBaseMs, callbackRetryMaxMs)
        : Math.min(askedDelayMs, callbackRetryMaxMs);
    return { state: 'retry', retryInMs, status, error };
  }
}

/** The most telling message of a network failure: undici wraps the socket's error as its cause. */
function failureMessage(failure: unknown): string {
  if (!(failure instanceof Error)) return String(failure);
  const cause = failure.cause instanceof Error ? `: ${failure.cause.message}` : '';
  return `${failure.message}${cause}`.slice(0, 1_000);
}
