/** Milliseconds before the attempt after attempt `attempt` (1-based): base * 2^(attempt - 1), at most `maxMs`. */
export function callbackRetryDelayMs(attempt: number, baseMs: number, maxMs: number): number {
  // 2^30 is past any cap; beyond it the exponent would only overflow.
  return Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 30));
}
