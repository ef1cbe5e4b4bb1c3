// First, so that the signal handlers exist before anything else is loaded.
import { stopSignal } from './stop-signal';
import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError, loadConfig, runsApi, runsWorker, type AppConfig } from './config/app-config';
import { createLogger, type Logger } from './logging/logger';
import type { EmbeddedDatabase } from './persistence/embedded-database';
import { DatabaseUnreachableError } from './persistence/persistence.errors';

/**
 * How long the orderly close may run past SHUTDOWN_GRACE_MS (writing back released attempts, closing
 * connections) before the process exits anyway. With the default grace of 25 s that is before
 * Kubernetes' default 30 s.
 */
const EXIT_DEADLINE_AFTER_GRACE_MS = 4_000;

/** What start-up has opened so far: the close takes down exactly these. */
interface Opened {
  embedded?: EmbeddedDatabase;
  app?: INestApplication;
}

/**
 * Starts what APP_ROLE asks for: api, worker, all, or migrate (apply migrations and exit 0). Whatever
 * moment a SIGTERM or SIGINT arrives at, during start-up or after, the process closes what it has opened
 * (draining the worker and releasing its attempts) and exits 0, or exits 1 when that close has not
 * finished within SHUTDOWN_GRACE_MS + 4 s. A failed start-up closes the same way and exits 1.
 */
async function main(): Promise<void> {
  let config: AppConfig;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger(
    config.logLevel,
    { role: config.role },
    { format: config.logFormat, production: config.production },
  );
  if (config.authDisabled && runsApi(config.role)) {
    logger.warn('AUTH_DISABLED=true: the API serves every request without an API key');
  }

  // Our own signal handling (not Nest's shutdown hooks, which re-raise the signal): stop-signal.ts caught
  // the signal, perhaps while this process was still loading; from here on it is acted upon.
  const onStop = (): void => {
    logger.info({ signal: stopSignal.reason }, 'shutting down');
    armExitDeadline(config, logger, drainDelayMs(config));
  };
  if (stopSignal.aborted) onStop();
  else stopSignal.addEventListener('abort', onStop, { once: true });

  const opened: Opened = {};
  let failed = false;
  try {
    await run(config, logger, stopSignal, opened);
  } catch (error) {
    if (!(stopSignal.aborted && error === stopSignal.reason)) {
      failed = true;
      reportStartFailure(error, logger);
      armExitDeadline(config, logger, 0);
    }
  }
  try {
    await opened.app?.close();
  } catch (error) {
    failed = true;
    logger.error({ err: error }, 'shutdown failed');
  }
  try {
    await opened.embedded?.stop();
  } catch (error) {
    failed = true;
    logger.error({ err: error }, 'stopping the embedded PostgreSQL failed');
  }
  if (!failed) logger.info('stopped');
  process.exit(failed ? 1 : 0);
}

/**
 * Start-up, step by step. Each step is followed by a look at `stopping`, so that a signal stops it before
 * the next one; it resolves once the process has been told to stop (or, for migrate, when done).
 */
