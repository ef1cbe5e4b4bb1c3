import fc from 'fast-check';

/** Generators of hostile input: every kind of Unicode, odd numbers, prototype keys, injection strings. */

/** A character of any plane, now and then a lone surrogate or a NUL. */
export const anyChar = fc.oneof(
  { weight: 30, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 2, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((unit) => String.fromCharCode(unit)) },
  { weight: 2, arbitrary: fc.constantFrom('\u0000', '\u2028', '\ufeff', '\uffff', '\u{10ffff}', '\u200d') },
);

export const INJECTIONS = [
  "' OR '1'='1",
  "'; DROP TABLE jobs; --",
  '") UNION SELECT * FROM pg_shadow --',
  '$1',
  '%s%s%n',
  '{{7*7}}',
  '${process.exit()}',
  '<script>alert(1)</script>',
  '../../../../etc/passwd',
  '\\u0000',
  'null',
  'undefined',
  'NaN',
  'Infinity',
  '__proto__',
  'constructor',
];

export const PROTOTYPE_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'valueOf',
];

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: anyChar, maxLength: 16 }) },
  { weight: 2, arbitrary: fc.constantFrom(...INJECTIONS, ...PROTOTYPE_KEYS) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', 'x'.repeat(300), 'é'.repeat(2_000)) },
);

/** A number as JSON text, including ones no double holds and ones JSON does not allow. */
export const numberToken: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.integer().map(String) },
  { weight: 3, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '-0',
      '1e400',
      '-1e400',
      '1e-400',
      '9007199254740993',
      '12345678901234567890',
      '0.1000000000000000055511151231257827',
      '1.7976931348623157e308',
      '5e-324',
      '2147483648',
      '-2147483649',
      '1.5',
      'NaN',
      'Infinity',
      '-Infinity',
      '0x10',
      '1_000',
    ),
  },
);

/** A JSON-ish text: valid JSON of every shape, with now and then a token JSON does not allow. */
export const jsonText: fc.Arbitrary<string> = fc.letrec<{ value: string; array: string; object: string }>(
  (tie) => ({
    value: fc.oneof(
      { depthSize: 'small', maxDepth: 5 },
      hostileString.map((s) => JSON.stringify(s)),
      numberToken,
      fc.constantFrom('true', 'false', 'null'),
      tie('object'),
      tie('array'),
    ),
    array: fc.array(tie('value'), { maxLength: 4 }).map((items) => `[${items.join(',')}]`),
    object: fc
      .array(fc.tuple(fc.oneof(hostileString, fc.constantFrom(...PROTOTYPE_KEYS)), tie('value')), {
        maxLength: 4,
      })
      .map((entries) => `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${value}`).join(',')}}`),
  }),
).value;

/** Nesting far past any limit. */
export const deepNesting: fc.Arbitrary<string> = fc
  .integer({ min: 20, max: 5_000 })
  .chain((depth) =>
    fc
      .constantFrom('[', '{"a":')
      .map((open) => `${open.repeat(depth)}1${(open === '[' ? ']' : '}').repeat(depth)}`),
  );

/** Bytes of any value, percent-encoded: what a path segment or query value can carry. */
export const percentEncoded: fc.Arbitrary<string> = fc.oneof(
  hostileString.map((s) => [...Buffer.from(s)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')),
  fc
    .uint8Array({ maxLength: 12 })
    .map((bytes) => [...bytes].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')),
  fc.stringMatching(/^[A-Za-z0-9._~-]{0,40}$/),
);

/** JSON reads only one zero: -0 comes back as 0. */
export function withoutNegativeZero(value: unknown): unknown {
  if (Object.is(value, -0)) return 0;
  if (Array.isArray(value)) return value.map(withoutNegativeZero);
  if (value !== null && typeof value === 'object') {
    const copy: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      Object.defineProperty(copy, key, {
        value: withoutNegativeZero(item),
        enumerable: true,
        writable: true,
      });
    }
    return copy;
  }
  return value;
}
