/**
 * The hot-path statements: claim, heartbeat, the attempt transitions and the rescue sweep. Each is used
 * by one JobRepository method. Every transition is fenced: it names job_id, the attempt number and the
 * worker id, requires the lease to still hold, and changes nothing (0 rows) otherwise. The claim, the
 * completion and the lease renewal set updated_at = now() themselves: with a move the update guard allows,
 * that spares each row the guard's function call (migration 1764970000000).
 */

/**
 * The channel workers LISTEN on, to claim jobs when they become due instead of at the next poll. The
 * payload is the earliest due time of the jobs concerned, in epoch milliseconds rounded down: a worker that
 * hears of a job due later sets a timer for it instead of polling, and one due now is never mistaken for
 * one due a fraction of a millisecond later (which would wait for a timer).
 */
export const JOBS_DUE_CHANNEL = 'job_service_jobs_due';

/**
 * The channel a cancel request is announced on, with the job id as payload: the worker holding that job's
 * live attempt aborts it at once. Heartbeats carry the same news, for a worker that missed it.
 */
export const CANCEL_REQUESTED_CHANNEL = 'job_service_cancel_requested';

/** The error a cancelled job carries: code `cancelled`, the operator's reason as its message. */
const CANCEL_ERROR = (reason: string): string =>
  `jsonb_build_object('code', 'cancelled', 'message', coalesce(${reason}, 'Cancelled on request'))`;

/**
 * The channel on which the database announces jobs that reached a terminal state while a long poll
 * watches them (a trigger of migration 1764650000000, narrowed by 1764960000000), their ids
 * comma-separated: the API's long poll answers its waiters from it.
 */
export const JOBS_FINISHED_CHANNEL = 'job_service_jobs_finished';

/**
 * Watch job $1 until now() + $2 ms: its finish is then announced on JOBS_FINISHED_CHANNEL. The share
 * lock on the job's row orders this statement against the transition: one that updated the row first is
 * waited for (a read after this statement sees it), one that comes later finds the watch. No row for a
 * job that does not exist or has finished already (it never changes again).
 */
export const WATCH_JOB = `
WITH job AS (
  SELECT job_id FROM jobs WHERE job_id = $1 AND state NOT IN ('completed', 'failed', 'cancelled') FOR SHARE
)
INSERT INTO job_watches AS w (job_id, expires_at)
SELECT job_id, now() + $2 * interval '1 millisecond' FROM job
ON CONFLICT (job_id) DO UPDATE SET expires_at = greatest(w.expires_at, excluded.expires_at)`;

/** Watches whose wait is over. */
export const FORGET_EXPIRED_WATCHES = `DELETE FROM job_watches WHERE expires_at < now()`;

/**
 * A job is due: claimable (available_at is NULL while leased or terminal) and its time has come. The one
 * definition of "due" for the claim, the counts of due work and the autoscaler's query; written so that
 * jobs_claim_idx (claimable rows only) serves it.
 */
export const DUE = `available_at IS NOT NULL AND available_at <= now()`;

/** Attempts running now, from the counters the triggers keep (job_counts.live, a few hundred rows). */
const LIVE_ATTEMPTS = `(SELECT coalesce(sum(live), 0)::bigint FROM job_counts)`;

/**
 * The work the worker fleet has: due jobs of types that are not paused, plus attempts running now. The
 * autoscaler (KEDA's PostgreSQL trigger in deploy/k8s/worker.yaml, rendered from this constant by
 * `npm run k8s:render`) divides it by WORKER_CONCURRENCY for the number of workers. Counting only due jobs
 * scaled workers down while long jobs still ran once the backlog drained, and their attempts were released
 * `interrupted` and started over. Running attempts come from the counters the triggers keep (job_counts.live,
 * a few hundred rows), never a scan of the table; due jobs from the claim index, so the cost grows with the
 * backlog only. Types no worker has a handler for count as due: the database cannot know them.
 */
export const WORKER_DEMAND = `
SELECT (SELECT count(*) FROM jobs
        WHERE ${DUE}
          AND job_type <> ALL(ARRAY(SELECT job_type FROM job_type_pauses)))
     + ${LIVE_ATTEMPTS} AS demand`;

/**
 * Columns a worker needs to run a claimed attempt, named as the fields of ClaimedJob, so that each row the
 * driver parses is the claimed job itself: copying 500 rows a claim into new objects was a seventh of what a
 * busy worker allocated. Times it only measures come as numbers (milliseconds): parsing timestamp text into
 * Dates was a visible share of a worker's CPU per job.
 */
const CLAIMED_COLUMNS = `j.job_id AS "jobId", j.job_type AS "jobType", j.payload, j.attempts AS attempt,
  j.failed_attempts AS "failedAttempts", j.max_attempts AS "maxAttempts", j.timeout_ms AS "timeoutMs"`;

