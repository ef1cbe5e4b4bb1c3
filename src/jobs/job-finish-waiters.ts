import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { DatabaseNotifications } from '../persistence/database-notifications';
import { JobRepository } from '../persistence/job.repository';

/** A watch is asked for this much longer than the wait needs, so that waiters coming soon after share it. */
const WATCH_MARGIN_MS = 30_000;
/** How often expired watches are deleted. */
const FORGET_EXPIRED_EVERY_MS = 60_000;

/**
 * The long poll's waiting room: requests waiting for jobs to finish, woken by the database's
 * announcement of finished jobs on the process's one LISTEN connection. However many requests wait, they
 * hold no database connection while they do. The database announces only the jobs someone watches
 * (job_watches), so that the jobs nobody waits for finish without the server-wide NOTIFY lock.
 */
@Injectable()
export class JobFinishWaiters implements OnApplicationShutdown {
  private readonly waiting = new Map<string, Set<() => void>>();
  /** Per job, until when (epoch ms) the database announces its finish: a watch written or being written. */
  private readonly watches = new Map<string, { until: number; written: Promise<void> }>();
  private subscribed = false;
  private forgetTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly notifications: DatabaseNotifications,
    private readonly repository: JobRepository,
  ) {}

  /**
   * Starts waiting for job `jobId` to be announced finished (or possibly finished: after a reconnect), for
   * at most `ms`. Waiting starts before the caller reads the job, so an announcement that comes while it
   * reads is not missed; `cancel` ends the wait early.
   */
  start(jobId: string, ms: number): { finished: Promise<void>; cancel: () => void } {
    if (!this.subscribed) {
      this.subscribed = true;
      this.notifications.onJobsFinished((jobIds) => this.wake(jobIds));
    }
    const waiters = this.waiting.get(jobId) ?? new Set<() => void>();
    this.waiting.set(jobId, waiters);
    let done: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => {
      done = (): void => {
        clearTimeout(timer);
        waiters.delete(done);
        if (waiters.size === 0 && this.waiting.get(jobId) === waiters) this.waiting.delete(jobId);
        resolve();
      };
    });
    const timer = setTimeout(done, ms);
    waiters.add(done);
    return { finished, cancel: done };
  }

  /**
   * Makes sure the database announces job `jobId`'s finish until `until` (epoch ms). Call after start()
   * and before reading the job: once it resolves, a read sees any finish that will not be announced.
   */
  async watch(jobId: string, until: number): Promise<void> {
    if (!this.notifications.announcesFinishedJobs()) return;
    const known = this.watches.get(jobId);
    if (known && known.until >= until) return known.written;
    const watchUntil = until + WATCH_MARGIN_MS;
    const written = this.repository.watchJob(jobId, watchUntil - Date.now());
    this.watches.set(jobId, { until: watchUntil, written });
    this.forgetExpiredLater();
    try {
      await written;
    } catch (error) {
      if (this.watches.get(jobId)?.written === written) this.watches.delete(jobId);
      throw error;
    }
  }

  onApplicationShutdown(): void {
    clearInterval(this.forgetTimer);
  }

  private forgetExpiredLater(): void {
    if (this.forgetTimer) return;
    this.forgetTimer = setInterval(() => {
      const now = Date.now();
      for (const [jobId, watch] of this.watches) if (watch.until < now) this.watches.delete(jobId);
      this.repository.forgetExpiredWatches().catch(() => undefined);
    }, FORGET_EXPIRED_EVERY_MS);
    this.forgetTimer.unref();
  }

  private wake(jobIds: string[] | undefined): void {
    // Undefined: (re)connected, or no LISTEN at all. The watches may be gone with a crashed server.
    if (jobIds === undefined) this.watches.clear();
    const woken = jobIds ?? [...this.waiting.keys()];
    for (const jobId of woken) for (const done of [...(this.waiting.get(jobId) ?? [])]) done();
  }
}
