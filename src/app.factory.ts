import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import helmet from 'helmet';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppModule } from './app.module';
import { CallbackDeliveryService } from './callbacks/callback-delivery.service';
import { completeProblemExamples } from './common/api-responses';
import { parseJsonBodies } from './common/http-body';
import { PREFERENCE_APPLIED_HEADER } from './common/prefer-header';
import { ProblemDetailsFilter, sendProblem, toProblem } from './common/problem-details.filter';
import { NotReadyProblemResponse, ProblemResponse } from './common/problem.response';
import { loadDashboardFiles, serveDashboard } from './dashboard/serve-dashboard';
import { createValidationPipe } from './common/validation';
import { runsApi, runsWorker, type AppConfig } from './config/app-config';
import { ShutdownState } from './health/shutdown-state';
import { PinoNestLogger, type Logger } from './logging/logger';
import { logRequests, REQUEST_ID_HEADER } from './logging/request-logging';
import { DatabaseUnavailableError } from './persistence/persistence.errors';
import { SchemaVersion } from './persistence/schema-version';
import { ClaimLoopService } from './worker/claim-loop.service';
import { EventLoopWatchdog } from './worker/event-loop-watchdog.service';
import { RescuerService } from './worker/rescuer.service';
import { RetentionService } from './worker/retention.service';

/**
 * Longest path segment the router matches as a parameter (a job id, a job type). Longer ones reach the
 * controller and its validation like any other bad value, instead of a bare 404.
 */
const MAX_PARAM_LENGTH = 4_096;

const REQUEST_TIMEOUT_MS = 300_000;

/** Builds the application for `config.role`, exactly as main.ts serves it (the e2e tests use this too). */
export async function createApp(config: AppConfig, logger: Logger): Promise<INestApplication> {
  const adapter = new FastifyAdapter({
    bodyLimit: config.maxBodyBytes,
    // Node's own default, which Fastify turns off: a client gets 5 minutes to send its whole request.
    requestTimeout: REQUEST_TIMEOUT_MS,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: MAX_PARAM_LENGTH },
    // A URL the router cannot decode gets a problem like every other refusal.
    frameworkErrors: (error: Error, request: FastifyRequest, reply: FastifyReply) =>
      sendProblem(request, reply, toProblem(error)),
    // No Express-style middleware is registered: every cross-cutting step is a Fastify hook below.
    skipMiddie: true,
  });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRole(config, logger), adapter, {
    bodyParser: false,
    logger: new PinoNestLogger(logger),
    // Nest's default answer to a failing module is process.abort(): main.ts must close what was opened
    // and exit with its own code instead.
    abortOnError: false,
  });
  const instance = fastifyOf(app);
  // First, so that every answer carries the request id and the headers, including the problems the body
  // parser sends.
  logRequests(instance, logger);
  const securityHeaders = helmetHeaders();
  instance.addHook('onRequest', (_request, reply, done) => {
    reply.headers(securityHeaders);
    done();
  });
  // Once a stopping api drains, each answer closes its connection: a client's next request opens a new
  // one, which the load balancer sends to a process that is staying. Decided when the answer is sent, so
  // that it also holds for a request under way at SIGTERM (a long poll): its keep-alive connection, left
  // open, would hold the server's close until the exit deadline. The same hook sends a large answer as bytes.
  const shutdown = app.get(ShutdownState);
  instance.addHook('onSend', (_request, reply, payload, done) => {
    if (shutdown.isStopping) reply.header('Connection', 'close');
    done(null, encodedOnceWhenLarge(payload));
  });
  if (config.corsOrigins.length > 0) {
    app.enableCors({
      origin: config.corsOrigins,
      allowedHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key', 'Prefer', REQUEST_ID_HEADER],
      exposedHeaders: [
        'Location',
        'Retry-After',
        'Idempotent-Replayed',
        PREFERENCE_APPLIED_HEADER,
        REQUEST_ID_HEADER,
      ],
      maxAge: 600,
    });
  }
  // Static files, public like the HTML of Swagger UI: every call the dashboard makes carries the key.
  if (runsApi(config.role)) serveDashboard(instance, loadDashboardFiles());
  parseJsonBodies(instance, config.maxBodyBytes);
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(new ProblemDetailsFilter(logger));
  if (runsApi(config.role)) setUpSwagger(app);
  return app;
}

/** Above this many characters an answer's text is sent as bytes (see encodedOnceWhenLarge). */
const LARGE_ANSWER_CHARS = 16_384;