/**
 * Take up to $1 due jobs of the types in $4 (those this worker has handlers for) for worker $2 with a
 * lease of $3 ms, opening attempt `attempts + 1` on each. SKIP LOCKED lets parallel claimers pass over
 * rows another claimer holds instead of waiting on them; select and update are one statement, so no job
 * is handed out twice. The scan follows jobs_claim_idx, which holds only claimable rows (available_at is
 * NULL while leased or terminal); due jobs of other types are passed over and stay pending for a worker
 * that can run them, and so are paused types (read once per statement, so a pause holds from the next
 * claim of every worker on). The runnable types are one array, matched with `= ANY`: written as
 * `<> ALL(paused)`, the planner guesses that almost no row passes, and sorts the whole queue instead of
 * following the index (20 ms instead of 0.2 ms per claim of 10 at 50,000 due jobs). The update finds the
 * locked rows by their tuple ids, one TID scan of the list whatever the table's size: joined on job_id, the
 * planner hashed a sequential scan of the whole table once a claim was large against the table (500 of
 * 50,000 rows: 14 ms instead of 4.4). The rows were locked by this statement, so their tuple ids hold; a
 * row updated by another transaction between the snapshot and the lock is locked in its newer version,
 * which this statement's snapshot does not see: it is left unclaimed until the next claim.
 *
 * The limit is read through a subquery, `(SELECT $1::int)`, so that no plan knows it. With a plain `$1`,
 * the plan made for each claim's own limit always looked cheaper than the one plan for any limit, and the
 * server planned every claim again: 0.3-0.6 ms of planning for a claim that runs in about 1 ms when it
 * takes one job, the common case of an idle worker picking up each new job. Unknown to both, the plans
 * cost the same and the server keeps the one plan from the sixth claim of a connection on; it is the same
 * plan (the claim index in order, the rows found again by their tuple ids).
 */
export const CLAIM_DUE = `
WITH due AS (
  SELECT ctid AS row_id, job_id, available_at AS due_at
  FROM jobs
  WHERE ${DUE}
    AND job_type = ANY(ARRAY(SELECT unnest($4::text[]) EXCEPT SELECT job_type FROM job_type_pauses))
  ORDER BY priority DESC, available_at, job_id
  LIMIT (SELECT $1::int)
  FOR UPDATE SKIP LOCKED
)
UPDATE jobs j
SET state = 'running',
    attempts = j.attempts + 1,
    started_at = coalesce(j.started_at, now()),
    worker_id = $2,
    attempt_started_at = now(),
    lease_expires_at = now() + $3 * interval '1 millisecond',
    available_at = NULL,
    updated_at = now()
FROM due
WHERE j.ctid = ANY(ARRAY(SELECT row_id FROM due)) AND j.job_id = due.job_id
RETURNING ${CLAIMED_COLUMNS},
  (extract(epoch FROM now() - due.due_at) * 1000)::float8 AS "claimLatencyMs"`;

/**
 * The rows `j` of jobs whose attempts are listed in `list` (a relation of job_id and attempt) and still held
 * by worker $1, each fenced on its own. They are found by their ids, `job_id = ANY(...)`, which the primary
 * key serves whatever the planner guesses of the rest. Joined on the list alone, the planner guessed 100
 * entries and almost no row of jobs holding a lease (its statistics are mostly taken while jobs wait or are
 * done), and on a table of up to some tens of thousands of rows it read the whole table and matched every
 * row against the list: a completion of 500 took 90 ms instead of 18 on a table of 6,000 jobs, and every
 * completion of one job read all the others. `list` is a materialized CTE, so the list is read once.
 */
const heldListedAttempts = (list: string): string =>
  `j.job_id = ANY(ARRAY(SELECT job_id FROM ${list})) AND j.job_id = ${list}.job_id AND j.attempts = ${list}.attempt
  AND j.worker_id = $1 AND j.lease_expires_at > now()`;

/**
 * Extend the leases of worker $1's live attempts listed in $2 (a JSON array of {job_id, attempt}) to
 * now() + $3 ms. Returns the attempts still held, each saying whether a cancel was requested for it; one
 * missing from the answer was rescued and is lost.
 */
export const RENEW_LEASES = `
WITH live AS MATERIALIZED (
  SELECT * FROM jsonb_to_recordset($2::jsonb) AS live(job_id uuid, attempt integer)
)
UPDATE jobs j
SET lease_expires_at = now() + $3 * interval '1 millisecond',
    updated_at = now()
FROM live
WHERE ${heldListedAttempts('live')}
RETURNING j.job_id, j.attempts AS attempt, j.lease_expires_at, j.cancel_requested_at IS NOT NULL AS cancel_requested`;

