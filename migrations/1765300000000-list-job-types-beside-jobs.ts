import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `job_type_listing (job_type, job_id)`: what `GET /jobs?job_type=` walks, in a table of its own, in place
 * of the index `jobs_type_listing_idx` on `jobs`.
 *
 * A claim is never a HOT update (it takes the job out of the claim index), and a completion is not either when
 * its page has no room; PostgreSQL then writes a new entry in every index of `jobs`, whether or not the
 * indexed columns changed. The listing index got a new entry with every claim and every such completion for a
 * key that never changes (`job_type` and `job_id` are fixed at creation), and the churn of those versions
 * made its pages split and be cleaned again and again. Drains of 100,000 jobs by one worker at
 * `WORKER_CONCURRENCY=500` on an embedded PostgreSQL 15, three interleaved passes of three drains each: the
 * database spent 45.7-57.2 ms of CPU per 1,000 jobs with this table against 59.4-66.4 with the index, and
 * the drains ran at 14,261-18,116 jobs/s against 13,450-15,738.
 *
 * The listing rows are written once, by the statement trigger that already counts the inserted jobs (one
 * more part of its one statement, over the same transition table), and deleted by the one that counts
 * deleted jobs: so the listing holds exactly the jobs, as the counters do, and only those triggers may
 * write it. Creating a job now writes one narrow row more than it did (one prepared insert of 1,000 jobs,
 * eight interleaved rounds of 50: median backend CPU 27.7 ms against 27.1); claiming and finishing it write
 * nothing here.
 */
export class ListJobTypesBesideJobs1765300000000 implements MigrationInterface {
  name = 'ListJobTypesBesideJobs1765300000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // Writers wait until this transaction commits, so no job is created between the copy below and the
    // trigger that lists new jobs from then on. Readers go on.
    await queryRunner.query(`LOCK TABLE jobs IN SHARE MODE`);
    await queryRunner.query(`
      CREATE TABLE job_type_listing (
        job_type text NOT NULL,
        job_id   uuid NOT NULL,
        PRIMARY KEY (job_type, job_id)
      )
    `);
    await queryRunner.query(
      `INSERT INTO job_type_listing (job_type, job_id) SELECT job_type, job_id FROM jobs`,
    );
    await queryRunner.query(`DROP INDEX jobs_type_listing_idx`);

