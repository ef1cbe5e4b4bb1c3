/**
 * Wakes a loop that sleeps until there may be work. A wake that comes while the loop is busy is kept, so
 * the loop's next sleep returns at once instead of missing it.
 */
export class WakeSignal {
  private requested = false;
  private wakeUp: (() => void) | null = null;

  /** Asks the loop to look for work now. */
  wake(): void {
    this.requested = true;
    const wakeUp = this.wakeUp;
    this.wakeUp = null;
    wakeUp?.();
  }

  /** Called as the loop starts a turn: wakes until now are answered by that turn. */
  clear(): void {
    this.requested = false;
  }

  /** Resolves at the next wake, or at once if one came since the last clear(). */
  async sleep(): Promise<void> {
    if (this.requested) return;
    await new Promise<void>((resolve) => (this.wakeUp = resolve));
  }
}
