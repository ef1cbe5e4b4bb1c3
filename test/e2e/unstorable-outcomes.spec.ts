import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { EchoHandler } from '../../src/handlers/builtin/echo.handler';
import { eventually } from '../support/job-factory';
import { startTestApp } from '../support/test-app';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

type Job = Record<string, any>;

/**
 * A result or an error that PostgreSQL cannot store must stay that job's problem: the other jobs written
 * in the same statement are recorded, and the job itself ends with an error code saying why, at once,
 * instead of waiting out its lease and being retried as `lost`.
 */
describe('outcomes the database cannot store (APP_ROLE=all)', () => {
  let db: TestDatabase;
  let app: INestApplication;
  const echo = EchoHandler.prototype.run;

  beforeAll(async () => {
    db = await createTestDatabase();
    // A long lease: a job whose outcome was not written would sit out the test as `running`.
    app = await startTestApp(db.url, { role: 'all', workerConcurrency: 50, leaseMs: 600_000 });
  });

  afterEach(() => {
    EchoHandler.prototype.run = echo;
  });

  afterAll(async () => {
    await app.close();
    await db.drop();
  });

  const http = (): ReturnType<typeof request> => request(app.getHttpServer());
  const getJob = async (jobId: string): Promise<Job> => (await http().get(`/jobs/${jobId}`).expect(200)).body;
  const allFinished = (ids: string[]): Promise<Job[]> =>
    eventually(async () => {
      const jobs = await Promise.all(ids.map(getJob));
      return jobs.every((job) => ['completed', 'failed'].includes(job.state)) ? jobs : undefined;
    }, 30_000);

  /** Creates the jobs in one batch, so that the worker claims and completes them together. */
  const createEchoJobs = async (payloads: object[]): Promise<string[]> => {
    const created = await http()
      .post('/jobs/batch')
      .send({ jobs: payloads.map((payload) => ({ job_type: 'echo', payload, max_attempts: 3 })) })
      .expect(201);
    return created.body.items.map((job: Job) => job.job_id);
  };

  it.each([
    ['a NUL character', 'before\u0000after'],
    ['an unpaired surrogate', 'half a pair: \ud83d'],
  ])(
    'records every other completion of the batch when one result holds %s, and fails that job with result_not_storable',
    async (_what, poison) => {
      // The handler is the user's code: here it returns something PostgreSQL cannot store for one job.
      EchoHandler.prototype.run = (payload: Record<string, unknown>) =>
        payload.poison ? { text: poison } : payload;
      const ids = await createEchoJobs(
        Array.from({ length: 30 }, (_, n) => (n === 11 ? { poison: true } : { n })),
      );
      const jobs = await allFinished(ids);
      for (const [n, job] of jobs.entries()) {
        if (n === 11) {
          expect(job).toMatchObject({ state: 'failed', error: { code: 'result_not_storable' } });
          expect(job.attempt_history.map((attempt: Job) => attempt.outcome)).toEqual([
            'failed',
            'failed',
            'failed',
          ]);
        } else {
          expect(job).toMatchObject({ state: 'completed', result: { n }, attempts: 1 });
        }
      }
    },
  );

  it('writes the completions of a shared statement one by one when the database refuses it', async () => {
    // A refusal the worker cannot foresee (a rule of the database's own) must not spread either.
    await db.pool.query(`
      CREATE FUNCTION refuse_marked_result() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'this result is refused' USING ERRCODE = 'check_violation'; END $$`);
    await db.pool.query(`
      CREATE TRIGGER refuse_marked_result BEFORE UPDATE ON jobs FOR EACH ROW
        WHEN (NEW.result @> '{"refuse_me": true}') EXECUTE FUNCTION refuse_marked_result()`);
    try {
      const ids = await createEchoJobs(
        Array.from({ length: 20 }, (_, n) => (n === 5 ? { refuse_me: true } : { n })),
      );
      const jobs = await allFinished(ids);
      expect(jobs[5]).toMatchObject({ state: 'failed', error: { code: 'result_not_storable' }, attempts: 3 });
      for (const [n, job] of jobs.entries()) {
        if (n !== 5) expect(job).toMatchObject({ state: 'completed', result: { n }, attempts: 1 });
      }
    } finally {
      await db.pool.query('DROP TRIGGER refuse_marked_result ON jobs');
      await db.pool.query('DROP FUNCTION refuse_marked_result()');
    }
  });

  it('records a permanent failure whose message ends in a character cut in half, once, with the message cut whole', async () => {
    // 9,999 letters and one emoji: 10,000 characters (valid), 10,001 UTF-16 units.
    const message = `${'x'.repeat(9_999)}\u{1F600}`;
    const created = await http()
      .post('/jobs')
      .send({ job_type: 'fail', payload: { message, permanent: true }, max_attempts: 3 })
      .expect(201);
    const [job] = await allFinished([created.body.job_id]);
    expect(job).toMatchObject({ state: 'failed', attempts: 1, error: { code: 'permanent_failure' } });
    expect(job.error.message).toBe('x'.repeat(9_999));
  });

  it('stores an error message holding NUL and unpaired surrogates with those characters replaced', async () => {
    EchoHandler.prototype.run = () => {
      throw Object.assign(new Error('nul \u0000 high \ud800 low \udc00 pair \u{1F600}'), {
        code: 'bad_bytes',
      });
    };
    const [jobId] = await createEchoJobs([{}]);
    const [job] = await allFinished([jobId]);
    expect(job).toMatchObject({
      state: 'failed',
      error: { code: 'bad_bytes', message: 'nul \ufffd high \ufffd low \ufffd pair \u{1F600}' },
    });
  });
});
