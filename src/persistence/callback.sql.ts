/**
 * The statements of completion-callback delivery. Deliveries are created by the database (a trigger on
 * jobs, migration 1764800000000) in the transaction that makes their job terminal; these claim them and
 * record each attempt's outcome. Every outcome is fenced by the attempt number and the worker id.
 */

/** The channel the database announces new deliveries on (the trigger that creates them); no payload. */
export const CALLBACKS_DUE_CHANNEL = 'job_service_callbacks_due';

/**
 * Take up to $1 due deliveries for worker $2, opening attempt `attempts + 1` on each, and push their due
 * time to the end of a lease of $3 ms: a worker that dies mid-delivery leaves the delivery due again once
 * the lease has passed, for any worker. SKIP LOCKED lets parallel claimers pass over rows another one holds;
 * the scan follows callback_deliveries_due_idx (pending deliveries only, by due time).
 */
export const CLAIM_DUE_CALLBACKS = `
WITH due AS (
  SELECT job_id
  FROM callback_deliveries
  WHERE state = 'pending' AND next_attempt_at <= now()
  ORDER BY next_attempt_at, job_id
  LIMIT $1
  FOR UPDATE SKIP LOCKED
)
UPDATE callback_deliveries d
SET attempts = d.attempts + 1,
    worker_id = $2,
    next_attempt_at = now() + $3 * interval '1 millisecond'
FROM due
WHERE d.job_id = due.job_id
RETURNING d.job_id, d.url, d.attempts, d.created_at`;

/**
 * Record the outcome of attempt $2 of job $1's delivery by worker $3: $4 is `delivered`, `failed` (given
 * up) or `retry` (due again after $5 ms); $6 the receiver's status, $7 the error. No row when another
 * worker has claimed the delivery since (this worker's lease ran out) or it has settled.
 */
export const RECORD_CALLBACK_ATTEMPT = `
UPDATE callback_deliveries
SET state = CASE WHEN $4 = 'retry' THEN 'pending' ELSE $4 END,
    next_attempt_at = CASE WHEN $4 = 'retry' THEN now() + $5 * interval '1 millisecond' END,
    settled_at = CASE WHEN $4 = 'retry' THEN NULL ELSE now() END,
    last_status = $6,
    last_error = $7
WHERE job_id = $1 AND attempts = $2 AND worker_id = $3 AND state = 'pending'
RETURNING job_id`;
