import type { INestApplication } from '@nestjs/common';
import fc from 'fast-check';
import request from 'supertest';
import { AttemptOutcome } from '../../src/persistence/job-state';
import type { AttemptRef, ClaimedJob, JobRepository } from '../../src/persistence/job.repository';
import { READ_JOB_STATS } from '../../src/persistence/job.sql';
import { seedHistory } from '../support/history';
import { eventually } from '../support/job-factory';
import { openRepository } from '../support/repository';
import { startTestApp } from '../support/test-app';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

type Json = Record<string, any>;

const STATES = ['pending', 'running', 'completed', 'failed', 'cancelled'] as const;
const TERMINAL = ['completed', 'failed', 'cancelled'] as const;
/** A type no handler is registered for: only hand-written SQL creates it, and it is counted all the same. */
const LEGACY_TYPE = 'legacy.type';
const CLAIMABLE = ['noop', 'echo', 'fail', LEGACY_TYPE];

/** What GET /stats should say, counted from the job rows themselves. */
async function countedFromRows(db: TestDatabase): Promise<{ byType: Json; byState: Json; live: number }> {
  const { rows } = await db.pool.query(
    `SELECT job_type, state, count(*)::int AS n, (count(*) FILTER (WHERE lease_expires_at IS NOT NULL))::int AS live
     FROM jobs GROUP BY job_type, state`,
  );
  const byType: Json = {};
  const byState: Json = Object.fromEntries(STATES.map((state) => [state, 0]));
  let live = 0;
  for (const row of rows) {
    byType[row.job_type] ??= Object.fromEntries(STATES.map((state) => [state, 0]));
    byType[row.job_type][row.state] = row.n;
    byState[row.state] += row.n;
    live += row.live;
  }
  return { byType, byState, live };
}

/** Jobs that finished within the last minute, by the same whole-second rule GET /stats uses. */
async function finishedLastMinute(db: TestDatabase): Promise<Json> {
  const { rows } = await db.pool.query(
    `SELECT state, count(*)::int AS n FROM jobs
     WHERE finished_at >= date_trunc('second', now() - interval '1 minute') GROUP BY state`,
  );
  const counts: Json = { completed: 0, failed: 0, cancelled: 0 };
  for (const row of rows) counts[row.state] = row.n;
  return counts;
}

async function oldestDueAgeMs(db: TestDatabase): Promise<number | null> {
  const { rows } = await db.pool.query(
    `SELECT (extract(epoch FROM now() - min(available_at)) * 1000)::bigint AS age
     FROM jobs WHERE available_at <= now()`,
  );
  return rows[0].age === null ? null : Number(rows[0].age);
}

type Op =
  | { kind: 'create'; jobType: string; count: number; priority: number; later: boolean }
  | { kind: 'createSql'; count: number }
  | { kind: 'claim'; worker: number; count: number; expiring: boolean }
  | { kind: 'complete'; worker: number; count: number }
  | { kind: 'fail'; worker: number; outcome: 'failed' | 'interrupted' | 'permanent' }
  | { kind: 'stopCancelled'; worker: number }
  | { kind: 'cancel' }
  | { kind: 'cancelMatching'; jobType: string }
  | { kind: 'cancelSql' }
  | { kind: 'retry' }
  | { kind: 'rescue' }
  | { kind: 'pause'; jobType: string; paused: boolean }
  | { kind: 'deleteSql' }
  | { kind: 'retention' }
  | { kind: 'rolledBack' };

