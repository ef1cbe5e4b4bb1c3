import { responseBody } from '../../src/handlers/builtin/http-response';
import { retryAfterMs } from '../../src/outbound/retry-after';
import { PermanentJobError, RetryLaterError } from '../../src/handlers/job-handler';
import { isPermanentFailure, requestedRetryDelayMs, toJobError } from '../../src/worker/attempt-errors';

describe('Retry-After', () => {
  const now = Date.parse('2026-11-28T12:00:00Z');

  it('reads delay-seconds and HTTP dates; a past date means now', () => {
    expect(retryAfterMs('120', now)).toBe(120_000);
    expect(retryAfterMs(' 0 ', now)).toBe(0);
    expect(retryAfterMs('Sat, 28 Nov 2026 12:00:30 GMT', now)).toBe(30_000);
    expect(retryAfterMs('Sat, 28 Nov 2026 11:00:00 GMT', now)).toBe(0);
  });

  it('ignores what it cannot read', () => {
    for (const value of [undefined, '', '-5', '1.5', '2026-12-01', 'soon'])
      expect(retryAfterMs(value, now)).toBeUndefined();
  });
});

describe('a response body as a result', () => {
  it('parses complete JSON, keeps anything else as text', () => {
    expect(responseBody(Buffer.from('{"a":[1]}'), false, 'application/json; charset=utf-8')).toEqual({
      a: [1],
    });
    expect(responseBody(Buffer.from('{"a":1}'), false, 'application/problem+json')).toEqual({ a: 1 });
    expect(responseBody(Buffer.from('{"a":1}'), false, 'text/plain')).toBe('{"a":1}');
    expect(responseBody(Buffer.from('{"a":'), true, 'application/json')).toBe('{"a":');
    expect(responseBody(Buffer.from('not json'), false, 'application/json')).toBe('not json');
  });

  it('never ends in half a character, and replaces what PostgreSQL cannot store', () => {
    const euro = Buffer.from('ab€');
    expect(responseBody(euro.subarray(0, 4), true, 'text/plain')).toBe('ab');
    expect(responseBody(Buffer.from('a\u0000b'), false, 'text/plain')).toBe('a\ufffdb');
    // JSON holding a NUL cannot be stored as jsonb: it stays text, with the escape as written.
    expect(responseBody(Buffer.from('{"a":"\\u0000"}'), false, 'application/json')).toBe('{"a":"\\u0000"}');
    expect(responseBody(Buffer.from([0xe9]), false, 'text/plain; charset=iso-8859-1')).toBe('é');
  });
});

describe('what a handler error asks of the runner', () => {
  it('permanent: PermanentJobError, or any error with permanent: true', () => {
    expect(isPermanentFailure(new PermanentJobError('x'))).toBe(true);
    expect(isPermanentFailure(Object.assign(new Error('x'), { permanent: true }))).toBe(true);
    expect(isPermanentFailure(Object.assign(new Error('x'), { permanent: 'yes' }))).toBe(false);
    expect(isPermanentFailure(new RetryLaterError('x', 5))).toBe(false);
  });

  it('a delay: RetryLaterError, or any error with a non-negative retryAfterMs', () => {
    expect(requestedRetryDelayMs(new RetryLaterError('x', 1_500))).toBe(1_500);
    expect(requestedRetryDelayMs(Object.assign(new Error('x'), { retryAfterMs: 0 }))).toBe(0);
    expect(requestedRetryDelayMs(Object.assign(new Error('x'), { retryAfterMs: -1 }))).toBeUndefined();
    expect(requestedRetryDelayMs(new Error('x'))).toBeUndefined();
  });

  it('scalar details join code and message in the recorded error, which they cannot override', () => {
    const error = new PermanentJobError('gone', 'http_status', { status: 410, code: 'other' } as never);
    expect(toJobError(error)).toEqual({ code: 'http_status', message: 'gone', status: 410 });
    const odd = Object.assign(new Error('x'), {
      details: { nested: { a: 1 }, 'bad key!': 1, text: 'a\u0000' },
    });
    expect(toJobError(odd)).toEqual({ code: 'handler_error', message: 'x', text: 'a\ufffd' });
  });
});