/**
 * Complete many attempts of worker $1 at once; $2 is a JSON array of {job_id, attempt, result}.
 * Each row is fenced on its own, so one stale attempt does not block the others. A JSON null result
 * arrives as SQL NULL from jsonb_to_recordset, hence the coalesce back to the JSON value null.
 */
export const MARK_COMPLETED = `
WITH done AS MATERIALIZED (
  SELECT * FROM jsonb_to_recordset($2::jsonb) AS done(job_id uuid, attempt integer, result jsonb)
)
UPDATE jobs j
SET state = 'completed',
    result = coalesce(done.result, 'null'::jsonb),
    finished_at = now(),
    lease_expires_at = NULL,
    updated_at = now()
FROM done
WHERE ${heldListedAttempts('done')}
RETURNING j.job_id`;

/**
 * Close attempt $2 of job $1 held by worker $3 with outcome $4 and error $5, and make the job claimable
 * again after $6 ms, or, when a cancel was requested meanwhile, cancel the job instead of retrying it.
 * Every outcome but `interrupted` (a release at shutdown) counts against max_attempts. The attempt record
 * and the job update are one statement, so neither exists without the other; the NOTIFY tells every
 * worker when the retry is due.
 */
export const SCHEDULE_RETRY = `
WITH closed AS (
  UPDATE jobs j
  SET lease_expires_at = NULL,
      available_at = CASE WHEN j.cancel_requested_at IS NULL THEN now() + $6 * interval '1 millisecond' END,
      state = CASE WHEN j.cancel_requested_at IS NULL THEN j.state ELSE 'cancelled' END,
      error = CASE WHEN j.cancel_requested_at IS NOT NULL THEN ${CANCEL_ERROR('j.cancel_reason')} END,
      finished_at = CASE WHEN j.cancel_requested_at IS NOT NULL THEN now() END,
      failed_attempts = j.failed_attempts + CASE WHEN $4 = 'interrupted' THEN 0 ELSE 1 END
  WHERE j.job_id = $1 AND j.attempts = $2 AND j.worker_id = $3 AND j.lease_expires_at > now()
  RETURNING j.job_id, j.attempts, j.worker_id, j.attempt_started_at, j.available_at
)
INSERT INTO job_attempts (job_id, attempt, worker_id, started_at, finished_at, outcome, error)
SELECT job_id, attempts, worker_id, attempt_started_at, now(), $4, $5::jsonb
FROM closed, (SELECT pg_notify('${JOBS_DUE_CHANNEL}',
                               coalesce((SELECT floor(extract(epoch FROM available_at) * 1000)::bigint::text FROM closed), '')
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

/** Due jobs per type among types that are not in $1: work that this worker cannot run, waiting for one that can. */
export const COUNT_DUE_WITHOUT_HANDLER = `
SELECT job_type, count(*)::int AS due
FROM jobs
WHERE ${DUE} AND job_type <> ALL($1::text[])
GROUP BY job_type`;

/**
 * Close attempt $2 of job $1 held by worker $3 as `cancelled` and cancel the job: the worker stopped the
 * handler because a cancel was requested. Fenced like every transition; the lease need not hold, as
 * nothing but this cancel (or a rescue that cancels too) can follow a requested cancel.
 */
export const MARK_CANCELLED = `
WITH closed AS (
  UPDATE jobs j
  SET state = 'cancelled',
      error = ${CANCEL_ERROR('j.cancel_reason')},
      finished_at = now(),
      lease_expires_at = NULL
  WHERE j.job_id = $1 AND j.attempts = $2 AND j.worker_id = $3 AND j.lease_expires_at IS NOT NULL
    AND j.cancel_requested_at IS NOT NULL
  RETURNING j.job_id, j.attempts, j.worker_id, j.attempt_started_at, j.error
)
INSERT INTO job_attempts (job_id, attempt, worker_id, started_at, finished_at, outcome, error)
SELECT job_id, attempts, worker_id, attempt_started_at, now(), 'cancelled', error FROM closed
RETURNING job_id`;

/**
 * The cancel request itself, for the jobs `selected` picks (locked, so that a claim or a transition in
 * flight settles first): a job with no live attempt is cancelled at once; one with a live attempt gets
 * cancel_requested_at and its worker is told through CANCEL_REQUESTED_CHANNEL. $1 is the reason.
 */
const cancelJobs = (selected: string): string => `
WITH target AS (${selected}),
cancelled AS (
  UPDATE jobs j
  SET cancel_requested_at = now(),
      cancel_reason = $1,
      state = CASE WHEN j.lease_expires_at IS NULL THEN 'cancelled' ELSE j.state END,
      error = CASE WHEN j.lease_expires_at IS NULL THEN ${CANCEL_ERROR('$1::text')} END,
      finished_at = CASE WHEN j.lease_expires_at IS NULL THEN now() END,
      available_at = NULL
  FROM target
  WHERE j.job_id = target.job_id AND j.state IN ('pending', 'running') AND j.cancel_requested_at IS NULL
  RETURNING j.*
)
SELECT cancelled.*
FROM cancelled
LEFT JOIN LATERAL (SELECT pg_notify('${CANCEL_REQUESTED_CHANNEL}', cancelled.job_id::text)
                   WHERE cancelled.lease_expires_at IS NOT NULL) AS told ON true`;

/** Cancel request for job $2 (see cancelJobs); no row when it is terminal or already cancel-requested. */
export const CANCEL_JOB = cancelJobs(`SELECT job_id FROM jobs WHERE job_id = $2 FOR UPDATE`);

/**
 * Cancel request for up to $5 unfinished jobs matching the filter: job type $2, state $3, created before
 * $4 (each NULL for any). SKIP LOCKED passes over rows being claimed or finished this instant: the caller
 * repeats until a round finds nothing, so they are picked up by a later round.
 */
export const CANCEL_MATCHING = cancelJobs(`
  SELECT job_id FROM jobs
  WHERE state IN ('pending', 'running') AND cancel_requested_at IS NULL
    AND ($2::text IS NULL OR job_type = $2) AND ($3::text IS NULL OR state = $3)
    AND ($4::timestamptz IS NULL OR created_at < $4)
  LIMIT $5
  FOR UPDATE SKIP LOCKED`);

/**
 * A new job repeating failed or cancelled job $1: same type, payload, priority, max_attempts, timeout_ms
 * and callback_url, due now, linked by retry_of. No row when job $1 is in another state (or does not exist).
 */
export const RETRY_AS_NEW_JOB = `
WITH inserted AS (
  INSERT INTO jobs (job_id, job_type, payload, priority, run_at, available_at, max_attempts, timeout_ms, retry_of,
                    callback_url)
  SELECT job_id_v7(), job_type, payload, priority, now(), now(), max_attempts, timeout_ms, job_id, callback_url
  FROM jobs
  WHERE job_id = $1 AND state IN ('failed', 'cancelled')
  RETURNING *
)
SELECT inserted.*
FROM inserted, (SELECT pg_notify('${JOBS_DUE_CHANNEL}', '') FROM inserted) AS wake`;

/** Pauses claiming of job type $1 (a no-op when already paused). */
export const PAUSE_JOB_TYPE = `INSERT INTO job_type_pauses (job_type) VALUES ($1) ON CONFLICT (job_type) DO NOTHING`;

/** Resumes claiming of job type $1 and wakes the workers, whose queue may hold due jobs of it. */
export const RESUME_JOB_TYPE = `
WITH resumed AS (DELETE FROM job_type_pauses WHERE job_type = $1 RETURNING job_type)
SELECT pg_notify('${JOBS_DUE_CHANNEL}', '') FROM resumed`;

/** The paused job types. */
export const LIST_PAUSED_JOB_TYPES = `SELECT job_type FROM job_type_pauses ORDER BY job_type`;

/**
 * Takes the turn of a task that one worker at a time runs across the fleet, when no turn started within
 * the last $1 ms: the task's one row in `table`, held by the taker's transaction, so that concurrent
 * workers skip it instead of waiting or doing the same work beside it. No row when the turn is taken.
 */
const takeTurn = (table: string, returning: string): string => `
WITH turn AS (
  SELECT singleton FROM ${table}
  WHERE last_swept_at <= now() - $1 * interval '1 millisecond'
  FOR UPDATE SKIP LOCKED
)
UPDATE ${table} s SET last_swept_at = now() FROM turn WHERE s.singleton = turn.singleton
RETURNING ${returning}`;

/** The rescue sweep's turn (see takeTurn). */
export const TAKE_SWEEP_TURN = takeTurn('rescue_sweeps', 'true AS acquired');

/**
 * Close attempts whose lease has expired (a dead or stuck worker) as `lost`, with error $2: up to $1 of
 * them, of the jobs `selected` picks. A job with failed attempts left becomes claimable at once and keeps
 * its place in the queue (available_at = run_at): the lease that ran out already paused it, and a crash
 * should not send it behind newer work. One whose failures reach max_attempts fails with that error (code
 * lease_expired). A job whose cancel was requested is cancelled instead, its attempt closed `cancelled`:
 * the worker that should have stopped it is gone. It scans the table (no index on lease_expires_at, so
 * that finishing a job is a HOT update), which is why callers run it only once LEASE_MAY_HAVE_EXPIRED says
 * so; they hold TAKE_SWEEP_TURN so that one sweep runs at a time, and SKIP LOCKED passes over rows being
 * finished.
 */
const rescueExpiredLeases = (selected: string): string => `
WITH expired AS (
  SELECT job_id
  FROM jobs
  WHERE lease_expires_at < now() AND ${selected}
  ORDER BY lease_expires_at
  LIMIT $1
  FOR UPDATE SKIP LOCKED
),
closed AS (
  UPDATE jobs j
  SET lease_expires_at = NULL,
      failed_attempts = j.failed_attempts + CASE WHEN j.cancel_requested_at IS NOT NULL THEN 0 ELSE 1 END,
      state = CASE WHEN j.cancel_requested_at IS NOT NULL THEN 'cancelled'
                   WHEN j.failed_attempts + 1 >= j.max_attempts THEN 'failed' ELSE 'running' END,
      error = CASE WHEN j.cancel_requested_at IS NOT NULL THEN ${CANCEL_ERROR('j.cancel_reason')}
                   WHEN j.failed_attempts + 1 >= j.max_attempts THEN $2::jsonb END,
      finished_at = CASE WHEN j.cancel_requested_at IS NOT NULL OR j.failed_attempts + 1 >= j.max_attempts
                         THEN now() END,
      available_at = CASE WHEN j.cancel_requested_at IS NULL AND j.failed_attempts + 1 < j.max_attempts
                          THEN j.run_at END
  FROM expired
  WHERE j.job_id = expired.job_id AND j.lease_expires_at < now()
  RETURNING j.job_id, j.job_type, j.attempts, j.worker_id, j.attempt_started_at, j.state, j.error
),
recorded AS (
  INSERT INTO job_attempts (job_id, attempt, worker_id, started_at, finished_at, outcome, error)
  SELECT job_id, attempts, worker_id, attempt_started_at, now(),
         CASE WHEN state = 'cancelled' THEN 'cancelled' ELSE 'lost' END,
         CASE WHEN state = 'cancelled' THEN error ELSE $2::jsonb END
  FROM closed
)
SELECT job_id, job_type, attempts AS attempt, worker_id, state FROM closed`;

/**
 * Whether any lease can have expired, from the counts the triggers keep of live leases per second of
 * expiry (job_lease_expiries): a second at or before now() with leases in it. Without one no lease has
 * expired, and the sweep need not scan the table: however many finished jobs it keeps, a sweep reads a few
 * counter rows while live workers keep renewing their leases. If those counts disagree with the live
 * attempts of job_counts (both kept by the same statements, so only an edit by hand can part them), the
 * answer is yes: the sweep scans rather than trust them.
 */
export const LEASE_MAY_HAVE_EXPIRED = `
WITH per_second AS (
  SELECT expires_second, sum(leases) AS leases FROM job_lease_expiries GROUP BY expires_second
)
SELECT coalesce(bool_or(expires_second <= now() AND leases <> 0), false)
       OR coalesce(sum(leases), 0)::bigint <> ${LIVE_ATTEMPTS} AS may_have_expired
