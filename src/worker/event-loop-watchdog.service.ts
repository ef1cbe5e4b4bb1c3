import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { selfFenceMarginMs } from './live-attempt';

/** The value of the deadline cell that tells the watchdog thread to end. */
const STOP = -1n;

/**
 * Runs on its own thread, so it keeps running when the main event loop does not. It reads the earliest
 * lease deadline the main thread publishes (epoch ms; 0: no lease) when that deadline is `killBeforeMs`
 * away, and otherwise every `checkEveryMs` (less than a lease minus that margin: a lease taken just after a
 * look is looked at again before its time). A loop that turns stops such an attempt itself (self-fencing,
 * `fenceBeforeMs` before the deadline) and so publishes a later deadline, or none, before that moment.
 * The same deadline still there means the loop has not turned since the attempt was due to be stopped: the
 * process is killed before the lease runs out. The main thread never wakes this thread but to stop it.
 */
const WATCHDOG_THREAD = `
const { workerData } = require('node:worker_threads');
const { performance } = require('node:perf_hooks');
const { writeSync } = require('node:fs');
const cells = new BigInt64Array(workerData.shared);
const { killBeforeMs, fenceBeforeMs, checkEveryMs } = workerData;
for (;;) {
  const deadline = Atomics.load(cells, 0);
  if (deadline === ${STOP}n) break;
  const now = performance.timeOrigin + performance.now();
  const killAt = Number(deadline) - killBeforeMs;
  if (deadline !== 0n && now >= killAt) {
    const blockedFor = now - (Number(deadline) - fenceBeforeMs);
    writeSync(2, JSON.stringify({
      level: 60, time: new Date().toISOString(), service: 'job-service',
      msg: 'event loop blocked for ' + Math.round(blockedFor) + ' ms while holding leases: ending the process before they expire',
    }) + '\\n');
    process.kill(process.pid, 'SIGKILL');
    break;
  }
  Atomics.wait(cells, 0, deadline, deadline === 0n ? checkEveryMs : Math.min(checkEveryMs, killAt - now));
}
`;

/**
 * Keeps "never two places at once" true when a handler blocks the event loop (a CPU-bound or stuck
 * synchronous handler). A blocked loop cannot send heartbeats nor abort the handler, so its leases would
 * expire and the job would be rescued while the handler still runs here. Before that can happen, this
 * watchdog ends the whole process (SIGKILL); its attempts are then rescued and retried elsewhere.
 *
 * The main thread does nothing on a timer for it: it stores the earliest deadline of the leases it has not
 * fenced yet whenever that changes (claims, heartbeats, ended and fenced attempts), and the claim loop's
 * self-fencing, due `selfFenceMarginMs` before that deadline, is what proves the loop still turns.
 */
@Injectable()
export class EventLoopWatchdog implements OnApplicationShutdown {
  private readonly cells = new BigInt64Array(new SharedArrayBuffer(BigInt64Array.BYTES_PER_ELEMENT));
  private thread: Worker | undefined;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  /**
   * Publishes the earliest lease deadline this worker holds and has not fenced (performance.now() clock),
   * or undefined for none. Must be called before a newly claimed handler gets the thread, since it may
   * never give it back.
   */
  leasesChanged(earliestDeadline: number | undefined): void {
    // Once stopped, the cell keeps saying so: the thread may still be reading it.
    if (Atomics.load(this.cells, 0) === STOP) return;
    const absolute =
      earliestDeadline === undefined ? 0n : BigInt(Math.round(performance.timeOrigin + earliestDeadline));
    Atomics.store(this.cells, 0, absolute);
  }

  /** Starts the watchdog thread; must run before the first claim. */
  start(): void {
    if (this.thread) return;
    const margin = selfFenceMarginMs(this.config.leaseMs);
    this.thread = new Worker(WATCHDOG_THREAD, {
      eval: true,
      // Kill halfway into the self-fencing margin: the loop has then missed its fence by half the margin.
      workerData: {
        shared: this.cells.buffer,
        killBeforeMs: margin / 2,
        fenceBeforeMs: margin,
        checkEveryMs: (this.config.leaseMs - margin) / 2,
      },
    });
    this.thread.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    Atomics.store(this.cells, 0, STOP);
    Atomics.notify(this.cells, 0);
    await this.thread?.terminate();
  }
}
