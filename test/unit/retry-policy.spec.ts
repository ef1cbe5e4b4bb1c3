import fc from 'fast-check';
import { decideAfterFailure, retryDelayMs } from '../../src/worker/retry-policy';

describe('retryDelayMs', () => {
  it('doubles the ceiling with each failure and keeps the delay between half and all of it', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 60_000 }),
        fc.integer({ min: 1, max: 3_600_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (failures, baseMs, extraMs, random) => {
          const maxMs = baseMs + extraMs;
          const ceiling = Math.min(maxMs, baseMs * 2 ** (failures - 1));
          const delay = retryDelayMs(failures, baseMs, maxMs, () => random);
          expect(delay).toBeGreaterThanOrEqual(Math.floor(ceiling / 2));
          expect(delay).toBeLessThanOrEqual(Math.ceil(ceiling));
        },
      ),
    );
  });

  it('follows base * 2^(n-1) up to the cap', () => {
    const top = (failures: number): number => retryDelayMs(failures, 1_000, 10_000, () => 1);
    expect([1, 2, 3, 4, 5, 6].map(top)).toEqual([1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
    expect(retryDelayMs(3, 1_000, 10_000, () => 0)).toBe(2_000);
  });
});

describe('decideAfterFailure', () => {
  it('retries while failures stay below max_attempts', () => {
    expect(decideAfterFailure(1, 3, false)).toBe('retry');
    expect(decideAfterFailure(2, 3, false)).toBe('retry');
    expect(decideAfterFailure(3, 3, false)).toBe('fail');
  });

  it('fails at once on a permanent error', () => {
    expect(decideAfterFailure(1, 3, true)).toBe('fail');
  });
});
