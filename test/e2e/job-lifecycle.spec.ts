import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { ClaimLoopService } from '../../src/worker/claim-loop.service';
import { eventually } from '../support/job-factory';
import { startTestApp } from '../support/test-app';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

type Job = Record<string, any>;

describe('a job through the API and a worker (APP_ROLE=all)', () => {
  let db: TestDatabase;
  let app: INestApplication;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestApp(db.url, { role: 'all' });
  });

  afterAll(async () => {
    await app.close();
    await db.drop();
  });

  const getJob = async (jobId: string): Promise<Job> =>
    (await request(app.getHttpServer()).get(`/jobs/${jobId}`).expect(200)).body as Job;

  const finished = (jobId: string): Promise<Job> =>
    eventually(async () => {
      const job = await getJob(jobId);
      return ['completed', 'failed'].includes(job.state) ? job : undefined;
    });

  it('waits quietly for a job due years ahead: no timer that fires at once, again and again', async () => {
    const wakes = jest.spyOn(app.get(ClaimLoopService), 'wake');
    try {
      await request(app.getHttpServer())
        .post('/jobs')
        .send({ job_type: 'noop', run_at: '2030-01-01T00:00:00Z' })
        .expect(201);
      await new Promise((resolve) => setTimeout(resolve, 500));
      // The 50 ms poll wakes it about 10 times; a timer past Node's limit (2^31-1 ms) fires after 1 ms and
      // would wake it hundreds of times.
      expect(wakes.mock.calls.length).toBeLessThan(50);
    } finally {
      wakes.mockRestore();
    }
  });

  it('completes an echo job with its payload as the result, timestamps in order', async () => {
    const created = await request(app.getHttpServer())
      .post('/jobs')
      .send({ job_type: 'echo', payload: { greeting: 'hello', n: 3 } })
      .expect(201);
    expect(created.headers.location).toBe(`/jobs/${created.body.job_id}`);
    expect(created.body).toMatchObject({ job_type: 'echo', state: 'pending', attempts: 0, result: null });
    // A 201 means committed: another connection sees the row at once.
    const stored = await db.pool.query('SELECT payload FROM jobs WHERE job_id = $1', [created.body.job_id]);
    expect(stored.rows).toEqual([{ payload: { greeting: 'hello', n: 3 } }]);

    const job = await finished(created.body.job_id);
    expect(job).toMatchObject({
      state: 'completed',
      result: { greeting: 'hello', n: 3 },
      error: null,
      attempts: 1,
    });
    const created_at = Date.parse(job.created_at);
    const started_at = Date.parse(job.started_at);
    const finished_at = Date.parse(job.finished_at);
    expect(created_at).toBeLessThanOrEqual(started_at);
    expect(started_at).toBeLessThanOrEqual(finished_at);
    expect(job.attempt_history).toEqual([
      expect.objectContaining({
        attempt: 1,
        outcome: 'succeeded',
        error: null,
        finished_at: job.finished_at,
      }),
    ]);
  });

  it('retries a failing job and fails it after max_attempts, every attempt in the history', async () => {
    const created = await request(app.getHttpServer())
      .post('/jobs')
      .send({ job_type: 'fail', payload: { message: 'always broken' }, max_attempts: 3 })
      .expect(201);
    const job = await finished(created.body.job_id);
    expect(job).toMatchObject({
      state: 'failed',
      attempts: 3,
      result: null,
      error: { code: 'requested_failure', message: 'always broken' },
      next_attempt_at: null,
    });
    expect(job.attempt_history.map((a: Job) => [a.attempt, a.outcome])).toEqual([
      [1, 'failed'],
      [2, 'failed'],
      [3, 'failed'],
    ]);
    for (const attempt of job.attempt_history) {
      expect(attempt.error).toEqual({ code: 'requested_failure', message: 'always broken' });
      expect(Date.parse(attempt.started_at)).toBeLessThanOrEqual(Date.parse(attempt.finished_at));
    }
  });

  it('fails a job at once when its handler throws a permanent error', async () => {
    const created = await request(app.getHttpServer())
      .post('/jobs')
      .send({ job_type: 'fail', payload: { message: 'bad input', permanent: true }, max_attempts: 5 })
      .expect(201);
    const job = await finished(created.body.job_id);
    expect(job).toMatchObject({
      state: 'failed',
      attempts: 1,
      error: { code: 'permanent_failure', message: 'bad input' },
    });
  });

  it('records an attempt that overruns timeout_ms as timed_out and retries it', async () => {
    const created = await request(app.getHttpServer())
      .post('/jobs')
      .send({ job_type: 'sleep', payload: { ms: 5_000 }, timeout_ms: 100, max_attempts: 2 })
      .expect(201);
    const job = await finished(created.body.job_id);
    expect(job.state).toBe('failed');
    expect(job.error.code).toBe('timeout');
    expect(job.attempt_history.map((a: Job) => a.outcome)).toEqual(['timed_out', 'timed_out']);
    for (const attempt of job.attempt_history) {
      const ranMs = Date.parse(attempt.finished_at) - Date.parse(attempt.started_at);
      expect(ranMs).toBeGreaterThanOrEqual(100);
      expect(ranMs).toBeLessThan(2_000);
    }
  });

  it('times out each attempt at its own timeout_ms when one claim takes jobs of different timeouts', async () => {
    // One statement creates them, so one claim takes all three; attempts claimed together share a timer
    // per timeout, and each must still stop at its own.
    const { body } = await request(app.getHttpServer())
      .post('/jobs/batch')
      .send({
        jobs: [
          { job_type: 'sleep', payload: { ms: 10_000 }, timeout_ms: 200, max_attempts: 1 },
          { job_type: 'sleep', payload: { ms: 1_200 }, timeout_ms: 10_000, max_attempts: 1 },
          { job_type: 'sleep', payload: { ms: 10_000 }, timeout_ms: 2_500, max_attempts: 1 },
        ],
      })
      .expect(201);
    const [short, enough, longer] = await Promise.all(body.items.map((item: Job) => finished(item.job_id)));
    const ranMs = (job: Job): number =>
      Date.parse(job.attempt_history[0].finished_at) - Date.parse(job.attempt_history[0].started_at);
    expect([short.state, short.error.code]).toEqual(['failed', 'timeout']);
    expect(ranMs(short)).toBeGreaterThanOrEqual(200);
    expect(ranMs(short)).toBeLessThan(2_000);
    expect(enough.state).toBe('completed');
    expect(enough.result.slept_ms).toBeGreaterThanOrEqual(1_200);
    expect([longer.state, longer.error.code]).toEqual(['failed', 'timeout']);
    expect(ranMs(longer)).toBeGreaterThanOrEqual(2_500);
    expect(ranMs(longer)).toBeLessThan(6_000);
  });

  it('reports what it did in /metrics', async () => {
    const created = await request(app.getHttpServer()).post('/jobs').send({ job_type: 'noop' }).expect(201);
    await finished(created.body.job_id);
    const { text } = await request(app.getHttpServer()).get('/metrics').expect(200);
    expect(text).toMatch(/^jobs_created_total\{job_type="noop"\} [1-9]/m);
    expect(text).toMatch(/^jobs_finished_total\{job_type="noop",state="completed"\} [1-9]/m);
    expect(text).toMatch(/^job_attempts_finished_total\{job_type="noop",outcome="succeeded"\} [1-9]/m);
    expect(text).toMatch(/^job_attempt_duration_seconds_count\{job_type="noop",outcome="succeeded"\} [1-9]/m);
    expect(text).toMatch(/^job_claim_latency_seconds_count [1-9]/m);
    expect(text).toMatch(/^jobs_by_state\{state="completed"\} [1-9]/m);
    expect(text).toMatch(/^jobs_live_attempts \d+/m);
    expect(text).toMatch(/^worker_live_attempts \d+/m);
  });

  it('counts the attempts running in this worker in worker_live_attempts, read when scraped', async () => {
    const created = await request(app.getHttpServer())
      .post('/jobs')
      .send({ job_type: 'sleep', payload: { ms: 1_500 } })
      .expect(201);
    await eventually(async () =>
      (await getJob(created.body.job_id)).state === 'running' ? true : undefined,
    );
    const running = await request(app.getHttpServer()).get('/metrics').expect(200);
    expect(running.text).toMatch(/^worker_live_attempts [1-9]/m);
    await finished(created.body.job_id);
  });
});

