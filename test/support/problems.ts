import type { Response } from 'supertest';
import type { TestDatabase } from './test-db';

/** Assertions on refused requests: RFC 9457 problem+json, nothing leaked, nothing created. */

export type Json = Record<string, any>;

/** What must never reach a client: a stack frame or SQL text. */
export const LEAK = /at .*\.js|SELECT|INSERT|UPDATE jobs|\n\s+at /;

export async function countJobs(db: TestDatabase): Promise<number> {
  const { rows } = await db.pool.query<{ count: string }>('SELECT count(*) FROM jobs');
  return Number(rows[0].count);
}

/**
 * Sends a request that must be refused: checks the status, the RFC 9457 problem+json body (no stack, no
 * SQL) and that the jobs table has exactly as many rows afterwards as before. Returns the parsed body.
 */
export async function expectRefused(
  db: TestDatabase,
  send: () => PromiseLike<Response>,
  status: number,
  code?: string,
): Promise<Json> {
  const before = await countJobs(db);
  const response = await send();
  expect({ status: response.status, text: response.text }).toEqual({ status, text: expect.any(String) });
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  const problem = JSON.parse(response.text) as Json;
  expect(problem).toMatchObject({
    type: expect.any(String),
    title: expect.any(String),
    status,
    detail: expect.any(String),
    code: expect.any(String),
  });
  expect(problem.title.length).toBeGreaterThan(0);
  expect(problem.detail.length).toBeGreaterThan(0);
  if (code !== undefined) expect(problem.code).toBe(code);
  expect(response.text).not.toMatch(LEAK);
  expect(problem).not.toHaveProperty('stack');
  expect(await countJobs(db)).toBe(before);
  return problem;
}

/** A 400 validation problem: `errors` lists `{ field, message }`, one of them for `field`. */
export async function expectInvalid(
  db: TestDatabase,
  send: () => PromiseLike<Response>,
  field: string,
): Promise<Json> {
  const problem = await expectRefused(db, send, 400, 'validation_failed');
  expect(Array.isArray(problem.errors)).toBe(true);
  expect(problem.errors.length).toBeGreaterThan(0);
  for (const error of problem.errors) {
    expect(error).toEqual(
      expect.objectContaining({ field: expect.any(String), message: expect.any(String) }),
    );
    expect(error.message.length).toBeGreaterThan(0);
  }
  expect(problem.errors.map((error: Json) => error.field)).toContain(field);
  return problem;
}
