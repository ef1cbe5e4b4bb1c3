import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, insertJob } from '../support/job-factory';
import { createTestDatabase, type TestDatabase } from '../support/test-db';
import { checkHistory, medianAndMax } from './support/history-checker';
import { WorkerFleet } from './support/worker-fleet';

const LEASE_MS = 2_000;
const SWEEP_INTERVAL_MS = 500;
const WORKER_POLL_INTERVAL_MS = 250;
const CHAOS_MS = 30_000;
const KILL_EVERY_MS = 2_000;

describe('chaos: workers killed with SIGKILL and restarted', () => {
  let db: TestDatabase;
  let fleet: WorkerFleet;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await fleet?.stopAll();
    await db.drop();
  });

  it('loses no job, never overlaps attempts, and runs orphaned jobs again within lease + sweep + poll', async () => {
    const accepted: string[] = [];
    for (let i = 0; i < 1_000; i++) {
      const ms = 50 + Math.floor(Math.random() * 451);
      accepted.push(await insertJob(db.pool, { jobType: 'sleep', payload: { ms }, maxAttempts: 20 }));
    }

    fleet = new WorkerFleet({
      DATABASE_URL: db.url,
      WORKER_CONCURRENCY: '3',
      LEASE_MS: String(LEASE_MS),
      SWEEP_INTERVAL_MS: String(SWEEP_INTERVAL_MS),
      WORKER_POLL_INTERVAL_MS: String(WORKER_POLL_INTERVAL_MS),
    });
    await fleet.start(3);

    const orphans: { jobId: string; attempt: number; killedAt: Date }[] = [];
    const chaosEnds = Date.now() + CHAOS_MS;
    let kills = 0;
    while (Date.now() < chaosEnds) {
      await new Promise((resolve) => setTimeout(resolve, KILL_EVERY_MS));
      const alive = fleet.alive();
      const victim = alive[Math.floor(Math.random() * alive.length)];
      const { rows: clock } = await db.pool.query('SELECT clock_timestamp() AS now');
      victim.process.kill('SIGKILL');
      await victim.process.exited;
      kills++;
      const { rows: held } = await db.pool.query(
        `SELECT job_id, attempts FROM jobs WHERE worker_id = $1 AND lease_expires_at IS NOT NULL`,
        [victim.id],
      );
      for (const job of held)
        orphans.push({ jobId: job.job_id, attempt: job.attempts, killedAt: clock[0].now });
      await fleet.add();
    }

    await eventually(
      async () => {
        const { rows: open } = await db.pool.query(
          `SELECT count(*)::int AS n FROM jobs WHERE state NOT IN ('completed', 'failed')`,
        );
        return open[0].n === 0 ? true : undefined;
      },
      120_000,
      250,
    );

    const { violations, summary } = await checkHistory(db.pool, accepted);
    expect(violations).toEqual([]);
    expect(summary).toMatchObject({ jobs: 1_000, completed: 1_000, failed: 0 });

    // Time from each kill to the next attempt of each job the dead worker held (database clock).
    const recoveries: number[] = [];
    for (const orphan of orphans) {
      const { rows: next } = await db.pool.query(
        `SELECT started_at FROM job_attempts WHERE job_id = $1 AND attempt = $2
         UNION ALL
         SELECT attempt_started_at FROM jobs WHERE job_id = $1 AND attempts = $2`,
        [orphan.jobId, orphan.attempt + 1],
      );
      expect(next).toHaveLength(1);
      recoveries.push(next[0].started_at.getTime() - orphan.killedAt.getTime());
    }
    const recovery = medianAndMax(recoveries);
    const bound = LEASE_MS + SWEEP_INTERVAL_MS + WORKER_POLL_INTERVAL_MS;
    const report = {
      kills,
      orphaned_attempts: orphans.length,
      recovery_ms: recovery,
      bound_ms: bound,
      ...summary,
    };
    process.stdout.write(`\nkill-and-restart: ${JSON.stringify(report)}\n`);
    const resultsDir = join(__dirname, 'results');
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(
      join(resultsDir, 'kill-and-restart.json'),
      JSON.stringify({ date: new Date().toISOString(), ...report }, null, 2),
    );

    expect(kills).toBeGreaterThanOrEqual(10);
    expect(orphans.length).toBeGreaterThan(0);
    expect(recovery.max).toBeLessThanOrEqual(bound);
  });
});
