import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { sendProblem, toProblem } from './problem-details.filter';

const JSON_TYPES = ['application/json', 'application/*+json'];

/**
 * Parses JSON bodies up to `limitBytes` and answers problem+json itself when it cannot: 415 for a body
 * that is not JSON, 413 for one over the limit, 400 for malformed JSON. Runs before routing, so these
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
      if (error) sendProblem(request, response, toProblem(error));
      else next();
    });
  };
}
