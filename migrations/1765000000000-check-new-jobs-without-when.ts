import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The rule for a new job (pending, no attempt, created now, claimable at run_at, a UUIDv7 id of this minute)
 * is checked by the trigger function itself instead of a WHEN clause.
 *
 * PostgreSQL plans a trigger's WHEN clause at the start of every statement. For a statement inserting one
 * job, planning this one (sixteen conditions, the id's timestamp read twice) cost more than the whole rest of
 * the rule: on a 2-core machine, one `INSERT_JOBS` of one job took 0.64-0.65 ms per round trip with the
 * WHEN clause and 0.57-0.58 ms with the same conditions in the function (pgbench, one client, 6 s runs;
 * without the trigger at all, 0.57). A batch of 1,000 jobs took 15 ms either way. `POST /jobs` inserts one job
 * per statement when requests do not overlap, and that time is part of every job's enqueue-to-start delay.
 */
export class CheckNewJobsWithoutWhen1765000000000 implements MigrationInterface {
  name = 'CheckNewJobsWithoutWhen1765000000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION jobs_refuse_unlike_new_insert() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF substr(NEW.job_id::text, 15, 1) <> '7'
           OR job_id_epoch_ms(NEW.job_id) NOT BETWEEN (extract(epoch FROM clock_timestamp()) * 1000)::bigint - 60000
                                                  AND (extract(epoch FROM clock_timestamp()) * 1000)::bigint + 60000 THEN
          RAISE EXCEPTION 'job %: a job id is a UUIDv7 of this minute (ids of deleted jobs are never reused)', NEW.job_id
            USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.state <> 'pending' OR NEW.attempts <> 0 OR NEW.failed_attempts <> 0
           OR NEW.created_at <> now() OR NEW.updated_at <> now()
           OR NEW.started_at IS NOT NULL OR NEW.finished_at IS NOT NULL
           OR NEW.result IS NOT NULL OR NEW.error IS NOT NULL
           OR NEW.worker_id IS NOT NULL OR NEW.attempt_started_at IS NOT NULL OR NEW.lease_expires_at IS NOT NULL
           OR NEW.cancel_requested_at IS NOT NULL OR NEW.cancel_reason IS NOT NULL
           OR NEW.available_at IS DISTINCT FROM NEW.run_at THEN
          RAISE EXCEPTION 'job %: a job is created pending with no attempt, created_at = updated_at = now(), claimable at run_at', NEW.job_id
            USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
      END
      $$
    `);
    await queryRunner.query(`DROP TRIGGER jobs_refuse_unlike_new_insert ON jobs`);
    await queryRunner.query(`
      CREATE TRIGGER jobs_refuse_unlike_new_insert BEFORE INSERT ON jobs FOR EACH ROW
        EXECUTE FUNCTION jobs_refuse_unlike_new_insert()
    `);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION jobs_refuse_unlike_new_insert() RETURNS trigger LANGUAGE plpgsql AS $$
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
}
