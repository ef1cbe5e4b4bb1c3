import { Inject, Injectable, type BeforeApplicationShutdown } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { LOGGER, type Logger } from '../logging/logger';
import { ShutdownGrace } from '../common/shutdown-grace';
import { WakeSignal } from '../common/wake-signal';
import { MetricsService } from '../metrics/metrics.service';
import { JobRepository, type ClaimedJob } from '../persistence/job.repository';
import { DatabaseNotifications } from '../persistence/database-notifications';
import { JobCancelledError, LeaseLostError, WorkerShutdownError } from './attempt-errors';
import { EventLoopWatchdog } from './event-loop-watchdog.service';
import { JobRunner } from './job-runner.service';
import { LiveAttempt, selfFenceMarginMs, type AttemptSlots } from './live-attempt';

const POLL_INTERVAL = 'worker-poll';
const HEARTBEAT_INTERVAL = 'worker-heartbeat';
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;
const MAX_FUTURE_WAKES = 1_000;
/**
 * A timer for a job due later fires this long after the announced time: the time is rounded down to the
 * millisecond, and a timer counts from the event loop's cached clock, so it may fire up to a millisecond
 * early. Woken before the job is due, the claim would find nothing and the job would wait for the poll.
 */
const FUTURE_WAKE_MARGIN_MS = 2;
/** How long released attempts may take to be written back after the grace period. */
const RELEASE_WRITE_MS = 2_000;

/**
 * The worker loop. It claims as many due jobs as it has free slots in one statement, runs them, and
 * claims again at once while jobs keep coming; it sleeps only when the queue is empty, until the poll
 * interval or a freed slot wakes it. It also renews the leases of its live attempts (heartbeat) and
 * aborts any attempt whose lease it can no longer prove it holds (self-fencing).
 */
@Injectable()
export class ClaimLoopService implements BeforeApplicationShutdown, AttemptSlots {
  /** Attempts whose handlers run now: each holds a slot. */
  private readonly live = new Map<string, LiveAttempt>();
  /** Attempts not over yet: handlers running, or outcomes being written. */
  private readonly unsettled = new Map<string, LiveAttempt>();
  /** Resolved when no attempt is left unsettled (shutdown waits for it). */
  private allSettledWaiters: (() => void)[] = [];
  private started = false;
  private stopping = false;
  private loopDone: Promise<void> = Promise.resolve();
  private readonly wakeSignal = new WakeSignal();
  /** False once a claim came back short: the queue is drained and freed slots need not wake the loop. */
  private queueMayHaveMore = true;
  private lastLoopAt = performance.now();
  /** Due times (epoch ms) of jobs heard of through NOTIFY that are not due yet, earliest first. */
  private futureWakes: number[] = [];
  private wakeTimer: NodeJS.Timeout | undefined;
  private wakeTimerAt = 0;
  private leasesPublishScheduled = false;
  /** Runs self-fencing when the earliest unfenced lease reaches its margin; may stay set after that lease ended. */
  private fenceTimer: NodeJS.Timeout | undefined;
  private fenceTimerAt = 0;
  private fencingStopped = false;

  constructor(
    private readonly repository: JobRepository,
    private readonly runner: JobRunner,
    private readonly scheduler: SchedulerRegistry,
    private readonly notifications: DatabaseNotifications,
    private readonly watchdog: EventLoopWatchdog,
    private readonly metrics: MetricsService,
    private readonly grace: ShutdownGrace,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    metrics.trackLiveAttempts(() => this.live.size);
  }

  /**
   * Starts claiming, heartbeats and self-fencing. Called by main.ts only once the process is fully up (its
   * port bound), so that a failed start-up never leaves claimed jobs to wait out their leases. Does nothing
   * once shutdown has begun.
   */
  startClaiming(): void {
    if (this.started || this.stopping) return;
    this.started = true;
    const { workerPollIntervalMs, leaseMs } = this.config;
    this.scheduler.addInterval(
      POLL_INTERVAL,
      setInterval(() => this.wake(), workerPollIntervalMs),
    );
    this.scheduler.addInterval(
      HEARTBEAT_INTERVAL,
      setInterval(() => void this.heartbeat(), leaseMs / 3),
    );
    this.notifications.onJobsDue((dueAtMs) => this.wakeAt(dueAtMs));
    this.notifications.onCancelRequested((jobId) => this.cancelRequested(jobId));
    this.logger.info(
      { worker_id: this.config.workerId, concurrency: this.config.workerConcurrency },
      'worker started',
    );
    this.loopDone = this.loop();
  }

  /** True while the loop is turning (it wakes at least every poll interval). */
  isAlive(): boolean {
    return (
      this.started &&
      !this.stopping &&
      performance.now() - this.lastLoopAt < Math.max(3 * this.config.workerPollIntervalMs, 10_000)
    );
  }

  liveAttempts(): number {
    return this.live.size;
  }

  /** Stops the live attempt of `jobId` here, if this worker runs it: a cancel was requested for the job. */
  cancelRequested(jobId: string): void {
    this.live.get(jobId)?.abort(new JobCancelledError());
  }

