import { eventually, insertJobs } from '../support/job-factory';
import { spawnService, waitForHttp, type ServiceProcess } from '../support/service-process';
import { createTestDatabase, type TestDatabase } from '../support/test-db';
import { checkHistory } from './support/history-checker';
import { WorkerFleet } from './support/worker-fleet';

const JOBS = 400;
const KILLS = 5;

/**
 * Operators cancel jobs through a real API process while workers are killed with SIGKILL and replaced:
 * cancels land on pending jobs, on jobs running on a live worker, on jobs whose worker just died, and on
 * jobs finishing that instant. Whatever the order, no job has two outcomes, none starts again after its
 * cancel was requested, none runs in two places, and every accepted cancel ends `cancelled` or, when the
 * handler finished first, with the handler's outcome. Afterwards `GET /jobs?state=cancelled` lists exactly the
 * cancelled jobs.
 */
describe('chaos: cancels while workers are killed and restarted', () => {
  let db: TestDatabase;
  let fleet: WorkerFleet;
  let api: ServiceProcess | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    api?.kill('SIGKILL');
    await api?.exited;
    await fleet?.dispose();
    await db.drop();
  });

  it('gives every cancelled job one outcome and never runs it again', async () => {
    const accepted = await insertJobs(db.pool, JOBS, {
      jobType: 'sleep',
      payload: { ms: 1_000 },
      maxAttempts: 20,
    });
    api = await spawnService({ APP_ROLE: 'api', DATABASE_URL: db.url });
    await waitForHttp(api, '/health/ready');
    fleet = new WorkerFleet({
      DATABASE_URL: db.url,
      WORKER_CONCURRENCY: '4',
      LEASE_MS: '2000',
      SWEEP_INTERVAL_MS: '500',
      WORKER_POLL_INTERVAL_MS: '250',
    });
    await fleet.start(3);

    const answers = new Map<string, number>();
    const cancel = async (jobIds: string[]): Promise<void> => {
      for (const jobId of jobIds) {
        const response = await fetch(`${api!.baseUrl}/jobs/${jobId}/cancel`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ reason: 'chaos' }),
        });
        answers.set(jobId, response.status);
      }
    };
    const pick = async (where: string, values: unknown[], limit: number): Promise<string[]> =>
      (
        await db.pool.query(
          `SELECT job_id FROM jobs WHERE ${where} AND cancel_requested_at IS NULL ORDER BY random() LIMIT ${limit}`,
          values,
        )
      ).rows.map((row) => row.job_id as string);

    // Each round cancels jobs running on live workers, jobs held by the worker about to be killed (the
    // rescue must cancel those), and pending jobs; then the victim is killed and replaced.
    for (let kill = 0; kill < KILLS; kill++) {
      await fleet.add();
      const victim = await eventually(async () => {
        const { rows } = await db.pool.query(
          `SELECT DISTINCT worker_id FROM jobs WHERE lease_expires_at IS NOT NULL AND worker_id = ANY($1)`,
          [fleet.alive().map((worker) => worker.id)],
        );
        return rows.length > 1 ? fleet.alive().find((worker) => worker.id === rows[0].worker_id) : undefined;
      }, 60_000);
      await cancel(await pick(`lease_expires_at IS NOT NULL AND worker_id <> $1`, [victim.id], 4));
      await cancel(await pick(`lease_expires_at IS NOT NULL AND worker_id = $1`, [victim.id], 2));
      victim.process.kill('SIGKILL');
      await victim.process.exited;
      await cancel(await pick(`state = 'pending' AND $1::text IS NOT NULL`, [victim.id], 6));
    }
    const toCancel = [...answers.keys()];

    await eventually(
      async () => {
        const { rows } = await db.pool.query(
          `SELECT count(*)::int AS n FROM jobs WHERE state NOT IN ('completed', 'failed', 'cancelled')`,
        );
        return rows[0].n === 0 ? true : undefined;
      },
      120_000,
      250,
    );

    const { violations, summary } = await checkHistory(db.pool, accepted);
    expect(violations).toEqual([]);
    expect(summary.failed).toBe(0);
    expect(summary.cancelled).toBeGreaterThan(0);
    expect(summary.completed + summary.cancelled).toBe(JOBS);

    const { rows } = await db.pool.query(
      `SELECT job_id, state, cancel_requested_at IS NOT NULL AS requested FROM jobs WHERE job_id = ANY($1)`,
      [accepted],
    );
    const cancelledIds = new Set(toCancel);
    for (const row of rows) {
      if (!cancelledIds.has(row.job_id)) {
        // Nobody asked: the job lived the plain life, kills or not.
        expect(row).toMatchObject({ state: 'completed', requested: false });
      } else if (answers.get(row.job_id) === 200) {
        // Accepted: cancelled, or completed by a handler that finished first.
        expect(row.requested).toBe(true);
        expect(['cancelled', 'completed']).toContain(row.state);
      } else {
        // Refused with 409: the job had already completed.
        expect(answers.get(row.job_id)).toBe(409);
        expect(row).toMatchObject({ state: 'completed', requested: false });
      }
    }

    // The list an operator opens next, through the api: exactly the cancelled jobs, newest first, page by
    // page (job_state_listing, written by the same statements that cancelled them).
    const listed: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = `state=cancelled&limit=7${cursor === null ? '' : `&cursor=${cursor}`}`;
      const page = (await (await fetch(`${api.baseUrl}/jobs?${query}`)).json()) as {
        items: { job_id: string; state: string }[];
        next_cursor: string | null;
      };
      expect(page.items.every((item) => item.state === 'cancelled')).toBe(true);
      listed.push(...page.items.map((item) => item.job_id));
      cursor = page.next_cursor;
    } while (cursor !== null);
    const { rows: cancelledRows } = await db.pool.query(
      `SELECT job_id::text FROM jobs WHERE state = 'cancelled' ORDER BY job_id DESC`,
    );
    expect(listed).toEqual(cancelledRows.map((row) => row.job_id));
    expect(listed).toHaveLength(summary.cancelled);

    const executions = fleet.checkExecutions();
    expect(executions.violations).toEqual([]);
    process.stdout.write(
      `\ncancel-amid-kills: ${JSON.stringify({ ...summary, cancels: toCancel.length, kills: KILLS })}\n`,
    );
  });
});