FROM per_second`;

/**
 * Drops the seconds of job_lease_expiries more than a minute past whose leases add up to none (every
 * lease counted in them has been renewed or ended): nothing counts into a past second again, and the
 * check above reads every second up to now.
 */
export const DROP_PAST_LEASE_EXPIRIES = `
DELETE FROM job_lease_expiries
WHERE expires_second < now() - interval '1 minute'
  AND expires_second IN (SELECT expires_second FROM job_lease_expiries
                         WHERE expires_second < now() - interval '1 minute'
                         GROUP BY expires_second HAVING sum(leases) = 0)`;

/** The oldest expired leases, passing over the jobs in $3 (rows this sweep already found it cannot close). */
export const RESCUE_EXPIRED_LEASES = rescueExpiredLeases('job_id <> ALL($3::uuid[])');

/** The expired lease of job $3 alone: how a sweep isolates the one row that makes the batch fail. */
export const RESCUE_EXPIRED_LEASE_OF_JOB = rescueExpiredLeases('job_id = $3::uuid');

/** The jobs of up to $1 expired leases, oldest first, passing over the jobs in $2. */
export const FIND_EXPIRED_LEASES = `
SELECT job_id FROM jobs
WHERE lease_expires_at < now() AND job_id <> ALL($1::uuid[])
ORDER BY lease_expires_at
LIMIT $2`;

/** Notes that a sweep went through every expired lease; readiness and metrics watch its age. */
export const MARK_SWEEP_COMPLETED = `UPDATE rescue_sweeps SET last_completed_at = now()`;

/** Milliseconds since a sweep last went through every expired lease (database clock); NULL if never. */
export const SWEEP_COMPLETED_AGE = `
SELECT (extract(epoch FROM now() - last_completed_at) * 1000)::bigint AS age_ms FROM rescue_sweeps`;

/** What every insert of new jobs writes. */
const NEW_JOB_COLUMNS = `job_id, job_type, payload, priority, run_at, available_at, max_attempts, timeout_ms,
                    idempotency_key, request_hash, callback_url`;
const UNLESS_KEY_TAKEN = `ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING`;
/**
 * What an insert of new jobs returns: only the columns the database decides or stores in its own form. Every
 * other column of a new job is the value sent (job_type, priority, max_attempts, timeout_ms, callback_url,
 * and run_at when given, which the database holds to the microsecond, finer than the millisecond sent) or
 * fixed (pending, no attempt, updated_at = created_at, available_at = run_at, the rest NULL): the trigger
 * jobs_refuse_unlike_new_inserts refuses any other new row.
 */
const NEW_JOB_RETURNS = `job_id, payload, run_at, created_at`;

/** Each inserted job joined back to its place in the request, and the statement's one NOTIFY. */
const FROM_INSERTED_IN_REQUEST_ORDER = `
FROM inserted
JOIN input USING (job_id),
     (SELECT pg_notify('${JOBS_DUE_CHANNEL}',
                       coalesce((SELECT floor(extract(epoch FROM min(run_at)) * 1000)::bigint::text FROM inserted), '')
     )) AS wake`;

/**
 * Insert the jobs described by $1 (a JSON array) in one statement; a job without run_at is due now
 * (database clock). The database makes each job_id, a UUIDv7 of its own clock whose random bits are the
 * job's 8 bytes of $2 (8 random bytes per job, in order: job_id_v7(bytea)). With an idempotency key already
 * taken, that job is not inserted and not returned. It also sends one NOTIFY per statement, delivered at
 * commit, carrying the earliest due time, so idle workers wake without polling.
 *
 * It answers one row: `jobs`, a JSON array of `[ord, job_id, payload]`, one per inserted job, `ord` its
 * 1-based position in $1 so that callers answer in request order; and `created_at`, the now() of the
 * statement, every new job's created_at. The stored payload comes back because the database keeps it in
 * its own form (jsonb: keys sorted, a repeated key's last value). One JSON value instead of a row per job:
 * for a batch of 1,000 a plain client spent 5.6-5.8 ms of CPU reading the rows the statement returned
 * before, against 1.2 ms for this value, and the database's backend no more (14.3 ms against 14.5).
 */
export const INSERT_JOBS = `
${insertedJobs(NEW_JOB_RETURNS)}
SELECT coalesce(json_agg(json_build_array(input.ord, inserted.job_id, inserted.payload)), '[]') AS jobs,
       min(inserted.created_at) AS created_at
