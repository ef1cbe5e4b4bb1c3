/**
 * Exponential backoff with "equal jitter": the n-th failure waits between half and all of
 * min(cap, base * 2^(n-1)), so retries of many jobs that failed together spread out.
 */
export function retryDelayMs(
  failures: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, failures - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export type FailureDecision = 'retry' | 'fail';

/** After a failed attempt: retry while failures stay below max_attempts, unless the error is permanent. */
export function decideAfterFailure(
  failuresSoFar: number,
  maxAttempts: number,
  permanent: boolean,
): FailureDecision {
  return permanent || failuresSoFar >= maxAttempts ? 'fail' : 'retry';
}
