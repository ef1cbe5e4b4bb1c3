import type { Pool } from 'pg';

export interface HistorySeed {
  state: 'pending' | 'completed' | 'failed' | 'cancelled';
  jobType?: string;
  /** When the job was created (its UUIDv7 id carries this time), in seconds before now. */
  createdSecondsAgo: number;
  /** When it finished, in seconds before now (terminal states only). Default: when it was created. */
  finishedSecondsAgo?: number;
  /** Give each job a closed attempt record (failed jobs), as the worker would have written. */
  withAttemptRecord?: boolean;
}

/**
 * Writes `count` jobs as history, the way a restore or an import would: ids and times in the past. The
 * database refuses such rows from ordinary sessions (a job is created now, as new); a superuser's
 * session with session_replication_role = replica switches those rules off, as this test-only helper
 * does. A pending job is due in a year, so no worker claims it. Returns the ids.
 */
export async function seedHistory(pool: Pool, count: number, seed: HistorySeed): Promise<string[]> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SET LOCAL session_replication_role = replica');
    const { rows } = await client.query(
      `WITH seed AS (
         SELECT now() - make_interval(secs => $3 + g * 0.001) AS created,
                now() - make_interval(secs => coalesce($4, $3) + g * 0.001) AS finished
         FROM generate_series(1, $1) AS g
       )
       INSERT INTO jobs (job_id, job_type, state, payload, result, error, run_at, available_at, attempts,
                         failed_attempts, max_attempts, timeout_ms, worker_id, attempt_started_at, created_at,
                         updated_at, started_at, finished_at, cancel_requested_at)
       SELECT (lpad(to_hex((extract(epoch FROM created) * 1000)::bigint), 12, '0') || '7'
               || substr(md5(random()::text), 1, 3) || '8' || substr(md5(random()::text), 1, 15))::uuid,
              $5, $2, '{}',
              CASE WHEN $2 = 'completed' THEN '{}'::jsonb END,
              CASE WHEN $2 IN ('failed', 'cancelled')
                   THEN jsonb_build_object('code', CASE WHEN $2 = 'failed' THEN 'handler_error' ELSE $2 END,
                                           'message', 'from history') END,
              CASE WHEN $2 = 'pending' THEN now() + interval '1 year' ELSE created END,
              CASE WHEN $2 = 'pending' THEN now() + interval '1 year' END,
              CASE WHEN $2 = 'pending' THEN 0 ELSE 1 END,
              CASE WHEN $2 = 'failed' THEN 1 ELSE 0 END,
              1, 60000,
              CASE WHEN $2 <> 'pending' THEN 'history' END,
              CASE WHEN $2 <> 'pending' THEN created END,
              created, finished,
              CASE WHEN $2 <> 'pending' THEN created END,
              CASE WHEN $2 <> 'pending' THEN finished END,
              CASE WHEN $2 = 'cancelled' THEN finished END
       FROM seed
       RETURNING job_id, attempt_started_at, finished_at, error`,
      [count, seed.state, seed.createdSecondsAgo, seed.finishedSecondsAgo ?? null, seed.jobType ?? 'noop'],
    );
    if (seed.withAttemptRecord) {
      await client.query(
        `INSERT INTO job_attempts (job_id, attempt, worker_id, started_at, finished_at, outcome, error)
         SELECT job_id, 1, 'history', started_at, finished_at, 'failed', error
         FROM jsonb_to_recordset($1::jsonb) AS r(job_id uuid, started_at timestamptz, finished_at timestamptz, error jsonb)`,
        [
          JSON.stringify(
            rows.map((row) => ({
              job_id: row.job_id,
              started_at: row.attempt_started_at,
              finished_at: row.finished_at,
              error: row.error,
            })),
          ),
        ],
      );
    }
    await client.query('COMMIT');
    return rows.map((row) => row.job_id as string);
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
