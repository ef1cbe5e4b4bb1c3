import { callbackRetryDelayMs } from '../../src/callbacks/callback-backoff';

describe('callbackRetryDelayMs', () => {
  it('doubles from the base after each attempt and stops at the cap', () => {
    expect([1, 2, 3, 4, 5].map((attempt) => callbackRetryDelayMs(attempt, 1_000, 10_000))).toEqual([
      1_000, 2_000, 4_000, 8_000, 10_000,
    ]);
  });

  it('stays at the cap for any number of attempts, without overflowing', () => {
    expect(callbackRetryDelayMs(1_000, 1_000, 600_000)).toBe(600_000);
    expect(Number.isFinite(callbackRetryDelayMs(10_000, 3_600_000, 86_400_000))).toBe(true);
  });
});
