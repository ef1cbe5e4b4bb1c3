/**
 * The hot-path statements: claim, heartbeat, the attempt transitions and the rescue sweep. Each is used
 * by one JobRepository method. Every transition is fenced: it names job_id, the attempt number and the
 * worker id, requires the lease to still hold, and changes nothing (0 rows) otherwise.
 */

/**
 * The channel workers LISTEN on, to claim jobs when they become due instead of at the next poll. The
 * payload is the earliest due time of the jobs concerned, in epoch milliseconds: a worker that hears of
 * a job due later sets a timer for it instead of polling.
 */
export const JOBS_DUE_CHANNEL = 'job_service_jobs_due';

/** Columns a worker needs to run a claimed attempt. */
const CLAIMED_COLUMNS = `j.job_id, j.job_type, j.payload, j.attempts, j.failed_attempts, j.max_attempts, j.timeout_ms,
  j.attempt_started_at, j.lease_expires_at`;

/**
 * Take up to $1 due jobs for worker $2 with a lease of $3 ms, opening attempt `attempts + 1` on each.
 * SKIP LOCKED lets parallel claimers pass over rows another claimer holds instead of waiting on them;
 * select and update are one statement, so no job is handed out twice. The scan follows jobs_claim_idx,
 * which holds only claimable rows (available_at is NULL while leased or terminal).
 */
export const CLAIM_DUE = `
WITH due AS (
  SELECT job_id, available_at AS due_at
  FROM jobs
  WHERE available_at IS NOT NULL AND available_at <= now()
  ORDER BY priority DESC, available_at, job_id
  LIMIT $1
  FOR UPDATE SKIP LOCKED
)
UPDATE jobs j
SET state = 'running',
    attempts = j.attempts + 1,
    started_at = coalesce(j.started_at, now()),
    worker_id = $2,
    attempt_started_at = now(),
    lease_expires_at = now() + $3 * interval '1 millisecond',
    available_at = NULL
FROM due
WHERE j.job_id = due.job_id
RETURNING ${CLAIMED_COLUMNS}, due.due_at`;

/**
 * Extend the leases of worker $1's live attempts listed in $2 (a JSON array of {job_id, attempt}) to
 * now() + $3 ms. Returns the attempts still held; one missing from the answer was rescued and is lost.
 */
export const RENEW_LEASES = `
UPDATE jobs j
SET lease_expires_at = now() + $3 * interval '1 millisecond'
FROM jsonb_to_recordset($2::jsonb) AS live(job_id uuid, attempt integer)
WHERE j.job_id = live.job_id AND j.attempts = live.attempt AND j.worker_id = $1
  AND j.lease_expires_at > now()
RETURNING j.job_id, j.attempts AS attempt, j.lease_expires_at`;

/**
 * Complete many attempts of worker $1 at once; $2 is a JSON array of {job_id, attempt, result}.
 * Each row is fenced on its own, so one stale attempt does not block the others. A JSON null result
 * arrives as SQL NULL from jsonb_to_recordset, hence the coalesce back to the JSON value null.
 */
export const MARK_COMPLETED = `
UPDATE jobs j
SET state = 'completed',
    result = coalesce(done.result, 'null'::jsonb),
    finished_at = now(),
    lease_expires_at = NULL
FROM jsonb_to_recordset($2::jsonb) AS done(job_id uuid, attempt integer, result jsonb)
WHERE j.job_id = done.job_id AND j.attempts = done.attempt AND j.worker_id = $1
  AND j.lease_expires_at > now()
RETURNING j.job_id`;

/**
 * Close attempt $2 of job $1 held by worker $3 with outcome $4 and error $5, and make the job claimable
 * again after $6 ms. Every outcome but `interrupted` (a release at shutdown) counts against max_attempts.
 * The attempt record and the job update are one statement, so neither exists without the other; the
 * NOTIFY tells every worker when the retry is due.
 */
export const SCHEDULE_RETRY = `
WITH closed AS (
  UPDATE jobs j
  SET lease_expires_at = NULL,
      available_at = now() + $6 * interval '1 millisecond',
      failed_attempts = j.failed_attempts + CASE WHEN $4 = 'interrupted' THEN 0 ELSE 1 END
  WHERE j.job_id = $1 AND j.attempts = $2 AND j.worker_id = $3 AND j.lease_expires_at > now()
  RETURNING j.job_id, j.attempts, j.worker_id, j.attempt_started_at, j.available_at
)
INSERT INTO job_attempts (job_id, attempt, worker_id, started_at, finished_at, outcome, error)
SELECT job_id, attempts, worker_id, attempt_started_at, now(), $4, $5::jsonb
FROM closed, (SELECT pg_notify('${JOBS_DUE_CHANNEL}',
                               coalesce((SELECT (extract(epoch FROM available_at) * 1000)::bigint::text FROM closed), '')
             )) AS wake
RETURNING job_id`;

