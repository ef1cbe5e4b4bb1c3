import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Counters for GET /stats and the queue-depth metrics, kept by the database itself, and the turn row of
 * the retention task.
 *
 * - job_counts holds, per job type and state, how many jobs there are and how many of them hold a live
 *   attempt. Statement-level triggers on jobs add each statement's net change, read from its transition
 *   tables, in the statement's own transaction: a rollback or a crash undoes the count with the change,
 *   and hand-written SQL is counted like the service's own. Reading the counts costs a few hundred rows
 *   however many jobs the table keeps, instead of a count over the whole table.
 * - Concurrent statements must not queue on one counter row: each transaction adds to one of 16 shards
 *   (its transaction id modulo 16, so transactions that run at the same time fall on different shards),
 *   and readers add the shards up. Rows within a statement are written in key order, so two statements
 *   never lock the same rows in opposite orders.
 * - job_finishes counts the jobs that reached each terminal state, per second of finished_at: the jobs
 *   finished within the last minute, and per minute over the last hour, without reading jobs. The
 *   retention task drops seconds older than an hour.
 * - The triggers fire ALWAYS, also in a session with session_replication_role = replica (which switches
 *   the other rules off), so that rows written that way are counted too; TRUNCATE (which only such a
 *   session can do) zeroes the counts. job_counts takes no writes but the triggers' own.
 * - retention_sweeps is the retention task's turn (one worker deletes at a time, across all workers) and
 *   its cursor in the walk of the primary key.
 *
 * Counting the existing rows takes one pass over the table while the triggers' lock holds writers back.
 */
export class JobCounters1764700000000 implements MigrationInterface {
  name = 'JobCounters1764700000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // fillfactor 50: each counter row is rewritten by most statements; room on its page keeps those
    // updates HOT and the table a few pages long.
    await queryRunner.query(`
      CREATE TABLE job_counts (
        job_type text     NOT NULL,
        state    text     NOT NULL,
        shard    smallint NOT NULL,
        jobs     bigint   NOT NULL,
        live     bigint   NOT NULL,
        PRIMARY KEY (job_type, state, shard)
      ) WITH (fillfactor = 50)
    `);
    await queryRunner.query(`
      CREATE TABLE job_finishes (
        finished_second timestamptz NOT NULL,
        job_type        text        NOT NULL,
        state           text        NOT NULL,
        shard           smallint    NOT NULL,
        jobs            bigint      NOT NULL,
        PRIMARY KEY (finished_second, job_type, state, shard)
      ) WITH (fillfactor = 50)
    `);

