/** Job states, declared once; the jobs_state_known CHECK constraint mirrors this list. */
export enum JobState {
  Pending = 'pending',
  Running = 'running',
  Completed = 'completed',
  Failed = 'failed',
  /** Terminal, reached only through an explicit cancel request. */
  Cancelled = 'cancelled',
}

export const JOB_STATES = Object.values(JobState);

/** How an attempt ended. A live attempt is `running`; `succeeded` is told by the completed job row. */
export enum AttemptOutcome {
  Running = 'running',
  Succeeded = 'succeeded',
  Failed = 'failed',
  TimedOut = 'timed_out',
  Lost = 'lost',
  Interrupted = 'interrupted',
  /** Stopped by a cancel request. */
  Cancelled = 'cancelled',
}

/** States a job never leaves. */
export const TERMINAL_STATES: readonly JobState[] = [JobState.Completed, JobState.Failed, JobState.Cancelled];

/** Outcomes that count against max_attempts. An interrupted attempt (released at shutdown) does not. */
export const FAILING_OUTCOMES = [
  AttemptOutcome.Failed,
  AttemptOutcome.TimedOut,
  AttemptOutcome.Lost,
] as const;
export type ClosingOutcome =
  | AttemptOutcome.Failed
  | AttemptOutcome.TimedOut
  | AttemptOutcome.Lost
  | AttemptOutcome.Interrupted
  | AttemptOutcome.Cancelled;

export interface JobErrorBody {
  code: string;
  message: string;
  [detail: string]: unknown;
}
