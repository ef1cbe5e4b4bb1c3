import { api, type FinishesInMinute } from './api';

const HOUR = 60;
/** A refresh asks again for the minute before the current one too: it was still counting at the last ask. */
const REFRESHED_MINUTES = 2;

let history: FinishesInMinute[] = [];
let fetchedAt = 0;

/**
 * The last hour of finishes per minute, kept in the tab: the hour is read once, then each refresh reads
 * only the last two minutes and merges them in, so a dashboard left open costs the server two minutes of
 * counter rows per refresh. After a pause longer than that window (a hidden tab) the hour is read again.
 */
export async function loadThroughput(): Promise<FinishesInMinute[]> {
  const stale = history.length === 0 || Date.now() - fetchedAt > (REFRESHED_MINUTES - 1) * 60_000;
  const { minutes } = await api.finishesPerMinute(stale ? HOUR : REFRESHED_MINUTES);
  fetchedAt = Date.now();
  const byMinute = new Map((stale ? [] : history).map((entry) => [entry.minute, entry]));
  for (const entry of minutes) byMinute.set(entry.minute, entry);
  history = [...byMinute.values()].sort((a, b) => (a.minute < b.minute ? -1 : 1)).slice(-HOUR);
  return history;
}
