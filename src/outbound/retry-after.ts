/**
 * The delay a Retry-After header asks for, in ms: delay-seconds or an HTTP date (a date in the past means
 * now). Undefined when absent or unreadable.
 */
export function retryAfterMs(header: string | undefined, nowMs = Date.now()): number | undefined {
  const value = header?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  // Only a date with a day or month name: Date.parse also reads forms like 2026-12-01, no HTTP date.
  const at = /[a-z]/i.test(value) ? Date.parse(value) : NaN;
  return Number.isFinite(at) ? Math.max(0, at - nowMs) : undefined;
}
