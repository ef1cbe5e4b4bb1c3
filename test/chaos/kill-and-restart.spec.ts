import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Pool } from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { eventually } from '../support/job-factory';
import { createTestDatabase, type TestDatabase } from '../support/test-db';
import { preciseNow } from './support/execution-log';
import { checkHistory, medianAndMax } from './support/history-checker';
import { WorkerFleet, type FleetWorker } from './support/worker-fleet';

const LEASE_MS = 2_000;
const SWEEP_INTERVAL_MS = 500;
const WORKER_POLL_INTERVAL_MS = 250;
const WORKERS = 3;
/** The scenario runs until this many workers were killed while holding leases, however long that takes. */
const KILLS = 10;
/** Jobs the fleet completes between two kills, so that kills land amid work rather than back to back. */
const COMPLETED_BETWEEN_KILLS = 20;
/** Claimable jobs kept waiting until the last kill, so that a slow machine cannot run out of work first. */
const BACKLOG = 100;

/** Inserts `count` due `sleep` jobs of 50-500 ms each; returns their ids. */
async function addSleepJobs(pool: Pool, count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, () => uuidv7());
  await pool.query(
    `INSERT INTO jobs (job_id, job_type, payload, run_at, available_at, max_attempts, timeout_ms)
     SELECT id, 'sleep', jsonb_build_object('ms', 50 + floor(random() * 451)::int), now(), now(), 20, 60000
     FROM unnest($1::uuid[]) AS id`,
    [ids],
  );
  return ids;
}

const count = async (pool: Pool, where: string, values: unknown[] = []): Promise<number> =>
  (await pool.query(`SELECT count(*)::int AS n FROM jobs WHERE ${where}`, values)).rows[0].n;

/**
 * Sends SIGKILL and returns the moment it was sent on the database clock (epoch ms). The clock is read
 * just before, and the local time from the middle of that round trip to the kill is added, so that a
 * delay of the test itself between reading the clock and killing is not counted as recovery time.
 */
async function killOnDatabaseClock(pool: Pool, worker: FleetWorker): Promise<number> {
  const sent = preciseNow();
  const { rows } = await pool.query(`SELECT extract(epoch FROM clock_timestamp()) * 1000 AS ms`);
  const received = preciseNow();
  worker.process.kill('SIGKILL');
  const killed = preciseNow();
  await worker.process.exited;
  return Number(rows[0].ms) + (killed - (sent + received) / 2);
}

