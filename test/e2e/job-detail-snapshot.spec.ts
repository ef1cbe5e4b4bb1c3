import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import type { Json } from '../support/problems';
import { startTestApp } from '../support/test-app';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

/** What is wrong with one GET /jobs/{id} answer of a `fail` job (every closed attempt has a record), or null. */
function inconsistency(job: Json): string | null {
  const history = job.attempt_history as Json[];
  const numbers = history.map((attempt) => attempt.attempt as number);
  const summary = `attempts ${job.attempts}, history ${history.map((a) => `${a.attempt}:${a.outcome}`).join(' ')}`;
  for (let i = 1; i < numbers.length; i++) {
    if (numbers[i] <= numbers[i - 1]) return `attempt numbers not strictly increasing: ${summary}`;
  }
  if (numbers.some((n) => n > job.attempts)) return `an attempt numbered above attempts: ${summary}`;
  const live = history.filter((attempt) => attempt.outcome === 'running');
  if (live.length > 1) return `more than one live attempt: ${summary}`;
  if (live.length === 1 && live[0] !== history[history.length - 1])
    return `live attempt not last: ${summary}`;
  if (live.length === 1 && live[0].attempt !== job.attempts)
    return `live attempt not numbered attempts: ${summary}`;
  // A failing job's attempts all leave a record, so the history is exactly 1..attempts.
  if (numbers.length !== job.attempts) return `history does not list every attempt: ${summary}`;
  if (live.length === 1 && job.next_attempt_at !== null)
    return `next_attempt_at during a live attempt: ${summary}`;
  return null;
}

describe('GET /jobs/{id} reads a job and its attempts from one snapshot (APP_ROLE=all, fast retries)', () => {
  let db: TestDatabase;
  let app: INestApplication;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestApp(db.url, { role: 'all', retryBaseMs: 1, retryMaxMs: 2 });
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  it('answers a self-consistent attempt history while the job retries as fast as it can', async () => {
    const http = () => request(app.getHttpServer());
    const startJob = async (): Promise<string> =>
      (
        await http()
          .post('/jobs')
          .send({ job_type: 'fail', payload: { message: 'again' }, max_attempts: 1000 })
          .expect(201)
      ).body.job_id as string;

    const wanted = 400;
    const deadline = Date.now() + 100_000;
    const problems: string[] = [];
    let checked = 0;
    let withAttempts = 0;
    let jobId = await startJob();

    // Several readers at once, each reading as fast as it can while a worker closes and opens attempts.
    const reader = async (): Promise<void> => {
      while (checked < wanted && Date.now() < deadline) {
        const current = jobId;
        const job = (await http().get(`/jobs/${current}`).expect(200)).body as Json;
        checked += 1;
        if (job.attempts > 0) withAttempts += 1;
        const problem = inconsistency(job);
        if (problem) problems.push(problem);
        // A job that ran out of attempts cannot race any more: keep a retrying one in front of the readers.
        if (job.state !== 'running' && job.state !== 'pending' && jobId === current) jobId = await startJob();
      }
    };
    await Promise.all(Array.from({ length: 4 }, reader));

    expect({ inconsistent: problems.length, first: problems.slice(0, 5) }).toEqual({
      inconsistent: 0,
      first: [],
    });
    expect(checked).toBeGreaterThanOrEqual(wanted);
    // The responses saw the job mid-flight, not only before its first attempt.
    expect(withAttempts).toBeGreaterThan(wanted / 2);
  }, 120_000);
});
