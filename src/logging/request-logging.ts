import type { FastifyInstance, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from './logger';

export const REQUEST_ID_HEADER = 'X-Request-Id';
/** The same header as Node hands it over: names in lower case. */
const REQUEST_ID_KEY = REQUEST_ID_HEADER.toLowerCase();
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

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by logRequests for every request, before anything else runs. */
    requestId: string;
    /** performance.now() when the request arrived. */
    arrivedAt: number;
    /** Whether its log line was written (once, whether the answer was sent or the client went). */
    logged: boolean;
  }
}

/** The request id of a request that went through logRequests. */
export function requestIdOf(request: FastifyRequest): string | undefined {
  return request.requestId || undefined;
}

/**
 * Gives every request an id (the client's `X-Request-Id` when it is sane, else a new UUID), echoes it in
 * the response header, and writes one log line per request once the response is sent or the client has
 * gone: method, URL, status, duration and the id. Registered first, so every answer carries the id,
 * including those refused before routing.
 */
export function logRequests(instance: FastifyInstance, logger: Logger): void {
  instance.decorateRequest('requestId', '');
  instance.decorateRequest('arrivedAt', 0);
  instance.decorateRequest('logged', false);
  instance.addHook('onRequest', (request, reply, done) => {
    const given = request.headers[REQUEST_ID_KEY];
    request.requestId = typeof given === 'string' && SANE_REQUEST_ID.test(given) ? given : randomUUID();
    request.arrivedAt = performance.now();
    reply.header(REQUEST_ID_HEADER, request.requestId);
    done();
  });
  const log = (request: FastifyRequest, status: number | null, aborted: boolean): void => {
    if (request.logged) return;
    request.logged = true;
    // Routine paths log at debug, the rest at info: with info off (as at LOG_LEVEL=warn) nothing logs.
    if (!logger.isLevelEnabled('info')) return;
    const path = request.url.split('?', 1)[0];
    const level = ROUTINE_PATHS.includes(path) ? 'debug' : 'info';
    if (!logger.isLevelEnabled(level)) return;
    const url =
      request.url.length > MAX_LOGGED_URL ? `${request.url.slice(0, MAX_LOGGED_URL)}…` : request.url;
    const durationMs = Math.round((performance.now() - request.arrivedAt) * 10) / 10;
    logger[level](
      {
        request_id: request.requestId,
        method: request.method,
        url,
        status,
        duration_ms: durationMs,
        ...(aborted ? { aborted } : {}),
      },
      `${request.method} ${url} ${aborted ? 'aborted' : status} ${durationMs} ms`,
    );
  };
  instance.addHook('onResponse', (request, reply, done) => {
    log(request, reply.statusCode, !reply.raw.writableFinished);
    done();
  });
  instance.addHook('onRequestAbort', (request, done) => {
    log(request, null, true);
    done();
  });
}
