import { performance } from 'node:perf_hooks';

/**
 * The grace period a stopping process gives the work it has under way: SHUTDOWN_GRACE_MS from the moment
 * the first part of it began to stop. Nest stops the parts one module after another; each part that waits
 * for its work (running attempts, callback deliveries) waits until this one deadline, so that their waits
 * do not add up past the exit deadline of main.ts.
 */
export class ShutdownGrace {
  private endsAt: number | undefined;

  constructor(private readonly graceMs: number) {}

  /** Starts the grace period, unless another part of the process already has. */
  begin(): void {
    this.endsAt ??= performance.now() + this.graceMs;
  }

  /** Milliseconds left of the grace period (starting it if it has not begun). */
  remainingMs(): number {
    this.begin();
    return Math.max(0, this.endsAt! - performance.now());
  }
}