describe('a job waiting for its retry', () => {
  let db: TestDatabase;
  let app: INestApplication;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestApp(db.url, { role: 'all', retryBaseMs: 60_000, retryMaxMs: 60_000 });
  });

  afterAll(async () => {
    await app.close();
    await db.drop();
  });

  it('shows as running with next_attempt_at after the backoff, never moving backwards', async () => {
    const created = await request(app.getHttpServer())
      .post('/jobs')
      .send({ job_type: 'fail', payload: { message: 'transient' }, max_attempts: 2 })
      .expect(201);
    const job = await eventually(async () => {
      const current = (await request(app.getHttpServer()).get(`/jobs/${created.body.job_id}`)).body as Job;
      return current.attempt_history.length === 1 && current.attempt_history[0].finished_at
        ? current
        : undefined;
    });
    expect(job).toMatchObject({ state: 'running', attempts: 1, error: null, finished_at: null });
    expect(job.attempt_history[0]).toMatchObject({ outcome: 'failed', error: { code: 'requested_failure' } });
    // Equal jitter: the first retry waits between half and all of RETRY_BASE_MS.
    const waitMs = Date.parse(job.next_attempt_at) - Date.parse(job.attempt_history[0].finished_at);
    expect(waitMs).toBeGreaterThanOrEqual(30_000 - 5);
    expect(waitMs).toBeLessThanOrEqual(60_000 + 5);
  });
});

