import { Inject, Injectable } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { LOGGER, type Logger } from '../logging/logger';
import { JobRepository } from '../persistence/job.repository';
import { ClaimLoopService } from './claim-loop.service';

const SWEEP_INTERVAL = 'worker-rescue-sweep';
const SWEEP_BATCH = 500;

/**
 * Every SWEEP_INTERVAL_MS, closes attempts whose lease expired (their worker died or stalled) as `lost`
 * and hands their jobs back to the queue in their old place, or fails them once no attempts remain. Every
 * worker schedules it, but one sweep runs per interval across all of them, so workers never repeat each other.
 */
@Injectable()
export class RescuerService {
  private started = false;
  private sweeping = false;

  constructor(
    private readonly repository: JobRepository,
    private readonly scheduler: SchedulerRegistry,
    private readonly claimLoop: ClaimLoopService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** Schedules the sweep; started with the claim loop, once the process is fully up. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.scheduler.addInterval(
      SWEEP_INTERVAL,
      setInterval(() => void this.sweep(), this.config.sweepIntervalMs),
    );
  }

  /** Rescues expired leases until none are left; returns how many it closed. Never throws. */
  async sweep(): Promise<number> {
    if (this.sweeping) return 0;
    this.sweeping = true;
    let total = 0;
    try {
      // Sweeps started by other workers count: a sweep runs once per interval across all of them (the
      // 0.8 leaves room for timer drift). Later batches of the same sweep go on regardless.
      let minIntervalMs = this.config.sweepIntervalMs * 0.8;
      for (;;) {
        const rescued = await this.repository.rescueExpiredLeases(SWEEP_BATCH, minIntervalMs);
        minIntervalMs = 0;
        for (const attempt of rescued) {
          this.logger.warn(
            {
              job_id: attempt.jobId,
              attempt: attempt.attempt,
              lost_worker: attempt.workerId,
              job_state: attempt.state,
            },
            'lease expired: attempt closed as lost',
          );
        }
        total += rescued.length;
        // Rescued jobs are due at once: look for them now, not at the next poll.
        if (rescued.length > 0) this.claimLoop.wake();
        if (rescued.length < SWEEP_BATCH) return total;
      }
    } catch (error) {
      this.logger.warn({ err: error }, 'rescue sweep failed; retrying at the next interval');
      return total;
    } finally {
      this.sweeping = false;
    }
  }
}