${FROM_INSERTED_IN_REQUEST_ORDER}`;

/**
 * INSERT_JOBS answering only the new jobs' ids, what a `Prefer: return=minimal` batch answers: one row whose
 * `ids` is a JSON array of `[ord, job_id]` pairs, one per inserted job.
 */
export const INSERT_JOB_IDS = `
${insertedJobs('job_id, run_at')}
SELECT coalesce(json_agg(json_build_array(input.ord, inserted.job_id)), '[]') AS ids
${FROM_INSERTED_IN_REQUEST_ORDER}`;

/** The `input` and `inserted` of INSERT_JOBS, `inserted` returning `columns` (run_at among them). */
function insertedJobs(columns: string): string {
  return `
WITH input AS (
  SELECT job_id_v7(substr($2::bytea, n.ord::int * 8 - 7, 8)) AS job_id, n.*
  FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (job_type text, payload jsonb, priority integer,
       run_at timestamptz, max_attempts integer, timeout_ms integer, idempotency_key text, request_hash text,
       callback_url text))
       WITH ORDINALITY AS n(job_type, payload, priority, run_at, max_attempts, timeout_ms, idempotency_key,
                            request_hash, callback_url, ord)
),
inserted AS (
  INSERT INTO jobs (${NEW_JOB_COLUMNS})
  SELECT job_id, job_type, payload, priority, coalesce(run_at, now()), coalesce(run_at, now()),
         max_attempts, timeout_ms, idempotency_key, request_hash, callback_url
  FROM input
  ORDER BY ord
  ${UNLESS_KEY_TAKEN}
  RETURNING ${columns}
)`;
}

/**
 * INSERT_JOBS for one job, its fields as parameters: $1 job_type, $2 payload (JSON text), $3 priority, $4 run_at
 * (NULL: now), $5 max_attempts, $6 timeout_ms, $7 idempotency_key, $8 request_hash, $9 callback_url. Every
 * insert of a single job goes this way (a POST /jobs that shares its statement with no other request, a
 * batch of one, a shared statement retried job by job): without the JSON array to unpack and join back, the
 * statement runs in about 0.14 ms instead of 0.19, time that lies between the job's created_at and the moment
 * a worker can see it. Unlike INSERT_JOBS, it sends no NOTIFY when the idempotency key was taken.
 */
export const INSERT_JOB = `
WITH inserted AS (
  INSERT INTO jobs (${NEW_JOB_COLUMNS})
  VALUES (job_id_v7(), $1, $2::jsonb, $3, coalesce($4::timestamptz, now()), coalesce($4::timestamptz, now()),
          $5, $6, $7, $8, $9)
  ${UNLESS_KEY_TAKEN}
  RETURNING ${NEW_JOB_RETURNS}
)
SELECT inserted.*
FROM inserted,
     LATERAL (SELECT pg_notify('${JOBS_DUE_CHANNEL}', floor(extract(epoch FROM inserted.run_at) * 1000)::bigint::text)) AS wake`;

/**
 * Job $1 with its attempt records, oldest first, and its callback delivery (NULL when it has none), in one
 * statement: all come from one snapshot. Read in two statements, an attempt closed or opened in between
 * shows up twice, or beyond the job's `attempts`. Timestamps travel as text in the server's own format, so
 * they are parsed exactly as the job's columns are.
 */
export const FIND_JOB_WITH_ATTEMPTS = `
SELECT j.*,
       coalesce((SELECT json_agg(json_build_object('attempt', a.attempt, 'worker_id', a.worker_id,
                                                   'started_at', a.started_at::text,
                                                   'finished_at', a.finished_at::text,
                                                   'outcome', a.outcome, 'error', a.error)
                                 ORDER BY a.attempt)
                 FROM job_attempts a
                 WHERE a.job_id = j.job_id), '[]') AS attempt_records,
       (SELECT json_build_object('url', d.url, 'state', d.state, 'attempts', d.attempts)
        FROM callback_deliveries d
        WHERE d.job_id = j.job_id) AS callback_delivery