/**
 * A large answer (a batch of created jobs, a page of them) as UTF-8 bytes, encoded once. Sent as text,
 * Fastify first measured its byte length, which flattens the text JSON.stringify builds in pieces, and
 * the socket then encoded it. For the 424 KB answer to a batch of 1,000 jobs the api spent 21.1-22.2 ms
 * of CPU per request this way, against 22.6-24.9 ms (four interleaved runs each). Small answers stay
 * text: encoding them first saves nothing.
 */
function encodedOnceWhenLarge(payload: unknown): unknown {
  return typeof payload === 'string' && payload.length > LARGE_ANSWER_CHARS ? Buffer.from(payload) : payload;
}

/**
 * The headers helmet's defaults set, taken once: they are the same for every answer, so each request
 * copies a ready object instead of running the middleware.
 */
function helmetHeaders(): Record<string, string> {
  const headers: Record<string, string> = {};
  const response = {
    setHeader: (name: string, value: string | number) => void (headers[name.toLowerCase()] = String(value)),
    removeHeader: (name: string) => void delete headers[name.toLowerCase()],
  };
  helmet()({} as IncomingMessage, response as unknown as ServerResponse, () => undefined);
  return headers;
}

/** The application's Fastify instance, once createApp has built it (the tests read its routes). */
export function fastifyOf(app: INestApplication): FastifyInstance {
  return (app as NestFastifyApplication).getHttpAdapter().getInstance();
}

/**
 * Starts the worker, when the role runs one: the watchdog first (it must see the first claim), then
 * claiming with its heartbeats and self-fencing, then the rescue sweep, retention and the delivery of completion
 * callbacks. main.ts calls it only once the
 * process is fully up, after listen; nothing is claimed before, so a failed start-up leaves no job behind.
 */
export function startWorker(app: INestApplication, config: AppConfig): void {
  if (!runsWorker(config.role)) return;
  app.get(EventLoopWatchdog).start();
  app.get(ClaimLoopService).startClaiming();
  app.get(RescuerService).start();
  app.get(RetentionService).start();
  app.get(CallbackDeliveryService).start();
}

/** How often a worker waiting for its migrations looks again, and how many looks between two warnings. */
const SCHEMA_RECHECK_MS = 1_000;
const SCHEMA_WARNING_EVERY = 30;

/**
 * Resolves once the database has every migration this build ships (at once, normally). Until then it
 * looks again every second, telling `onMissing` what is missing at the first look and every 30 s; a
 * database that does not answer meanwhile is looked at again too. Rejects with the signal's reason once
 * `stopping` aborts.
 */
export async function waitForSchema(
  app: INestApplication,
  stopping: AbortSignal,
  onMissing: (missing: string[]) => void,
): Promise<void> {
  const schema = app.get(SchemaVersion);
  for (let look = 0; ; look++) {
    stopping.throwIfAborted();
    try {
      const { missing } = await schema.check();
      if (missing.length === 0) return;
      if (look % SCHEMA_WARNING_EVERY === 0) onMissing(missing);
    } catch (error) {
      if (!(error instanceof DatabaseUnavailableError)) throw error;
    }
    await sleep(SCHEMA_RECHECK_MS, undefined, { signal: stopping }).catch(() => stopping.throwIfAborted());
  }
}

/** Readiness fails from now on: main.ts calls it as soon as it acts on SIGTERM, before anything closes. */
export function markStopping(app: INestApplication): void {
  app.get(ShutdownState).begin();
}

function setUpSwagger(app: INestApplication): void {
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Job service')
      .setDescription(
        'Submit long-running jobs over HTTP; workers run them with leases, retries and timeouts. ' +
          'Errors are application/problem+json (RFC 9457).',
      )
      .setVersion('1')
      .setLicense('MIT', 'https://opensource.org/licenses/MIT')
      // Relative: the document describes the server that serves it, whatever its address.
      .addServer('/')
      // Opaque keys from API_KEYS, not JWTs: Swagger UI sends what is typed, as `Authorization: Bearer <key>`.
      .addSecurity('bearer', {
        type: 'http',
        scheme: 'bearer',
        description: 'A key from API_KEYS. Required when API_KEYS is set (always in production).',
      })
      .build(),
    { extraModels: [ProblemResponse, NotReadyProblemResponse] },
  );
  SwaggerModule.setup('docs', app, completeProblemExamples(document), { jsonDocumentUrl: 'docs-json' });
}
