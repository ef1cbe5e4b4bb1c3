import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkExecutions, readExecutionLogs, type ExecutionEvent } from '../chaos/support/execution-log';

const JOB = '0190a000-0000-7000-8000-000000000001';
const T = 1_800_000_000_000;

/** One recorded event of JOB, `ms` after T. */
const at = (
  worker: string,
  attempt: number,
  event: ExecutionEvent['event'],
  ms: number,
  extra: Partial<ExecutionEvent> = {},
): ExecutionEvent => ({
  job_id: JOB,
  attempt,
  worker,
  event,
  at: Math.floor(T + ms),
  at_precise: T + ms,
  ...extra,
});

describe('the execution checker of the chaos suite', () => {
  it('accepts executions of one job that follow each other', () => {
    const { violations, summary } = checkExecutions([
      at('w1', 1, 'start', 0),
      at('w1', 1, 'aborted', 1_800),
      at('w2', 2, 'start', 2_300),
      at('w2', 2, 'end', 2_600),
    ]);
    expect(violations).toEqual([]);
    expect(summary).toEqual({ jobs: 1, executions: 2, aborted: 1, died: 0, unfinished: 0 });
  });

  it('reports an execution that starts before the previous one stopped', () => {
    const { violations } = checkExecutions([
      at('w1', 1, 'start', 0),
      at('w2', 2, 'start', 2_300),
      at('w1', 1, 'aborted', 2_300.5),
      at('w2', 2, 'end', 2_600),
    ]);
    expect(violations).toEqual([
      expect.stringMatching(/attempt 2 started on w2 .* while attempt 1 ran on w1/),
    ]);
  });

  it('ends the execution of a killed worker when its process was seen gone', () => {
    const events = [at('w1', 1, 'start', 0), at('w2', 2, 'start', 2_300), at('w2', 2, 'end', 2_600)];
    const before = checkExecutions(events, new Map([['w1', 2_299 + T]]));
    expect(before.violations).toEqual([]);
    expect(before.summary.died).toBe(1);
    const after = checkExecutions(events, new Map([['w1', 2_301 + T]]));
    expect(after.violations).toEqual([
      expect.stringMatching(/while attempt 1 ran on w1 \(it died 1\.0 ms later\)/),
    ]);
  });

  it('counts an execution without an end in a living process as still running', () => {
    const { violations, summary } = checkExecutions([at('w1', 1, 'start', 0), at('w2', 2, 'start', 60_000)]);
    expect(violations).toEqual([expect.stringMatching(/it is still running/)]);
    expect(summary.unfinished).toBe(2);
  });

  it('finds an overlap with any earlier execution, not only the one just before', () => {
    const { violations } = checkExecutions([
      at('w1', 1, 'start', 0),
      at('w2', 2, 'start', 100),
      at('w2', 2, 'end', 200),
      at('w3', 3, 'start', 300),
      at('w3', 3, 'end', 400),
      at('w1', 1, 'end', 500),
    ]);
    expect(violations).toHaveLength(2);
  });

  it('does not hold a handler that ignores its AbortSignal to it, but does hold the one after it', () => {
    const ignoring = checkExecutions([
      at('w1', 1, 'start', 0, { honours_abort: false }),
      at('w2', 2, 'start', 300, { honours_abort: false }),
      at('w1', 1, 'end', 3_600_000),
    ]);
    expect(ignoring.violations).toEqual([]);
    const honouring = checkExecutions([
      at('w1', 1, 'start', 0),
      at('w2', 2, 'start', 300, { honours_abort: false }),
      at('w1', 1, 'end', 400),
    ]);
    expect(honouring.violations).toHaveLength(1);
  });

  it('reports attempts that started out of order and records that do not pair up', () => {
    const { violations } = checkExecutions([
      at('w1', 2, 'start', 0),
      at('w1', 2, 'end', 10),
      at('w2', 1, 'start', 20),
      at('w2', 1, 'end', 30),
      at('w2', 1, 'end', 31),
      at('w3', 3, 'end', 40),
    ]);
    expect(violations).toEqual([
      `job ${JOB}: attempt 1 on w2 ended twice`,
      `job ${JOB}: attempt 3 on w3 ended without a start`,
      `job ${JOB}: attempt 1 started after attempt 2 began`,
    ]);
  });

  it('reads the records of every worker from its folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'execution-checker-'));
    try {
      const lines = (events: ExecutionEvent[]): string =>
        events.map((e) => `${JSON.stringify(e)}\n`).join('');
      writeFileSync(join(dir, 'w1.jsonl'), lines([at('w1', 1, 'start', 0)]));
      writeFileSync(join(dir, 'w2.jsonl'), lines([at('w2', 2, 'start', 2_300), at('w2', 2, 'end', 2_600)]));
      writeFileSync(join(dir, 'notes.txt'), 'not a record');
      const events = readExecutionLogs(dir);
      expect(events).toHaveLength(3);
      expect(checkExecutions(events).violations).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