FROM jobs j
WHERE j.job_id = $1`;

/**
 * Everything GET /stats and the queue-depth metrics show, in one statement that reads no job row but
 * the first claimable one of each priority:
 * - counts: jobs and live attempts per job type and state, from the counters the triggers on jobs keep
 *   (the sum of the shards of each);
 * - finished: jobs that reached each terminal state within the last minute, by whole seconds of
 *   finished_at (job_finishes, also kept by those triggers);
 * - paused: the paused job types;
 * - oldest_due_age_ms: how long the longest-waiting claimable job has been due, NULL when none is. It
 *   follows jobs_claim_idx (claimable rows only, by priority then due time) with one descent per distinct
 *   priority, never a scan of the queue: the first row of each priority is its oldest. Paused types and
 *   types no worker runs count too: their jobs are due and waiting.
 */
export const READ_JOB_STATS = `
WITH RECURSIVE priorities AS (
  (SELECT priority FROM jobs WHERE available_at IS NOT NULL ORDER BY priority DESC LIMIT 1)
  UNION ALL
  SELECT (SELECT j.priority FROM jobs j
          WHERE j.available_at IS NOT NULL AND j.priority < p.priority
          ORDER BY j.priority DESC LIMIT 1)
  FROM priorities p
  WHERE p.priority IS NOT NULL
)
SELECT
  (SELECT coalesce(json_agg(json_build_object('job_type', job_type, 'state', state, 'jobs', jobs, 'live', live)), '[]')
   FROM (SELECT job_type, state, sum(jobs) AS jobs, sum(live) AS live
         FROM job_counts GROUP BY job_type, state) AS counted
   WHERE jobs <> 0 OR live <> 0) AS counts,
  (SELECT coalesce(json_object_agg(state, jobs), '{}')
   FROM (SELECT state, sum(jobs) AS jobs FROM job_finishes
         WHERE finished_second >= date_trunc('second', now() - interval '1 minute')
         GROUP BY state) AS recent) AS finished,
  (SELECT coalesce(array_agg(job_type), '{}') FROM job_type_pauses) AS paused,
  (SELECT (extract(epoch FROM now() - min(oldest.available_at)) * 1000)::bigint
   FROM priorities p
   CROSS JOIN LATERAL (SELECT j.available_at FROM jobs j
                       WHERE j.available_at IS NOT NULL AND j.priority = p.priority
                       ORDER BY j.available_at LIMIT 1) AS oldest
   WHERE p.priority IS NOT NULL AND oldest.available_at <= now()) AS oldest_due_age_ms`;

/**
 * Jobs that reached each terminal state per minute over the last $1 minutes (the current, unfinished
 * minute last), one row per minute, zero-filled: from job_finishes, the per-second counts the triggers on
 * jobs keep, never from jobs. The WHERE is a range on the first column of its primary key, so the cost is
 * bounded by the seconds asked for ($1 × 60 × job types × states × shards rows at most), not by the jobs
 * the table holds; a dashboard asks for the whole hour once and then for the last two minutes.
 */
export const READ_FINISHES_PER_MINUTE = `
WITH window_start AS (
  SELECT date_trunc('minute', now()) - ($1::int - 1) * interval '1 minute' AS at
),
finished AS (
  SELECT date_trunc('minute', f.finished_second) AS minute,
         sum(f.jobs) FILTER (WHERE f.state = 'completed') AS completed,
         sum(f.jobs) FILTER (WHERE f.state = 'failed') AS failed,
         sum(f.jobs) FILTER (WHERE f.state = 'cancelled') AS cancelled
  FROM job_finishes f, window_start w
  WHERE f.finished_second >= w.at
  GROUP BY 1
)
SELECT minutes.minute,
       coalesce(finished.completed, 0) AS completed,
       coalesce(finished.failed, 0) AS failed,
       coalesce(finished.cancelled, 0) AS cancelled
