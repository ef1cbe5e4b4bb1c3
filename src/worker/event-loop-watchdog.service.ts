import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { selfFenceMarginMs } from './live-attempt';

const TICK_MS = 25;

/**
 * Runs on its own thread, so it keeps running when the main event loop does not. It reads the two
 * numbers the main thread publishes (when it last ticked, and the earliest lease deadline it holds)
 * and kills the process outright if the loop has stalled while a lease is about to run out.
 */
const WATCHDOG_THREAD = `
const { workerData } = require('node:worker_threads');
const { performance } = require('node:perf_hooks');
const { writeSync } = require('node:fs');
const cells = new BigInt64Array(workerData.shared);
setInterval(() => {
  const now = performance.timeOrigin + performance.now();
  const stalledFor = now - Number(Atomics.load(cells, 0));
  const deadline = Number(Atomics.load(cells, 1));
  if (deadline > 0 && stalledFor > workerData.stallMs && now >= deadline - workerData.killBeforeMs) {
    writeSync(2, JSON.stringify({
      level: 60, time: new Date().toISOString(), service: 'job-service',
      msg: 'event loop blocked for ' + Math.round(stalledFor) + ' ms while holding leases: ending the process before they expire',
    }) + '\\n');
    process.kill(process.pid, 'SIGKILL');
  }
}, ${TICK_MS});
`;

/**
 * Keeps "never two places at once" true when a handler blocks the event loop (a CPU-bound or stuck
 * synchronous handler). A blocked loop cannot send heartbeats nor abort the handler, so its leases would
 * expire and the job would be rescued while the handler still runs here. Before that can happen, this
 * watchdog ends the whole process (SIGKILL); its attempts are then rescued and retried elsewhere.
 */
@Injectable()
export class EventLoopWatchdog implements OnApplicationShutdown {
  private readonly cells = new BigInt64Array(new SharedArrayBuffer(2 * BigInt64Array.BYTES_PER_ELEMENT));
  private thread: Worker | undefined;
  private ticker: NodeJS.Timeout | undefined;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  /**
   * Publishes the earliest lease deadline this worker holds (performance.now() clock), or undefined for
   * none. Must be called before a newly claimed handler gets the thread, since it may never give it back.
   */
  leasesChanged(earliestDeadline: number | undefined): void {
    const absolute =
      earliestDeadline === undefined ? 0n : BigInt(Math.round(performance.timeOrigin + earliestDeadline));
    Atomics.store(this.cells, 1, absolute);
  }

  /** Starts the watchdog thread; must run before the first claim. */
  start(): void {
    if (this.thread) return;
    this.tick();
    const margin = selfFenceMarginMs(this.config.leaseMs);
    this.thread = new Worker(WATCHDOG_THREAD, {
      eval: true,
      // Kill halfway into the self-fencing margin, once the loop has missed a few ticks.
      workerData: {
        shared: this.cells.buffer,
        stallMs: Math.max(4 * TICK_MS, margin / 4),
        killBeforeMs: margin / 2,
      },
    });
    this.thread.unref();
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    this.ticker.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.ticker);
    await this.thread?.terminate();
  }

  /** Proves the main thread is still turning. */
  private tick(): void {
    Atomics.store(this.cells, 0, BigInt(Math.round(performance.timeOrigin + performance.now())));
  }
}
