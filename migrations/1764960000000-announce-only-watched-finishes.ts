import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Finished jobs are announced on job_service_jobs_finished only when a long poll waits for them.
 *
 * A transaction that sends a NOTIFY holds one lock, shared by the whole server, from just before its
 * commit until the commit is flushed to disk: transactions that notify commit one after the other, each
 * waiting out the others' disk flushes. Every job creation notifies (workers claim new jobs at once), and
 * so did every completion, although hardly any finished job has anyone waiting for it. Sampled on a 2-core
 * machine at 200 jobs/s, waiting for that lock was the commonest state of both the job inserts and the
 * completions.
 *
 * - job_watches holds the jobs a long poll waits for, until expires_at (the end of that wait). An API
 *   process writes the row before it reads the job, in a statement that takes a share lock on the job
 *   row: a transition that updated the row earlier is waited for (and the read then sees it), and one
 *   that updates it later finds the row when its trigger runs. So no finish is missed between the read
 *   and the wait.
 * - UNLOGGED: a watch lives for one wait; after a crash the table is empty and the API, reconnecting,
 *   reads every waited-for job again. Expired rows are deleted by the API.
 * - The trigger stays a statement trigger over the transition table and no longer joins the rows before
 *   the update: a terminal job can never be updated again (jobs_guard_update), so a terminal row in the
 *   new rows became terminal in this very statement.
 */
export class AnnounceOnlyWatchedFinishes1764960000000 implements MigrationInterface {
  name = 'AnnounceOnlyWatchedFinishes1764960000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE UNLOGGED TABLE job_watches (
        job_id     uuid        PRIMARY KEY,
        expires_at timestamptz NOT NULL
      )
    `);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION jobs_notify_finished() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('job_service_jobs_finished', string_agg(job_id::text, ','))
        FROM (SELECT finished.job_id, (row_number() OVER () - 1) / 100 AS chunk
              FROM finished
              WHERE finished.state IN ('completed', 'failed', 'cancelled')
                AND EXISTS (SELECT FROM job_watches w WHERE w.job_id = finished.job_id)) AS ids
        GROUP BY chunk;
        RETURN NULL;
      END
      $$
    `);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION jobs_notify_finished() RETURNS trigger LANGUAGE plpgsql AS $$
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
    await queryRunner.query(`DROP TABLE job_watches`);
  }
}
