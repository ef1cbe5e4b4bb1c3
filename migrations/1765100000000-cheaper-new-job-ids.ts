import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A new job's id costs less to make and to check; what an id is and what the check refuses are unchanged.
 *
 * `extract(epoch FROM ...)` answers in numeric, whose arithmetic is slow, and the SQL function that made an
 * id read the clock in a subquery, which keeps PostgreSQL from inlining it: each id went through the SQL
 * function executor. On a 2-core machine, 100,000 ids took 340 ms that way and 177 ms from the same
 * expression in PL/pgSQL reading the clock once as double precision (finer than a microsecond until 2106). The insert check read the clock twice in numeric and turned the id into text twice; it
 * now reads the clock once and the id's first 8 bytes once. `EXPLAIN ANALYZE` of one `INSERT_JOBS` of
 * 1,000 jobs: 12.8 ms before (ids 3.8 ms, check 1.8 ms), 10.2 ms after (ids 2.2 ms, check 1.0 ms).
 */
export class CheaperNewJobIds1765100000000 implements MigrationInterface {
  name = 'CheaperNewJobIds1765100000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // A UUIDv7 (RFC 9562, method 3): 48 bits of clock_timestamp() in ms, version 7, 12 bits of the
    // sub-millisecond time (so ids made one after another sort in that order), then random bits.
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION job_id_v7() RETURNS uuid LANGUAGE plpgsql VOLATILE PARALLEL SAFE AS $$
      DECLARE
        us bigint := floor(date_part('epoch', clock_timestamp()) * 1000000);
      BEGIN
        RETURN encode(overlay(uuid_send(gen_random_uuid())
                              PLACING int8send(((us / 1000) << 16) | 28672 | ((us % 1000) * 4096 / 1000))
                              FROM 1 FOR 8), 'hex')::uuid;
      END
      $$
    `);
    await queryRunner.query(newJobCheck(NEW_ID_CHECK));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION job_id_v7() RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE
      RETURN (
        SELECT encode(overlay(uuid_send(gen_random_uuid())
                              PLACING int8send(((us / 1000) << 16) | x'7000'::int | ((us % 1000) * 4096 / 1000))
                              FROM 1 FOR 8), 'hex')::uuid
        FROM (SELECT floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS us) AS now_us
      )
    `);
    await queryRunner.query(newJobCheck(OLD_ID_CHECK));
  }
}

/** The id's first 64 bits: 48 of milliseconds, the version's 4, 12 more; read once, then compared. */
const NEW_ID_CHECK = `
  DECLARE
    id_head bigint := ('x' || encode(substr(uuid_send(NEW.job_id), 1, 8), 'hex'))::bit(64)::bigint;
    now_ms double precision := date_part('epoch', clock_timestamp()) * 1000;
  BEGIN
    IF (id_head >> 12) & 15 <> 7 OR id_head >> 16 NOT BETWEEN now_ms - 60000 AND now_ms + 60000 THEN`;

/** As 1765000000000-check-new-jobs-without-when wrote it. */
const OLD_ID_CHECK = `
  BEGIN
    IF substr(NEW.job_id::text, 15, 1) <> '7'
       OR job_id_epoch_ms(NEW.job_id) NOT BETWEEN (extract(epoch FROM clock_timestamp()) * 1000)::bigint - 60000
                                              AND (extract(epoch FROM clock_timestamp()) * 1000)::bigint + 60000 THEN`;

/** The new-job rule of 1765000000000-check-new-jobs-without-when, with `idCheck` opening it. */
function newJobCheck(idCheck: string): string {
  return `
    CREATE OR REPLACE FUNCTION jobs_refuse_unlike_new_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    ${idCheck}
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
  `;
}
