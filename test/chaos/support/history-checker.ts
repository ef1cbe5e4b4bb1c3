import type { Pool } from 'pg';

const FAILING = new Set(['failed', 'timed_out', 'lost']);

export interface HistorySummary {
  jobs: number;
  completed: number;
  failed: number;
  cancelled: number;
  attempts: number;
  lostAttempts: number;
}

interface Interval {
  attempt: number;
  outcome: string;
  startedAt: Date;
  finishedAt: Date | null;
}

/**
 * Reads the jobs and attempts tables and lists every broken guarantee: an accepted job missing or not
 * terminal, a completed job with more than one success, overlapping attempts, a gap in attempt numbers,
 * more failed attempts than max_attempts, a cancelled job that was not cancelled on request, succeeded,
 * or started an attempt after its cancel was requested. An empty `violations` list is a clean history.
 */
export async function checkHistory(
  pool: Pool,
  acceptedJobIds: string[],
): Promise<{ violations: string[]; summary: HistorySummary }> {
  const violations: string[] = [];
  const { rows: jobs } = await pool.query(
    `SELECT job_id, state, attempts, max_attempts, worker_id, attempt_started_at, lease_expires_at, finished_at,
            cancel_requested_at, error
     FROM jobs WHERE job_id = ANY($1::uuid[])`,
    [acceptedJobIds],
  );
  const { rows: records } = await pool.query(
    `SELECT job_id, attempt, outcome, started_at, finished_at FROM job_attempts WHERE job_id = ANY($1::uuid[])
     ORDER BY job_id, attempt`,
    [acceptedJobIds],
  );
  const found = new Set(jobs.map((job) => job.job_id as string));
  for (const id of acceptedJobIds) if (!found.has(id)) violations.push(`accepted job ${id} is missing`);

  const recordsByJob = new Map<string, Interval[]>();
  for (const record of records) {
    const list = recordsByJob.get(record.job_id) ?? [];
    list.push({
      attempt: record.attempt,
      outcome: record.outcome,
      startedAt: record.started_at,
      finishedAt: record.finished_at,
    });
    recordsByJob.set(record.job_id, list);
  }

  const summary: HistorySummary = {
    jobs: jobs.length,
    completed: 0,
    failed: 0,
    cancelled: 0,
    attempts: 0,
    lostAttempts: 0,
  };
  for (const job of jobs) {
    if (job.state === 'completed') summary.completed++;
    else if (job.state === 'failed') summary.failed++;
    else if (job.state === 'cancelled') summary.cancelled++;
    else violations.push(`job ${job.job_id} is ${job.state}, not terminal`);
    if (job.state === 'cancelled' && (job.cancel_requested_at === null || job.error?.code !== 'cancelled')) {
      violations.push(`job ${job.job_id} is cancelled without a cancel request and its error`);
    }

    const history = [...(recordsByJob.get(job.job_id) ?? [])];
    if (job.state === 'completed') {
      history.push({
        attempt: job.attempts,
        outcome: 'succeeded',
        startedAt: job.attempt_started_at,
        finishedAt: job.finished_at,
      });
    } else if (job.lease_expires_at !== null) {
      history.push({
        attempt: job.attempts,
        outcome: 'running',
        startedAt: job.attempt_started_at,
        finishedAt: null,
      });
    }
    history.sort((a, b) => a.attempt - b.attempt);
    summary.attempts += history.length;
    summary.lostAttempts += history.filter((h) => h.outcome === 'lost').length;

    const numbers = history.map((h) => h.attempt);
    const expected = Array.from({ length: job.attempts }, (_, i) => i + 1);
    if (numbers.join() !== expected.join()) {
      violations.push(
        `job ${job.job_id}: attempts on record ${numbers.join(',')} but attempts = ${job.attempts}`,
      );
    }
    const successes = history.filter((h) => h.outcome === 'succeeded').length;
    if (successes > 1) violations.push(`job ${job.job_id} succeeded ${successes} times`);
    if (job.state === 'cancelled' && successes > 0)
      violations.push(`job ${job.job_id} is cancelled but succeeded`);
    const requestedAt: Date | null = job.cancel_requested_at;
    const lateStart = requestedAt && history.find((h) => h.startedAt.getTime() > requestedAt.getTime());
    if (lateStart) {
      violations.push(
        `job ${job.job_id}: attempt ${lateStart.attempt} started after its cancel was requested (${requestedAt.toISOString()})`,
      );
    }
    const failures = history.filter((h) => FAILING.has(h.outcome)).length;
    if (failures > job.max_attempts) {
      violations.push(
        `job ${job.job_id}: ${failures} failed attempts exceed max_attempts ${job.max_attempts}`,
      );
    }
    for (let i = 1; i < history.length; i++) {
      const previous = history[i - 1];
      const current = history[i];
      if (previous.finishedAt === null || current.startedAt.getTime() < previous.finishedAt.getTime()) {
        violations.push(
          `job ${job.job_id}: attempt ${current.attempt} started at ${current.startedAt.toISOString()} ` +
            `before attempt ${previous.attempt} ended (${previous.finishedAt?.toISOString() ?? 'still running'})`,
        );
      }
    }
  }
  return { violations, summary };
}

/** Median and max of a list of numbers (0 for an empty list). */
export function medianAndMax(values: number[]): { median: number; max: number; count: number } {
  if (values.length === 0) return { median: 0, max: 0, count: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  return { median, max: sorted[sorted.length - 1], count: sorted.length };
}
