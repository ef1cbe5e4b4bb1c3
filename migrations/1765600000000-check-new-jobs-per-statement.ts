import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The rule for a new job (a UUIDv7 id of this minute; pending, no attempt, created now, claimable at run_at)
 * is checked once per insert statement, over the rows it inserted, instead of by a PL/pgSQL call per row.
 *
 * A row trigger in PL/pgSQL sets up a call, a NEW record and its variables for every row, and this one took
 * the id's time apart through text (`uuid_send`, `encode`, a cast to bit(64)). The statement trigger reads the
 * statement's transition table, which the counting trigger already has PostgreSQL keep, with one query of
 * plain expressions: the id is compared with the smallest and largest UUIDs of the minute around now, worked
 * out once, and its version is one byte read. Same rows refused, same messages and SQLSTATE (check_violation);
 * the statement fails once every row is in, so nothing of it stays. Like the row trigger, and unlike the
 * counting trigger, it does not fire with `session_replication_role = replica`, which loads rows as they
 * were.
 */
export class CheckNewJobsPerStatement1765600000000 implements MigrationInterface {
  name = 'CheckNewJobsPerStatement1765600000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE FUNCTION jobs_refuse_unlike_new_inserts() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        now_ms bigint := floor(date_part('epoch', clock_timestamp()) * 1000);
        -- Every UUID whose first 48 bits (its time in ms) lie within a minute of now, and no other, sorts
        -- between these two: UUIDs compare byte by byte, the time first.
        earliest uuid := (lpad(to_hex(now_ms - 60000), 12, '0') || '00000000000000000000')::uuid;
        latest uuid := (lpad(to_hex(now_ms + 60000), 12, '0') || 'ffffffffffffffffffff')::uuid;
        refused record;
      BEGIN
        SELECT job_id,
               NOT (job_id BETWEEN earliest AND latest AND get_byte(uuid_send(job_id), 6) >> 4 = 7) AS bad_id
          INTO refused
          FROM inserted_jobs
         WHERE NOT (job_id BETWEEN earliest AND latest AND get_byte(uuid_send(job_id), 6) >> 4 = 7)
            OR state <> 'pending' OR attempts <> 0 OR failed_attempts <> 0
            OR created_at <> now() OR updated_at <> now()
            OR started_at IS NOT NULL OR finished_at IS NOT NULL
            OR result IS NOT NULL OR error IS NOT NULL
            OR worker_id IS NOT NULL OR attempt_started_at IS NOT NULL OR lease_expires_at IS NOT NULL
            OR cancel_requested_at IS NOT NULL OR cancel_reason IS NOT NULL
            OR available_at IS DISTINCT FROM run_at
         ORDER BY 2 DESC
         LIMIT 1;
        IF NOT FOUND THEN
          RETURN NULL;
        ELSIF refused.bad_id THEN
          RAISE EXCEPTION 'job %: a job id is a UUIDv7 of this minute (ids of deleted jobs are never reused)', refused.job_id
            USING ERRCODE = 'check_violation';
        ELSE
          RAISE EXCEPTION 'job %: a job is created pending with no attempt, created_at = updated_at = now(), claimable at run_at', refused.job_id
            USING ERRCODE = 'check_violation';
        END IF;
      END
      $$
    `);
    // One transaction: writers wait for the table's lock, so no row goes in unchecked between the two.
    await queryRunner.query(`DROP TRIGGER jobs_refuse_unlike_new_insert ON jobs`);
    await queryRunner.query(`
      CREATE TRIGGER jobs_refuse_unlike_new_inserts AFTER INSERT ON jobs
        REFERENCING NEW TABLE AS inserted_jobs FOR EACH STATEMENT
        EXECUTE FUNCTION jobs_refuse_unlike_new_inserts()
    `);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TRIGGER jobs_refuse_unlike_new_inserts ON jobs`);
    await queryRunner.query(`DROP FUNCTION jobs_refuse_unlike_new_inserts()`);
    await queryRunner.query(`
      CREATE TRIGGER jobs_refuse_unlike_new_insert BEFORE INSERT ON jobs FOR EACH ROW
        EXECUTE FUNCTION jobs_refuse_unlike_new_insert()
    `);
  }
}
