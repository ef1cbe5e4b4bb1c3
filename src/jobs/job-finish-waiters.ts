import { Injectable } from '@nestjs/common';
import { DatabaseNotifications } from '../persistence/database-notifications';

/**
 * The long poll's waiting room: requests waiting for jobs to finish, woken by the database's
 * announcement of finished jobs on the process's one LISTEN connection. However many requests wait, they
 * hold no database connection while they do.
 */
@Injectable()
export class JobFinishWaiters {
  private readonly waiting = new Map<string, Set<() => void>>();
  private subscribed = false;

  constructor(private readonly notifications: DatabaseNotifications) {}

  /** Resolves when job `jobId` is announced finished (or may have been: after a reconnect), or after `ms`. */
  until(jobId: string, ms: number): Promise<void> {
    if (!this.subscribed) {
      this.subscribed = true;
      this.notifications.onJobsFinished((jobIds) => this.wake(jobIds));
    }
    return new Promise((resolve) => {
      const waiters = this.waiting.get(jobId) ?? new Set<() => void>();
      this.waiting.set(jobId, waiters);
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(done);
        if (waiters.size === 0 && this.waiting.get(jobId) === waiters) this.waiting.delete(jobId);
        resolve();
      };
      const timer = setTimeout(done, ms);
      waiters.add(done);
    });
  }

  private wake(jobIds: string[] | undefined): void {
    const woken = jobIds ?? [...this.waiting.keys()];
    for (const jobId of woken) for (const done of [...(this.waiting.get(jobId) ?? [])]) done();
  }
}
