import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

/** The preload that makes a worker process record its `sleep` executions (see record-executions.js). */
const RECORDER = join(__dirname, 'record-executions.js');

/** One line written by record-executions.js from inside a handler. */
export interface ExecutionEvent {
  job_id: string;
  attempt: number;
  worker: string;
  event: 'start' | 'end' | 'aborted';
  /** Epoch ms (Date.now()). */
  at: number;
  /** Epoch ms with sub-millisecond precision (performance.timeOrigin + performance.now()). */
  at_precise: number;
  /** On `start`: false for a handler that ignores its AbortSignal (the documented limit). */
  honours_abort?: boolean;
}

export interface ExecutionSummary {
  jobs: number;
  executions: number;
  /** Executions that stopped because their AbortSignal fired. */
  aborted: number;
  /** Executions that never wrote their end because their process died. */
  died: number;
  /** Executions without an end in a process that is still alive. */
  unfinished: number;
}

/** Now, on the clock the recorder uses (epoch ms, sub-millisecond precision). */
export function preciseNow(): number {
  return performance.timeOrigin + performance.now();
}

/** What a worker process needs to record its executions to `file`: its environment and node arguments. */
export function recordExecutionsTo(file: string): { env: Record<string, string>; nodeArgs: string[] } {
  return { env: { EXECUTION_LOG: file }, nodeArgs: ['-r', RECORDER] };
}

/** Every event in the `*.jsonl` files of `dir`, one file per worker process. */
export function readExecutionLogs(dir: string): ExecutionEvent[] {
  const events: ExecutionEvent[] = [];
  for (const name of readdirSync(dir).filter((file) => file.endsWith('.jsonl'))) {
    for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) {
      if (line.trim() !== '') events.push(JSON.parse(line) as ExecutionEvent);
    }
  }
  return events;
}

interface Execution {
  jobId: string;
  attempt: number;
  worker: string;
  startedAt: number;
  /** Infinity while it may still be running. */
  endedAt: number;
  how: 'end' | 'aborted' | 'died' | 'running';
  honoursAbort: boolean;
}

/**
 * Checks what the handlers themselves recorded: for each job, executions ordered by start, none may start
 * before every earlier execution that honours its AbortSignal has stopped. An execution stops at its `end`
 * or `aborted` record; one without either stopped when its process died (`deaths`: worker id -> time the
 * process was seen gone, on the recorder's clock), or is still running if its process is alive. A handler
 * that ignores its signal may run on (the documented limit), so it is not held to this.
 */
export function checkExecutions(
  events: ExecutionEvent[],
  deaths: ReadonlyMap<string, number> = new Map(),
): { violations: string[]; summary: ExecutionSummary } {
  const violations: string[] = [];
  const executions = new Map<string, Execution>();
  const key = (event: ExecutionEvent): string => `${event.job_id}/${event.attempt}/${event.worker}`;
  for (const event of events.filter((e) => e.event === 'start')) {
    if (executions.has(key(event))) {
      violations.push(`job ${event.job_id}: attempt ${event.attempt} started twice on ${event.worker}`);
      continue;
    }
    executions.set(key(event), {
      jobId: event.job_id,
      attempt: event.attempt,
      worker: event.worker,
      startedAt: event.at_precise,
      endedAt: Infinity,
      how: 'running',
      honoursAbort: event.honours_abort !== false,
    });
  }
  for (const event of events.filter((e) => e.event !== 'start')) {
    const execution = executions.get(key(event));
    if (!execution) {
      violations.push(
        `job ${event.job_id}: attempt ${event.attempt} on ${event.worker} ended without a start`,
      );
    } else if (execution.how !== 'running') {
      violations.push(`job ${event.job_id}: attempt ${event.attempt} on ${event.worker} ended twice`);
    } else {
      execution.endedAt = event.at_precise;
      execution.how = event.event === 'aborted' ? 'aborted' : 'end';
    }
  }
  for (const execution of executions.values()) {
    const diedAt = deaths.get(execution.worker);
    if (execution.how === 'running' && diedAt !== undefined) {
      execution.endedAt = diedAt;
      execution.how = 'died';
    }
  }

  const byJob = new Map<string, Execution[]>();
  for (const execution of executions.values()) {
    byJob.set(execution.jobId, [...(byJob.get(execution.jobId) ?? []), execution]);
  }
  for (const [jobId, list] of byJob) {
    list.sort((a, b) => a.startedAt - b.startedAt);
    let latest: Execution | undefined;
    for (const execution of list) {
      if (latest && execution.attempt <= latest.attempt) {
        violations.push(
          `job ${jobId}: attempt ${execution.attempt} started after attempt ${latest.attempt} began`,
        );
      }
      const blocking = list.filter(
        (earlier) =>
          earlier !== execution &&
          earlier.honoursAbort &&
          earlier.startedAt <= execution.startedAt &&
          earlier.endedAt > execution.startedAt,
      );
      for (const earlier of blocking) {
        const ended =
          earlier.endedAt === Infinity
            ? 'it is still running'
            : `it ${earlier.how === 'died' ? 'died' : `ended (${earlier.how})`} ` +
              `${(earlier.endedAt - execution.startedAt).toFixed(1)} ms later`;
        violations.push(
          `job ${jobId}: attempt ${execution.attempt} started on ${execution.worker} at ` +
            `${new Date(execution.startedAt).toISOString()} while attempt ${earlier.attempt} ran on ` +
            `${earlier.worker} (${ended})`,
        );
      }
      latest = execution;
    }
  }

  const all = [...executions.values()];
  return {
    violations,
    summary: {
      jobs: byJob.size,
      executions: all.length,
      aborted: all.filter((execution) => execution.how === 'aborted').length,
      died: all.filter((execution) => execution.how === 'died').length,
      unfinished: all.filter((execution) => execution.how === 'running').length,
    },
  };
}
