import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Completion callbacks: a job may carry a callback_url, and the moment it reaches a terminal state the
 * database itself records a delivery of it, in the transaction of that transition, whatever statement
 * made it (a worker's completion, failure or cancel, the rescue sweep, a cancel through the API, a bulk
 * cancel, hand-written SQL). A worker that dies between the transition and the delivery loses nothing:
 * the delivery is already committed, and any worker delivers it.
 *
 * - jobs.callback_url: absolute http(s) URL, set at creation, never changed afterwards.
 * - callback_deliveries: one row per job that finished with a callback_url. It is created only by the
 *   trigger on jobs; its state moves forward only (pending -> delivered | failed); it goes only with its
 *   job (ON DELETE CASCADE), and a job whose delivery is still pending cannot be deleted (retention skips
 *   it until the delivery settles). next_attempt_at is when it may next be claimed: a claim pushes it to
 *   the end of the claimer's lease, so a delivery whose worker died is claimed again once that passes.
 * - The trigger that creates deliveries is a row trigger whose WHEN clause is false for a job without a
 *   callback_url: such jobs (the hot path) pay one NULL test per updated row, no function call.
 * - Each new delivery is announced on job_service_callbacks_due (at commit; one notification per
 *   transaction, PostgreSQL folds identical payloads), so idle workers deliver at once.
 */
export class CompletionCallbacks1764800000000 implements MigrationInterface {
  name = 'CompletionCallbacks1764800000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // A nullable column without a default: a change of the catalog only, no rewrite of the table. The
    // check is added NOT VALID, then validated, so that it blocks no writer while it reads the table.
    await queryRunner.query(`ALTER TABLE jobs ADD COLUMN callback_url text`);
    await queryRunner.query(`
      ALTER TABLE jobs ADD CONSTRAINT jobs_callback_url_http
        CHECK (callback_url IS NULL OR (callback_url ~* '^https?://' AND length(callback_url) <= 2048)) NOT VALID
    `);
    await queryRunner.query(`ALTER TABLE jobs VALIDATE CONSTRAINT jobs_callback_url_http`);

    // UPDATE OF: the trigger is not even looked at by statements that do not set callback_url.
    await queryRunner.query(`
      CREATE FUNCTION jobs_refuse_callback_url_change() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'job %: callback_url is set when the job is created and never changes', OLD.job_id
          USING ERRCODE = 'check_violation';
      END
      $$
    `);
    await queryRunner.query(`
      CREATE TRIGGER jobs_refuse_callback_url_change BEFORE UPDATE OF callback_url ON jobs FOR EACH ROW
        WHEN (NEW.callback_url IS DISTINCT FROM OLD.callback_url)
        EXECUTE FUNCTION jobs_refuse_callback_url_change()
    `);

    await queryRunner.query(`
      CREATE TABLE callback_deliveries (
        job_id          uuid        PRIMARY KEY REFERENCES jobs (job_id) ON DELETE CASCADE,
        url             text        NOT NULL,
        state           text        NOT NULL DEFAULT 'pending'
                                    CONSTRAINT callback_deliveries_state_known
                                    CHECK (state IN ('pending', 'delivered', 'failed')),
        attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        -- Due time while pending (the lease's end while an attempt is under way); NULL once settled.
        next_attempt_at timestamptz,
        worker_id       text,
        created_at      timestamptz NOT NULL DEFAULT now(),
        settled_at      timestamptz,
        last_status     integer,
        last_error      text,
        CONSTRAINT callback_deliveries_due_iff_pending CHECK ((state = 'pending') = (next_attempt_at IS NOT NULL)),
        CONSTRAINT callback_deliveries_settled_iff_not_pending CHECK ((state = 'pending') = (settled_at IS NULL)),
        CONSTRAINT callback_deliveries_settled_after_attempt CHECK (state = 'pending' OR attempts >= 1)
      )
    `);
    // The claim's scan: pending deliveries only, by due time. Settled rows leave the index.
    await queryRunner.query(`
      CREATE INDEX callback_deliveries_due_idx ON callback_deliveries (next_attempt_at) WHERE state = 'pending'
    `);

