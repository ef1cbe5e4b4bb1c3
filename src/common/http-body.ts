import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { sendProblem, toProblem } from './problem-details.filter';

const JSON_TYPES = ['application/json', 'application/*+json'];
/** Deeper bodies are refused before validation walks them (recursively, on the call stack). */
export const MAX_JSON_DEPTH = 64;

/**
 * Why a parsed JSON body cannot be accepted, or null: nesting deeper than MAX_JSON_DEPTH, or a NUL
 * character in a string or key (PostgreSQL's text and jsonb cannot store U+0000). Iterative, so a
 * hostile body cannot overflow the stack here.
 */
export function unstorableJsonReason(body: unknown): string | null {
  const pending: { value: unknown; depth: number }[] = [{ value: body, depth: 0 }];
  while (pending.length > 0) {
    const { value, depth } = pending.pop()!;
    if (typeof value === 'string') {
      if (value.includes('\u0000')) return 'strings must not contain the NUL character (\\u0000)';
    } else if (value !== null && typeof value === 'object') {
      if (depth >= MAX_JSON_DEPTH) return `the body is nested deeper than ${MAX_JSON_DEPTH} levels`;
      for (const [key, item] of Object.entries(value)) {
        if (key.includes('\u0000')) return 'keys must not contain the NUL character (\\u0000)';
        pending.push({ value: item, depth: depth + 1 });
      }
    }
  }
  return null;
}

/**
 * Parses JSON bodies up to `limitBytes` and answers problem+json itself when it cannot: 415 for a body
 * that is not JSON, 413 for one over the limit, 400 for malformed JSON or JSON we could not store. Runs before routing, so these
 * requests never reach a controller and change nothing.
 */
export function jsonBodyParser(limitBytes: number): RequestHandler {
  const parseJson = express.json({ limit: limitBytes, type: JSON_TYPES, strict: true });
  return (request: Request, response: Response, next: NextFunction): void => {
    const hasBody =
      request.headers['transfer-encoding'] !== undefined ||
      Number(request.headers['content-length'] ?? 0) > 0;
    if (hasBody && !request.is(JSON_TYPES)) {
      sendProblem(request, response, {
        status: 415,
        code: 'unsupported_media_type',
        detail: 'Request bodies must be JSON (Content-Type: application/json)',
      });
      return;
    }
    parseJson(request, response, (error?: unknown) => {
      if (error) return sendProblem(request, response, toProblem(error));
      const reason = unstorableJsonReason(request.body);
      if (reason)
        return sendProblem(request, response, { status: 400, code: 'unsupported_json', detail: reason });
      next();
    });
  };
}
