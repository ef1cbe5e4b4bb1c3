import { readFileSync, readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnService, waitForHttp, type ServiceProcess } from '../support/service-process';
import { createTestDatabase, type TestDatabase } from '../support/test-db';

/** How long a process is left alone before and while its wake-ups are counted. */
const SETTLE_MS = 2_000;
const WINDOW_MS = 4_000;
/**
 * At most this many wake-ups a second for a process with nothing to do. With the default settings an idle
 * worker looks for due jobs and callbacks once a second each and samples its event loop's delay ten times
 * a second; anything on a timer of a few tens of milliseconds (a watchdog tick, a self-fencing check, a
 * 10 ms event-loop sampler) puts it well above this.
 */
const MAX_WAKEUPS_PER_SECOND = 50;

/** Times any thread of process `pid` went to sleep and was woken (voluntary context switches). */
function wakeups(pid: number): number {
  let total = 0;
  for (const thread of readdirSync(`/proc/${pid}/task`)) {
    const status = readFileSync(`/proc/${pid}/task/${thread}/status`, 'utf8');
    total += Number(/^voluntary_ctxt_switches:\s+(\d+)$/m.exec(status)?.[1] ?? 0);
  }
  return total;
}

async function wakeupsPerSecond(service: ServiceProcess): Promise<number> {
  await sleep(SETTLE_MS);
  const before = wakeups(service.child.pid!);
  await sleep(WINDOW_MS);
  return ((wakeups(service.child.pid!) - before) * 1000) / WINDOW_MS;
}

describe('idle processes', () => {
  let db: TestDatabase;
  let service: ServiceProcess | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    service?.kill('SIGKILL');
    await service?.exited;
    service = undefined;
  });
  afterAll(() => db.drop());

  it.each(['worker', 'api'])('an idle %s process sleeps instead of waking on short timers', async (role) => {
    service = await spawnService({ APP_ROLE: role, DATABASE_URL: db.url });
    await waitForHttp(service, '/health/ready');
    expect(await wakeupsPerSecond(service)).toBeLessThan(MAX_WAKEUPS_PER_SECOND);
  });
});
