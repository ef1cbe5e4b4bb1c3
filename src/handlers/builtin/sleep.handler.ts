import { Injectable } from '@nestjs/common';
import { IsInt, Max, Min } from 'class-validator';
import { JobHandler, type JobContext } from '../job-handler';

export class SleepPayload {
  /** How long to sleep, in milliseconds. */
  @IsInt()
  @Min(0)
  @Max(86_400_000)
  ms!: number;
}

/** Waits `ms` milliseconds, or until the attempt is aborted, whichever comes first. */
@Injectable()
@JobHandler({
  type: 'sleep',
  payload: SleepPayload,
  description: 'Waits `ms` milliseconds (stops early when aborted) and returns { slept_ms }.',
})
export class SleepHandler implements JobHandler<SleepPayload, { slept_ms: number }> {
  async run(payload: SleepPayload, context: JobContext): Promise<{ slept_ms: number }> {
    const started = Date.now();
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(context.signal.reason instanceof Error ? context.signal.reason : new Error('aborted'));
      };
      const timer = setTimeout(() => {
        context.signal.removeEventListener('abort', onAbort);
        resolve();
      }, payload.ms);
      if (context.signal.aborted) onAbort();
      else context.signal.addEventListener('abort', onAbort, { once: true });
    });
    return { slept_ms: Date.now() - started };
  }
}