    await queryRunner.query(`
      CREATE FUNCTION jobs_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
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
      CREATE FUNCTION jobs_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
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
    // An update moves jobs between states (and attempts in and out of being live): old rows count -1,
    // new rows +1, and only non-zero sums are written, so a heartbeat writes nothing. A new row in a
    // terminal state has just finished: a terminal row never changes again (jobs_guard_update).
    await queryRunner.query(`
      CREATE FUNCTION jobs_count_updated() RETURNS trigger LANGUAGE plpgsql AS $$
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
      CREATE FUNCTION jobs_count_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        DELETE FROM job_counts;
        RETURN NULL;
      END
      $$
    `);
    // Created before the count below: the lock CREATE TRIGGER takes holds every writer of jobs back until
    // this migration commits, so no change falls between the count and the triggers.
    await queryRunner.query(`
      CREATE TRIGGER jobs_count_inserted AFTER INSERT ON jobs REFERENCING NEW TABLE AS new_jobs
        FOR EACH STATEMENT EXECUTE FUNCTION jobs_count_inserted()
    `);
    await queryRunner.query(`
      CREATE TRIGGER jobs_count_updated AFTER UPDATE ON jobs REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
        FOR EACH STATEMENT EXECUTE FUNCTION jobs_count_updated()
    `);
    await queryRunner.query(`
      CREATE TRIGGER jobs_count_deleted AFTER DELETE ON jobs REFERENCING OLD TABLE AS old_jobs
        FOR EACH STATEMENT EXECUTE FUNCTION jobs_count_deleted()
    `);
    await queryRunner.query(`
      CREATE TRIGGER jobs_count_truncated AFTER TRUNCATE ON jobs FOR EACH STATEMENT EXECUTE FUNCTION jobs_count_truncated()
    `);
    for (const trigger of [
      'jobs_count_inserted',
      'jobs_count_updated',
      'jobs_count_deleted',
      'jobs_count_truncated',
    ]) {
      await queryRunner.query(`ALTER TABLE jobs ENABLE ALWAYS TRIGGER ${trigger}`);
    }

    await queryRunner.query(`
      INSERT INTO job_counts (job_type, state, shard, jobs, live)
      SELECT job_type, state, 0, count(*), count(*) FILTER (WHERE lease_expires_at IS NOT NULL)
      FROM jobs
      GROUP BY job_type, state
    `);
    await queryRunner.query(`
      INSERT INTO job_finishes (finished_second, job_type, state, shard, jobs)
      SELECT date_trunc('second', finished_at), job_type, state, 0, count(*)
      FROM jobs
      WHERE finished_at > now() - interval '1 hour'
      GROUP BY 1, 2, 3
    `);

    // Only the counting triggers write job_counts (they run at trigger depth 1); a statement of its own
    // would make the counts disagree with the table.
    await queryRunner.query(`
      CREATE FUNCTION job_counts_refuse_write() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'job_counts is kept by the triggers on jobs; % of it would make the counts wrong', TG_OP
          USING ERRCODE = 'check_violation';
      END
      $$
    `);
    await queryRunner.query(`
      CREATE TRIGGER job_counts_refuse_write BEFORE INSERT OR UPDATE OR DELETE ON job_counts
        FOR EACH STATEMENT WHEN (pg_trigger_depth() < 1) EXECUTE FUNCTION job_counts_refuse_write()
    `);
    await queryRunner.query(`
      CREATE TRIGGER job_counts_refuse_truncate BEFORE TRUNCATE ON job_counts
        FOR EACH STATEMENT EXECUTE FUNCTION job_counts_refuse_write()
    `);

    await queryRunner.query(`
      CREATE TABLE retention_sweeps (
        singleton      boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
        last_swept_at  timestamptz NOT NULL DEFAULT '-infinity',
        -- The walk of the primary key has looked at every job up to this id since lap_started_at.
        walked_to      uuid        NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
        lap_started_at timestamptz NOT NULL DEFAULT now()
      )
    `);
    await queryRunner.query(`INSERT INTO retention_sweeps DEFAULT VALUES`);
    await queryRunner.query(`
      CREATE FUNCTION retention_sweeps_guard() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'UPDATE' THEN
          IF NEW.last_swept_at > now() OR NEW.lap_started_at > now() THEN
            RAISE EXCEPTION 'retention_sweeps: a sweep cannot be dated in the future (it would stop every later sweep)'
              USING ERRCODE = 'check_violation';
          END IF;
          RETURN NEW;
        END IF;
        RAISE EXCEPTION 'retention_sweeps holds the retention task''s turn; without its row no job is ever deleted (% refused)', TG_OP
          USING ERRCODE = 'check_violation';
      END
      $$
    `);
    await queryRunner.query(`
      CREATE TRIGGER retention_sweeps_guard BEFORE UPDATE OR DELETE ON retention_sweeps
        FOR EACH ROW EXECUTE FUNCTION retention_sweeps_guard()
    `);
    await queryRunner.query(`
      CREATE TRIGGER retention_sweeps_refuse_truncate BEFORE TRUNCATE ON retention_sweeps
        FOR EACH STATEMENT EXECUTE FUNCTION retention_sweeps_guard()
    `);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE retention_sweeps`);
    await queryRunner.query(`DROP FUNCTION retention_sweeps_guard()`);
    for (const trigger of [
      'jobs_count_inserted',
      'jobs_count_updated',
      'jobs_count_deleted',
      'jobs_count_truncated',
    ]) {
      await queryRunner.query(`DROP TRIGGER ${trigger} ON jobs`);
      await queryRunner.query(`DROP FUNCTION ${trigger}()`);
    }
    await queryRunner.query(`DROP TABLE job_counts`);
    await queryRunner.query(`DROP FUNCTION job_counts_refuse_write()`);
    await queryRunner.query(`DROP TABLE job_finishes`);
  }
}
