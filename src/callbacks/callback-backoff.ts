import { retryDelayMs } from '../worker/retry-policy';

/**
 * Milliseconds before the attempt after attempt `attempt` (1-based): base * 2^(attempt - 1), at most `maxMs`.
 * The jobs' backoff without its jitter.
 */
export function callbackRetryDelayMs(attempt: number, baseMs: number, maxMs: number): number {
  return retryDelayMs(attempt, baseMs, maxMs, () => 1);
}
