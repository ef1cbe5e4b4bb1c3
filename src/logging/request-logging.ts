import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from './logger';

export const REQUEST_ID_HEADER = 'X-Request-Id';
/**
 * A request id taken from the client as is: up to 128 characters of letters, digits and `._:+/=-`, enough
 * for UUIDs, ULIDs, trace ids and base64. Anything else (control characters that could forge log lines,
 * a megabyte of text) is replaced by an id of our own.
 */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:+/=-]{1,128}$/;
/** Longer URLs are cut in the log line: a query string is the client's to make as long as it likes. */
const MAX_LOGGED_URL = 1_000;
/** Probes and scrapes arrive every few seconds from machines: logged at debug, not info. */
const ROUTINE_PATHS = ['/health/live', '/health/ready', '/metrics'];

/** The request id of a request that went through requestLogging. */
export function requestIdOf(request: Request): string | undefined {
  return (request.res?.locals as { requestId?: string } | undefined)?.requestId;
}

/**
 * Gives every request an id (the client's `X-Request-Id` when it is sane, else a new UUID), echoes it in
 * the response header, and writes one log line per request once the response is sent or the client has
 * gone: method, URL, status, duration and the id. Registered first, so every answer carries the id,
 * including those refused before routing.
 */
export function requestLogging(logger: Logger): RequestHandler {
  return (request: Request, response: Response, next: NextFunction): void => {
    const given = request.get(REQUEST_ID_HEADER);
    const requestId = given !== undefined && SANE_REQUEST_ID.test(given) ? given : randomUUID();
    response.locals.requestId = requestId;
    response.setHeader(REQUEST_ID_HEADER, requestId);
    const startedAt = performance.now();
    let logged = false;
    const log = (): void => {
      if (logged) return;
      logged = true;
      const level = ROUTINE_PATHS.includes(request.path) ? 'debug' : 'info';
      if (!logger.isLevelEnabled(level)) return;
      const url =
        request.originalUrl.length > MAX_LOGGED_URL
          ? `${request.originalUrl.slice(0, MAX_LOGGED_URL)}…`
          : request.originalUrl;
      const durationMs = Math.round((performance.now() - startedAt) * 10) / 10;
      const aborted = !response.writableFinished;
      logger[level](
        {
          request_id: requestId,
          method: request.method,
          url,
          status: response.statusCode,
          duration_ms: durationMs,
          ...(aborted ? { aborted } : {}),
        },
        `${request.method} ${url} ${aborted ? 'aborted' : response.statusCode} ${durationMs} ms`,
      );
    };
    response.once('finish', log);
    response.once('close', log);
    next();
  };
}
