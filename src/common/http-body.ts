import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { isUtf8 } from 'node:buffer';
import { RequestValidationError } from '../jobs/jobs.errors';
import { MALFORMED_JSON, sendProblem, toProblem, UNSUPPORTED_MEDIA_TYPE } from './problem-details.filter';
import { unstorableJsonProblems } from './storable-json';
import { toFieldError } from './validation';

const JSON_TYPES = ['application/json', 'application/*+json'];
/** JSON's own whitespace, then an object or an array: other JSON texts are no request body. */
const OBJECT_OR_ARRAY = /^[\t\n\r ]*[[{]/;

/** JSON is UTF-8 (RFC 8259); bytes that are not would otherwise be decoded into U+FFFD and stored so. */
function assertUtf8(_request: Request, _response: Response, body: Buffer, charset: string): void {
  if (charset !== 'utf-8' && charset !== 'utf8') {
    throw Object.assign(new Error('JSON must be UTF-8'), { status: 415, type: 'charset.unsupported' });
  }
  if (!isUtf8(body)) throw Object.assign(new Error('Not UTF-8'), { status: 400, type: 'encoding.invalid' });
}

/**
 * Parses JSON bodies up to `limitBytes` and answers problem+json itself when it cannot: 415 for a body
 * that is not JSON, 413 for one over the limit, 400 for malformed JSON and for JSON that the database
 * would not give back exactly as sent (see unstorableJsonProblems; that check needs the body's text, as
 * JSON.parse has already rounded its numbers). Runs before routing, so these requests never reach a
 * controller and change nothing.
 */
export function jsonBodyParser(limitBytes: number): RequestHandler {
  const readText = express.text({ type: JSON_TYPES, limit: limitBytes, verify: assertUtf8 });
  return (request: Request, response: Response, next: NextFunction): void => {
    const hasBody =
      request.headers['transfer-encoding'] !== undefined ||
      Number(request.headers['content-length'] ?? 0) > 0;
    if (hasBody && !request.is(JSON_TYPES)) {
      sendProblem(request, response, UNSUPPORTED_MEDIA_TYPE);
      return;
    }
    readText(request, response, (error?: unknown) => {
      if (error) return sendProblem(request, response, toProblem(error));
      const text: unknown = request.body;
      if (typeof text !== 'string') return next();
      if (text === '') {
        request.body = {};
        return next();
      }
      let body: unknown;
      try {
        if (!OBJECT_OR_ARRAY.test(text)) throw new SyntaxError('not an object or array');
        body = JSON.parse(text);
      } catch {
        return sendProblem(request, response, MALFORMED_JSON);
      }
      const problems = unstorableJsonProblems(text, body);
      if (problems.length > 0) {
        return sendProblem(
          request,
          response,
          toProblem(new RequestValidationError(problems.map(toFieldError))),
        );
      }
      request.body = body;
      next();
    });
  };
}
