import { v7 as uuidv7 } from 'uuid';
import type { Pool } from 'pg';

/** The built-in job types: what a worker running the service's own handlers claims. */
export const ALL_TYPES = ['noop', 'echo', 'sleep', 'fail'];

export interface JobSeed {
  jobId?: string;
  jobType?: string;
  payload?: Record<string, unknown>;
  priority?: number;
  /** Seconds from now (database clock); negative is in the past. Default 0: due now. */
  runInSeconds?: number;
  maxAttempts?: number;
  timeoutMs?: number;
}

/** Inserts pending jobs straight into the table (everything not given gets a default); returns their ids. */
export async function insertJobs(pool: Pool, count: number, seed: JobSeed = {}): Promise<string[]> {
  const ids = Array.from({ length: count }, () => seed.jobId ?? uuidv7());
  await pool.query(
    `INSERT INTO jobs (job_id, job_type, payload, priority, run_at, available_at, max_attempts, timeout_ms)
     SELECT id, $2, $3::jsonb, $4, now() + $5 * interval '1 second', now() + $5 * interval '1 second', $6, $7
     FROM unnest($1::uuid[]) AS id`,
    [
      ids,
      seed.jobType ?? 'noop',
      JSON.stringify(seed.payload ?? {}),
      seed.priority ?? 0,
      seed.runInSeconds ?? 0,
      seed.maxAttempts ?? 3,
      seed.timeoutMs ?? 60_000,
    ],
  );
  return ids;
}

export async function insertJob(pool: Pool, seed: JobSeed = {}): Promise<string> {
  const [id] = await insertJobs(pool, 1, seed);
  return id;
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  timeoutMs = 10_000,
  everyMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
