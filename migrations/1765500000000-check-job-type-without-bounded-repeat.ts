import type { MigrationInterface, QueryRunner } from 'typeorm';

const CALLBACK_URL_MALFORMED = `NEW.callback_url IS NOT NULL
              AND NOT (NEW.callback_url ~* '^https?://' AND length(NEW.callback_url) <= 2048)`;

/**
 * The rule for a new job's `job_type` (1 to 100 letters, digits, "_", ".", ":" or "-", starting with a letter
 * or digit) is checked as a length and an unbounded pattern, `octet_length(job_type) > 100 OR job_type !~
 * '^[A-Za-z0-9][A-Za-z0-9_.:-]*$'`, instead of the one pattern `'^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$'`.
 *
 * Both accept the same strings: the pattern admits ASCII only, where bytes and characters are one. But
 * PostgreSQL's regular expressions run a bounded repeat as that many states, and every match builds the
 * states it meets anew: on PostgreSQL 15, testing a million stored job types of 4 and 13 characters took
 * 4.8-5.5 s with `{0,99}` and 0.24 s with `*` plus the length. Every job created runs this check, and it was
 * the hottest function of the server (`miss`, the regex engine building a state) under `POST /jobs/batch`.
 * Through one api process on 2 cores, 4 connections sending batches of 1,000 answered with the ids only,
 * two interleaved pairs of runs of four 8 s loads: 61,875-66,375 jobs/s with the server spending 19.3-21.1 ms
 * of CPU per 1,000 jobs, against 50,875-60,875 jobs/s and 22.1-27.2 ms.
 */
export class CheckJobTypeWithoutBoundedRepeat1765500000000 implements MigrationInterface {
  name = 'CheckJobTypeWithoutBoundedRepeat1765500000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // One transaction: writers wait for the trigger's lock, so no row goes in between the drop and the create.
    await queryRunner.query(`DROP TRIGGER jobs_refuse_malformed_insert ON jobs`);
    await queryRunner.query(`
      CREATE TRIGGER jobs_refuse_malformed_insert BEFORE INSERT ON jobs FOR EACH ROW
        WHEN (octet_length(NEW.job_type) > 100 OR NEW.job_type !~ '^[A-Za-z0-9][A-Za-z0-9_.:-]*$'
              OR (${CALLBACK_URL_MALFORMED}))
        EXECUTE FUNCTION jobs_refuse_malformed_insert()
    `);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TRIGGER jobs_refuse_malformed_insert ON jobs`);
    await queryRunner.query(`
      CREATE TRIGGER jobs_refuse_malformed_insert BEFORE INSERT ON jobs FOR EACH ROW
        WHEN (NEW.job_type !~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$'
              OR (${CALLBACK_URL_MALFORMED}))
        EXECUTE FUNCTION jobs_refuse_malformed_insert()
    `);
  }
}