  /**
   * Tells the watchdog the earliest deadline of the leases not fenced yet, and arms the self-fencing for
   * it. Neither runs on a short timer.
   */
  private publishLeases(): void {
    this.leasesPublishScheduled = false;
    const earliest = this.earliestLeaseDeadline();
    this.watchdog.leasesChanged(earliest);
    this.armFence(earliest);
  }

  /**
   * Arms the self-fencing for the lease ending at `earliestDeadline` (performance.now() clock): it runs
   * once that lease is within the margin of its end. A timer set for an earlier time is kept (it finds
   * nothing to stop then and arms itself again), and so is one left when no lease is held: a lease taken
   * later ends later, so an idle worker and a busy one alike set about one timer per lease.
   */
  private armFence(earliestDeadline: number | undefined): void {
    if (this.fencingStopped) return;
    if (earliestDeadline === undefined) return;
    const fenceAt = earliestDeadline - selfFenceMarginMs(this.config.leaseMs);
    if (this.fenceTimer && this.fenceTimerAt <= fenceAt) return;
    clearTimeout(this.fenceTimer);
    this.fenceTimerAt = fenceAt;
    this.fenceTimer = setTimeout(
      () => {
        this.fenceTimer = undefined;
        this.selfFence();
      },
      Math.max(0, fenceAt - performance.now()),
    );
    this.fenceTimer.unref();
  }

  /**
   * Publishes the earliest lease deadline once this turn of the event loop is over. Only for attempts
   * that ended: until then the watchdog holds a deadline that is earlier than the real one, which is the
   * safe side, and a batch of attempts ending together costs one pass over the live ones instead of one each.
   */
  private publishLeasesSoon(): void {
    if (this.leasesPublishScheduled) return;
    this.leasesPublishScheduled = true;
    setImmediate(() => this.publishLeases());
  }

  /** The soonest local lease deadline among live attempts (performance.now() clock), if any. */
  private earliestLeaseDeadline(): number | undefined {
    let earliest: number | undefined;
    for (const attempt of this.live.values()) {
      if (!attempt.aborted && (earliest === undefined || attempt.leaseDeadline < earliest)) {
        earliest = attempt.leaseDeadline;
      }
    }
    return earliest;
  }

  /**
   * Wakes the loop when jobs are due at `dueAtMs` (epoch ms; undefined or past: now). Future times wait
   * on one timer for the earliest; the rest are kept, up to a bound, and the poll covers any beyond it.
   */
  wakeAt(dueAtMs: number | undefined): void {
    const delay = dueAtMs === undefined ? 0 : dueAtMs - Date.now();
    if (delay <= 0) return this.wake();
    if (this.futureWakes.length >= MAX_FUTURE_WAKES) return;
    this.futureWakes.push(dueAtMs!);
    this.futureWakes.sort((a, b) => a - b);
    this.armWakeTimer();
  }

  private armWakeTimer(): void {
    const next = this.futureWakes[0];
    if (next === undefined || (this.wakeTimer && this.wakeTimerAt <= next)) return;
    clearTimeout(this.wakeTimer);
    this.wakeTimerAt = next;
    this.wakeTimer = setTimeout(
      () => {
        this.wakeTimer = undefined;
        const now = Date.now();
        while (this.futureWakes.length > 0 && this.futureWakes[0] <= now) this.futureWakes.shift();
        this.wake();
        this.armWakeTimer();
      },
      // Node fires a timer of more than 2^31-1 ms after 1 ms: a job due months ahead would wake the loop
      // every millisecond. Wait at most that long; the timer then re-arms for what is left.
      Math.min(MAX_TIMER_DELAY_MS, Math.max(0, next + FUTURE_WAKE_MARGIN_MS - Date.now())),
    );
    this.wakeTimer.unref();
  }

  /** Asks the loop to look for due jobs now. */
  wake(): void {
    this.wakeSignal.wake();
  }

  /**
   * Stops claiming, lets live attempts finish within the process's grace period (SHUTDOWN_GRACE_MS from
   * when it began to stop), then aborts the rest and releases them (outcome `interrupted`, claimable again
   * at once, not counted as a failure).
   */
  async beforeApplicationShutdown(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (!this.started) return;
    // The grace period counts from when the process began to stop, not from the end of a claim that was in
    // flight. Its timers are cleared once the drain is over, so that they never keep the process alive on
    // their own.
    const timers = new AbortController();
    const wait = (ms: number): Promise<void> =>
      sleep(ms, undefined, { signal: timers.signal }).catch(() => undefined);
    const graceOver = wait(this.grace.remainingMs());
    this.wake();
    await this.loopDone;
    this.stopInterval(POLL_INTERVAL);
    clearTimeout(this.wakeTimer);
    const inFlight = this.live.size;
    this.logger.info(
      { live_attempts: inFlight },
      'worker stopping: no new claims, waiting for live attempts',
    );
    await Promise.race([this.allSettled(), graceOver]);
    if (this.live.size > 0) {
      this.logger.warn({ live_attempts: this.live.size }, 'grace period over: releasing unfinished attempts');
      for (const attempt of this.live.values()) attempt.abort(new WorkerShutdownError());
      await Promise.race([this.allSettled(), wait(RELEASE_WRITE_MS)]);
    }
    timers.abort();
    this.stopInterval(HEARTBEAT_INTERVAL);
    this.fencingStopped = true;
    clearTimeout(this.fenceTimer);
    this.logger.info('worker stopped');
  }

