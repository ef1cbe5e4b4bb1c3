import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Closes the holes an outside review found in the database-enforced contract, and repairs databases that
 * were migrated while an earlier migration was still being edited:
 *
 * - rescue_sweeps is created here if it is missing (1764400000000 gained it after some databases had
 *   already applied that migration), and its one row can no longer be deleted, truncated or pushed into
 *   the future: without it the rescue sweep silently never runs.
 * - A job can be deleted only once it is terminal, and only when its id is more than a minute old; a new
 *   job's id must carry a time within a minute of the database clock. Together they mean a deleted job's
 *   id can never be inserted again (with another payload): by the time deleting is allowed, inserting
 *   that id is not. TRUNCATE of jobs or of the attempt records is refused (it would drop accepted jobs or
 *   history wholesale, past every row-level rule).
 * - Job ids are made by the database (UUIDv7 from clock_timestamp()), so ids and created_at share one clock.
 * - A job is inserted exactly as new: pending, no attempt, created_at = updated_at = now(), claimable at its
 *   run_at, nothing finished.
 * - A job that is not terminal always has an attempt left (failed_attempts < max_attempts): lowering
 *   max_attempts to the failures already counted made the rescue sweep's statement fail for every row.
 * - A claim cannot date its attempt in the future (the attempt record would end before it started).
 */