const worker = fc.integer({ min: 0, max: 2 });
const jobType = fc.constantFrom('noop', 'echo', 'fail');
const weighted = (weight: number, arbitrary: fc.Arbitrary<Op>): fc.WeightedArbitrary<Op> => ({
  weight,
  arbitrary,
});
/** Weighted towards the worker's own path (claim, complete, fail), as in production. */
const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  weighted(
    4,
    fc.record({
      kind: fc.constant('create' as const),
      jobType,
      count: fc.integer({ min: 1, max: 30 }),
      priority: fc.integer({ min: -2, max: 2 }),
      later: fc.boolean(),
    }),
  ),
  weighted(1, fc.record({ kind: fc.constant('createSql' as const), count: fc.integer({ min: 1, max: 10 }) })),
  weighted(
    5,
    fc.record({
      kind: fc.constant('claim' as const),
      worker,
      count: fc.integer({ min: 1, max: 15 }),
      expiring: fc.boolean(),
    }),
  ),
  weighted(
    4,
    fc.record({ kind: fc.constant('complete' as const), worker, count: fc.integer({ min: 1, max: 10 }) }),
  ),
  weighted(
    3,
    fc.record({
      kind: fc.constant('fail' as const),
      worker,
      outcome: fc.constantFrom('failed' as const, 'interrupted' as const, 'permanent' as const),
    }),
  ),
  weighted(1, fc.record({ kind: fc.constant('stopCancelled' as const), worker })),
  weighted(1, fc.constant({ kind: 'cancel' as const })),
  weighted(1, fc.record({ kind: fc.constant('cancelMatching' as const), jobType })),
  weighted(1, fc.constant({ kind: 'cancelSql' as const })),
  weighted(1, fc.constant({ kind: 'retry' as const })),
  weighted(2, fc.constant({ kind: 'rescue' as const })),
  weighted(1, fc.record({ kind: fc.constant('pause' as const), jobType, paused: fc.boolean() })),
  weighted(1, fc.constant({ kind: 'deleteSql' as const })),
  weighted(1, fc.constant({ kind: 'retention' as const })),
  weighted(1, fc.constant({ kind: 'rolledBack' as const })),
);

/**
 * GET /stats and the queue-depth metrics read counters that triggers on the jobs table keep. After any
 * mix of changes, by the service (API and worker statements, several at once) and by hand-written SQL,
 * committed or rolled back, they must equal a count of the rows.
 */
