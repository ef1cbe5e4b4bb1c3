import { Inject, Injectable } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { performance } from 'node:perf_hooks';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { LOGGER, type Logger } from '../logging/logger';
import { MetricsService } from '../metrics/metrics.service';
import { JobRepository } from '../persistence/job.repository';
import { ClaimLoopService } from './claim-loop.service';

const SWEEP_INTERVAL = 'worker-rescue-sweep';
const SWEEP_BATCH = 500;
/** Readiness fails once no sweep has completed for this many intervals. */
const STALE_AFTER_INTERVALS = 5;

/**
 * Every SWEEP_INTERVAL_MS, closes attempts whose lease expired (their worker died or stalled) as `lost`
 * and hands their jobs back to the queue in their old place, or fails them once no attempts remain. Every
 * worker schedules it, but one sweep runs per interval across all of them, so workers never repeat each other.
 */
@Injectable()
export class RescuerService {
  private started = false;
  private sweeping = false;
  private startedAt = 0;
  private lastSweepAge: { ageMs: number | null; readAt: number } | undefined;

  constructor(
    private readonly repository: JobRepository,
    private readonly scheduler: SchedulerRegistry,
    private readonly claimLoop: ClaimLoopService,
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    metrics.trackSweepAge(() => this.sweepAgeMs());
  }

  /** Schedules the sweep; started with the claim loop, once the process is fully up. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.startedAt = performance.now();
    this.scheduler.addInterval(
      SWEEP_INTERVAL,
      setInterval(() => void this.sweep(), this.config.sweepIntervalMs),
    );
  }

  /**
   * Rescues expired leases until none are left; returns how many it closed. Never throws. A lease the
   * database refuses to close is logged, counted and passed over for the rest of this sweep.
   */
  async sweep(): Promise<number> {
    if (this.sweeping) return 0;
    this.sweeping = true;
    let total = 0;
    try {
      // Sweeps started by other workers count: a sweep runs once per interval across all of them (the
      // 0.8 leaves room for timer drift). Later batches of the same sweep go on regardless.
      let minIntervalMs = this.config.sweepIntervalMs * 0.8;
      const refused: string[] = [];
      for (;;) {
        const batch = await this.repository.rescueExpiredLeases(SWEEP_BATCH, minIntervalMs, refused);
        if (batch === null) return total;
        minIntervalMs = 0;
        for (const attempt of batch.rescued) {
          this.logger.warn(
            {
              job_id: attempt.jobId,
              job_type: attempt.jobType,
              attempt: attempt.attempt,
              // The attempt's worker, the one that stopped renewing; the sweep's own is rescued_by.
              worker_id: attempt.workerId,
              rescued_by: this.config.workerId,
              job_state: attempt.state,
            },
            'lease expired: attempt closed as lost',
          );
        }
        for (const { jobId, reason } of batch.refused) {
          this.logger.error(
            { job_id: jobId, reason },
            'rescue sweep: the database refused to close this lease',
          );
          this.metrics.rescueRefusals.inc();
          refused.push(jobId);
        }
        total += batch.rescued.length;
        // Rescued jobs are due at once: look for them now, not at the next poll.
        if (batch.rescued.length > 0) this.claimLoop.wake();
        if (batch.rescued.length + batch.refused.length < SWEEP_BATCH) {
          await this.repository.markSweepCompleted();
          return total;
        }
      }
    } catch (error) {
      this.metrics.rescueSweepFailures.inc();
      this.logger.error({ err: error }, 'rescue sweep failed; retrying at the next interval');
      return total;
    } finally {
      this.sweeping = false;
      await this.readSweepAge();
    }
  }

  /**
   * False when no sweep has gone through the expired leases for several intervals (sweeps failing, or
   * none running), once this process has been up long enough to tell.
   */
  sweepsAreCurrent(): boolean {
    const staleAfterMs = STALE_AFTER_INTERVALS * this.config.sweepIntervalMs;
    if (!this.started || performance.now() - this.startedAt < staleAfterMs) return true;
    const ageMs = this.sweepAgeMs();
    return ageMs !== null && ageMs < staleAfterMs;
  }

  /** Milliseconds since a sweep last completed, as last read (database clock); null if none ever did. */
  sweepAgeMs(): number | null {
    const age = this.lastSweepAge;
    if (age === undefined || age.ageMs === null) return null;
    return age.ageMs + (performance.now() - age.readAt);
  }

  private async readSweepAge(): Promise<void> {
    try {
      this.lastSweepAge = { ageMs: await this.repository.sweepCompletedAgeMs(), readAt: performance.now() };
    } catch {
      // The database indicator reports an unreachable database; keep the last reading.
    }
  }
}
