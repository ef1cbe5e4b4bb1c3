import { Inject, Injectable, type BeforeApplicationShutdown } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { LOGGER, type Logger } from '../logging/logger';
import { MetricsService } from '../metrics/metrics.service';
import { JobRepository, type RetentionPolicy } from '../persistence/job.repository';

const RETENTION_INTERVAL = 'worker-retention-sweep';
/** Jobs looked at, and so deleted at most, per transaction: short transactions, short row locks. */
const BATCH = 1_000;
/**
 * The walk looks only at jobs created this long before the shortest retention ran out: a job that
 * finished within this long of its creation is deleted on time. One that took longer (scheduled far
 * ahead, retried for hours) is deleted at the next lap.
 */
const WALK_SLACK_MS = 10 * 60_000;
/** How often the walk starts again from the oldest job, for the jobs it passed before they qualified. */
const LAP_MS = 60 * 60_000;
/** The database refuses to delete a job whose id is under a minute old; stay clear of that. */
const YOUNGEST_DELETABLE_MS = 61_000;
/** Per-second finish counts kept: the last hour, for per-minute figures over it. */
const FINISHES_KEPT_MS = 61 * 60_000;

/**
 * Every RETENTION_SWEEP_INTERVAL_MS, deletes terminal jobs (with their attempt records) whose finished_at
 * is older than their state's retention, walking the primary key from the oldest job in batches of
 * BATCH, each its own transaction, until the walk reaches the horizon. Every worker schedules it; one
 * runs at a time across all of them, and a pass goes on with batches back to back while others skip.
 */
@Injectable()
export class RetentionService implements BeforeApplicationShutdown {
  private started = false;
  private pass: Promise<number> | undefined;
  private stopping = false;

  constructor(
    private readonly repository: JobRepository,
    private readonly scheduler: SchedulerRegistry,
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** Schedules the passes; started with the rest of the worker, once the process is fully up. */
  start(): void {
    if (this.started || this.stopping) return;
    this.started = true;
    this.scheduler.addInterval(
      RETENTION_INTERVAL,
      setInterval(() => void this.sweep(), this.config.retentionSweepIntervalMs),
    );
  }

  /** Lets a pass in flight finish its batch (one short transaction) and starts no other. */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    await this.pass;
  }

  /** Runs one pass unless one is running here already; returns how many jobs it deleted. Never throws. */
  sweep(): Promise<number> {
    if (this.stopping) return Promise.resolve(0);
    this.pass ??= this.runPass().finally(() => (this.pass = undefined));
    return this.pass;
  }

  private async runPass(): Promise<number> {
    const retention = this.policy();
    const horizonMs = retention
      ? Math.max(
          YOUNGEST_DELETABLE_MS,
          Math.min(...Object.values(retention).filter((ms) => ms > 0)) + WALK_SLACK_MS,
        )
      : YOUNGEST_DELETABLE_MS;
    // A pass started by another worker counts (the 0.8 leaves room for timer drift); the later batches
    // of this pass go on regardless.
    let minIntervalMs = this.config.retentionSweepIntervalMs * 0.8;
    let total = 0;
    try {
      while (!this.stopping) {
        const batch = await this.repository.sweepRetention({
          minIntervalMs,
          retention,
          horizonMs,
          limit: BATCH,
          lapMs: LAP_MS,
          finishesKeptMs: FINISHES_KEPT_MS,
        });
        if (batch === null) break;
        minIntervalMs = 0;
        for (const [state, count] of Object.entries(batch.deleted)) {
          this.metrics.jobsDeleted.inc({ state }, count);
          total += count;
        }
        if (batch.caughtUp) break;
      }
      if (total > 0) this.logger.info({ deleted: total }, 'retention: deleted jobs past their retention');
    } catch (error) {
      this.metrics.retentionSweepFailures.inc();
      this.logger.error(
        { err: error, deleted: total },
        'retention pass failed; retrying at the next interval',
      );
    }
    return total;
  }

  /** The configured retention, or null when every state is kept forever. */
  private policy(): RetentionPolicy | null {
    const { retentionCompletedMs, retentionFailedMs, retentionCancelledMs } = this.config;
    if (retentionCompletedMs === 0 && retentionFailedMs === 0 && retentionCancelledMs === 0) return null;
    return {
      completedMs: retentionCompletedMs,
      failedMs: retentionFailedMs,
      cancelledMs: retentionCancelledMs,
    };
  }
}