/** Close attempt $2 of job $1 held by worker $3 with outcome $4, and fail the job with error $5. */
export const MARK_FAILED = `
WITH closed AS (
  UPDATE jobs j
  SET state = 'failed',
      error = $5::jsonb,
      finished_at = now(),
      lease_expires_at = NULL,
      failed_attempts = j.failed_attempts + 1
  WHERE j.job_id = $1 AND j.attempts = $2 AND j.worker_id = $3 AND j.lease_expires_at > now()
  RETURNING j.job_id, j.attempts, j.worker_id, j.attempt_started_at
)
INSERT INTO job_attempts (job_id, attempt, worker_id, started_at, finished_at, outcome, error)
SELECT job_id, attempts, worker_id, attempt_started_at, now(), $4, $5::jsonb FROM closed
RETURNING job_id`;

/**
 * Takes the turn to sweep when no sweep started within the last $1 ms, across all workers: one row that
 * the sweeping transaction holds, so concurrent workers skip it instead of waiting or scanning again.
 */
export const TAKE_SWEEP_TURN = `
WITH turn AS (
  SELECT singleton FROM rescue_sweeps
  WHERE last_swept_at <= now() - $1 * interval '1 millisecond'
  FOR UPDATE SKIP LOCKED
)
UPDATE rescue_sweeps s SET last_swept_at = now() FROM turn WHERE s.singleton = turn.singleton
RETURNING true AS acquired`;

/**
 * Close up to $1 attempts whose lease has expired (a dead or stuck worker) as `lost`, with error $2.
 * A job with failed attempts left becomes claimable at once and keeps its place in the queue
 * (available_at = run_at): the lease that ran out already paused it, and a crash should not send it
 * behind newer work. One whose failures reach max_attempts fails with that error (code lease_expired).
 * It scans the table (no index on lease_expires_at, so that finishing a job is a HOT update); callers
 * hold TAKE_SWEEP_TURN so that one sweep runs at a time, and SKIP LOCKED passes over rows being finished.
 */
export const RESCUE_EXPIRED_LEASES = `
WITH expired AS (
  SELECT job_id
  FROM jobs
  WHERE lease_expires_at < now()
  ORDER BY lease_expires_at
  LIMIT $1
  FOR UPDATE SKIP LOCKED
),
closed AS (
  UPDATE jobs j
  SET lease_expires_at = NULL,
      failed_attempts = j.failed_attempts + 1,
      state = CASE WHEN j.failed_attempts + 1 >= j.max_attempts THEN 'failed' ELSE 'running' END,
      error = CASE WHEN j.failed_attempts + 1 >= j.max_attempts THEN $2::jsonb END,
      finished_at = CASE WHEN j.failed_attempts + 1 >= j.max_attempts THEN now() END,
      available_at = CASE WHEN j.failed_attempts + 1 < j.max_attempts THEN j.run_at END
  FROM expired
  WHERE j.job_id = expired.job_id AND j.lease_expires_at < now()
  RETURNING j.job_id, j.attempts, j.worker_id, j.attempt_started_at, j.state
),
recorded AS (
  INSERT INTO job_attempts (job_id, attempt, worker_id, started_at, finished_at, outcome, error)
  SELECT job_id, attempts, worker_id, attempt_started_at, now(), 'lost', $2::jsonb FROM closed
)
SELECT job_id, attempts AS attempt, worker_id, state FROM closed`;

/**
 * Insert the jobs described by $1 (a JSON array) in one statement; a job without run_at is due now
 * (database clock). With an idempotency key already taken, nothing is inserted and nothing returned.
 * Row order is not the input order: callers match rows by job_id. It also sends one NOTIFY per statement,
 * delivered at commit, carrying the earliest due time, so idle workers wake without polling.
 */
export const INSERT_JOBS = `
WITH inserted AS (
INSERT INTO jobs (job_id, job_type, payload, priority, run_at, available_at, max_attempts, timeout_ms,
                  idempotency_key, request_hash)
SELECT n.job_id, n.job_type, n.payload, n.priority, coalesce(n.run_at, now()), coalesce(n.run_at, now()),
       n.max_attempts, n.timeout_ms, n.idempotency_key, n.request_hash
FROM jsonb_to_recordset($1::jsonb) AS n(job_id uuid, job_type text, payload jsonb, priority integer,
     run_at timestamptz, max_attempts integer, timeout_ms integer, idempotency_key text, request_hash text)
ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING *
)
SELECT inserted.*
FROM inserted, (SELECT pg_notify('${JOBS_DUE_CHANNEL}',
                                 coalesce((SELECT (extract(epoch FROM min(available_at)) * 1000)::bigint::text FROM inserted), '')
               )) AS wake`;

/**
 * Job $1 with its attempt records, oldest first, in one statement: both come from one snapshot. Read in
 * two statements, an attempt closed or opened in between shows up twice, or beyond the job's `attempts`.
 * Timestamps travel as text in the server's own format, so they are parsed exactly as the job's columns are.
 */
export const FIND_JOB_WITH_ATTEMPTS = `
SELECT j.*,
       coalesce((SELECT json_agg(json_build_object('attempt', a.attempt, 'worker_id', a.worker_id,
                                                   'started_at', a.started_at::text,
                                                   'finished_at', a.finished_at::text,
                                                   'outcome', a.outcome, 'error', a.error)
                                 ORDER BY a.attempt)
                 FROM job_attempts a
                 WHERE a.job_id = j.job_id), '[]') AS attempt_records
FROM jobs j
WHERE j.job_id = $1`;
