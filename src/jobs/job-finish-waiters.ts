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

  private wake(jobIds: string[] | undefined): void {
    const woken = jobIds ?? [...this.waiting.keys()];
    for (const jobId of woken) for (const done of [...(this.waiting.get(jobId) ?? [])]) done();
  }
}
