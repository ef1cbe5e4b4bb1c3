import 'reflect-metadata';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createApp } from './app.factory';
import { ConfigError, loadConfig, runsApi, runsWorker, type AppConfig } from './config/app-config';
import { createLogger, type Logger } from './logging/logger';
import { runMigrations } from './persistence/data-source';
import { EmbeddedDatabase, dataDirReachable } from './persistence/embedded-database';

/** Starts what APP_ROLE asks for: api, worker, all, or migrate (apply migrations and exit 0). */
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
  const logger = createLogger(config.logLevel, { role: config.role });

  let embedded: EmbeddedDatabase | undefined;
  if (!config.databaseUrl) {
    embedded = await startEmbedded(config, logger);
    config = { ...config, databaseUrl: embedded.url };
  }

  if (config.role === 'migrate') {
    const applied = await runMigrations(config.databaseUrl!);
    logger.info({ applied }, applied.length ? 'migrations applied' : 'schema already up to date');
    await embedded?.stop();
    return;
  }
  if (config.migrateOnStart) {
    const applied = await runMigrations(config.databaseUrl!);
    if (applied.length) logger.info({ applied }, 'migrations applied');
  }

  const app = await createApp(config, logger);
  await app.listen(config.port, '0.0.0.0');
  const base = `http://localhost:${config.port}`;
  logger.info(
    {
      role: config.role,
      port: config.port,
      worker_id: runsWorker(config.role) ? config.workerId : undefined,
    },
    runsApi(config.role)
      ? `job service ready: API ${base}/jobs, docs ${base}/docs`
      : `worker ready: health ${base}/health/ready`,
  );

  // Our own signal handling (not Nest's shutdown hooks, which re-raise the signal): drain, then exit 0.
  let closing = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutting down');
    app
      .close()
      .then(() => embedded?.stop())
      .then(
        () => {
          logger.info('stopped');
          process.exit(0);
        },
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

async function startEmbedded(config: AppConfig, logger: Logger): Promise<EmbeddedDatabase> {
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
