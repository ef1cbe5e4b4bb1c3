import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Creates the jobs table, the closed-attempt records, the claim index, and the constraints and triggers
 * that make the database itself enforce the job contract: forward-only states, write-once fields,
 * result/error/timestamps consistent with the state, terminal rows frozen, at most one live attempt,
 * immutable attempt records, and no more failed attempts than max_attempts.
 *
 * The live attempt lives on the job row (worker_id, attempt_started_at, lease_expires_at), so the happy
 * path (claim, succeed) writes one row twice and nothing else. job_attempts holds only the attempts the
 * job row cannot describe: those that ended failed, timed_out, lost or interrupted.
 */
export class CreateJobs1764300000000 implements MigrationInterface {
  name = 'CreateJobs1764300000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE jobs (
        job_id             uuid        PRIMARY KEY,
        job_type           text        NOT NULL,
        state              text        NOT NULL DEFAULT 'pending',
        payload            jsonb       NOT NULL DEFAULT '{}'::jsonb,
        result             jsonb,
        error              jsonb,
        priority           integer     NOT NULL DEFAULT 0,
        run_at             timestamptz NOT NULL DEFAULT now(),
        -- When the job may next be claimed: run_at while pending, the retry time while a retry waits.
        -- NULL while an attempt is live and once the job is terminal, so the claim index holds only
        -- claimable rows and stays small however many finished jobs the table keeps.
        available_at       timestamptz,
        attempts           integer     NOT NULL DEFAULT 0,
        failed_attempts    integer     NOT NULL DEFAULT 0,
        max_attempts       integer     NOT NULL,
        timeout_ms         integer     NOT NULL,
        -- The latest attempt: who ran it and when it started. It is live iff lease_expires_at is set.
        worker_id          text,
        attempt_started_at timestamptz,
        lease_expires_at   timestamptz,
        idempotency_key    text,
        request_hash       text,
        created_at         timestamptz NOT NULL DEFAULT now(),
        updated_at         timestamptz NOT NULL DEFAULT now(),
        started_at         timestamptz,
        finished_at        timestamptz,