    await queryRunner.query(`
      CREATE FUNCTION jobs_create_callback_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO callback_deliveries (job_id, url, next_attempt_at) VALUES (NEW.job_id, NEW.callback_url, now());
        PERFORM pg_notify('job_service_callbacks_due', '');
        RETURN NULL;
      END
      $$
    `);
    // AFTER, so that the delivery names a job row that is already terminal; a rollback of the transition
    // takes the delivery with it. A terminal job never changes again, so this fires once per job.
    await queryRunner.query(`
      CREATE TRIGGER jobs_create_callback_delivery AFTER UPDATE ON jobs FOR EACH ROW
        WHEN (NEW.callback_url IS NOT NULL AND NEW.state IS DISTINCT FROM OLD.state
              AND NEW.state IN ('completed', 'failed', 'cancelled'))
        EXECUTE FUNCTION jobs_create_callback_delivery()
    `);

    // Inserts come from the trigger on jobs: this WHEN sees depth 1 there (0 for a statement of its own),
    // the function depth 2 (1). The WHEN clause keeps those inserts, on the path of every finishing job
    // with a callback, free of any function call; the function only words the refusal.
    await queryRunner.query(`
      CREATE FUNCTION callback_deliveries_refuse_insert() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF pg_trigger_depth() < 2 THEN
          RAISE EXCEPTION 'job %: a callback delivery is created only by its job reaching a terminal state', NEW.job_id
            USING ERRCODE = 'check_violation';
        END IF;
        RAISE EXCEPTION 'job %: a callback delivery is created pending, with no attempt', NEW.job_id
          USING ERRCODE = 'check_violation';
      END
      $$
    `);
    await queryRunner.query(`
      CREATE TRIGGER callback_deliveries_refuse_insert BEFORE INSERT ON callback_deliveries FOR EACH ROW
        WHEN (pg_trigger_depth() < 1 OR NEW.state <> 'pending' OR NEW.attempts <> 0 OR NEW.worker_id IS NOT NULL
              OR NEW.settled_at IS NOT NULL OR NEW.last_status IS NOT NULL OR NEW.last_error IS NOT NULL)
        EXECUTE FUNCTION callback_deliveries_refuse_insert()
    `);
    await queryRunner.query(`
      CREATE FUNCTION callback_deliveries_guard() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'DELETE' THEN
          -- A cascade from the job's own delete runs inside the foreign key's trigger (depth 2).
          IF pg_trigger_depth() < 2 THEN
            RAISE EXCEPTION 'job %: a callback delivery goes only with its job', OLD.job_id
              USING ERRCODE = 'check_violation';
          END IF;
          IF OLD.state = 'pending' THEN
            RAISE EXCEPTION 'job % cannot be deleted while its callback is still pending', OLD.job_id
              USING ERRCODE = 'check_violation';
          END IF;
          RETURN OLD;
        END IF;
        IF OLD.state <> 'pending' THEN
          RAISE EXCEPTION 'job %: its callback is % and can never change again', OLD.job_id, OLD.state
            USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.job_id IS DISTINCT FROM OLD.job_id OR NEW.url IS DISTINCT FROM OLD.url
           OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
          RAISE EXCEPTION 'job %: a callback delivery''s job, url and created_at never change', OLD.job_id
            USING ERRCODE = 'check_violation';
        END IF;
        IF NOT (NEW.attempts = OLD.attempts OR NEW.attempts = OLD.attempts + 1) THEN
          RAISE EXCEPTION 'job %: callback attempts only grow by one, when a worker claims the delivery', OLD.job_id
            USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.state <> 'pending' AND NEW.attempts <> OLD.attempts THEN
          RAISE EXCEPTION 'job %: a callback delivery settles with the outcome of an attempt already made', OLD.job_id
            USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
      END
      $$
    `);
    await queryRunner.query(`
      CREATE TRIGGER callback_deliveries_guard BEFORE UPDATE OR DELETE ON callback_deliveries
        FOR EACH ROW EXECUTE FUNCTION callback_deliveries_guard()
    `);
    await queryRunner.query(`
      CREATE TRIGGER callback_deliveries_refuse_truncate BEFORE TRUNCATE ON callback_deliveries
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_truncate()
    `);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE callback_deliveries`);
    await queryRunner.query(`DROP FUNCTION callback_deliveries_guard()`);
    await queryRunner.query(`DROP FUNCTION callback_deliveries_refuse_insert()`);
    await queryRunner.query(`DROP TRIGGER jobs_create_callback_delivery ON jobs`);
    await queryRunner.query(`DROP FUNCTION jobs_create_callback_delivery()`);
    await queryRunner.query(`DROP TRIGGER jobs_refuse_callback_url_change ON jobs`);
    await queryRunner.query(`DROP FUNCTION jobs_refuse_callback_url_change()`);
    await queryRunner.query(`ALTER TABLE jobs DROP COLUMN callback_url`);
  }
}
