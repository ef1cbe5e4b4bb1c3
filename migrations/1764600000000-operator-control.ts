import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Operator control: the terminal state `cancelled` (reached only through a cancel request), retries as new
 * jobs linked by `retry_of`, and job types paused for claiming.
 *
 * - A cancel request on a job with no live attempt cancels it at once; on a job with one it sets
 *   cancel_requested_at (and the reason), and the worker holding it closes the attempt `cancelled`. The
 *   request is written once and never withdrawn, and a cancel-requested job is never claimable again.
 * - started_at is set iff the job was ever claimed: a job cancelled while pending never started.
 * - error is set iff the job failed or was cancelled; a cancelled job's error has code `cancelled`.
 * - job_type_pauses lists the job types no worker claims; the claim statement reads it, so a pause is in
 *   force on every worker from the next claim on.
 */
export class OperatorControl1764600000000 implements MigrationInterface {
  name = 'OperatorControl1764600000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      ALTER TABLE jobs
        ADD COLUMN cancel_requested_at timestamptz,
        ADD COLUMN cancel_reason       text,
        ADD COLUMN retry_of            uuid
    `);
    await queryRunner.query(`
      ALTER TABLE jobs
        DROP CONSTRAINT jobs_state_known,
        DROP CONSTRAINT jobs_error_iff_failed,
        DROP CONSTRAINT jobs_finished_at_iff_terminal,
        DROP CONSTRAINT jobs_started_at_iff_not_pending,
        DROP CONSTRAINT jobs_attempted_once_started,
        DROP CONSTRAINT jobs_attempt_left_while_not_terminal,
        ADD CONSTRAINT jobs_state_known CHECK (state IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
        ADD CONSTRAINT jobs_error_iff_failed_or_cancelled CHECK ((state IN ('failed', 'cancelled')) = (error IS NOT NULL)),
        ADD CONSTRAINT jobs_cancelled_error CHECK (state <> 'cancelled' OR coalesce(error ->> 'code' = 'cancelled', false)),
        ADD CONSTRAINT jobs_finished_at_iff_terminal
          CHECK ((state IN ('completed', 'failed', 'cancelled')) = (finished_at IS NOT NULL)),
        ADD CONSTRAINT jobs_started_at_iff_claimed CHECK ((attempts > 0) = (started_at IS NOT NULL)),
        ADD CONSTRAINT jobs_attempted_once_started
          CHECK ((attempts = 0) = (worker_id IS NULL AND attempt_started_at IS NULL)
                 AND (state IN ('pending', 'cancelled') OR attempts >= 1)),
        ADD CONSTRAINT jobs_attempt_left_while_not_terminal
          CHECK (state IN ('completed', 'failed', 'cancelled') OR failed_attempts < max_attempts),
        ADD CONSTRAINT jobs_cancelled_by_request CHECK (state <> 'cancelled' OR cancel_requested_at IS NOT NULL),
        ADD CONSTRAINT jobs_cancel_request_not_claimable CHECK (cancel_requested_at IS NULL OR available_at IS NULL),
        ADD CONSTRAINT jobs_cancel_reason_with_request CHECK (cancel_reason IS NULL OR cancel_requested_at IS NOT NULL)
    `);
    await queryRunner.query(`
      ALTER TABLE job_attempts
        DROP CONSTRAINT job_attempts_outcome_closed,
        ADD CONSTRAINT job_attempts_outcome_closed
          CHECK (outcome IN ('failed', 'timed_out', 'lost', 'interrupted', 'cancelled'))
    `);

    await queryRunner.query(`
      CREATE TABLE job_type_pauses (
        job_type  text        PRIMARY KEY CHECK (job_type ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$'),
        paused_at timestamptz NOT NULL DEFAULT now()
      )
    `);

    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION jobs_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF OLD.state IN ('completed', 'failed', 'cancelled') THEN
          RAISE EXCEPTION 'job % is % and can never change again', OLD.job_id, OLD.state
            USING ERRCODE = 'check_violation';
        END IF;
        IF NOT (NEW.state = OLD.state
                OR (OLD.state = 'pending' AND NEW.state IN ('running', 'cancelled'))
                OR (OLD.state = 'running' AND NEW.state IN ('completed', 'failed', 'cancelled'))) THEN
          RAISE EXCEPTION 'job % cannot move from % to %', OLD.job_id, OLD.state, NEW.state
            USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.job_id IS DISTINCT FROM OLD.job_id OR NEW.job_type IS DISTINCT FROM OLD.job_type
           OR NEW.payload IS DISTINCT FROM OLD.payload OR NEW.created_at IS DISTINCT FROM OLD.created_at
           OR NEW.idempotency_key IS DISTINCT FROM OLD.idempotency_key
           OR NEW.request_hash IS DISTINCT FROM OLD.request_hash OR NEW.retry_of IS DISTINCT FROM OLD.retry_of THEN
          RAISE EXCEPTION 'job %: job_id, job_type, payload, created_at, retry_of and the idempotency key never change', OLD.job_id
            USING ERRCODE = 'check_violation';
        END IF;
        IF OLD.started_at IS NOT NULL AND NEW.started_at IS DISTINCT FROM OLD.started_at THEN
          RAISE EXCEPTION 'job %: started_at never changes once set', OLD.job_id USING ERRCODE = 'check_violation';
        END IF;
        -- A cancel request is written once, with its reason, and never withdrawn or rewritten.
        IF OLD.cancel_requested_at IS NOT NULL
           AND (NEW.cancel_requested_at IS DISTINCT FROM OLD.cancel_requested_at
                OR NEW.cancel_reason IS DISTINCT FROM OLD.cancel_reason) THEN
          RAISE EXCEPTION 'job %: a cancel request never changes once made', OLD.job_id USING ERRCODE = 'check_violation';
        END IF;
        -- The failure count moves only when a live attempt closes, by one; its record must agree.
        IF NEW.failed_attempts <> OLD.failed_attempts
           AND NOT (NEW.failed_attempts = OLD.failed_attempts + 1
                    AND OLD.lease_expires_at IS NOT NULL AND NEW.lease_expires_at IS NULL) THEN
          RAISE EXCEPTION 'job %: failed_attempts only grows by one, when a live attempt closes', OLD.job_id
            USING ERRCODE = 'check_violation';
        END IF;
        -- A new attempt opens only by claiming: attempts + 1 together with a fresh lease, and only when
        -- no attempt is live and no cancel was requested. It starts now, not later: its record must never
        -- end before it began.
        IF NEW.attempts <> OLD.attempts THEN
          IF NOT (NEW.attempts = OLD.attempts + 1 AND OLD.lease_expires_at IS NULL
                  AND NEW.lease_expires_at IS NOT NULL AND NEW.attempt_started_at IS NOT NULL) THEN
            RAISE EXCEPTION 'job %: an attempt opens only by a claim (attempts + 1 with a new lease, none live)', OLD.job_id
              USING ERRCODE = 'check_violation';
          END IF;
          IF NEW.attempt_started_at > clock_timestamp() THEN
            RAISE EXCEPTION 'job %: attempt % cannot start in the future', OLD.job_id, NEW.attempts
              USING ERRCODE = 'check_violation';
          END IF;
          IF OLD.cancel_requested_at IS NOT NULL THEN
            RAISE EXCEPTION 'job %: a job whose cancel was requested is never claimed again', OLD.job_id
              USING ERRCODE = 'check_violation';
          END IF;
        ELSIF NEW.worker_id IS DISTINCT FROM OLD.worker_id
              OR NEW.attempt_started_at IS DISTINCT FROM OLD.attempt_started_at
              OR (OLD.lease_expires_at IS NULL AND NEW.lease_expires_at IS NOT NULL) THEN
          RAISE EXCEPTION 'job %: attempt % belongs to its worker; only a new claim changes it', OLD.job_id, OLD.attempts
            USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.state = 'completed' AND OLD.lease_expires_at IS NULL THEN
          RAISE EXCEPTION 'job %: only a live attempt can complete a job', OLD.job_id USING ERRCODE = 'check_violation';
        END IF;
        NEW.updated_at := now();
        RETURN NEW;
      END
      $$
    `);

    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION jobs_guard_delete() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF OLD.state NOT IN ('completed', 'failed', 'cancelled') THEN
          RAISE EXCEPTION 'job % is % and cannot be deleted: only a terminal job can', OLD.job_id, OLD.state
            USING ERRCODE = 'check_violation';
        END IF;
        IF job_id_epoch_ms(OLD.job_id) >= (extract(epoch FROM now()) * 1000)::bigint - 60000 THEN
          RAISE EXCEPTION 'job % is less than a minute old and cannot be deleted yet (its id could be reused)', OLD.job_id
            USING ERRCODE = 'check_violation';
        END IF;
        RETURN OLD;
      END
      $$
    `);

    // A new job carries no cancel request; the rest of the insert rule is unchanged.
    await queryRunner.query(`DROP TRIGGER jobs_refuse_unlike_new_insert ON jobs`);
    await queryRunner.query(`
      CREATE TRIGGER jobs_refuse_unlike_new_insert BEFORE INSERT ON jobs FOR EACH ROW
        WHEN (NEW.state <> 'pending' OR NEW.attempts <> 0 OR NEW.failed_attempts <> 0
              OR NEW.created_at <> now() OR NEW.updated_at <> now()
              OR NEW.started_at IS NOT NULL OR NEW.finished_at IS NOT NULL
              OR NEW.result IS NOT NULL OR NEW.error IS NOT NULL
              OR NEW.worker_id IS NOT NULL OR NEW.attempt_started_at IS NOT NULL OR NEW.lease_expires_at IS NOT NULL
              OR NEW.cancel_requested_at IS NOT NULL OR NEW.cancel_reason IS NOT NULL
              OR NEW.available_at IS DISTINCT FROM NEW.run_at
              OR substr(NEW.job_id::text, 15, 1) <> '7'
              OR job_id_epoch_ms(NEW.job_id) NOT BETWEEN (extract(epoch FROM clock_timestamp()) * 1000)::bigint - 60000
                                                     AND (extract(epoch FROM clock_timestamp()) * 1000)::bigint + 60000)
        EXECUTE FUNCTION jobs_refuse_unlike_new_insert()
    `);
  }

  /** Refused: cancelled jobs and cancel requests have no place in the earlier schema, so nothing can go back. */
  async down(): Promise<void> {
    throw new Error(
      'OperatorControl1764600000000 cannot be reverted: cancelled jobs would have no valid state',
    );
  }
}
