import { Injectable } from '@nestjs/common';
import { IsBoolean, IsInt, IsOptional, Max, Min } from 'class-validator';
import { JobHandler, type JobContext } from '../job-handler';

export class SleepPayload {
  /** How long to sleep, in milliseconds. */
  @IsInt()
  @Min(0)
  @Max(86_400_000)
  ms!: number;

  /**
   * Spin the CPU instead of waiting on a timer: blocks the worker's event loop for `ms`. For rehearsing
   * what a CPU-bound or stuck handler does to a worker.
   */
  @IsOptional()
  @IsBoolean()
  busy?: boolean;

  /** Keep sleeping when the attempt is aborted, like a handler that ignores its AbortSignal. */
  @IsOptional()
  @IsBoolean()
  ignore_abort?: boolean;
}

/** Waits `ms` milliseconds, or until the attempt is aborted, whichever comes first. */
@Injectable()
@JobHandler({
  type: 'sleep',
  payload: SleepPayload,
  description:
    'Waits `ms` milliseconds and returns { slept_ms }; stops early when aborted. `busy: true` blocks the event ' +
    'loop instead, `ignore_abort: true` ignores the abort signal (for rehearsing misbehaving handlers).',
})
export class SleepHandler implements JobHandler<SleepPayload, { slept_ms: number }> {
  async run(payload: SleepPayload, context: JobContext): Promise<{ slept_ms: number }> {
    const started = Date.now();
    if (payload.busy) {
      while (Date.now() - started < payload.ms) {
        // Deliberately synchronous: nothing else on this thread runs meanwhile.
      }
      return { slept_ms: Date.now() - started };
    }
    const nap = (ms: number): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          clearTimeout(timer);
          reject(context.signal.reason instanceof Error ? context.signal.reason : new Error('aborted'));
        };
        const timer = setTimeout(() => {
          context.signal.removeEventListener('abort', onAbort);
          resolve();
        }, ms);
        if (payload.ignore_abort) return;
        if (context.signal.aborted) onAbort();
        else context.signal.addEventListener('abort', onAbort, { once: true });
      });
    // A timer counts from the event loop's cached clock and can fire up to a millisecond early.
    for (let left = payload.ms; left > 0; left = started + payload.ms - Date.now()) await nap(left);
    return { slept_ms: Date.now() - started };
  }
}