        CONSTRAINT jobs_state_known CHECK (state IN ('pending', 'running', 'completed', 'failed')),
        CONSTRAINT jobs_job_type_format CHECK (job_type ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$'),
        CONSTRAINT jobs_payload_is_object CHECK (jsonb_typeof(payload) = 'object'),
        CONSTRAINT jobs_priority_range CHECK (priority BETWEEN -1000 AND 1000),
        CONSTRAINT jobs_max_attempts_range CHECK (max_attempts BETWEEN 1 AND 1000),
        CONSTRAINT jobs_timeout_positive CHECK (timeout_ms > 0),
        CONSTRAINT jobs_attempt_counts CHECK (failed_attempts >= 0 AND failed_attempts <= attempts
                                              AND failed_attempts <= max_attempts),
        CONSTRAINT jobs_result_iff_completed CHECK ((state = 'completed') = (result IS NOT NULL)),
        CONSTRAINT jobs_error_iff_failed CHECK ((state = 'failed') = (error IS NOT NULL)),
        -- coalesce: a missing key makes jsonb_typeof NULL, and a CHECK that is NULL would pass.
        CONSTRAINT jobs_error_shape CHECK (error IS NULL OR coalesce(jsonb_typeof(error) = 'object'
                                           AND jsonb_typeof(error -> 'code') = 'string'
                                           AND jsonb_typeof(error -> 'message') = 'string', false)),
        CONSTRAINT jobs_finished_at_iff_terminal CHECK ((state IN ('completed', 'failed')) = (finished_at IS NOT NULL)),
        CONSTRAINT jobs_started_at_iff_not_pending CHECK ((state <> 'pending') = (started_at IS NOT NULL)),
        CONSTRAINT jobs_pending_never_attempted CHECK (state <> 'pending'
                                                       OR (attempts = 0 AND worker_id IS NULL AND attempt_started_at IS NULL)),
        CONSTRAINT jobs_attempted_once_started CHECK (state = 'pending'
                                                      OR (attempts >= 1 AND worker_id IS NOT NULL AND attempt_started_at IS NOT NULL)),
        CONSTRAINT jobs_live_attempt_only_while_running CHECK (lease_expires_at IS NULL OR state = 'running'),
        CONSTRAINT jobs_claimable_iff_waiting CHECK ((available_at IS NOT NULL)
                                                     = (state = 'pending' OR (state = 'running' AND lease_expires_at IS NULL))),
        CONSTRAINT jobs_idempotency_pair CHECK ((idempotency_key IS NULL) = (request_hash IS NULL))
      )
    `);

    // The claim reads only claimable rows, in claim order: priority, then due time, then id.
    await queryRunner.query(`
      CREATE INDEX jobs_claim_idx ON jobs (priority DESC, available_at, job_id) WHERE available_at IS NOT NULL
    `);
    // The rescue sweep reads only live attempts, oldest lease first.
    await queryRunner.query(`
      CREATE INDEX jobs_live_lease_idx ON jobs (lease_expires_at) WHERE lease_expires_at IS NOT NULL
    `);
    // GET /jobs?job_type=... pages newest first; job_type never changes, so this index costs inserts only.
    await queryRunner.query(`CREATE INDEX jobs_type_listing_idx ON jobs (job_type, job_id)`);
    await queryRunner.query(`
      CREATE UNIQUE INDEX jobs_idempotency_key_idx ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL
    `);

    await queryRunner.query(`
      CREATE TABLE job_attempts (
        job_id      uuid        NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
        attempt     integer     NOT NULL,
        worker_id   text        NOT NULL,
        started_at  timestamptz NOT NULL,
        finished_at timestamptz NOT NULL,
        outcome     text        NOT NULL,
        error       jsonb       NOT NULL,
        PRIMARY KEY (job_id, attempt),
        -- 'running' lives on the job row; 'succeeded' is told by the completed job row itself.
        CONSTRAINT job_attempts_outcome_closed CHECK (outcome IN ('failed', 'timed_out', 'lost', 'interrupted')),
        CONSTRAINT job_attempts_attempt_positive CHECK (attempt >= 1),
        CONSTRAINT job_attempts_time_order CHECK (finished_at >= started_at),
        CONSTRAINT job_attempts_error_shape CHECK (coalesce(jsonb_typeof(error) = 'object'
                                                   AND jsonb_typeof(error -> 'code') = 'string'
                                                   AND jsonb_typeof(error -> 'message') = 'string', false))
      )
    `);

    // Invariants 1, 2 and 4, and the "one live attempt" half of 5, checked on every update of a job.
    await queryRunner.query(`
      CREATE FUNCTION jobs_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF OLD.state IN ('completed', 'failed') THEN
          RAISE EXCEPTION 'job % is % and can never change again', OLD.job_id, OLD.state
            USING ERRCODE = 'check_violation';
        END IF;
        IF NOT (NEW.state = OLD.state
                OR (OLD.state = 'pending' AND NEW.state = 'running')
                OR (OLD.state = 'running' AND NEW.state IN ('completed', 'failed'))) THEN
          RAISE EXCEPTION 'job % cannot move from % to %', OLD.job_id, OLD.state, NEW.state
            USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.job_id IS DISTINCT FROM OLD.job_id OR NEW.job_type IS DISTINCT FROM OLD.job_type
           OR NEW.payload IS DISTINCT FROM OLD.payload OR NEW.created_at IS DISTINCT FROM OLD.created_at
           OR NEW.idempotency_key IS DISTINCT FROM OLD.idempotency_key
           OR NEW.request_hash IS DISTINCT FROM OLD.request_hash THEN
          RAISE EXCEPTION 'job %: job_id, job_type, payload, created_at and the idempotency key never change', OLD.job_id
            USING ERRCODE = 'check_violation';
        END IF;
        IF OLD.started_at IS NOT NULL AND NEW.started_at IS DISTINCT FROM OLD.started_at THEN
          RAISE EXCEPTION 'job %: started_at never changes once set', OLD.job_id USING ERRCODE = 'check_violation';
        END IF;
        -- The failure count moves only when a live attempt closes, by one; its record must agree.
        IF NEW.failed_attempts <> OLD.failed_attempts
           AND NOT (NEW.failed_attempts = OLD.failed_attempts + 1
                    AND OLD.lease_expires_at IS NOT NULL AND NEW.lease_expires_at IS NULL) THEN
          RAISE EXCEPTION 'job %: failed_attempts only grows by one, when a live attempt closes', OLD.job_id
            USING ERRCODE = 'check_violation';
        END IF;
        -- A new attempt opens only by claiming: attempts + 1 together with a fresh lease, and only when
        -- no attempt is live. This is what keeps a job to one live attempt at a time.
        IF NEW.attempts <> OLD.attempts THEN
          IF NOT (NEW.attempts = OLD.attempts + 1 AND OLD.lease_expires_at IS NULL
                  AND NEW.lease_expires_at IS NOT NULL AND NEW.attempt_started_at IS NOT NULL) THEN
            RAISE EXCEPTION 'job %: an attempt opens only by a claim (attempts + 1 with a new lease, none live)', OLD.job_id
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
      CREATE TRIGGER jobs_guard_update BEFORE UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION jobs_guard_update()
    `);

    // Every job starts pending with no attempt. The WHEN clause keeps ordinary inserts free of any call.
    await queryRunner.query(`
      CREATE FUNCTION jobs_refuse_started_insert() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'a job is created pending, with no attempt (got state % and % attempts)', NEW.state, NEW.attempts
          USING ERRCODE = 'check_violation';
      END
      $$
    `);
    await queryRunner.query(`
      CREATE TRIGGER jobs_refuse_started_insert BEFORE INSERT ON jobs FOR EACH ROW
        WHEN (NEW.state <> 'pending' OR NEW.attempts <> 0 OR NEW.failed_attempts <> 0)
        EXECUTE FUNCTION jobs_refuse_started_insert()
    `);

    // A live attempt that closes without completing the job must leave its record. Checked at commit, so
    // the job update and the attempt insert may come in either order inside one transaction or statement.
    await queryRunner.query(`
      CREATE FUNCTION jobs_require_attempt_record() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NOT EXISTS (SELECT 1 FROM job_attempts WHERE job_id = NEW.job_id AND attempt = OLD.attempts) THEN
          RAISE EXCEPTION 'job %: attempt % closed without an attempt record', NEW.job_id, OLD.attempts
            USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
      END
      $$
    `);
    await queryRunner.query(`
      CREATE CONSTRAINT TRIGGER jobs_require_attempt_record
        AFTER UPDATE ON jobs DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
        WHEN (OLD.lease_expires_at IS NOT NULL AND NEW.lease_expires_at IS NULL AND NEW.state <> 'completed')
        EXECUTE FUNCTION jobs_require_attempt_record()
    `);

    // Attempt records are written once and never changed.
    await queryRunner.query(`
      CREATE FUNCTION job_attempts_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'attempt % of job % is closed and never changes', OLD.attempt, OLD.job_id
          USING ERRCODE = 'check_violation';
      END
      $$
    `);
    await queryRunner.query(`
      CREATE TRIGGER job_attempts_refuse_update BEFORE UPDATE ON job_attempts
        FOR EACH ROW EXECUTE FUNCTION job_attempts_refuse_update()
    `);

    // Nor deleted and written again: a record goes only with its job (ON DELETE CASCADE, for retention).
    await queryRunner.query(`
      CREATE FUNCTION job_attempts_refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF EXISTS (SELECT 1 FROM jobs WHERE job_id = OLD.job_id) THEN
          RAISE EXCEPTION 'attempt % of job % is history and is only deleted with its job', OLD.attempt, OLD.job_id
            USING ERRCODE = 'check_violation';
        END IF;
        RETURN OLD;
      END
      $$
    `);
    await queryRunner.query(`
      CREATE TRIGGER job_attempts_refuse_delete BEFORE DELETE ON job_attempts
        FOR EACH ROW EXECUTE FUNCTION job_attempts_refuse_delete()
    `);

    // A record must describe an attempt that was opened and is closed, and failures stay within
    // max_attempts. Checked at commit, against the job row as the transaction leaves it.
    await queryRunner.query(`
      CREATE FUNCTION job_attempts_check_insert() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        job jobs%ROWTYPE;
        failures integer;
      BEGIN
        SELECT * INTO job FROM jobs WHERE job_id = NEW.job_id;
        IF NEW.attempt > job.attempts THEN
          RAISE EXCEPTION 'job %: attempt % was never opened', NEW.job_id, NEW.attempt USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.attempt = job.attempts AND (job.lease_expires_at IS NOT NULL OR job.state = 'completed') THEN
          RAISE EXCEPTION 'job %: attempt % is live or succeeded, not closed as %', NEW.job_id, NEW.attempt, NEW.outcome
            USING ERRCODE = 'check_violation';
        END IF;
        -- The records agree with the job's failure count, which its CHECK keeps within max_attempts.
        SELECT count(*) INTO failures FROM job_attempts
          WHERE job_id = NEW.job_id AND outcome IN ('failed', 'timed_out', 'lost');
        IF failures <> job.failed_attempts THEN
          RAISE EXCEPTION 'job %: % failed attempt records but failed_attempts = %', NEW.job_id, failures, job.failed_attempts
            USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
      END
      $$
    `);
    await queryRunner.query(`
      CREATE CONSTRAINT TRIGGER job_attempts_check_insert
        AFTER INSERT ON job_attempts DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
        EXECUTE FUNCTION job_attempts_check_insert()
    `);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE job_attempts`);
    await queryRunner.query(`DROP TABLE jobs`);
    await queryRunner.query(`DROP FUNCTION job_attempts_check_insert()`);
    await queryRunner.query(`DROP FUNCTION job_attempts_refuse_delete()`);
    await queryRunner.query(`DROP FUNCTION jobs_refuse_started_insert()`);
    await queryRunner.query(`DROP FUNCTION job_attempts_refuse_update()`);
    await queryRunner.query(`DROP FUNCTION jobs_require_attempt_record()`);
    await queryRunner.query(`DROP FUNCTION jobs_guard_update()`);
  }
}
