/** How times and sizes read on every page. */

export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const minutes = Math.floor(seconds / 60);
  const restSeconds = Math.floor(seconds % 60);
  if (minutes < 60) return restSeconds ? `${minutes} min ${restSeconds} s` : `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** "3 s ago" or "in 2 min", against the browser's clock. */
export function relative(iso: string, now = Date.now()): string {
  const delta = new Date(iso).getTime() - now;
  if (Math.abs(delta) < 1000) return 'just now';
  return delta < 0 ? `${duration(-delta)} ago` : `in ${duration(delta)}`;
}

export function timestamp(iso: string): string {
  const date = new Date(iso);
  const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`
  );
}

export function count(n: number): string {
  return n.toLocaleString('en-US');
}

export function shortId(jobId: string): string {
  return jobId.slice(-12);
}

export function json(value: unknown): string {
  return JSON.stringify(value, null, 2);
}
