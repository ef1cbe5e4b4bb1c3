import fc from 'fast-check';
import { Histogram, Registry } from 'prom-client';
import { PerJobHistogram, TalliedCounter } from '../../src/metrics/per-job-metrics';

const BOUNDS = [0.001, 0.01, 0.1, 1, 10];
const JOB_TYPES = ['noop', 'email.send', 'a"quoted\\type'];
const OUTCOMES = ['succeeded', 'failed', 'timed_out'];

const observation = fc.record({
  value: fc.oneof(
    fc.constantFrom(0, ...BOUNDS),
    fc.double({ min: 0, max: 100, noNaN: true, noDefaultInfinity: true }),
  ),
  jobType: fc.constantFrom(...JOB_TYPES),
  outcome: fc.constantFrom(...OUTCOMES),
});

describe('PerJobHistogram', () => {
  it('exposes exactly what a prom-client Histogram exposes for the same observations', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(observation, { maxLength: 60 }), async (observations) => {
        const theirs = new Registry();
        const reference = new Histogram({
          name: 'attempt_seconds',
          help: 'help text',
          labelNames: ['job_type', 'outcome'],
          buckets: BOUNDS,
          registers: [theirs],
        });
        const ours = new Registry();
        const histogram = new PerJobHistogram(
          ours,
          'attempt_seconds',
          'help text',
          ['job_type', 'outcome'],
          BOUNDS,
        );
        for (const { value, jobType, outcome } of observations) {
          reference.observe({ job_type: jobType, outcome }, value);
          histogram.observe(value, jobType, outcome);
        }
        // Series appear in the order of their first observation in both; compare them as sets of lines.
        const lines = async (registry: Registry): Promise<string[]> =>
          (await registry.metrics()).split('\n').sort();
        expect(await lines(ours)).toEqual(await lines(theirs));
      }),
      { numRuns: 200 },
    );
  });

  it('exposes an unlabelled histogram as prom-client does, and forgets everything on reset', async () => {
    const theirs = new Registry();
    const reference = new Histogram({
      name: 'latency_seconds',
      help: 'h',
      buckets: BOUNDS,
      registers: [theirs],
    });
    const ours = new Registry();
    const histogram = new PerJobHistogram(ours, 'latency_seconds', 'h', [], BOUNDS);
    for (const value of [0, 0.0005, 0.001, 0.5, 3, 99]) {
      reference.observe(value);
      histogram.observe(value);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).toMatch(/^latency_seconds_count 6$/m);

    ours.resetMetrics();
    expect(await ours.metrics()).not.toMatch(/latency_seconds_count/);
  });
});

describe('TalliedCounter', () => {
  it('hands its counts to the counter when a scrape collects it, each increment once', async () => {
    const registry = new Registry();
    const tally = new TalliedCounter(registry, 'finished_total', 'h', ['job_type', 'state']);
    tally.add('noop', 'completed');
    tally.add('noop', 'completed');
    tally.add('email.send', 'failed');
    expect(await registry.metrics()).toMatch(/^finished_total\{job_type="noop",state="completed"\} 2$/m);
    expect(await registry.metrics()).toMatch(/^finished_total\{job_type="email.send",state="failed"\} 1$/m);

    tally.add('noop', 'completed');
    const text = await registry.metrics();
    expect(text).toMatch(/^finished_total\{job_type="noop",state="completed"\} 3$/m);
    expect(text).toMatch(/^finished_total\{job_type="email.send",state="failed"\} 1$/m);
  });
});
