import { eventually } from '../support/job-factory';
import { spawnService, waitForHttp } from '../support/service-process';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

/** The API is killed once it has acknowledged this many jobs, however long that takes. */
const ACKNOWLEDGED_BEFORE_KILL = 200;

describe('chaos: the API killed with SIGKILL during a burst of POSTs', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db.drop());

  it('keeps every job whose 201 the client received, and leaves no partial rows', async () => {
    const api = await spawnService({ APP_ROLE: 'api', DATABASE_URL: db.url });
    await waitForHttp(api, '/health/ready');
    const acknowledged = new Map<string, number>();
    let sent = 0;
    let killed = false;

    const client = async (): Promise<void> => {
      while (!killed) {
        const n = sent++;
        try {
          const response = await fetch(`${api.baseUrl}/jobs`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ job_type: 'echo', payload: { n, text: 'x'.repeat(200) } }),
          });
          if (response.status === 201)
            acknowledged.set(((await response.json()) as { job_id: string }).job_id, n);
        } catch {
          // The connection died with the process: this request was not acknowledged.
        }
      }
    };
    const clients = Array.from({ length: 20 }, () => client());
    await eventually(
      async () => (acknowledged.size >= ACKNOWLEDGED_BEFORE_KILL ? true : undefined),
      60_000,
      5,
    );
    api.kill('SIGKILL');
    await api.exited;
    killed = true;
    await Promise.all(clients);

    expect(acknowledged.size).toBeGreaterThanOrEqual(ACKNOWLEDGED_BEFORE_KILL);
    const { rows } = await db.pool.query(`SELECT job_id, state, job_type, payload, max_attempts FROM jobs`);
    const stored = new Map(rows.map((row) => [row.job_id as string, row]));
    for (const [jobId, n] of acknowledged) {
      expect(stored.get(jobId)).toMatchObject({ state: 'pending', job_type: 'echo', payload: { n } });
    }
    // Rows the client never heard about are whole jobs too (committed just before the kill), never fragments.
    for (const row of rows) {
      expect(row).toMatchObject({ state: 'pending', job_type: 'echo', max_attempts: 3 });
      expect(row.payload.text).toHaveLength(200);
    }
    expect(rows.length).toBeGreaterThanOrEqual(acknowledged.size);
    expect(rows.length).toBeLessThanOrEqual(sent);
  });
});