describe('waking without polling (LISTEN/NOTIFY)', () => {
  let db: TestDatabase;
  let app: INestApplication;
  /**
   * How late a wake-up may come: ample for a slow machine, and still nothing next to the 600 s poll
   * that would otherwise be the one to find the job.
   */
  const WAKE_SLACK_MS = 1_000;
  const RETRY_MS = 300;

  beforeAll(async () => {
    db = await createTestDatabase();
    // A poll that never comes within the test: every pickup below must come from a notification.
    app = await startTestApp(db.url, {
      role: 'all',
      workerPollIntervalMs: 600_000,
      retryBaseMs: RETRY_MS,
      retryMaxMs: RETRY_MS,
    });
    // Notifications sent before the LISTEN connection is up are lost: wait for it.
    await eventually(async () => {
      const { rows } = await db.pool.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE datname = current_database() AND query ILIKE 'LISTEN %'`,
      );
      return rows[0].n > 0 ? true : undefined;
    });
  });

  afterAll(async () => {
    await app.close();
    await db.drop();
  });

  const job = async (jobId: string): Promise<Job> =>
    (await request(app.getHttpServer()).get(`/jobs/${jobId}`).expect(200)).body as Job;

  it('runs a new job at once', async () => {
    const created = await request(app.getHttpServer()).post('/jobs').send({ job_type: 'noop' }).expect(201);
    const done = await eventually(async () => {
      const current = await job(created.body.job_id);
      return current.state === 'completed' ? current : undefined;
    });
    expect(Date.parse(done.started_at) - Date.parse(done.created_at)).toBeLessThan(WAKE_SLACK_MS);
  });

  it('runs a job with a future run_at when it becomes due, not before', async () => {
    const { rows } = await db.pool.query(`SELECT now() + interval '1.5 seconds' AS run_at`);
    const created = await request(app.getHttpServer())
      .post('/jobs')
      .send({ job_type: 'noop', run_at: (rows[0].run_at as Date).toISOString() })
      .expect(201);
    // The job was stored before it was due, so a timer armed by its notification is what ran it.
    expect(Date.parse(created.body.created_at)).toBeLessThan(Date.parse(created.body.run_at));
    const done = await eventually(async () => {
      const current = await job(created.body.job_id);
      return current.state === 'completed' ? current : undefined;
    });
    const lateBy = Date.parse(done.started_at) - Date.parse(done.run_at);
    expect(lateBy).toBeGreaterThanOrEqual(0);
    expect(lateBy).toBeLessThan(WAKE_SLACK_MS);
  });

  it('runs a retry when its backoff ends', async () => {
    const created = await request(app.getHttpServer())
      .post('/jobs')
      .send({ job_type: 'fail', payload: { message: 'again' }, max_attempts: 2 })
      .expect(201);
    const done = await eventually(async () => {
      const current = await job(created.body.job_id);
      return current.state === 'failed' ? current : undefined;
    });
    const [first, second] = done.attempt_history;
    const gap = Date.parse(second.started_at) - Date.parse(first.finished_at);
    expect(gap).toBeGreaterThanOrEqual(RETRY_MS / 2 - 5); // backoff: between half and all of RETRY_MS
    expect(gap).toBeLessThan(RETRY_MS + WAKE_SLACK_MS);
  });
});
