import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `job_state_listing (state, job_id)`: the failed and the cancelled jobs, what `GET /jobs?state=failed` and
 * `?state=cancelled` walk.
 *
 * Nothing on `jobs` indexes a job's state: an index on it would make every completion a non-HOT update. So a
 * list filtered by state walked the jobs newest first until it had a page, and when that state is rare (a
 * few failed jobs among millions of completed ones, the question an operator asks first) the walk read the
 * whole table: with 30 failed jobs, the oldest, among ten million, the first page took 712-812 ms by a
 * parallel scan against 0.24-0.38 ms through this listing (EXPLAIN ANALYZE, warm, PostgreSQL 15).
 *
 * Failed and cancelled are the states worth a listing: they are rare, and a job enters them once and never
 * leaves (states only move forward), so a row is written once, by the statement trigger that already counts
 * the updated jobs, and deleted with its job by the one that counts deleted jobs. Claims and completions
 * write nothing here. Pending, running and completed jobs need none: pending and running ones are the newest
 * on a table that keeps up, and completed ones are most of the table, so the walk finds a page at once.
 * Only those triggers may write the table, as with `job_type_listing`.
 */
export class ListFailedAndCancelledJobs1765700000000 implements MigrationInterface {
  name = 'ListFailedAndCancelledJobs1765700000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // Writers wait until this transaction commits, so no job fails or is cancelled between the copy below
    // and the trigger that lists them from then on. Readers go on.
    await queryRunner.query(`LOCK TABLE jobs IN SHARE MODE`);
    await queryRunner.query(`
      CREATE TABLE job_state_listing (
        state  text NOT NULL CONSTRAINT job_state_listing_rare_terminal_state CHECK (state IN ('failed', 'cancelled')),
        job_id uuid NOT NULL,
        PRIMARY KEY (state, job_id)
      )
    `);
    await queryRunner.query(`
      INSERT INTO job_state_listing (state, job_id)
      SELECT state, job_id FROM jobs WHERE state IN ('failed', 'cancelled')
    `);

    await queryRunner.query(`
      CREATE FUNCTION job_state_listing_refuse_write() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'job_state_listing is kept by the triggers on jobs; % of it would make GET /jobs?state= miss or repeat jobs', TG_OP
          USING ERRCODE = 'check_violation';
      END
      $$
    `);
    await queryRunner.query(`
      CREATE TRIGGER job_state_listing_refuse_write BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON job_state_listing
        FOR EACH STATEMENT WHEN (pg_trigger_depth() < 1) EXECUTE FUNCTION job_state_listing_refuse_write()
    `);

    await queryRunner.query(countInserted(true));
    await queryRunner.query(countUpdated(true));
    await queryRunner.query(countDeleted(true));
    await queryRunner.query(countTruncated(true));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`LOCK TABLE jobs IN SHARE MODE`);
    await queryRunner.query(countInserted(false));
    await queryRunner.query(countUpdated(false));
    await queryRunner.query(countDeleted(false));
    await queryRunner.query(countTruncated(false));
    await queryRunner.query(`DROP TABLE job_state_listing`);
    await queryRunner.query(`DROP FUNCTION job_state_listing_refuse_write()`);
  }
}

/**
 * jobs_count_inserted as migration 1765300000000 left it, listing the failed and cancelled jobs among the
 * inserted ones when `listing`. A job is created pending (jobs_refuse_unlike_new_inserts); only a restore or
 * an import (session_replication_role = replica) inserts finished ones, and the counters count those too.
 */
function countInserted(listing: boolean): string {
  return `
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
        )${
          listing
            ? `,
        listed_states AS (
          INSERT INTO job_state_listing (state, job_id)
          SELECT state, job_id FROM new_jobs WHERE state IN ('failed', 'cancelled')
        )`
            : ''
        }
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
    `;
}

/** jobs_count_updated as migration 1764990000000 left it, listing the jobs that failed or were cancelled when `listing`. */
function countUpdated(listing: boolean): string {
  return `
      CREATE OR REPLACE FUNCTION jobs_count_updated() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        my_shard smallint := txid_current() % 16;
      BEGIN
        WITH moved AS (
          SELECT job_type, state, sum(jobs) AS jobs, sum(live) AS live
          FROM (SELECT job_type, state, -1 AS jobs, -(lease_expires_at IS NOT NULL)::int AS live FROM old_jobs
                UNION ALL
                SELECT job_type, state, 1, (lease_expires_at IS NOT NULL)::int FROM new_jobs) AS change
          GROUP BY job_type, state
        ),
        counted AS (
          INSERT INTO job_counts AS c (job_type, state, shard, jobs, live)
          SELECT job_type, state, my_shard, jobs, live FROM moved
          WHERE jobs <> 0 OR live <> 0
          ORDER BY job_type, state
          ON CONFLICT (job_type, state, shard) DO UPDATE SET jobs = c.jobs + excluded.jobs, live = c.live + excluded.live
        ),${
          listing
            ? `
        listed AS (
          -- A terminal job is never updated again (jobs_guard_update), so each is listed once; DO NOTHING
          -- keeps a replayed update (session_replication_role = replica skips that guard) from failing.
          INSERT INTO job_state_listing (state, job_id)
          SELECT state, job_id FROM new_jobs WHERE state IN ('failed', 'cancelled')
          ON CONFLICT DO NOTHING
        ),`
            : ''
        }
        leases AS (
          INSERT INTO job_lease_expiries AS e (expires_second, shard, leases)
          SELECT expires_second, my_shard, sum(leases)
          FROM (SELECT date_trunc('second', lease_expires_at) AS expires_second, -1 AS leases
                FROM old_jobs WHERE lease_expires_at IS NOT NULL
                UNION ALL
                SELECT date_trunc('second', lease_expires_at), 1
                FROM new_jobs WHERE lease_expires_at IS NOT NULL) AS change
          GROUP BY expires_second
          HAVING sum(leases) <> 0
          ORDER BY expires_second
          ON CONFLICT (expires_second, shard) DO UPDATE SET leases = e.leases + excluded.leases
        )
        INSERT INTO job_finishes AS f (finished_second, job_type, state, shard, jobs)
        SELECT date_trunc('second', finished_at), job_type, state, my_shard, count(*)
        FROM new_jobs
        WHERE state IN ('completed', 'failed', 'cancelled')
        GROUP BY 1, 2, 3
        ORDER BY 1, 2, 3
        ON CONFLICT (finished_second, job_type, state, shard) DO UPDATE SET jobs = f.jobs + excluded.jobs;
        RETURN NULL;
      END
      $$
    `;
}

/** jobs_count_deleted as migration 1765300000000 left it, unlisting failed and cancelled jobs when `listing`. */
function countDeleted(listing: boolean): string {
  return `
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
        )${
          listing
            ? `,
        unlisted_states AS (
          DELETE FROM job_state_listing l USING old_jobs o
          WHERE o.state IN ('failed', 'cancelled') AND l.state = o.state AND l.job_id = o.job_id
        )`
            : ''
        }
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
    `;
}

/** jobs_count_truncated as migration 1765300000000 left it, emptying job_state_listing too when `listing`. */
function countTruncated(listing: boolean): string {
  return `
      CREATE OR REPLACE FUNCTION jobs_count_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        DELETE FROM job_counts;
        DELETE FROM job_lease_expiries;
        TRUNCATE job_type_listing;${listing ? '\n        TRUNCATE job_state_listing;' : ''}
        RETURN NULL;
      END
      $$
    `;
}