describe('chaos: workers killed with SIGKILL and restarted', () => {
  let db: TestDatabase;
  let fleet: WorkerFleet;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await fleet?.dispose();
    await db.drop();
  });

  it('loses no job, never runs one in two places, and runs orphaned jobs again within lease + sweep + poll', async () => {
    const accepted = await addSleepJobs(db.pool, 3 * BACKLOG);
    fleet = new WorkerFleet({
      DATABASE_URL: db.url,
      WORKER_CONCURRENCY: '3',
      LEASE_MS: String(LEASE_MS),
      SWEEP_INTERVAL_MS: String(SWEEP_INTERVAL_MS),
      WORKER_POLL_INTERVAL_MS: String(WORKER_POLL_INTERVAL_MS),
    });
    await fleet.start(WORKERS);

    const keepBacklog = async (): Promise<void> => {
      if ((await count(db.pool, `state IN ('pending', 'running') AND lease_expires_at IS NULL`)) < BACKLOG) {
        accepted.push(...(await addSleepJobs(db.pool, BACKLOG)));
      }
    };
    const killedAt = new Map<string, number>(); // worker id -> database clock, epoch ms
    let completedAtLastKill = 0;
    let attemptedKills = 0;
    while (killedAt.size < KILLS) {
      // The replacement starts first, so that its start-up does not compete with the recovery measured.
      await fleet.add();
      const victim = await eventually(
        async () => {
          await keepBacklog();
          if ((await count(db.pool, `state = 'completed'`)) < completedAtLastKill + COMPLETED_BETWEEN_KILLS)
            return undefined;
          const { rows } = await db.pool.query(
            `SELECT DISTINCT worker_id FROM jobs WHERE lease_expires_at IS NOT NULL AND worker_id = ANY($1)`,
            [fleet.alive().map((worker) => worker.id)],
          );
          if (rows.length === 0) return undefined;
          const id = rows[Math.floor(Math.random() * rows.length)].worker_id as string;
          return fleet.alive().find((worker) => worker.id === id);
        },
        60_000,
        50,
      ).catch(async (error: Error) => {
        const { rows } = await db.pool.query(`SELECT state, count(*)::int AS n FROM jobs GROUP BY state`);
        const alive = fleet.alive().map((worker) => worker.id);
        throw new Error(
          `${error.message} after ${killedAt.size} kills: jobs ${JSON.stringify(rows)}, alive ${alive}`,
        );
      });
      const at = await killOnDatabaseClock(db.pool, victim);
      attemptedKills++;
      completedAtLastKill = await count(db.pool, `state = 'completed'`);
      // Leases still held after the exit end `lost`: nothing else can close them. A kill that caught the
      // worker between two jobs orphaned nothing and does not count.
      if ((await count(db.pool, `worker_id = $1 AND lease_expires_at IS NOT NULL`, [victim.id])) > 0) {
        killedAt.set(victim.id, at);
      }
      if (attemptedKills >= 3 * KILLS && killedAt.size < KILLS) {
        throw new Error(`only ${killedAt.size} of ${attemptedKills} kills caught a worker holding leases`);
      }
    }

    await eventually(
      async () => ((await count(db.pool, `state NOT IN ('completed', 'failed')`)) === 0 ? true : undefined),
      120_000,
      250,
    );

    const { violations, summary } = await checkHistory(db.pool, accepted);
    expect(violations).toEqual([]);
    expect(summary).toMatchObject({ jobs: accepted.length, completed: accepted.length, failed: 0 });

    // What the handlers recorded themselves: no job ran in two places, kills included.
    const executions = fleet.checkExecutions();
    expect(executions.violations).toEqual([]);
    expect(executions.summary.executions).toBeGreaterThanOrEqual(accepted.length);
    expect(executions.summary.died).toBeGreaterThan(0);

    // Time from each kill to the next attempt of each job the dead worker held (database clock).
    const { rows: orphans } = await db.pool.query(
      `SELECT job_id, attempt, worker_id FROM job_attempts WHERE outcome = 'lost' AND worker_id = ANY($1)`,
      [[...killedAt.keys()]],
    );
    const recoveries: number[] = [];
    for (const orphan of orphans) {
      const { rows: next } = await db.pool.query(
        `SELECT extract(epoch FROM started_at) * 1000 AS ms FROM job_attempts WHERE job_id = $1 AND attempt = $2
         UNION ALL
         SELECT extract(epoch FROM attempt_started_at) * 1000 FROM jobs WHERE job_id = $1 AND attempts = $2`,
        [orphan.job_id, orphan.attempt + 1],
      );
      expect(next).toHaveLength(1);
      recoveries.push(Math.round(Number(next[0].ms) - killedAt.get(orphan.worker_id)!));
    }
    const recovery = medianAndMax(recoveries);
    const bound = LEASE_MS + SWEEP_INTERVAL_MS + WORKER_POLL_INTERVAL_MS;
    const report = {
      kills: killedAt.size,
      kills_attempted: attemptedKills,
      orphaned_attempts: orphans.length,
      recovery_ms: recovery,
      bound_ms: bound,
      ...summary,
      executions: executions.summary,
    };
    process.stdout.write(`\nkill-and-restart: ${JSON.stringify(report)}\n`);
    const resultsDir = join(__dirname, 'results');
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(
      join(resultsDir, 'kill-and-restart.json'),
      JSON.stringify({ date: new Date().toISOString(), ...report }, null, 2),
    );

    expect(orphans.length).toBeGreaterThanOrEqual(KILLS);
    expect(recovery.max).toBeLessThanOrEqual(bound);
  });
});
