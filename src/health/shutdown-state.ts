import { Injectable } from '@nestjs/common';

/**
 * Whether this process has been told to stop. main.ts sets it the moment it acts on SIGTERM, before
 * anything is closed: readiness fails from then on, while an api still answers requests for
 * SHUTDOWN_DRAIN_DELAY_MS (load balancers and endpoint lists take a moment to stop sending).
 */
@Injectable()
export class ShutdownState {
  private stopping = false;

  begin(): void {
    this.stopping = true;
  }

  get isStopping(): boolean {
    return this.stopping;
  }
}
