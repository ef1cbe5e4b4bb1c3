import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Announces every job that reaches a terminal state on the channel job_service_jobs_finished, with the
 * job ids as payload (comma-separated, at most 100 per notification, well under PostgreSQL's 8,000-byte
 * limit). The API's long poll (GET /jobs/{id}?wait_ms=) listens on it with one connection per process.
 * A statement-level trigger, so that every way a job can finish is covered, hand-written SQL included,
 * at the cost of one trigger call per UPDATE statement rather than one per row.
 */
export class NotifyFinishedJobs1764650000000 implements MigrationInterface {
  name = 'NotifyFinishedJobs1764650000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE FUNCTION jobs_notify_finished() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('job_service_jobs_finished', string_agg(job_id::text, ','))
        FROM (SELECT finished.job_id, (row_number() OVER () - 1) / 100 AS chunk
              FROM finished JOIN before USING (job_id)
              WHERE finished.state IN ('completed', 'failed', 'cancelled') AND before.state <> finished.state) AS ids
        GROUP BY chunk;
        RETURN NULL;
      END
      $$
    `);
    await queryRunner.query(`
      CREATE TRIGGER jobs_notify_finished AFTER UPDATE ON jobs
        REFERENCING OLD TABLE AS before NEW TABLE AS finished
        FOR EACH STATEMENT EXECUTE FUNCTION jobs_notify_finished()
    `);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TRIGGER jobs_notify_finished ON jobs`);
    await queryRunner.query(`DROP FUNCTION jobs_notify_finished()`);
  }
}
