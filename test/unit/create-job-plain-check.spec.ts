import fc from 'fast-check';
import { validateDto } from '../../src/common/dto-validation';
import { CreateJobDto } from '../../src/jobs/dto/create-job.dto';

/** CreateJobDto judged by its decorators alone: class-validator for every object, no quick check. */
class CreateJobByDecorators extends CreateJobDto {}
Object.defineProperty(CreateJobByDecorators, 'acceptsPlain', { value: undefined });

const oddValues = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.double(),
  fc.string(),
  fc.array(fc.integer(), { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 }),
);
/** Mostly values a field takes, sometimes its edges, other numbers, or values of other types. */
const mostly = <T>(valid: fc.Arbitrary<T>, invalid: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> =>
  fc.oneof(
    { arbitrary: valid, weight: 6 },
    { arbitrary: invalid, weight: 1 },
    { arbitrary: oddValues, weight: 1 },
  );
const integerIn = (min: number, max: number): fc.Arbitrary<unknown> =>
  mostly(
    fc.oneof(fc.integer({ min, max }), fc.constantFrom(min, max, -0)),
    fc.oneof(fc.constantFrom(min - 1, max + 1, 0.5, Number.MAX_SAFE_INTEGER + 2, NaN), fc.double()),
  );

const fields = fc
  .record(
    {
      job_type: mostly(
        fc.oneof(
          fc.constantFrom('echo', 'email.send', 'x'.repeat(100)),
          fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,5}$/),
        ),
        fc.oneof(fc.constantFrom('x'.repeat(101), '', '-a', 'a b', 'é', 'a\n'), fc.string({ maxLength: 6 })),
      ),
      payload: mostly(
        fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue(), { maxKeys: 3 }),
        fc.constant([]),
      ),
      priority: integerIn(-1000, 1000),
      run_at: fc.constantFrom('2030-01-01T00:00:00Z', '2030-02-30', 'tomorrow'),
      max_attempts: integerIn(1, 1000),
      timeout_ms: integerIn(1, 86_400_000),
      callback_url: mostly(
        fc.oneof(
          fc.constantFrom('https://hooks.example.com/x', `https://e.example/${'a'.repeat(2029)}`),
          fc.string({ maxLength: 3 }),
        ),
        fc.oneof(
          fc.constant(`https://e.example/${'a'.repeat(2031)}`),
          fc.string({ minLength: 2040, maxLength: 2060, unit: 'grapheme' }),
        ),
      ),
    },
    { requiredKeys: ['job_type'] },
  )
  .map((job) => {
    // run_at, present, always goes to class-validator: mostly leave it out.
    if (typeof job.run_at === 'string' && job.run_at !== 'tomorrow') delete job.run_at;
    return job;
  });
const strayKeys = fc.record(
  { constructor: fc.string(), toString: fc.string(), extra: fc.integer() },
  { requiredKeys: [] },
);
const jobs = fc.oneof(
  { arbitrary: fields, weight: 4 },
  { arbitrary: fc.tuple(fields, strayKeys).map(([job, stray]) => ({ ...stray, ...job })), weight: 1 },
);

describe('CreateJobDto.acceptsPlain, the quick check of batch items', () => {
  it('accepts nothing that the decorators refuse', async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(jobs, async (job) => {
        if (!CreateJobDto.acceptsPlain(job)) return;
        accepted++;
        const { problems } = await validateDto(CreateJobByDecorators, job);
        expect(problems).toEqual([]);
      }),
      { numRuns: 3000 },
    );
    // Enough of the generated jobs pass the quick check for the property to say something.
    expect(accepted).toBeGreaterThan(100);
  });

  it('accepts the jobs clients usually send, so that they skip class-validator', () => {
    for (const job of [
      { job_type: 'noop' },
      { job_type: 'echo', payload: { n: 1 } },
      { job_type: 'email.send', payload: {}, priority: -5, max_attempts: 3, timeout_ms: 60_000 },
      { job_type: 'echo', callback_url: 'https://hooks.example.com/jobs/finished' },
    ]) {
      expect(CreateJobDto.acceptsPlain(job)).toBe(true);
    }
  });

  it('leaves every refusal to class-validator, whose problems a 400 lists', async () => {
    const { problems } = await validateDto(CreateJobDto, { job_type: 'echo', priority: 1.5, extra: 1 });
    expect(problems).toEqual([
      { field: 'extra', message: 'property extra should not exist' },
      { field: 'priority', message: 'priority must be an integer number' },
    ]);
  });
});