async function run(config: AppConfig, logger: Logger, stopping: AbortSignal, opened: Opened): Promise<void> {
  if (!config.databaseUrl) {
    opened.embedded = await startEmbedded(config, logger);
    config = { ...config, databaseUrl: opened.embedded.url };
  }
  stopping.throwIfAborted();
  const { waitForDatabase } = await import('./persistence/connection.js');
  await waitForDatabase(config.databaseUrl!, {
    retryForMs: config.dbConnectRetryMs,
    signal: stopping,
    onRetry: (error, retryInMs, attempt) =>
      logger.warn({ err: error, attempt, retry_in_ms: retryInMs }, 'the database does not answer; retrying'),
  });

  stopping.throwIfAborted();
  const { runMigrations } = await import('./persistence/data-source.js');
  if (config.role === 'migrate') {
    const applied = await runMigrations(config.databaseUrl!);
    logger.info({ applied }, applied.length ? 'migrations applied' : 'schema already up to date');
    return;
  }
  if (config.migrateOnStart) {
    const applied = await runMigrations(config.databaseUrl!);
    if (applied.length) logger.info({ applied }, 'migrations applied');
  }
  stopping.throwIfAborted();

  const { createApp, markStopping, startWorker, waitForSchema } = await import('./app.factory.js');
  stopping.throwIfAborted();
  const app = (opened.app = await createApp(config, logger));
  stopping.throwIfAborted();
  await app.listen(config.port, '0.0.0.0');
  stopping.throwIfAborted();
  if (runsWorker(config.role)) {
    // A worker of this version claims nothing before its migrations have run: its statements may need them.
    await waitForSchema(app, stopping, (missing) =>
      logger.warn(
        { missing },
        'the database lacks migrations of this version: waiting for APP_ROLE=migrate before claiming',
      ),
    );
  }
  // Only now, with the port bound and nothing left that can fail, does the worker claim anything.
  startWorker(app, config);
  const base = `http://localhost:${config.port}`;
  logger.info(
    {
      role: config.role,
      port: config.port,
      worker_id: runsWorker(config.role) ? config.workerId : undefined,
    },
    runsApi(config.role)
      ? `job service ready: API ${base}/jobs, docs ${base}/docs, dashboard ${base}/ui`
      : `worker ready: health ${base}/health/ready`,
  );
  if (!stopping.aborted) {
    await new Promise<void>((done) => stopping.addEventListener('abort', () => done(), { once: true }));
  }
  // Readiness fails from here on; an api keeps answering for the drain delay, so that requests routed to
  // it while load balancers and endpoint lists catch up are served instead of refused.
  markStopping(app);
  const delayMs = drainDelayMs(config);
  if (delayMs > 0) {
    logger.info({ drain_delay_ms: delayMs }, 'answering requests for SHUTDOWN_DRAIN_DELAY_MS before closing');
    await sleep(delayMs);
  }
}

/** The drain delay applies to processes that serve the API; a worker has no traffic to wait for. */
function drainDelayMs(config: AppConfig): number {
  return runsApi(config.role) ? config.shutdownDrainDelayMs : 0;
}

function reportStartFailure(error: unknown, logger: Logger): void {
  if (error instanceof DatabaseUnreachableError) {
    logger.fatal(
      { err: error.cause },
      `cannot start: the database (DATABASE_URL) did not answer within DB_CONNECT_RETRY_MS (${error.waitedMs} ms)`,
    );
  } else if (error instanceof Error && error.name === 'HandlerModuleError') {
    // A deployment mistake, not a crash: the message names the module and says what is wrong with it.
    // Known by name: main.ts loads the application's code only once it needs it.
    logger.fatal(`cannot start: ${error.message}`);
  } else {
    logger.fatal({ err: error }, 'start-up failed');
  }
}

let exitDeadline: NodeJS.Timeout | undefined;

/**
 * The last resort: an orderly close that hangs (e.g. a database that stopped answering) must not keep the
 * process. The close begins after `drainMs`, the deliberate pause of an api before it closes its listener.
 */
function armExitDeadline(config: AppConfig, logger: Logger, drainMs: number): void {
  if (exitDeadline) return;
  const deadlineMs = drainMs + config.shutdownGraceMs + EXIT_DEADLINE_AFTER_GRACE_MS;
  exitDeadline = setTimeout(() => {
    logger.error({ deadline_ms: deadlineMs }, 'shutdown did not finish in time; exiting now');
    process.exit(1);
  }, deadlineMs);
  exitDeadline.unref();
}

async function startEmbedded(config: AppConfig, logger: Logger): Promise<EmbeddedDatabase> {
  const { EmbeddedDatabase, dataDirReachable } = await import('./persistence/embedded-database.js');
  let dataDir = resolve(config.embeddedDataDir);
  if (!dataDirReachable(dataDir)) {
    // As root the server runs as `postgres`, which cannot enter folders such as /root.
    dataDir = join(tmpdir(), 'job-service', 'postgres');
    logger.warn(
      { data_dir: dataDir },
      'the embedded database folder is not reachable by the postgres user; using the temp folder',
    );
  }
  logger.info({ data_dir: dataDir }, 'no DATABASE_URL: starting the embedded PostgreSQL');
  const embedded = await EmbeddedDatabase.start({ dataDir });
  logger.info({ url: embedded.url }, 'embedded PostgreSQL is running');
  return embedded;
}

main().catch((error: unknown) => {
  process.stderr.write(`Fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
