import { spawnService, waitForHttp, type ServiceProcess } from '../../support/service-process';

export interface FleetWorker {
  id: string;
  process: ServiceProcess;
}

/** Worker processes that a test can kill and replace, like the pods of a Deployment. */
export class WorkerFleet {
  readonly workers: FleetWorker[] = [];
  private started = 0;

  constructor(private readonly env: Record<string, string>) {}

  async start(count: number): Promise<void> {
    await Promise.all(Array.from({ length: count }, () => this.add()));
  }

  /** Starts one more worker with a fresh WORKER_ID and waits until it is ready. */
  async add(): Promise<FleetWorker> {
    const id = `chaos-worker-${++this.started}`;
    const worker = { id, process: await spawnService({ APP_ROLE: 'worker', WORKER_ID: id, ...this.env }) };
    this.workers.push(worker);
    await waitForHttp(worker.process, '/health/ready');
    return worker;
  }

  alive(): FleetWorker[] {
    return this.workers.filter(
      ({ process }) => process.child.exitCode === null && process.child.signalCode === null,
    );
  }

  async stopAll(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    for (const { process } of this.alive()) process.kill(signal);
    await Promise.all(this.workers.map(({ process }) => process.exited));
  }
}