describe('GET /stats', () => {
  let db: TestDatabase;
  let app: INestApplication;
  let workers: { id: string; repository: JobRepository; close: () => Promise<void>; held: ClaimedJob[] }[];

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestApp(db.url, { role: 'api' });
    workers = await Promise.all(
      [0, 1, 2].map(async (n) => ({
        id: `stats-worker-${n}`,
        held: [],
        ...(await openRepository(db.url, 2)),
      })),
    );
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.close()));
    await app.close();
    await db.drop();
  });

  const http = (): ReturnType<typeof request> => request(app.getHttpServer());

  const pickJob = async (states: readonly string[]): Promise<string | undefined> => {
    const { rows } = await db.pool.query(
      `SELECT job_id FROM jobs WHERE state = ANY($1::text[]) ORDER BY random() LIMIT 1`,
      [states],
    );
    return rows[0]?.job_id as string | undefined;
  };

  const release = (held: ClaimedJob[], count: number): ClaimedJob[] => held.splice(0, count);
  const ref = (job: ClaimedJob): AttemptRef => ({ jobId: job.jobId, attempt: job.attempt });

  const run = async (op: Op): Promise<void> => {
    switch (op.kind) {
      case 'create': {
        const job = {
          job_type: op.jobType,
          payload: op.jobType === 'fail' ? { message: 'boom' } : {},
          priority: op.priority,
          ...(op.later ? { run_at: '2999-01-01T00:00:00Z' } : {}),
        };
        await http()
          .post('/jobs/batch')
          .send({ jobs: Array.from({ length: op.count }, () => job) })
          .expect(201);
        return;
      }
      case 'createSql':
        await db.pool.query(
          `INSERT INTO jobs (job_type, payload, run_at, available_at, max_attempts, timeout_ms)
           SELECT $1, '{}', now(), now(), 2, 60000 FROM generate_series(1, $2)`,
          [LEGACY_TYPE, op.count],
        );
        return;
      case 'claim': {
        const w = workers[op.worker];
        w.held.push(...(await w.repository.claimDue(op.count, w.id, op.expiring ? 1 : 60_000, CLAIMABLE)));
        return;
      }
      case 'complete': {
        const w = workers[op.worker];
        const done = release(w.held, op.count).map((job) => ({ ...ref(job), resultJson: '{"ok":true}' }));
        await w.repository.markCompleted(w.id, done);
        return;
      }
      case 'fail': {
        const w = workers[op.worker];
        const [job] = release(w.held, 1);
        if (!job) return;
        const error = { code: 'handler_error', message: 'boom' };
        if (
          op.outcome === 'permanent' ||
          (op.outcome === 'failed' && job.failedAttempts + 1 >= job.maxAttempts)
        ) {
          await w.repository.markFailed(w.id, ref(job), AttemptOutcome.Failed, error);
        } else {
          const outcome = op.outcome === 'failed' ? AttemptOutcome.Failed : AttemptOutcome.Interrupted;
          await w.repository.scheduleRetry(w.id, ref(job), outcome, error, 0);
        }
        return;
      }
      case 'stopCancelled': {
        const w = workers[op.worker];
        for (const job of [...w.held]) {
          if (await w.repository.markCancelled(w.id, ref(job))) w.held.splice(w.held.indexOf(job), 1);
        }
        return;
      }
      case 'cancel': {
        const id = await pickJob(['pending', 'running']);
        if (!id) return;
        // 409: it finished meanwhile (ops run three at a time).
        const { status } = await http().post(`/jobs/${id}/cancel`).send({ reason: 'test' });
        expect([200, 409]).toContain(status);
        return;
      }
      case 'cancelMatching':
        await http().post('/jobs/cancel').send({ job_type: op.jobType, state: 'pending' }).expect(202);
        return;
      case 'cancelSql':
        await db.pool.query(
          `UPDATE jobs SET state = 'cancelled', cancel_requested_at = now(), cancel_reason = 'by hand',
                  error = '{"code": "cancelled", "message": "by hand"}', finished_at = now(), available_at = NULL
           WHERE job_id IN (SELECT job_id FROM jobs WHERE state = 'pending' LIMIT 3 FOR UPDATE SKIP LOCKED)`,
        );
        return;
      case 'retry': {
        const id = await pickJob(['failed', 'cancelled']);
        if (id) await http().post(`/jobs/${id}/retry`).expect(201);
        return;
      }
      case 'rescue':
        await workers[0].repository.rescueExpiredLeases(100, 0);
        return;
      case 'pause':
        await http()
          .post(`/job-types/${op.jobType}/${op.paused ? 'pause' : 'resume'}`)
          .expect(200);
        return;
      case 'deleteSql':
        await db.pool.query(
          `DELETE FROM jobs WHERE job_id IN (SELECT job_id FROM jobs WHERE worker_id = 'history' LIMIT 4 FOR UPDATE SKIP LOCKED)`,
        );
        return;
      case 'retention':
        await workers[1].repository.sweepRetention({
          minIntervalMs: 0,
          retention: { completedMs: 5 * 3_600_000, failedMs: 7 * 3_600_000, cancelledMs: 0 },
          horizonMs: 5 * 3_600_000,
          limit: 20,
          lapMs: 0,
          finishesKeptMs: 3_600_000,
        });
        return;
      case 'rolledBack': {
        const client = await db.pool.connect();
        try {
          await client.query('BEGIN');
          await client.query(
            `INSERT INTO jobs (job_type, payload, run_at, available_at, max_attempts, timeout_ms)
             SELECT 'noop', '{}', now(), now(), 3, 60000 FROM generate_series(1, 5)`,
          );
        } finally {
          await client.query('ROLLBACK');
          client.release();
        }
        return;
      }
    }
  };

  const metric = (text: string, name: string): number =>
    Number(
      text
        .split('\n')
        .find((line) => line.startsWith(`${name} `))
        ?.split(' ')[1],
    );

  const expectStatsToMatchRows = async (): Promise<void> => {
    const ageBefore = await oldestDueAgeMs(db);
    const finishedBefore = await finishedLastMinute(db);
    const { body } = await http().get('/stats').expect(200).expect('content-type', /json/);
    const ageAfter = await oldestDueAgeMs(db);
    const finishedAfter = await finishedLastMinute(db);
    const rows = await countedFromRows(db);
    const { rows: paused } = await db.pool.query('SELECT job_type FROM job_type_pauses');
    const pausedTypes = new Set(paused.map((row) => row.job_type as string));

    expect(Object.keys(body).sort()).toEqual([
      'by_state',
      'by_type',
      'finished_last_minute',
      'oldest_due_age_ms',
    ]);
    expect(body.by_state).toEqual(rows.byState);
    const expectedTypes = new Set([
      ...Object.keys(rows.byType),
      'noop',
      'echo',
      'sleep',
      'fail',
      'http',
      ...pausedTypes,
    ]);
    expect(body.by_type).toEqual(
      [...expectedTypes].sort().map((type) => ({
        job_type: type,
        ...(rows.byType[type] ?? Object.fromEntries(STATES.map((state) => [state, 0]))),
        paused: pausedTypes.has(type),
      })),
    );
    // The window and the ages move on between the three readings: the answer lies between the other two.
    for (const state of TERMINAL) {
      expect(body.finished_last_minute[state]).toBeLessThanOrEqual(finishedBefore[state]);
      expect(body.finished_last_minute[state]).toBeGreaterThanOrEqual(finishedAfter[state]);
    }
    if (ageBefore === null) {
      expect(body.oldest_due_age_ms).toBeNull();
    } else {
      expect(body.oldest_due_age_ms).toBeGreaterThanOrEqual(ageBefore - 1);
      expect(body.oldest_due_age_ms).toBeLessThanOrEqual(ageAfter! + 1);
    }

    // /metrics reads the same counters (a scrape's reading is shared for a second, hence the polling).
    const expected = { ...rows.byState, live: rows.live };
    let scraped: Json = {};
    await eventually(async () => {
      const { text } = await http().get('/metrics').expect(200);
      scraped = {
        ...Object.fromEntries(
          STATES.map((state) => [state, metric(text, `jobs_by_state{state="${state}"}`)]),
        ),
        live: metric(text, 'jobs_live_attempts'),
      };
      return JSON.stringify(scraped) === JSON.stringify(expected) ? true : undefined;
    }, 5_000).catch(() => undefined);
    expect(scraped).toEqual(expected);
  };

  it('counts every job in every state exactly, after any mix of changes by the service and by hand', async () => {
    // Finished jobs from hours ago, for the deletes to delete: some past the retention used below, some not.
    for (const [n, jobType] of ['noop', 'echo', LEGACY_TYPE].entries()) {
      for (const [m, state] of TERMINAL.entries()) {
        const hours = 1 + ((n * 3 + m) % 9);
        await seedHistory(db.pool, 40, { state, jobType, createdSecondsAgo: hours * 3_600 });
      }
    }
    await expectStatsToMatchRows();
    await fc.assert(
      fc.asyncProperty(fc.array(opArbitrary, { minLength: 15, maxLength: 45 }), async (ops) => {
        // Three at a time: concurrent statements fall on different counter shards and must still add up.
        for (let i = 0; i < ops.length; i += 3) await Promise.all(ops.slice(i, i + 3).map(run));
        await expectStatsToMatchRows();
      }),
      // A failure is reported as found: shrinking would repeat every run's five-second wait for /metrics.
      { numRuns: 8, endOnFailure: true },
    );
  }, 180_000);

  it('reads jobs only through the claim index, never by scanning the table', async () => {
    const { rows } = await db.pool.query(`EXPLAIN (FORMAT JSON) ${READ_JOB_STATS}`);
    const reads: string[] = [];
    const visit = (node: Json): void => {
      if (node['Relation Name'] === 'jobs') reads.push(`${node['Node Type']} ${node['Index Name']}`);
      for (const child of node.Plans ?? []) visit(child);
    };
    visit(rows[0]['QUERY PLAN'][0].Plan);
    expect(reads.length).toBeGreaterThan(0);
    for (const read of reads) expect(read).toMatch(/^Index (Only )?Scan jobs_claim_idx$/);
  });
});

