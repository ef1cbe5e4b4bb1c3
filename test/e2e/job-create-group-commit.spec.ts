import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { JobsService } from '../../src/jobs/jobs.service';
import { JobRepository } from '../../src/persistence/job.repository';
import { startTestApp } from '../support/test-app';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

/** More concurrent creates than the insert statements allowed in flight, so that most share a statement. */
const BURST = 40;

describe('POST /jobs under concurrency: group commit', () => {
  let db: TestDatabase;
  let app: INestApplication;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestApp(db.url, { role: 'api', httpTargetAllow: ['hooks.example.com'] });
  });

  afterAll(async () => {
    await app.close();
    await db.drop();
  });

  beforeEach(() => db.reset());

  it('answers each of concurrent creates with its own committed job, in fewer statements than requests', async () => {
    const statements = jest.spyOn(app.get(JobRepository), 'insertJobs');
    // The table is locked against inserts until every request has had time to arrive: the statements in
    // flight wait, and the requests behind them queue up, however slowly a busy machine sends them.
    const locker = await db.pool.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE jobs IN SHARE MODE');
      const sent = Promise.all(
        Array.from({ length: BURST }, (_, n) =>
          request(app.getHttpServer())
            .post('/jobs')
            .send({ job_type: 'echo', payload: { n }, priority: n % 7 }),
        ),
      );
      for (let waited = 0; statements.mock.calls.length === 0 && waited < 10_000; waited += 50) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      await locker.query('COMMIT');
      const responses = await sent;
      expect(responses.map((response) => response.status)).toEqual(Array(BURST).fill(201));
      responses.forEach((response, n) => {
        expect(response.body).toMatchObject({ job_type: 'echo', payload: { n }, priority: n % 7 });
        expect(response.headers.location).toBe(`/jobs/${response.body.job_id}`);
      });
      expect(new Set(responses.map((response) => response.body.job_id)).size).toBe(BURST);
      const { rows } = await db.pool.query<{ job_id: string; n: number }>(
        `SELECT job_id, (payload->>'n')::int AS n FROM jobs`,
      );
      expect(new Map(rows.map((row) => [row.job_id, row.n]))).toEqual(
        new Map(responses.map((response, n) => [response.body.job_id as string, n])),
      );
      expect(statements.mock.calls.length).toBeLessThan(BURST / 4);
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      locker.release();
      statements.mockRestore();
    }
  });

  it('fails only the job the database refuses; the others sharing its statement are created', async () => {
    // A refusal no request validation can foresee, on one job among many created at once.
    await db.pool.query(`
      CREATE FUNCTION refuse_poisoned_job() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'poisoned job refused'; END $$;
      CREATE TRIGGER refuse_poisoned_job BEFORE INSERT ON jobs FOR EACH ROW
        WHEN (NEW.payload ? 'poison') EXECUTE FUNCTION refuse_poisoned_job();`);
    const statements = jest.spyOn(app.get(JobRepository), 'insertJobs');
    try {
      const jobs = app.get(JobsService);
      const poisoned = BURST / 2;
      const outcomes = await Promise.allSettled(
        Array.from({ length: BURST }, (_, n) =>
          jobs.create({ job_type: 'echo', payload: n === poisoned ? { poison: true, n } : { n } }, undefined),
        ),
      );
      expect(outcomes[poisoned]).toMatchObject({
        status: 'rejected',
        reason: expect.objectContaining({ message: 'poisoned job refused' }),
      });
      const created = outcomes.filter((_outcome, n) => n !== poisoned);
      expect(created.map((outcome) => outcome.status)).toEqual(Array(BURST - 1).fill('fulfilled'));
      const { rows } = await db.pool.query<{ n: number }>(
        `SELECT (payload->>'n')::int AS n FROM jobs ORDER BY 1`,
      );
      expect(rows.map((row) => row.n)).toEqual(
        Array.from({ length: BURST }, (_, n) => n).filter((n) => n !== poisoned),
      );
      // The poisoned job shared a statement with others: it was refused there first, then alone.
      const shared = statements.mock.calls.find(
        ([group]) => group.length > 1 && group.some((job) => 'poison' in job.payload),
      );
      expect(shared).toBeDefined();
    } finally {
      statements.mockRestore();
      await db.pool.query(`DROP TRIGGER refuse_poisoned_job ON jobs; DROP FUNCTION refuse_poisoned_job()`);
    }
  });

  it('creates one job for concurrent requests with one Idempotency-Key, and refuses other bodies with 409', async () => {
    const key = 'group-commit-key';
    const responses = await Promise.all(
      Array.from({ length: 12 }, (_, n) =>
        request(app.getHttpServer())
          .post('/jobs')
          .set('Idempotency-Key', key)
          .send({ job_type: 'echo', payload: { same: n % 2 === 0 } }),
      ),
    );
    const createdWith = responses.find(
      (response) => response.status === 201 && response.headers['idempotent-replayed'] === undefined,
    )!;
    expect(createdWith).toBeDefined();
    expect(
      responses.filter((response) => response.headers['idempotent-replayed'] === undefined),
    ).toHaveLength(7);
    const winner = createdWith.body.payload.same as boolean;
    responses.forEach((response, n) => {
      if ((n % 2 === 0) === winner) {
        expect(response.status).toBe(201);
        expect(response.body.job_id).toBe(createdWith.body.job_id);
      } else {
        expect(response.status).toBe(409);
      }
    });
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM jobs`);
    expect(rows).toEqual([{ n: 1 }]);
  });

  it('answers a create, single or batch, with the job exactly as GET /jobs/{job_id} shows it', async () => {
    const bodies = [
      { job_type: 'noop' },
      {
        job_type: 'echo',
        payload: { zeta: 1, a: [true, null, 'x'], nested: { b: 2, a: 1 } },
        priority: -3,
        run_at: '2030-01-01T12:00:00.123456+02:00',
        max_attempts: 7,
        timeout_ms: 1234,
        callback_url: 'https://hooks.example.com/finished',
      },
    ];
    const single = await Promise.all(
      bodies.map((body) => request(app.getHttpServer()).post('/jobs').send(body).expect(201)),
    );
    const batch = await request(app.getHttpServer()).post('/jobs/batch').send({ jobs: bodies }).expect(201);
    for (const created of [...single.map((response) => response.body), ...batch.body.items]) {
      const shown = await request(app.getHttpServer()).get(`/jobs/${created.job_id}`).expect(200);
      const { attempt_history: history, ...job } = shown.body;
      expect(history).toEqual([]);
      expect(created).toStrictEqual(job);
      expect(JSON.stringify(created)).toBe(JSON.stringify(job));
    }
  });
});
