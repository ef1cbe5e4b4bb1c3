import fc from 'fast-check';
import { decodeCursor, encodeCursor, hashRequest } from '../../src/jobs/jobs.service';
import { RequestValidationError } from '../../src/jobs/jobs.errors';
import type { CreateJobDto } from '../../src/jobs/dto/create-job.dto';
import { toJobError } from '../../src/worker/attempt-errors';
import { PermanentJobError } from '../../src/handlers/job-handler';

describe('cursors', () => {
  it('round-trip any job id', () => {
    fc.assert(fc.property(fc.uuid(), (id) => expect(decodeCursor(encodeCursor(id))).toBe(id)));
  });

  it('refuse anything the API did not hand out', () => {
    expect(() => decodeCursor('not-a-cursor')).toThrow(RequestValidationError);
    expect(() => decodeCursor(Buffer.from('DROP TABLE jobs').toString('base64url'))).toThrow(
      RequestValidationError,
    );
  });
});

describe('hashRequest', () => {
  it('ignores key order but not values', () => {
    const a = { job_type: 'echo', payload: { x: 1, y: [1, { b: 2, a: 1 }] }, priority: 1 } as CreateJobDto;
    const b = { priority: 1, payload: { y: [1, { a: 1, b: 2 }], x: 1 }, job_type: 'echo' } as CreateJobDto;
    const c = { job_type: 'echo', payload: { x: 2, y: [1, { b: 2, a: 1 }] }, priority: 1 } as CreateJobDto;
    expect(hashRequest(a)).toBe(hashRequest(b));
    expect(hashRequest(a)).not.toBe(hashRequest(c));
  });
});

describe('toJobError', () => {
  it('keeps a handler error code that looks like a code, and the message', () => {
    expect(toJobError(Object.assign(new Error('smtp down'), { code: 'smtp_unavailable' }))).toEqual({
      code: 'smtp_unavailable',
      message: 'smtp down',
    });
    expect(toJobError(new PermanentJobError('bad address'))).toEqual({
      code: 'permanent_failure',
      message: 'bad address',
    });
  });

  it('falls back to handler_error for odd codes and for thrown non-errors', () => {
    expect(toJobError(Object.assign(new Error('x'), { code: 42 }))).toEqual({
      code: 'handler_error',
      message: 'x',
    });
    expect(toJobError('plain string')).toEqual({ code: 'handler_error', message: 'plain string' });
    expect(toJobError(new Error('y'.repeat(20_000))).message).toHaveLength(10_000);
  });
});
