import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Counts of live leases by the second they expire in, so that the rescue sweep knows without reading jobs
 * whether any lease can have expired, and scans the table only then (a dead or stuck worker).
 *
 * Until now a sweep scanned the whole table every SWEEP_INTERVAL_MS while any attempt held a lease (no
 * index on lease_expires_at: finishing a job must stay a HOT update): with ten million finished jobs, a
 * scan of gigabytes every five seconds on a busy system, to find nothing nearly every time.
 *
 * - job_lease_expiries holds, per second of lease_expires_at, how many leases expire in it. The counting
 *   triggers on jobs keep it in the same statement as job_counts (old rows -1, new rows +1, only non-zero
 *   sums written), so it is exact in every snapshot: its total equals the live attempts of job_counts.
 *   Sharded like job_counts, so that concurrent claims and completions do not queue on one row.
 * - A lease can have expired only if some second at or before now() has a non-zero sum. Live workers renew
 *   their leases long before they expire, so in normal running no such second exists and the sweep reads
 *   only this table (seconds since the last clean-up; see the sweep).
 * - The sweep deletes seconds more than a minute old whose sum is zero. Any disagreement between this
 *   table's total and job_counts (an edit by hand, say) makes the sweep scan, as before.
 *
 * Replacing the counting functions takes no lock by itself: the lock below holds every writer of jobs back
 * until the migration commits, so no statement counts with the old functions after the fill.
 */
export class CountLeaseExpiries1764990000000 implements MigrationInterface {
  name = 'CountLeaseExpiries1764990000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE`);
    // fillfactor 50: each row is rewritten by every statement of its shard within its second; room on
    // its page keeps those updates HOT.
    await queryRunner.query(`
      CREATE TABLE job_lease_expiries (
        expires_second timestamptz NOT NULL,
        shard          smallint    NOT NULL,
        leases         bigint      NOT NULL,
        PRIMARY KEY (expires_second, shard)
      ) WITH (fillfactor = 50)
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
    // A claim adds its leases, a renewal moves them to a later second, a finish or a rescue takes them off.
    await queryRunner.query(`
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
        ),
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

    await queryRunner.query(`
      INSERT INTO job_lease_expiries (expires_second, shard, leases)
      SELECT date_trunc('second', lease_expires_at), 0, count(*)
      FROM jobs
      WHERE lease_expires_at IS NOT NULL
      GROUP BY 1
    `);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE`);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION jobs_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        my_shard smallint := txid_current() % 16;
      BEGIN
        INSERT INTO job_counts AS c (job_type, state, shard, jobs, live)
        SELECT job_type, state, my_shard, count(*), count(*) FILTER (WHERE lease_expires_at IS NOT NULL)
        FROM new_jobs
        GROUP BY job_type, state
        ORDER BY job_type, state
        ON CONFLICT (job_type, state, shard) DO UPDATE SET jobs = c.jobs + excluded.jobs, live = c.live + excluded.live;
        RETURN NULL;
      END
      $$
    `);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION jobs_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        my_shard smallint := txid_current() % 16;
      BEGIN
        INSERT INTO job_counts AS c (job_type, state, shard, jobs, live)
        SELECT job_type, state, my_shard, -count(*), -count(*) FILTER (WHERE lease_expires_at IS NOT NULL)
        FROM old_jobs
        GROUP BY job_type, state
        ORDER BY job_type, state
        ON CONFLICT (job_type, state, shard) DO UPDATE SET jobs = c.jobs + excluded.jobs, live = c.live + excluded.live;
        RETURN NULL;
      END
      $$
    `);
    await queryRunner.query(`
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
    `);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION jobs_count_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        DELETE FROM job_counts;
        RETURN NULL;
      END
      $$
    `);
    await queryRunner.query(`DROP TABLE job_lease_expiries`);
  }
}
