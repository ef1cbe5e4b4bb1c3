import type { JobAttemptEntity } from '../persistence/job-attempt.entity';
import { CallbackDeliveryState } from '../persistence/callback-delivery.entity';
import { AttemptOutcome, JobState, TERMINAL_STATES } from '../persistence/job-state';
import type { JobEntity } from '../persistence/job.entity';
import type {
  AttemptResponse,
  JobCallbackResponse,
  JobDetailResponse,
  JobResponse,
} from './dto/job.response';

/**
 * The ISO text of the last timestamp presented. toISOString costs about half a microsecond, three or more
 * per job, and jobs created together share their timestamps (the now() of one statement): a batch of a
 * thousand spent more time there than on the rest of its presentation. As the insert's row parser does,
 * only the last value is kept: consecutive repeats are the case that pays.
 */
let lastIsoEpochMs = NaN;
let lastIsoText = '';

function isoText(date: Date): string {
  const epochMs = date.getTime();
  if (epochMs !== lastIsoEpochMs) {
    lastIsoText = date.toISOString();
    lastIsoEpochMs = epochMs;
  }
  return lastIsoText;
}

const iso = (date: Date | null): string | null => (date ? isoText(date) : null);

/** The API view of a job row: snake_case fields exactly as the contract names them. */
export function presentJob(job: JobEntity): JobResponse {
  const waitingForRetry = job.state === JobState.Running && job.leaseExpiresAt === null;
  return {
    job_id: job.jobId,
    job_type: job.jobType,
    state: job.state,
    payload: job.payload,
    result: job.state === JobState.Completed ? job.result : null,
    error: job.error ? { ...job.error } : null,
    priority: job.priority,
    run_at: isoText(job.runAt),
    attempts: job.attempts,
    max_attempts: job.maxAttempts,
    timeout_ms: job.timeoutMs,
    created_at: isoText(job.createdAt),
    updated_at: isoText(job.updatedAt),
    started_at: iso(job.startedAt),
    finished_at: iso(job.finishedAt),
    next_attempt_at: waitingForRetry ? iso(job.availableAt) : null,
    cancel_requested_at: iso(job.cancelRequestedAt),
    retry_of: job.retryOf,
    callback: presentCallback(job),
  };
}

/**
 * The callback as it stands. A finished job with a callback_url always has its delivery (the database
 * creates it in the transition's transaction); a row read by the statement that finished the job cannot
 * see it yet, and shows it as it is at that moment: pending, no attempt.
 */
function presentCallback(job: JobEntity): JobCallbackResponse | null {
  if (!job.callbackUrl) return null;
  const delivery = job.callbackDelivery;
  if (delivery) return { url: delivery.url, state: delivery.state, attempts: delivery.attempts };
  const finished = TERMINAL_STATES.includes(job.state);
  return { url: job.callbackUrl, state: finished ? CallbackDeliveryState.Pending : 'waiting', attempts: 0 };
}

/**
 * The job with its whole attempt history: the closed attempts on record, plus the latest attempt as the
 * job row tells it when it is live (`running`) or succeeded.
 */
export function presentJobDetail(job: JobEntity, records: JobAttemptEntity[]): JobDetailResponse {
  const history: AttemptResponse[] = records.map((record) => ({
    attempt: record.attempt,
    worker_id: record.workerId,
    started_at: record.startedAt.toISOString(),
    finished_at: record.finishedAt.toISOString(),
    outcome: record.outcome,
    error: { ...record.error },
  }));
  const latest = job.attempts > 0 && job.workerId && job.attemptStartedAt ? job : null;
  if (latest && job.leaseExpiresAt !== null) {
    history.push({
      attempt: job.attempts,
      worker_id: job.workerId!,
      started_at: job.attemptStartedAt!.toISOString(),
      finished_at: null,
      outcome: AttemptOutcome.Running,
      error: null,
    });
  } else if (latest && job.state === JobState.Completed) {
    history.push({
      attempt: job.attempts,
      worker_id: job.workerId!,
      started_at: job.attemptStartedAt!.toISOString(),
      finished_at: iso(job.finishedAt),
      outcome: AttemptOutcome.Succeeded,
      error: null,
    });
  }
  return { ...presentJob(job), attempt_history: history };
}
