import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnService, waitForHttp, type ServiceProcess } from '../../support/service-process';
import {
  checkExecutions,
  preciseNow,
  readExecutionLogs,
  recordExecutionsTo,
  type ExecutionEvent,
  type ExecutionSummary,
} from './execution-log';

export interface FleetWorker {
  id: string;
  process: ServiceProcess;
  /** When this process was seen gone (preciseNow() clock); undefined while it runs. */
  exitedAt?: number;
}

/**
 * Worker processes that a test can kill and replace, like the pods of a Deployment. Each records the
 * executions of its `sleep` handlers (see record-executions.js), so that `checkExecutions()` can tell
 * whether a job ever ran in two places at once.
 */
export class WorkerFleet {
  readonly workers: FleetWorker[] = [];
  private started = 0;
  private readonly executionLogs = mkdtempSync(join(tmpdir(), 'job-service-executions-'));

  constructor(private readonly env: Record<string, string>) {}

  async start(count: number): Promise<void> {
    await Promise.all(Array.from({ length: count }, () => this.add()));
  }

  /**
   * Starts one more worker and waits until it is ready. Its WORKER_ID is fresh unless `id` is given;
   * `env` adds to or overrides the fleet's environment for this worker only.
   */
  async add(options: { id?: string; env?: Record<string, string> } = {}): Promise<FleetWorker> {
    const id = options.id ?? `chaos-worker-${++this.started}`;
    const recording = recordExecutionsTo(join(this.executionLogs, `${id}.jsonl`));
    const service = await spawnService(
      { APP_ROLE: 'worker', WORKER_ID: id, ...this.env, ...options.env, ...recording.env },
      { nodeArgs: recording.nodeArgs },
    );
    const worker: FleetWorker = { id, process: service };
    service.child.once('exit', () => (worker.exitedAt = preciseNow()));
    this.workers.push(worker);
    await waitForHttp(worker.process, '/health/ready');
    return worker;
  }

  alive(): FleetWorker[] {
    return this.workers.filter(
      ({ process }) => process.child.exitCode === null && process.child.signalCode === null,
    );
  }

  /** Every execution event the workers recorded so far. */
  executionEvents(): ExecutionEvent[] {
    return readExecutionLogs(this.executionLogs);
  }

  /**
   * Checks the executions every worker recorded so far: an execution a process did not finish ends when
   * that process was seen gone.
   */
  checkExecutions(): { violations: string[]; summary: ExecutionSummary } {
    const deaths = new Map<string, number>();
    for (const worker of this.workers)
      if (worker.exitedAt !== undefined) deaths.set(worker.id, worker.exitedAt);
    return checkExecutions(this.executionEvents(), deaths);
  }

  async stopAll(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    for (const { process } of this.alive()) process.kill(signal);
    await Promise.all(this.workers.map(({ process }) => process.exited));
  }

  /** Stops every worker and deletes the execution records. */
  async dispose(): Promise<void> {
    await this.stopAll();
    rmSync(this.executionLogs, { recursive: true, force: true });
  }
}