FROM window_start w
CROSS JOIN LATERAL generate_series(w.at, date_trunc('minute', now()), interval '1 minute') AS minutes(minute)
LEFT JOIN finished USING (minute)
ORDER BY minutes.minute`;

/** The retention task's turn (see takeTurn), with how far its walk of the primary key has come. */
export const TAKE_RETENTION_TURN = takeTurn('retention_sweeps', 's.walked_to');

/** Drops the per-second finish counts older than $1 ms; nothing reads them after that. */
export const PRUNE_JOB_FINISHES = `
DELETE FROM job_finishes WHERE finished_second < now() - $1 * interval '1 millisecond'`;

/**
 * One batch of retention: looks at the next $6 jobs after id $1 in primary-key order, among those
 * created more than $2 ms ago (job ids are UUIDv7: their first 48 bits are the creation time in ms), and
 * deletes the ones that are completed, failed or cancelled with finished_at older than $3, $4 or $5 ms
 * respectively (0: kept forever). Their attempt records and callback deliveries go with them (ON DELETE
 * CASCADE); a job whose callback is still pending is kept (the database refuses its delete) until the
 * delivery settles, and a later lap of the walk deletes it. No index on
 * finished_at is needed (one would make every completion a non-HOT update): a job finishes after it is
 * created, so none created after the horizon can qualify. Terminal rows never change and nothing else
 * locks them, so the delete waits on nobody. Returns the last id looked at (the walk's next start), how
 * many were looked at (fewer than $6: the walk reached the horizon), and the deletions per state.
 */
export const DELETE_RETAINED_JOBS = `
WITH scanned AS (
  SELECT job_id, state, finished_at
  FROM jobs
  WHERE job_id > $1::uuid
    AND job_id < (lpad(to_hex((extract(epoch FROM now()) * 1000)::bigint - $2), 12, '0')
                  || '00000000000000000000')::uuid
  ORDER BY job_id
  LIMIT $6
),
expired AS (
  SELECT job_id
  FROM scanned,
       LATERAL (SELECT CASE state WHEN 'completed' THEN $3::bigint WHEN 'failed' THEN $4::bigint
                                  WHEN 'cancelled' THEN $5::bigint END AS kept_ms) AS retention
  WHERE retention.kept_ms > 0 AND finished_at < now() - retention.kept_ms * interval '1 millisecond'
    AND NOT EXISTS (SELECT 1 FROM callback_deliveries d WHERE d.job_id = scanned.job_id AND d.state = 'pending')
),
deleted AS (
  DELETE FROM jobs j USING expired WHERE j.job_id = expired.job_id RETURNING j.state
)
SELECT (SELECT job_id FROM scanned ORDER BY job_id DESC LIMIT 1) AS walked_to,
       (SELECT count(*) FROM scanned)::int AS scanned,
       (SELECT coalesce(json_object_agg(state, n), '{}')
        FROM (SELECT state, count(*) AS n FROM deleted GROUP BY state) AS per_state) AS deleted`;

/**
 * Records how far the walk came ($1). When it reached the horizon ($2) and its lap began more than $3 ms
 * ago, the next pass starts a new lap from the oldest id instead: jobs the walk passed before they
 * qualified (a failed job kept longer than completed ones, a job that finished long after it was
 * created) are looked at again once per lap, not on every pass.
 */
export const SAVE_RETENTION_WALK = `
UPDATE retention_sweeps
SET walked_to = CASE WHEN $2 AND lap_started_at <= now() - $3 * interval '1 millisecond'
                     THEN '00000000-0000-0000-0000-000000000000'::uuid ELSE coalesce($1::uuid, walked_to) END,
    lap_started_at = CASE WHEN $2 AND lap_started_at <= now() - $3 * interval '1 millisecond'
                          THEN now() ELSE lap_started_at END`;
