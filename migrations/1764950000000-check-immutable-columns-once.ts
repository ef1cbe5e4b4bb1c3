import type { MigrationInterface, QueryRunner } from 'typeorm';

const JOB_TYPE_FORMAT = `'^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$'`;

/**
 * The format checks of job_type and callback_url move from CHECK constraints to the insert, where they
 * are made once per job instead of on every update of its row.
 *
 * PostgreSQL evaluates every CHECK constraint of a table on every UPDATE of a row, whatever columns the
 * UPDATE sets. A job's row is updated at least twice (claim, completion), and these two checks are
 * regular expressions: measured on a 2-core machine, the job_type check alone was about a tenth of the
 * database's CPU time per processed job (`npm run bench`, PostgreSQL backends' CPU per 1,000 jobs, with
 * and without it). Neither column can change after the insert (jobs_guard_update refuses a new job_type,
 * jobs_refuse_callback_url_change a new callback_url), so a value checked when the row is inserted holds
 * for the life of the row: the database still refuses every row with a malformed value, as before.
 *
 * The insert check is a row trigger whose WHEN clause is the format test itself: a well-formed row (every
 * row the service writes) calls no function. The error is a check_violation naming the column, like the
 * constraint's was.
 */
export class CheckImmutableColumnsOnce1764950000000 implements MigrationInterface {
  name = 'CheckImmutableColumnsOnce1764950000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE FUNCTION jobs_refuse_malformed_insert() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.job_type !~ ${JOB_TYPE_FORMAT} THEN
          RAISE EXCEPTION 'job_type "%" is not 1 to 100 letters, digits, "_", ".", ":" or "-" starting with a letter or digit', NEW.job_type
            USING ERRCODE = 'check_violation', COLUMN = 'job_type';
        END IF;
        RAISE EXCEPTION 'callback_url must be an absolute http(s) URL of at most 2048 characters'
          USING ERRCODE = 'check_violation', COLUMN = 'callback_url';
      END
      $$
    `);
    // The trigger's lock makes writers wait for this short transaction, so no row slips in unchecked
    // between the trigger's creation and the constraints' removal.
    await queryRunner.query(`
      CREATE TRIGGER jobs_refuse_malformed_insert BEFORE INSERT ON jobs FOR EACH ROW
        WHEN (NEW.job_type !~ ${JOB_TYPE_FORMAT}
              OR (NEW.callback_url IS NOT NULL
                  AND NOT (NEW.callback_url ~* '^https?://' AND length(NEW.callback_url) <= 2048)))
        EXECUTE FUNCTION jobs_refuse_malformed_insert()
    `);
    await queryRunner.query(`ALTER TABLE jobs DROP CONSTRAINT jobs_job_type_format`);
    await queryRunner.query(`ALTER TABLE jobs DROP CONSTRAINT jobs_callback_url_http`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      ALTER TABLE jobs ADD CONSTRAINT jobs_job_type_format CHECK (job_type ~ ${JOB_TYPE_FORMAT}) NOT VALID
    `);
    await queryRunner.query(`
      ALTER TABLE jobs ADD CONSTRAINT jobs_callback_url_http
        CHECK (callback_url IS NULL OR (callback_url ~* '^https?://' AND length(callback_url) <= 2048)) NOT VALID
    `);
    await queryRunner.query(`ALTER TABLE jobs VALIDATE CONSTRAINT jobs_job_type_format`);
    await queryRunner.query(`ALTER TABLE jobs VALIDATE CONSTRAINT jobs_callback_url_http`);
    await queryRunner.query(`DROP TRIGGER jobs_refuse_malformed_insert ON jobs`);
    await queryRunner.query(`DROP FUNCTION jobs_refuse_malformed_insert()`);
  }
}
