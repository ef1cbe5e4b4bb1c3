import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api';

/** How often the pages ask again: every call is to a cheap endpoint, but many tabs may be open. */
export const REFRESH_MS = 5_000;

export interface Polled<T> {
  data: T | undefined;
  error: ApiError | undefined;
  /** Ask again now (after an action), without waiting for the next tick. */
  refresh: () => void;
}

/**
 * Calls `load` now and again `interval` ms after each answer (a function of the answer, so that a page can
 * slow down once nothing changes), never two at once, and not while the tab is hidden: it asks again as
 * soon as the tab is shown. A change of `key` starts over with no data.
 */
export function usePolling<T>(
  load: () => Promise<T>,
  key: string,
  interval: number | ((data: T) => number) = REFRESH_MS,
): Polled<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const loadRef = useRef(load);
  loadRef.current = load;
  const intervalRef = useRef(interval);
  intervalRef.current = interval;
  const tick = useRef<() => void>(() => undefined);

  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let running = false;
    let askedAgain = false;
    let waitMs = typeof intervalRef.current === 'number' ? intervalRef.current : REFRESH_MS;
    setData(undefined);
    setError(undefined);
    const run = async (): Promise<void> => {
      if (stopped) return;
      if (running) {
        askedAgain = true;
        return;
      }
      clearTimeout(timer);
      if (document.hidden) return;
      running = true;
      try {
        const value = await loadRef.current();
        if (!stopped) {
          setData(value);
          setError(undefined);
          const next = intervalRef.current;
          waitMs = typeof next === 'number' ? next : next(value);
        }
      } catch (caught) {
        if (!stopped) setError(caught instanceof ApiError ? caught : new ApiError(0, String(caught), ''));
      } finally {
        running = false;
        if (!stopped) {
          if (askedAgain) {
            askedAgain = false;
            void run();
          } else {
            timer = setTimeout(() => void run(), waitMs);
          }
        }
      }
    };
    tick.current = () => void run();
    const visible = (): void => {
      if (!document.hidden) void run();
    };
    document.addEventListener('visibilitychange', visible);
    void run();
    return () => {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', visible);
    };
  }, [key]);

  const refresh = useCallback(() => tick.current(), []);
  return { data, error, refresh };
}
