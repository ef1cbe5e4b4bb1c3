import type { INestApplication } from '@nestjs/common';
import { Client } from 'pg';
import request from 'supertest';
import { seedHistory } from '../support/history';
import { insertJobs } from '../support/job-factory';
import { planNodes } from '../support/plans';
import { startTestApp } from '../support/test-app';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

type Json = Record<string, any>;

interface Page {
  items: Json[];
  next_cursor: string | null;
}

/** job_ids sorted newest first: UUIDv7 strings sort like their creation time. */
const newestFirst = (ids: string[]): string[] => [...ids].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));

describe('GET /jobs: filters, limits and cursors (APP_ROLE=api)', () => {
  let db: TestDatabase;
  let app: INestApplication;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestApp(db.url, { role: 'api' });
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  beforeEach(async () => {
    await db.reset();
  });

  const http = () => request(app.getHttpServer());

  const list = async (query: Record<string, string | number> = {}): Promise<Page> => {
    const response = await http().get('/jobs').query(query).expect(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(Object.keys(response.body).sort()).toEqual(['items', 'next_cursor']);
    return response.body as Page;
  };

  /** Follows next_cursor until it is null; `between` runs after every page. Returns the pages. */
  const walk = async (
    query: Record<string, string | number>,
    between: () => Promise<void> = async () => {},
  ): Promise<Page[]> => {
    const pages: Page[] = [];
    let cursor: string | null = null;
    do {
      const page: Page = await list(cursor === null ? query : { ...query, cursor });
      pages.push(page);
      cursor = page.next_cursor;
      await between();
      if (pages.length > 1_000) throw new Error('paging does not end');
    } while (cursor !== null);
    return pages;
  };

  const ids = (pages: Page[]): string[] => pages.flatMap((page) => page.items.map((item) => item.job_id));

  const createViaApi = async (count: number, jobType = 'echo'): Promise<string[]> => {
    const created: string[] = [];
    for (let n = 0; n < count; n++) {
      const response = await http().post('/jobs').send({ job_type: jobType, payload: { n } }).expect(201);
      created.push(response.body.job_id);
    }
    return created;
  };

  /** Moves the given pending jobs to running, as a claim would. */
  const markRunning = async (jobIds: string[]): Promise<void> => {
    await db.pool.query(
      `UPDATE jobs SET state = 'running', attempts = 1, started_at = now(), worker_id = 'w',
         attempt_started_at = now(), lease_expires_at = now() + interval '1 minute', available_at = NULL
       WHERE job_id = ANY($1::uuid[])`,
      [jobIds],
    );
  };

  /** Completes the given running jobs, as their live attempt would. */
  const markCompleted = async (jobIds: string[]): Promise<void> => {
    await db.pool.query(
      `UPDATE jobs SET state = 'completed', result = '{"ok": true}'::jsonb, finished_at = now(),
         lease_expires_at = NULL, available_at = NULL
       WHERE job_id = ANY($1::uuid[])`,
      [jobIds],
    );
  };

  /** What the API should list for a filter, straight from the table, newest first. */
  const expectedIds = async (where = 'true', params: unknown[] = []): Promise<string[]> => {
    const { rows } = await db.pool.query<{ job_id: string }>(
      `SELECT job_id::text FROM jobs WHERE ${where} ORDER BY job_id DESC`,
      params,
    );
    return rows.map((row) => row.job_id);
  };

  it('lists nothing, with a null next_cursor, when there are no jobs', async () => {
    expect(await list()).toEqual({ items: [], next_cursor: null });
    expect(await list({ state: 'failed', job_type: 'echo', limit: 1 })).toEqual({
      items: [],
      next_cursor: null,
    });
  });

  it('lists the newest job first (job_id descending, the reverse of creation order)', async () => {
    const created = await createViaApi(8);
    const page = await list();
    expect(page.items.map((item) => item.job_id)).toEqual([...created].reverse());
    expect(page.items.map((item) => item.job_id)).toEqual(newestFirst(created));
    expect(page.next_cursor).toBeNull();
    for (let n = 1; n < page.items.length; n++) {
      expect(Date.parse(page.items[n - 1].created_at)).toBeGreaterThanOrEqual(
        Date.parse(page.items[n].created_at),
      );
    }
  });

  it('lists jobs created in one batch newest first too', async () => {
    const jobs = Array.from({ length: 30 }, (_, n) => ({ job_type: 'echo', payload: { n } }));
    const response = await http().post('/jobs/batch').send({ jobs }).expect(201);
    const created = (response.body.items as Json[]).map((item) => item.job_id);
    const all = ids(await walk({ limit: 100 }));
    expect(all).toEqual(newestFirst(created));
    expect(all).toEqual([...created].reverse());
  });

  it('shows each job as GET /jobs/{id} does (without the attempt history)', async () => {
    const [jobId] = await createViaApi(1);
    const { items } = await list();
    const { attempt_history: history, ...detail } = (await http().get(`/jobs/${jobId}`).expect(200))
      .body as Json;
    expect(history).toEqual([]);
    expect(items).toEqual([detail]);
  });

  describe('limit', () => {
    beforeEach(async () => {
      await insertJobs(db.pool, 25);
    });

    it('gives 20 jobs by default, with a next_cursor', async () => {
      const page = await list();
      expect(page.items).toHaveLength(20);
      expect(page.next_cursor).toEqual(expect.any(String));
      expect(page.items.map((item) => item.job_id)).toEqual((await expectedIds()).slice(0, 20));
    });

    it.each([1, 7, 24])('gives at most limit=%i jobs, with a next_cursor', async (limit) => {
      const page = await list({ limit });
      expect(page.items).toHaveLength(limit);
      expect(page.next_cursor).toEqual(expect.any(String));
      expect(page.items.map((item) => item.job_id)).toEqual((await expectedIds()).slice(0, limit));
    });

    it.each([25, 26, 100])('gives every job and a null next_cursor for limit=%i', async (limit) => {
      const page = await list({ limit });
      expect(page.items.map((item) => item.job_id)).toEqual(await expectedIds());
      expect(page.next_cursor).toBeNull();
    });

    it('never gives more than 100 jobs', async () => {
      await insertJobs(db.pool, 100);
      const page = await list({ limit: 100 });
      expect(page.items).toHaveLength(100);
      expect(page.next_cursor).toEqual(expect.any(String));
    });
  });

  describe('state and job_type filters', () => {
    let echoPending: string[];
    let echoRunning: string[];
    let echoCompleted: string[];
    let sleepPending: string[];
    let sleepRunning: string[];

    beforeEach(async () => {
      // Interleaved, so a filter cannot pass by returning a contiguous slice.
      echoPending = [];
      echoRunning = [];
      echoCompleted = [];
      sleepPending = [];
      sleepRunning = [];
      for (let round = 0; round < 4; round++) {
        echoPending.push(...(await insertJobs(db.pool, 2, { jobType: 'echo' })));
        sleepPending.push(...(await insertJobs(db.pool, 2, { jobType: 'sleep', payload: { ms: 1 } })));
        echoRunning.push(...(await insertJobs(db.pool, 1, { jobType: 'echo' })));
        sleepRunning.push(...(await insertJobs(db.pool, 1, { jobType: 'sleep', payload: { ms: 1 } })));
        echoCompleted.push(...(await insertJobs(db.pool, 1, { jobType: 'echo' })));
      }
      await markRunning([...echoRunning, ...sleepRunning, ...echoCompleted]);
      await markCompleted(echoCompleted);
    });

    it('filters by state', async () => {
      const pending = await list({ state: 'pending', limit: 100 });
      expect(pending.items.map((item) => item.job_id)).toEqual(
        newestFirst([...echoPending, ...sleepPending]),
      );
      expect(pending.items.every((item) => item.state === 'pending')).toBe(true);
      expect(pending.next_cursor).toBeNull();

      const running = await list({ state: 'running', limit: 100 });
      expect(running.items.map((item) => item.job_id)).toEqual(
        newestFirst([...echoRunning, ...sleepRunning]),
      );
      expect(running.items.every((item) => item.state === 'running' && item.attempts === 1)).toBe(true);

      const completed = await list({ state: 'completed', limit: 100 });
      expect(completed.items.map((item) => item.job_id)).toEqual(newestFirst(echoCompleted));
      expect(completed.items.every((item) => item.state === 'completed')).toBe(true);
      expect(completed.items[0].result).toEqual({ ok: true });

      expect(await list({ state: 'failed' })).toEqual({ items: [], next_cursor: null });
    });

    it('filters by job_type', async () => {
      const echo = await list({ job_type: 'echo', limit: 100 });
      expect(echo.items.map((item) => item.job_id)).toEqual(
        newestFirst([...echoPending, ...echoRunning, ...echoCompleted]),
      );
      expect(echo.items.every((item) => item.job_type === 'echo')).toBe(true);

      const sleep = await list({ job_type: 'sleep', limit: 100 });
      expect(sleep.items.map((item) => item.job_id)).toEqual(newestFirst([...sleepPending, ...sleepRunning]));

      expect(await list({ job_type: 'fail' })).toEqual({ items: [], next_cursor: null });
      expect(await list({ job_type: 'no.such.type' })).toEqual({ items: [], next_cursor: null });
    });

    it('combines state and job_type', async () => {
      const page = await list({ state: 'running', job_type: 'sleep', limit: 100 });
      expect(page.items.map((item) => item.job_id)).toEqual(newestFirst(sleepRunning));
      expect(page.items.every((item) => item.state === 'running' && item.job_type === 'sleep')).toBe(true);

      const echoPendingPage = await list({ job_type: 'echo', state: 'pending' });
      expect(echoPendingPage.items.map((item) => item.job_id)).toEqual(newestFirst(echoPending));

      expect(await list({ state: 'completed', job_type: 'sleep' })).toEqual({ items: [], next_cursor: null });
    });

    it('applies the filters on every page when walking with cursors', async () => {
      const cases: [Record<string, string | number>, string[]][] = [
        [{ state: 'pending', limit: 3 }, [...echoPending, ...sleepPending]],
        [{ job_type: 'echo', limit: 5 }, [...echoPending, ...echoRunning, ...echoCompleted]],
        [{ state: 'pending', job_type: 'sleep', limit: 2 }, sleepPending],
        [{ state: 'running', job_type: 'echo', limit: 1 }, echoRunning],
        [{ state: 'completed', limit: 4 }, echoCompleted],
      ];
      for (const [query, expected] of cases) {
        const pages = await walk(query);
        expect({ query, ids: ids(pages) }).toEqual({ query, ids: newestFirst(expected) });
        for (const page of pages) {
          expect(page.items.length).toBeLessThanOrEqual(Number(query.limit));
          for (const item of page.items) {
            if (query.state) expect(item.state).toBe(query.state);
            if (query.job_type) expect(item.job_type).toBe(query.job_type);
          }
        }
        // Every page but the last is full; the last has a null cursor.
        expect(pages.slice(0, -1).every((page) => page.items.length === query.limit)).toBe(true);
        expect(pages[pages.length - 1].next_cursor).toBeNull();
      }
    });

    it('a cursor from one filter continues correctly under another filter', async () => {
      // The cursor marks a position in job_id order, whatever the filter.
      const first = await list({ job_type: 'echo', limit: 4 });
      const rest = ids(await walk({ state: 'pending', cursor: first.next_cursor!, limit: 100 }));
      const boundary = first.items[first.items.length - 1].job_id;
      expect(rest).toEqual(newestFirst([...echoPending, ...sleepPending]).filter((id) => id < boundary));
    });
  });

  describe('failed and cancelled jobs', () => {
    it('filters by each, alone and with job_type, on every page', async () => {
      const failedEcho = await seedHistory(db.pool, 3, {
        state: 'failed',
        jobType: 'echo',
        createdSecondsAgo: 30,
      });
      const failedSleep = await seedHistory(db.pool, 2, {
        state: 'failed',
        jobType: 'sleep',
        createdSecondsAgo: 20,
      });
      const cancelledEcho = await seedHistory(db.pool, 2, {
        state: 'cancelled',
        jobType: 'echo',
        createdSecondsAgo: 10,
      });
      await insertJobs(db.pool, 5, { jobType: 'echo' });

      const failed = await list({ state: 'failed', limit: 100 });
      expect(failed.items.map((item) => item.job_id)).toEqual(newestFirst([...failedEcho, ...failedSleep]));
      expect(failed.items.every((item) => item.state === 'failed' && item.error !== null)).toBe(true);
      expect(ids(await walk({ state: 'failed', limit: 2 }))).toEqual(
        newestFirst([...failedEcho, ...failedSleep]),
      );
      expect(ids(await walk({ state: 'failed', job_type: 'sleep', limit: 1 }))).toEqual(
        newestFirst(failedSleep),
      );
      expect(ids(await walk({ state: 'cancelled', job_type: 'echo', limit: 1 }))).toEqual(
        newestFirst(cancelledEcho),
      );
      expect(await list({ state: 'cancelled', job_type: 'sleep' })).toEqual({ items: [], next_cursor: null });
    });

    it('are found through their listing, not by walking the jobs newer than them', async () => {
      const [failed] = await seedHistory(db.pool, 1, { state: 'failed', createdSecondsAgo: 3_600 });
      await seedHistory(db.pool, 20_000, { state: 'completed', createdSecondsAgo: 600 });
      await db.pool.query('ANALYZE jobs, job_state_listing');

      // The statement the api runs for the request, as it runs it.
      const statements: { text: string; values: unknown[] }[] = [];
      const original = Client.prototype.query;
      const query = jest.spyOn(Client.prototype, 'query').mockImplementation(function (
        this: Client,
        ...args: unknown[]
      ) {
        if (typeof args[0] === 'string' && /ORDER BY "job"\."job_id" DESC/.test(args[0]))
          statements.push({ text: args[0], values: args[1] as unknown[] });
        return (original as (...args: unknown[]) => unknown).apply(this, args);
      } as never);
      let page: Page;
      try {
        page = await list({ state: 'failed', limit: 20 });
      } finally {
        query.mockRestore();
      }
      expect(page.items.map((item) => item.job_id)).toEqual([failed]);
      expect(statements).toHaveLength(1);

      const { rows } = await db.pool.query(
        `EXPLAIN (ANALYZE, FORMAT JSON) ${statements[0].text}`,
        statements[0].values,
      );
      const plan = rows[0]['QUERY PLAN'][0].Plan;
      expect(planNodes(plan).map((node) => node.relation)).toContain('job_state_listing');
      // Rows of jobs the statement read: the failed one, not the 20,000 completed ones ahead of it.
      const jobsRowsRead = (node: Record<string, any>): number =>
        (node['Relation Name'] === 'jobs' ? node['Actual Rows'] * node['Actual Loops'] : 0) +
        (node.Plans ?? []).reduce((sum: number, child: Record<string, any>) => sum + jobsRowsRead(child), 0);
      expect(jobsRowsRead(plan)).toBe(1);
    });
  });

  describe('walking every page with next_cursor', () => {
    it.each([1, 10, 20, 53, 54, 100])(
      'returns every one of 53 jobs exactly once, in order (limit=%i)',
      async (limit) => {
        await insertJobs(db.pool, 20, { jobType: 'echo' });
        await insertJobs(db.pool, 33, { jobType: 'sleep', payload: { ms: 1 } });
        const expected = await expectedIds();
        const pages = await walk({ limit });
        const all = ids(pages);
        expect(all).toEqual(expected);
        expect(new Set(all).size).toBe(53);
        expect(pages).toHaveLength(Math.max(1, Math.ceil(53 / limit)));
        expect(
          pages.slice(0, -1).every((page) => page.items.length === limit && page.next_cursor !== null),
        ).toBe(true);
        expect(pages[pages.length - 1].next_cursor).toBeNull();
      },
    );

    it('walks with the default limit of 20', async () => {
      await insertJobs(db.pool, 45);
      const pages = await walk({});
      expect(pages.map((page) => page.items.length)).toEqual([20, 20, 5]);
      expect(ids(pages)).toEqual(await expectedIds());
    });

    it('gives the same page for the same cursor every time', async () => {
      await insertJobs(db.pool, 30);
      const first = await list({ limit: 10 });
      const second = await list({ limit: 10, cursor: first.next_cursor! });
      const again = await list({ limit: 10, cursor: first.next_cursor! });
      expect(again).toEqual(second);
    });

    it('gives the remaining jobs and a null next_cursor on a short last page', async () => {
      await insertJobs(db.pool, 5, { jobType: 'echo' });
      const expected = await expectedIds();
      const first = await list({ limit: 4 });
      expect(first.items.map((item) => item.job_id)).toEqual(expected.slice(0, 4));
      const last = await list({ cursor: first.next_cursor!, limit: 10 });
      expect(last).toEqual({ items: [expect.objectContaining({ job_id: expected[4] })], next_cursor: null });
    });

    it('returns every job that existed at the start exactly once while jobs are being created', async () => {
      const initial = await createViaApi(12);
      initial.push(...(await insertJobs(db.pool, 25)));
      const expected = newestFirst(initial);
      expect(await expectedIds()).toEqual(expected);

      let added = 0;
      const pages = await walk({ limit: 6 }, async () => {
        await createViaApi(3);
        added += 3;
      });
      const all = ids(pages);

      expect(new Set(all).size).toBe(all.length); // never a duplicate
      expect(all).toEqual(newestFirst(all)); // still newest first
      expect(all.filter((id) => initial.includes(id))).toEqual(expected); // every original job, once, in order
      // Keyset paging goes towards older jobs: a job created after the walk began is newer than every cursor.
      expect(all).toEqual(expected);
      expect(added).toBeGreaterThan(0);
      expect((await expectedIds()).length).toBe(initial.length + added);
    });

    it('returns every original job exactly once while jobs are created concurrently with each page fetch', async () => {
      const initial = await insertJobs(db.pool, 40, { jobType: 'echo' });
      const expected = newestFirst(initial);
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const [page]: [Page, unknown, unknown] = await Promise.all([
          list(cursor === null ? { limit: 7 } : { limit: 7, cursor }),
          http()
            .post('/jobs/batch')
            .send({ jobs: Array.from({ length: 5 }, () => ({ job_type: 'echo' })) })
            .expect(201),
          http().post('/jobs').send({ job_type: 'echo' }).expect(201),
        ]);
        seen.push(...page.items.map((item) => item.job_id));
        cursor = page.next_cursor;
      } while (cursor !== null);

      expect(new Set(seen).size).toBe(seen.length);
      expect(seen).toEqual(newestFirst(seen));
      expect(seen.filter((id) => initial.includes(id))).toEqual(expected);
    });

    it('filters with cursors while jobs of every state keep changing (running jobs stay listed once)', async () => {
      const initial = await insertJobs(db.pool, 30, { jobType: 'echo' });
      const pages: Page[] = [];
      let cursor: string | null = null;
      let round = 0;
      do {
        const page: Page = await list(
          cursor === null ? { job_type: 'echo', limit: 4 } : { job_type: 'echo', limit: 4, cursor },
        );
        pages.push(page);
        cursor = page.next_cursor;
        // Move a job the walk has not reached yet to running: it stays an echo job, so it is still listed.
        const ahead = newestFirst(initial).slice(4 * (round + 1) + 1, 4 * (round + 1) + 2);
        if (ahead.length > 0) await markRunning(ahead);
        round++;
      } while (cursor !== null);
      expect(ids(pages)).toEqual(newestFirst(initial));
    });
  });
});
