import { performance } from 'node:perf_hooks';
import type { Logger } from '../logging/logger';
import type { AttemptRef, ClaimedJob } from '../persistence/job.repository';

/** What the claim loop is told of each attempt it handed to the runner. */
export interface AttemptSlots {
  /** The handler settled (or was abandoned): its slot can take another job while the outcome is written. */
  handlerDone(attempt: LiveAttempt): void;
  /** The outcome was written, or is known to be lost: nothing more happens to the attempt. Called once. */
  attemptOver(attempt: LiveAttempt): void;
}

/** What attempts started together share in the runner: their timeout timer, and whom to tell (see JobRunner). */
export interface AttemptGroup {
  readonly slots: AttemptSlots;
  /** One of the group's handlers settled. */
  handlerSettled(): void;
}

/** Told when an attempt is aborted; one function serves every attempt, so it is given the attempt. */
export type AbortListener = (attempt: LiveAttempt, reason: Error) => void;

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
  private abortListener: AbortListener | undefined;
  private deadline: number;
  /**
   * What the runner keeps of the attempt while it runs (see JobRunner): on the attempt itself, not in
   * closures and promises of its own, because a busy worker runs tens of thousands of attempts a second
   * and their garbage was a third of its CPU time.
   */
  handlerStartedAt = 0;
  /** How long the handler ran, in seconds; set once it settled. */
  handlerSeconds = 0;
  /** True once the handler returned, threw, or was abandoned because the attempt was aborted. */
  handlerSettled = false;
  /** The runner's group of the attempts started with this one; set before its handler is called. */
  group: AttemptGroup | undefined;
  /** The attempt's logger, made the first time something is logged about it (most attempts never are). */
  logger: Logger | undefined;

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
  onAbort(listener: AbortListener | undefined): void {
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
    this.abortListener?.(this, reason);
  }
}

/**
 * How long before its lease deadline a worker aborts an attempt it could not renew. The database's
 * lease ends later still (it counts from when it ran the statement), so this is a safety margin on top.
 */
export function selfFenceMarginMs(leaseMs: number): number {
  return Math.min(1_000, leaseMs / 10);
}