    await queryRunner.query(`
      CREATE FUNCTION job_type_listing_refuse_write() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'job_type_listing is kept by the triggers on jobs; % of it would make GET /jobs miss or repeat jobs', TG_OP
          USING ERRCODE = 'check_violation';
      END
      $$
    `);
    await queryRunner.query(`
      CREATE TRIGGER job_type_listing_refuse_write BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON job_type_listing
        FOR EACH STATEMENT WHEN (pg_trigger_depth() < 1) EXECUTE FUNCTION job_type_listing_refuse_write()
    `);

    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION jobs_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        my_shard smallint := txid_current() % 16;
      BEGIN
        WITH counted AS (
          INSERT INTO job_counts AS c (job_type, state, shard, jobs, live)
          SELECT job_type, state, my_shard, count(*), count(*) FILTER (WHERE lease_expires_at IS NOT NULL)
          FROM new_jobs
          GROUP BY job_type, state
          ORDER BY job_type, state
          ON CONFLICT (job_type, state, shard) DO UPDATE SET jobs = c.jobs + excluded.jobs, live = c.live + excluded.live
        ),
        listed AS (
          INSERT INTO job_type_listing (job_type, job_id) SELECT job_type, job_id FROM new_jobs
        )
        INSERT INTO job_lease_expiries AS e (expires_second, shard, leases)
        SELECT date_trunc('second', lease_expires_at), my_shard, count(*)
        FROM new_jobs
        WHERE lease_expires_at IS NOT NULL
        GROUP BY 1
        ORDER BY 1
        ON CONFLICT (expires_second, shard) DO UPDATE SET leases = e.leases + excluded.leases;
        RETURN NULL;
      END
      $$
    `);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION jobs_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        my_shard smallint := txid_current() % 16;
      BEGIN
        WITH counted AS (
          INSERT INTO job_counts AS c (job_type, state, shard, jobs, live)
          SELECT job_type, state, my_shard, -count(*), -count(*) FILTER (WHERE lease_expires_at IS NOT NULL)
          FROM old_jobs
          GROUP BY job_type, state
          ORDER BY job_type, state
          ON CONFLICT (job_type, state, shard) DO UPDATE SET jobs = c.jobs + excluded.jobs, live = c.live + excluded.live
        ),
        unlisted AS (
          DELETE FROM job_type_listing l USING old_jobs o WHERE l.job_type = o.job_type AND l.job_id = o.job_id
        )
        INSERT INTO job_lease_expiries AS e (expires_second, shard, leases)
        SELECT date_trunc('second', lease_expires_at), my_shard, -count(*)
        FROM old_jobs
        WHERE lease_expires_at IS NOT NULL
        GROUP BY 1
        ORDER BY 1
        ON CONFLICT (expires_second, shard) DO UPDATE SET leases = e.leases + excluded.leases;
        RETURN NULL;
      END
      $$
    `);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION jobs_count_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        DELETE FROM job_counts;
        DELETE FROM job_lease_expiries;
        TRUNCATE job_type_listing;
        RETURN NULL;
      END
      $$
    `);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`LOCK TABLE jobs IN SHARE MODE`);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION jobs_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        my_shard smallint := txid_current() % 16;
      BEGIN
        WITH counted AS (
          INSERT INTO job_counts AS c (job_type, state, shard, jobs, live)
          SELECT job_type, state, my_shard, count(*), count(*) FILTER (WHERE lease_expires_at IS NOT NULL)
          FROM new_jobs
          GROUP BY job_type, state
          ORDER BY job_type, state
          ON CONFLICT (job_type, state, shard) DO UPDATE SET jobs = c.jobs + excluded.jobs, live = c.live + excluded.live
        )
        INSERT INTO job_lease_expiries AS e (expires_second, shard, leases)
        SELECT date_trunc('second', lease_expires_at), my_shard, count(*)
        FROM new_jobs
        WHERE lease_expires_at IS NOT NULL
        GROUP BY 1
        ORDER BY 1
        ON CONFLICT (expires_second, shard) DO UPDATE SET leases = e.leases + excluded.leases;
        RETURN NULL;
      END
      $$
    `);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION jobs_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        my_shard smallint := txid_current() % 16;
      BEGIN
        WITH counted AS (
          INSERT INTO job_counts AS c (job_type, state, shard, jobs, live)
          SELECT job_type, state, my_shard, -count(*), -count(*) FILTER (WHERE lease_expires_at IS NOT NULL)
          FROM old_jobs
          GROUP BY job_type, state
          ORDER BY job_type, state
          ON CONFLICT (job_type, state, shard) DO UPDATE SET jobs = c.jobs + excluded.jobs, live = c.live + excluded.live
        )
        INSERT INTO job_lease_expiries AS e (expires_second, shard, leases)
        SELECT date_trunc('second', lease_expires_at), my_shard, -count(*)
        FROM old_jobs
        WHERE lease_expires_at IS NOT NULL
        GROUP BY 1
        ORDER BY 1
        ON CONFLICT (expires_second, shard) DO UPDATE SET leases = e.leases + excluded.leases;
        RETURN NULL;
      END
      $$
    `);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION jobs_count_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        DELETE FROM job_counts;
        DELETE FROM job_lease_expiries;
        RETURN NULL;
      END
      $$
    `);
    await queryRunner.query(`CREATE INDEX jobs_type_listing_idx ON jobs (job_type, job_id)`);
    await queryRunner.query(`DROP TABLE job_type_listing`);
    await queryRunner.query(`DROP FUNCTION job_type_listing_refuse_write()`);
  }
}