  private stopInterval(name: string): void {
    if (this.scheduler.doesExist('interval', name)) this.scheduler.deleteInterval(name);
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      this.lastLoopAt = performance.now();
      this.wakeSignal.clear();
      const free = this.freeSlots();
      if (free > 0 && (await this.claim(free)) === free) continue;
      await this.sleepUntilWoken();
    }
  }

  /** Claims up to `free` jobs and starts them; returns how many it got (0 on a database error). Never throws. */
  private async claim(free: number): Promise<number> {
    const sentAt = performance.now();
    let jobs: ClaimedJob[];
    try {
      jobs = await this.repository.claimDue(
        free,
        this.config.workerId,
        this.config.leaseMs,
        this.runner.jobTypes(),
      );
    } catch (error) {
      this.logger.warn({ err: error }, 'claiming jobs failed; retrying at the next poll');
      this.queueMayHaveMore = false;
      return 0;
    }
    this.queueMayHaveMore = jobs.length === free;
    const attempts = jobs.map((job) => new LiveAttempt(job, sentAt, this.config.leaseMs));
    for (const attempt of attempts) {
      this.metrics.attemptClaimed(Math.max(0, attempt.job.claimLatencyMs) / 1000);
      this.live.set(attempt.job.jobId, attempt);
      this.unsettled.set(attempt.job.jobId, attempt);
    }
    // Before any of these handlers runs: one may block the thread for good.
    this.publishLeases();
    this.runner.runAll(attempts, this);
    return jobs.length;
  }

  /**
   * The slot of `attempt` is free once its handler is done; its outcome is written meanwhile (pipelining),
   * and `unsettled` keeps the attempt until that write has landed.
   */
  handlerDone(attempt: LiveAttempt): void {
    const { jobId } = attempt.job;
    if (this.live.get(jobId) !== attempt) return;
    this.live.delete(jobId);
    this.publishLeasesSoon();
    if (this.queueMayHaveMore) this.wake();
  }

  attemptOver(attempt: LiveAttempt): void {
    this.handlerDone(attempt);
    const { jobId } = attempt.job;
    if (this.unsettled.get(jobId) === attempt) this.unsettled.delete(jobId);
    if (this.unsettled.size === 0 && this.allSettledWaiters.length > 0) {
      const waiters = this.allSettledWaiters;
      this.allSettledWaiters = [];
      for (const resolve of waiters) resolve();
    }
    if (this.queueMayHaveMore) this.wake();
  }

  private allSettled(): Promise<void> {
    if (this.unsettled.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.allSettledWaiters.push(resolve));
  }

  /** Free slots, also bounded so that outcomes waiting to be written never exceed one per slot. */
  private freeSlots(): number {
    const { workerConcurrency } = this.config;
    return Math.min(workerConcurrency - this.live.size, 2 * workerConcurrency - this.unsettled.size);
  }

  private async sleepUntilWoken(): Promise<void> {
    if (this.stopping) return;
    await this.wakeSignal.sleep();
  }

  /** Renews every live lease in one statement; an attempt missing from the answer was rescued: abort it. */
  private async heartbeat(): Promise<void> {
    const attempts = [...this.live.values()];
    if (attempts.length === 0) return;
    const sentAt = performance.now();
    try {
      const held = await this.repository.renewLeases(
        this.config.workerId,
        attempts.map((attempt) => attempt.ref),
        this.config.leaseMs,
      );
      const renewed = new Map(held.map((ref) => [`${ref.jobId}:${ref.attempt}`, ref]));
      for (const attempt of attempts) {
        const lease = renewed.get(`${attempt.job.jobId}:${attempt.job.attempt}`);
        if (lease) {
          attempt.leaseRenewed(sentAt);
          // The fallback for a cancel request whose notification this worker missed.
          if (lease.cancelRequested) attempt.abort(new JobCancelledError());
        } else if (this.live.get(attempt.job.jobId) === attempt) {
          attempt.abort(new LeaseLostError('the lease was no longer held when renewing it'));
        }
      }
      this.publishLeases();
    } catch (error) {
      this.logger.warn({ err: error }, 'renewing leases failed; attempts will stop if their leases run out');
    }
  }

  /**
   * Aborts attempts whose lease is about to run out without a renewal (database unreachable, loop stalled),
   * then publishes the leases left: the watchdog takes a deadline that does not move as the sign that the
   * loop has stopped turning.
   */
  private selfFence(): void {
    const margin = selfFenceMarginMs(this.config.leaseMs);
    for (const attempt of this.live.values()) {
      if (attempt.leaseRemainingMs() <= margin) {
        attempt.abort(new LeaseLostError('it could not be renewed in time'));
      }
    }
    this.publishLeases();
  }
}
