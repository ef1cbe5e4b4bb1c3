import type { INestApplication } from '@nestjs/common';
import { Agent, get as httpGet } from 'node:http';
import request from 'supertest';
import { eventually, insertJob, insertJobs } from '../support/job-factory';
import { spawnService, waitForHttp, type ServiceProcess } from '../support/service-process';
import { startTestApp } from '../support/test-app';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

type Job = Record<string, any>;

/**
 * Cancel, retry and pause through the API (APP_ROLE=api), against jobs run by real worker processes
 * (APP_ROLE=worker), as an operator would use them.
 */
describe('operator control', () => {
  let db: TestDatabase;
  let api: INestApplication;
  let workers: ServiceProcess[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startTestApp(db.url, { role: 'api' });
  });
  beforeEach(() => db.reset());
  afterEach(async () => {
    for (const worker of workers) worker.kill('SIGKILL');
    await Promise.all(workers.map((worker) => worker.exited));
    workers = [];
    await db.pool.query('DELETE FROM job_type_pauses');
  });
  afterAll(async () => {
    await api.close();
    await db.drop();
  });

  const http = (): ReturnType<typeof request> => request(api.getHttpServer());
  const getJob = async (jobId: string): Promise<Job> => (await http().get(`/jobs/${jobId}`).expect(200)).body;
  const startWorker = async (env: Record<string, string> = {}): Promise<ServiceProcess> => {
    const worker = await spawnService({
      APP_ROLE: 'worker',
      DATABASE_URL: db.url,
      WORKER_POLL_INTERVAL_MS: '100',
      ...env,
    });
    workers.push(worker);
    await waitForHttp(worker, '/health/ready');
    return worker;
  };
  const dbNow = async (): Promise<Date> =>
    (await db.pool.query('SELECT clock_timestamp() AS now')).rows[0].now;

  describe('cancel', () => {
    it('cancels a pending job at once, with the reason, and no worker ever runs it', async () => {
      const jobId = await insertJob(db.pool, { jobType: 'echo' });
      const { body } = await http()
        .post(`/jobs/${jobId}/cancel`)
        .send({ reason: 'not needed any more' })
        .expect(200);
      expect(body).toMatchObject({
        state: 'cancelled',
        error: { code: 'cancelled', message: 'not needed any more' },
        attempts: 0,
        started_at: null,
        attempt_history: [],
      });
      expect(body.finished_at).not.toBeNull();
      expect(body.cancel_requested_at).not.toBeNull();
      // A second cancel is a conflict: the job is already terminal.
      await http().post(`/jobs/${jobId}/cancel`).expect(409);

      await startWorker();
      const later = await insertJob(db.pool, { jobType: 'echo' });
      await eventually(async () => ((await getJob(later)).state === 'completed' ? true : undefined), 20_000);
      expect(await getJob(jobId)).toMatchObject({ state: 'cancelled', attempts: 0 });
    });

    it('stops a 60 s sleep running on a worker process within a second; the job never runs again', async () => {
      await startWorker();
      const created = await http()
        .post('/jobs')
        .send({ job_type: 'sleep', payload: { ms: 60_000 }, max_attempts: 5 })
        .expect(201);
      const jobId = created.body.job_id;
      await eventually(async () => ((await getJob(jobId)).state === 'running' ? true : undefined), 20_000);

      const requested = await http().post(`/jobs/${jobId}/cancel`).send({}).expect(200);
      expect(requested.body.state === 'running' || requested.body.state === 'cancelled').toBe(true);
      expect(requested.body.cancel_requested_at).not.toBeNull();
      const job = await eventually(async () => {
        const current = await getJob(jobId);
        return current.state === 'cancelled' ? current : undefined;
      }, 10_000);
      // Within a second of the request, on the database clock (the lease is 30 s: no heartbeat helped).
      expect(Date.parse(job.finished_at) - Date.parse(job.cancel_requested_at)).toBeLessThan(1_000);
      expect(job).toMatchObject({ attempts: 1, error: { code: 'cancelled' } });
      expect(job.attempt_history).toEqual([
        expect.objectContaining({
          attempt: 1,
          outcome: 'cancelled',
          error: expect.objectContaining({ code: 'cancelled' }),
        }),
      ]);
      // Claimable no more: more polls later it is still the same.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(await getJob(jobId)).toMatchObject({ state: 'cancelled', attempts: 1 });
    });

    it('cancels, through the rescue, a job whose worker was killed: no retry', async () => {
      const doomed = await startWorker({ LEASE_MS: '2000', WORKER_ID: 'doomed' });
      const jobId = await insertJob(db.pool, { jobType: 'sleep', payload: { ms: 60_000 }, maxAttempts: 5 });
      await eventually(async () => ((await getJob(jobId)).state === 'running' ? true : undefined), 20_000);
      doomed.kill('SIGKILL');
      await doomed.exited;
      const requested = await http().post(`/jobs/${jobId}/cancel`).send({ reason: 'stop it' }).expect(200);
      expect(requested.body).toMatchObject({ state: 'running' });
      await startWorker({ SWEEP_INTERVAL_MS: '200' });
      const job = await eventually(async () => {
        const current = await getJob(jobId);
        return current.state === 'cancelled' ? current : undefined;
      }, 20_000);
      expect(job).toMatchObject({ attempts: 1, error: { code: 'cancelled', message: 'stop it' } });
      expect(job.attempt_history).toEqual([
        expect.objectContaining({ attempt: 1, worker_id: 'doomed', outcome: 'cancelled' }),
      ]);
    });

    it('never gives a job both outcomes when a cancel races its completion', async () => {
      await startWorker({ WORKER_CONCURRENCY: '20' });
      const ids = await insertJobs(db.pool, 200, { jobType: 'sleep', payload: { ms: 30 } });
      // Cancel every job at some moment of its life: before, during or after its attempt.
      const answers = await Promise.all(
        ids.map(async (jobId, n) => {
          await new Promise((resolve) => setTimeout(resolve, n * 3));
          return (await http().post(`/jobs/${jobId}/cancel`).send({})).status;
        }),
      );
      expect(new Set(answers).size).toBeGreaterThan(0);
      for (const status of answers) expect([200, 409]).toContain(status);
      const jobs = await eventually(async () => {
        const current = await Promise.all(ids.map(getJob));
        return current.every((job) => ['completed', 'cancelled'].includes(job.state)) ? current : undefined;
      }, 30_000);
      for (const [n, job] of jobs.entries()) {
        const outcomes = job.attempt_history.map((attempt: Job) => attempt.outcome);
        if (job.state === 'completed') {
          expect(job.result).toEqual({ slept_ms: expect.any(Number) });
          expect(outcomes).toEqual(['succeeded']);
          // Its cancel came too late: answered 409, or accepted while the handler was finishing.
          expect(answers[n] === 409 || job.cancel_requested_at !== null).toBe(true);
        } else {
          expect(job).toMatchObject({ result: null, error: { code: 'cancelled' } });
          expect(outcomes).not.toContain('succeeded');
          expect(answers[n]).toBe(200);
        }
      }
    });

    it('cancels 10,000 jobs by filter in rounds while workers run them', async () => {
      const sleeps = await insertJobs(db.pool, 10_000, { jobType: 'sleep', payload: { ms: 50 } });
      const other = await insertJobs(db.pool, 20, { jobType: 'echo' });
      await startWorker({ WORKER_CONCURRENCY: '10' });
      await startWorker({ WORKER_CONCURRENCY: '10' });
      await eventually(async () => {
        const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM jobs WHERE state = 'completed'`);
        return rows[0].n > 0 ? true : undefined;
      }, 20_000);
      await http().post('/jobs/cancel').send({}).expect(400);
      const { body } = await http()
        .post('/jobs/cancel')
        .send({ job_type: 'sleep', reason: 'bulk' })
        .expect(202);
      const rows = await eventually(
        async () => {
          const { rows: current } = await db.pool.query(
            `SELECT job_type, state, cancel_requested_at IS NOT NULL AS requested, count(*)::int AS n
             FROM jobs GROUP BY 1, 2, 3`,
          );
          return current.some((row) => !['completed', 'cancelled'].includes(row.state)) ? undefined : current;
        },
        60_000,
        200,
      );
      const count = (jobType: string, state: string, requested: boolean): number =>
        rows.find((row) => row.job_type === jobType && row.state === state && row.requested === requested)
          ?.n ?? 0;
      const cancelled = count('sleep', 'cancelled', true);
      const finishedFirst = count('sleep', 'completed', true);
      // Every job the request matched was cancelled, or finished before its worker could stop it; every
      // other sleep job had completed before the request reached it.
      expect(cancelled + finishedFirst).toBe(body.matched);
      expect(cancelled + finishedFirst + count('sleep', 'completed', false)).toBe(sleeps.length);
      expect(cancelled).toBeGreaterThan(0);
      expect(count('sleep', 'cancelled', false)).toBe(0);
      // The filter held: no other type was touched.
      expect(count('echo', 'completed', false)).toBe(other.length);
    });
  });

  describe('retry', () => {
    it('creates a new job repeating a failed one, linked by retry_of; the failed job does not change', async () => {
      await startWorker();
      const created = await http()
        .post('/jobs')
        .send({
          job_type: 'fail',
          payload: { message: 'boom', permanent: true },
          priority: 7,
          timeout_ms: 5_000,
        })
        .expect(201);
      const failed = await eventually(async () => {
        const job = await getJob(created.body.job_id);
        return job.state === 'failed' ? job : undefined;
      }, 20_000);
      const retried = await http().post(`/jobs/${failed.job_id}/retry`).expect(201);
      expect(retried.headers.location).toBe(`/jobs/${retried.body.job_id}`);
      expect(retried.body).toMatchObject({
        job_type: 'fail',
        payload: { message: 'boom', permanent: true },
        priority: 7,
        timeout_ms: 5_000,
        max_attempts: failed.max_attempts,
        retry_of: failed.job_id,
        attempts: 0,
      });
      expect(retried.body.job_id).not.toBe(failed.job_id);
      const again = await eventually(async () => {
        const job = await getJob(retried.body.job_id);
        return job.state === 'failed' ? job : undefined;
      }, 20_000);
      expect(again.attempts).toBe(1);
      expect(await getJob(failed.job_id)).toEqual(failed);
    });

    it('retries a cancelled job, and refuses jobs in other states with 409 and unknown ones with 404', async () => {
      const cancelled = await insertJob(db.pool, { jobType: 'echo' });
      await http().post(`/jobs/${cancelled}/cancel`).expect(200);
      const retried = await http().post(`/jobs/${cancelled}/retry`).expect(201);
      expect(retried.body).toMatchObject({ retry_of: cancelled, state: 'pending' });
      const pending = await insertJob(db.pool, { jobType: 'echo' });
      await http().post(`/jobs/${pending}/retry`).expect(409);
      await http().post(`/jobs/${retried.body.job_id}/retry`).expect(409);
      await http().post('/jobs/0193b0a4-0000-7000-8000-000000000000/retry').expect(404);
      await http().post('/jobs/not-a-uuid/retry').expect(400);
      const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM jobs');
      expect(rows[0].n).toBe(3);
    });
  });

  describe('pause and resume', () => {
    it('stops two worker processes claiming a paused type from the pause on, and resumes them', async () => {
      await startWorker({ WORKER_CONCURRENCY: '4' });
      await startWorker({ WORKER_CONCURRENCY: '4' });
      const paused = await http().post('/job-types/sleep/pause').expect(200);
      expect(paused.body).toMatchObject({ job_type: 'sleep', paused: true });
      const pausedAt = await dbNow();
      const sleeps = await insertJobs(db.pool, 20, { jobType: 'sleep', payload: { ms: 1 } });
      const echoes = await insertJobs(db.pool, 20, { jobType: 'echo' });
      // Other types run meanwhile: the workers are claiming, just not this type.
      await eventually(async () => {
        const { rows } = await db.pool.query(
          `SELECT count(*)::int AS n FROM jobs WHERE job_id = ANY($1) AND state = 'completed'`,
          [echoes],
        );
        return rows[0].n === echoes.length ? true : undefined;
      }, 20_000);
      await new Promise((resolve) => setTimeout(resolve, 500));
      const { rows: untouched } = await db.pool.query(
        `SELECT count(*)::int AS n FROM jobs WHERE job_id = ANY($1) AND attempts = 0`,
        [sleeps],
      );
      expect(untouched[0].n).toBe(sleeps.length);
      const types = (await http().get('/job-types').expect(200)).body as Job[];
      expect(types.find((type) => type.job_type === 'sleep')).toMatchObject({ paused: true });
      expect(types.find((type) => type.job_type === 'echo')).toMatchObject({ paused: false });

      const resumed = await http().post('/job-types/sleep/resume').expect(200);
      expect(resumed.body).toMatchObject({ job_type: 'sleep', paused: false });
      await eventually(async () => {
        const { rows } = await db.pool.query(
          `SELECT count(*)::int AS n FROM jobs WHERE job_id = ANY($1) AND state = 'completed'`,
          [sleeps],
        );
        return rows[0].n === sleeps.length ? true : undefined;
      }, 20_000);
      const { rows: started } = await db.pool.query(
        `SELECT min(started_at) AS first FROM jobs WHERE job_id = ANY($1)`,
        [sleeps],
      );
      expect(started[0].first.getTime()).toBeGreaterThan(pausedAt.getTime());
      await http().post('/job-types/no.such.type/pause').expect(404);
    });
  });

  describe('long poll', () => {
    it('answers a thousand waiters as the job finishes, on one LISTEN connection and no more connections', async () => {
      await startWorker();
      const created = await http()
        .post('/jobs')
        .send({ job_type: 'sleep', payload: { ms: 60_000 } })
        .expect(201);
      const jobId = created.body.job_id;
      await eventually(async () => ((await getJob(jobId)).state === 'running' ? true : undefined), 20_000);
      // One listening server and plain keep-alive connections: the waiting is the service's, not the harness's.
      const server = api.getHttpServer().listen(0);
      const { port } = server.address() as { port: number };
      const agent = new Agent({ keepAlive: true, maxSockets: 1_000 });
      const waitFor = (): Promise<{ status: number; body: Job; at: number }> =>
        new Promise((resolve, reject) => {
          httpGet(`http://127.0.0.1:${port}/jobs/${jobId}?wait_ms=60000`, { agent }, (response) => {
            let text = '';
            response.on('data', (chunk) => (text += chunk));
            response.on('end', () =>
              resolve({ status: response.statusCode!, body: JSON.parse(text), at: Date.now() }),
            );
          }).on('error', reject);
        });
      try {
        const waiting = Array.from({ length: 1_000 }, waitFor);
        // All of them are waiting: the api holds its pool (DB_POOL_SIZE) and one listener, not a connection each.
        await new Promise((resolve) => setTimeout(resolve, 2_000));
        // Read a few times: a pooled connection closed for idleness still shows while its backend exits.
        const connections = async (): Promise<number> =>
          (
            await db.pool.query(
              `SELECT count(*)::int AS n FROM pg_stat_activity
               WHERE datname = current_database() AND application_name IN ('job-service-api', 'job-service-api-listener')`,
            )
          ).rows[0].n;
        let fewest = await connections();
        for (let read = 1; read < 10 && fewest > 11; read++) {
          await new Promise((resolve) => setTimeout(resolve, 200));
          fewest = Math.min(fewest, await connections());
        }
        expect(fewest).toBeLessThanOrEqual(11);
        const settled = await Promise.race([
          Promise.all(waiting),
          new Promise((resolve) => setTimeout(resolve, 100, 'waiting')),
        ]);
        expect(settled).toBe('waiting');

        await http().post(`/jobs/${jobId}/cancel`).send({}).expect(200);
        const answers = await Promise.all(waiting);
        for (const answer of answers) {
          expect(answer.status).toBe(200);
          expect(answer.body).toMatchObject({ job_id: jobId, state: 'cancelled' });
        }
      } finally {
        agent.destroy();
        server.close();
      }
    });

    it('is woken by the announcement that the job finished, not by its own look again 15 s later', async () => {
      await startWorker();
      const created = await http()
        .post('/jobs')
        .send({ job_type: 'sleep', payload: { ms: 60_000 } })
        .expect(201);
      const jobId = created.body.job_id;
      await eventually(async () => ((await getJob(jobId)).state === 'running' ? true : undefined), 20_000);
      const waiting = http()
        .get(`/jobs/${jobId}?wait_ms=60000`)
        .then((response) => ({ body: response.body as Job, at: Date.now() }));
      await new Promise((resolve) => setTimeout(resolve, 500));
      const cancelledAt = Date.now();
      await http().post(`/jobs/${jobId}/cancel`).send({}).expect(200);
      const answer = await waiting;
      expect(answer.body).toMatchObject({ state: 'cancelled' });
      expect(answer.at - cancelledAt).toBeLessThan(10_000);
    });

    it('answers after wait_ms with the job as it is when it does not finish, and refuses bad values', async () => {
      const jobId = await insertJob(db.pool, { jobType: 'echo', runInSeconds: 3600 });
      const startedAt = Date.now();
      const { body } = await http().get(`/jobs/${jobId}?wait_ms=700`).expect(200);
      expect(Date.now() - startedAt).toBeGreaterThanOrEqual(700);
      expect(body).toMatchObject({ job_id: jobId, state: 'pending' });
      for (const bad of ['60001', '-1', '1.5', 'soon']) {
        await http().get(`/jobs/${jobId}?wait_ms=${bad}`).expect(400);
      }
    });
  });
});