export class CloseInvariantHoles1764500000000 implements MigrationInterface {
  name = 'CloseInvariantHoles1764500000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE IF NOT EXISTS rescue_sweeps (
        singleton     boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
        last_swept_at timestamptz NOT NULL DEFAULT '-infinity'
      )
    `);
    // When the last sweep finished without an error, across all workers: readiness and metrics read it.
    await queryRunner.query(`ALTER TABLE rescue_sweeps ADD COLUMN last_completed_at timestamptz`);
    await queryRunner.query(`INSERT INTO rescue_sweeps DEFAULT VALUES ON CONFLICT DO NOTHING`);
    await queryRunner.query(`
      CREATE FUNCTION rescue_sweeps_guard() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'UPDATE' THEN
          IF NEW.last_swept_at > now() OR NEW.last_completed_at > now() THEN
            RAISE EXCEPTION 'rescue_sweeps: a sweep cannot be dated in the future (it would stop every later sweep)'
              USING ERRCODE = 'check_violation';
          END IF;
          RETURN NEW;
        END IF;
        RAISE EXCEPTION 'rescue_sweeps holds the rescue sweep''s turn; without its row no sweep runs (% refused)', TG_OP
          USING ERRCODE = 'check_violation';
      END
      $$
    `);
    await queryRunner.query(`
      CREATE TRIGGER rescue_sweeps_guard BEFORE UPDATE OR DELETE ON rescue_sweeps
        FOR EACH ROW EXECUTE FUNCTION rescue_sweeps_guard()
    `);
    await queryRunner.query(`
      CREATE TRIGGER rescue_sweeps_refuse_truncate BEFORE TRUNCATE ON rescue_sweeps
        FOR EACH STATEMENT EXECUTE FUNCTION rescue_sweeps_guard()
    `);

    // The millisecond timestamp in the first 48 bits of a UUIDv7.
    await queryRunner.query(`
      CREATE FUNCTION job_id_epoch_ms(job_id uuid) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
      RETURN ('x' || translate(left(job_id::text, 13), '-', ''))::bit(48)::bigint
    `);
    // A UUIDv7 (RFC 9562, method 3): 48 bits of clock_timestamp() in ms, version 7, 12 bits of the
    // sub-millisecond time (so ids made one after another sort in that order), then random bits.
    await queryRunner.query(`
      CREATE FUNCTION job_id_v7() RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE
      RETURN (
        SELECT encode(overlay(uuid_send(gen_random_uuid())
                              PLACING int8send(((us / 1000) << 16) | x'7000'::int | ((us % 1000) * 4096 / 1000))
                              FROM 1 FOR 8), 'hex')::uuid
        FROM (SELECT floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS us) AS now_us
      )
    `);
    await queryRunner.query(`ALTER TABLE jobs ALTER COLUMN job_id SET DEFAULT job_id_v7()`);

    // Replaces the narrower insert check of 1764300000000. The WHEN clause keeps ordinary inserts free of
    // any function call; the function only words the refusal.
    await queryRunner.query(`DROP TRIGGER jobs_refuse_started_insert ON jobs`);
    await queryRunner.query(`DROP FUNCTION jobs_refuse_started_insert()`);
    await queryRunner.query(`
      CREATE FUNCTION jobs_refuse_unlike_new_insert() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF substr(NEW.job_id::text, 15, 1) <> '7'
           OR job_id_epoch_ms(NEW.job_id) NOT BETWEEN (extract(epoch FROM clock_timestamp()) * 1000)::bigint - 60000
                                                  AND (extract(epoch FROM clock_timestamp()) * 1000)::bigint + 60000 THEN
          RAISE EXCEPTION 'job %: a job id is a UUIDv7 of this minute (ids of deleted jobs are never reused)', NEW.job_id
            USING ERRCODE = 'check_violation';
        END IF;
        RAISE EXCEPTION 'job %: a job is created pending with no attempt, created_at = updated_at = now(), claimable at run_at', NEW.job_id
          USING ERRCODE = 'check_violation';
      END
      $$
    `);
    await queryRunner.query(`
      CREATE TRIGGER jobs_refuse_unlike_new_insert BEFORE INSERT ON jobs FOR EACH ROW
        WHEN (NEW.state <> 'pending' OR NEW.attempts <> 0 OR NEW.failed_attempts <> 0
              OR NEW.created_at <> now() OR NEW.updated_at <> now()
              OR NEW.started_at IS NOT NULL OR NEW.finished_at IS NOT NULL
              OR NEW.result IS NOT NULL OR NEW.error IS NOT NULL
              OR NEW.worker_id IS NOT NULL OR NEW.attempt_started_at IS NOT NULL OR NEW.lease_expires_at IS NOT NULL
              OR NEW.available_at IS DISTINCT FROM NEW.run_at
              OR substr(NEW.job_id::text, 15, 1) <> '7'
              OR job_id_epoch_ms(NEW.job_id) NOT BETWEEN (extract(epoch FROM clock_timestamp()) * 1000)::bigint - 60000
                                                     AND (extract(epoch FROM clock_timestamp()) * 1000)::bigint + 60000)
        EXECUTE FUNCTION jobs_refuse_unlike_new_insert()
    `);

    await queryRunner.query(`
      CREATE FUNCTION jobs_guard_delete() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF OLD.state NOT IN ('completed', 'failed') THEN
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
    await queryRunner.query(`
      CREATE TRIGGER jobs_guard_delete BEFORE DELETE ON jobs FOR EACH ROW EXECUTE FUNCTION jobs_guard_delete()
    `);
    await queryRunner.query(`
      CREATE FUNCTION refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION '% cannot be truncated: rows go one by one, and only as the job contract allows', TG_TABLE_NAME
          USING ERRCODE = 'check_violation';
      END
      $$
    `);
    await queryRunner.query(`
      CREATE TRIGGER jobs_refuse_truncate BEFORE TRUNCATE ON jobs FOR EACH STATEMENT EXECUTE FUNCTION refuse_truncate()
    `);
    await queryRunner.query(`
      CREATE TRIGGER job_attempts_refuse_truncate BEFORE TRUNCATE ON job_attempts
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_truncate()
    `);

    // NOT VALID first, then VALIDATE: the check of existing rows does not block writes while it runs.
    await queryRunner.query(`
      ALTER TABLE jobs ADD CONSTRAINT jobs_attempt_left_while_not_terminal
        CHECK (state IN ('completed', 'failed') OR failed_attempts < max_attempts) NOT VALID
    `);
    await queryRunner.query(`ALTER TABLE jobs VALIDATE CONSTRAINT jobs_attempt_left_while_not_terminal`);

    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION jobs_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
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
        -- no attempt is live. This is what keeps a job to one live attempt at a time. It starts now, not
        -- later: its record must never end before it began.
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
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE jobs DROP CONSTRAINT jobs_attempt_left_while_not_terminal`);
    await queryRunner.query(`DROP TRIGGER job_attempts_refuse_truncate ON job_attempts`);
    await queryRunner.query(`DROP TRIGGER jobs_refuse_truncate ON jobs`);
    await queryRunner.query(`DROP FUNCTION refuse_truncate()`);
    await queryRunner.query(`DROP TRIGGER jobs_guard_delete ON jobs`);
    await queryRunner.query(`DROP FUNCTION jobs_guard_delete()`);
    await queryRunner.query(`DROP TRIGGER jobs_refuse_unlike_new_insert ON jobs`);
    await queryRunner.query(`DROP FUNCTION jobs_refuse_unlike_new_insert()`);
    await queryRunner.query(`ALTER TABLE jobs ALTER COLUMN job_id DROP DEFAULT`);
    await queryRunner.query(`DROP FUNCTION job_id_v7()`);
    await queryRunner.query(`DROP FUNCTION job_id_epoch_ms(uuid)`);
    await queryRunner.query(`DROP TRIGGER rescue_sweeps_refuse_truncate ON rescue_sweeps`);
    await queryRunner.query(`DROP TRIGGER rescue_sweeps_guard ON rescue_sweeps`);
    await queryRunner.query(`DROP FUNCTION rescue_sweeps_guard()`);
    await queryRunner.query(`ALTER TABLE rescue_sweeps DROP COLUMN last_completed_at`);
    // The update guard keeps its stricter form (it also refuses attempts dated in the future).
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
  }
}
