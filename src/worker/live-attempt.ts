import { performance } from 'node:perf_hooks';
import type { AttemptRef, ClaimedJob } from '../persistence/job.repository';

export interface AttemptLogFields {
  job_id: string;
  job_type: string;
  attempt: number;
  worker_id: string;
}

/**
 * One attempt this worker is running. Its lease deadline is kept on the local monotonic clock and is
 * always earlier than the database's lease_expires_at: it counts from the moment the claim (or the last
 * heartbeat) was *sent*, while the database counts from when it ran the statement.
 */
export class LiveAttempt {
  /** Made when the handler first reads its signal: most handlers never do, and one per job costs. */
  private controller: AbortController | undefined;
  private reason: Error | undefined;
  private abortListener: ((reason: Error) => void) | undefined;
  private deadline: number;

  constructor(
    readonly job: ClaimedJob,
    leaseSentAt: number,
    private readonly leaseMs: number,
  ) {
    this.deadline = leaseSentAt + leaseMs;
  }

  /** The fields every log line about this attempt carries. */
  logFields(workerId: string): AttemptLogFields {
    return {
      job_id: this.job.jobId,
      job_type: this.job.jobType,
      attempt: this.job.attempt,
      worker_id: workerId,
    };
  }

  get ref(): AttemptRef {
    return { jobId: this.job.jobId, attempt: this.job.attempt };
  }

  /** The handler's AbortSignal; already aborted if the attempt was. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.reason) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  get aborted(): boolean {
    return this.reason !== undefined;
  }

  /** Why the attempt was aborted; undefined while it was not. */
  get abortReason(): Error | undefined {
    return this.reason;
  }

  /** The one listener told of the abort (the runner's); undefined removes it. */
  onAbort(listener: ((reason: Error) => void) | undefined): void {
    this.abortListener = listener;
  }

  /** Records a successful renewal sent at `sentAt` (performance.now()). */
  leaseRenewed(sentAt: number): void {
    this.deadline = Math.max(this.deadline, sentAt + this.leaseMs);
  }

  /** The local deadline, on the performance.now() clock. */
  get leaseDeadline(): number {
    return this.deadline;
  }

  /** Milliseconds until this worker must consider the lease gone. */
  leaseRemainingMs(now: number = performance.now()): number {
    return this.deadline - now;
  }

  holdsLease(now: number = performance.now()): boolean {
    return this.leaseRemainingMs(now) > 0;
  }

  /** Aborts the handler; the first reason wins. */
  abort(reason: Error): void {
    if (this.reason) return;
    this.reason = reason;
    this.controller?.abort(reason);
    this.abortListener?.(reason);
  }
}

/**
 * How long before its lease deadline a worker aborts an attempt it could not renew. The database's
 * lease ends later still (it counts from when it ran the statement), so this is a safety margin on top.
 */
export function selfFenceMarginMs(leaseMs: number): number {
  return Math.min(1_000, leaseMs / 10);
}