describe('GET /stats refusals', () => {
  let db: TestDatabase;
  let app: INestApplication;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestApp(db.url, { role: 'api', apiKeys: [{ key: 'secret-key', scope: 'read' }] });
  });

  afterAll(async () => {
    await app.close();
    await db.drop();
  });

  const http = (): ReturnType<typeof request> => request(app.getHttpServer());

  it('answers 401 without a valid key and 200 with one', async () => {
    for (const authorization of [undefined, 'Bearer wrong-key']) {
      const call = http().get('/stats');
      const response = await (authorization ? call.set('Authorization', authorization) : call);
      expect(response.status).toBe(401);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.body).toMatchObject({ status: 401, code: 'unauthorized' });
    }
    const { body } = await http().get('/stats').set('Authorization', 'Bearer secret-key').expect(200);
    expect(body).toEqual({
      by_state: { pending: 0, running: 0, completed: 0, failed: 0, cancelled: 0 },
      by_type: ['echo', 'fail', 'http', 'noop', 'sleep'].map((type) => ({
        job_type: type,
        pending: 0,
        running: 0,
        completed: 0,
        failed: 0,
        cancelled: 0,
        paused: false,
      })),
      oldest_due_age_ms: null,
      finished_last_minute: { completed: 0, failed: 0, cancelled: 0 },
    });
  });

  it('answers 400 naming a query parameter it does not take', async () => {
    const response = await http().get('/stats?state=pending').set('Authorization', 'Bearer secret-key');
    expect(response.status).toBe(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.body).toMatchObject({
      status: 400,
      code: 'validation_failed',
      errors: [{ field: 'state', message: expect.any(String) }],
    });
  });
});
