import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { CONNECT_TIMEOUT_MS, KEEPALIVE_IDLE_MS } from './connection';
import { CallbackDeliveryEntity } from './callback-delivery.entity';
import { JobAttemptEntity } from './job-attempt.entity';
import { JobEntity } from './job.entity';

/**
 * How much longer than the server's statement_timeout the client waits for an answer. The server's own
 * timeout normally fires first (and keeps the connection); the client's only fires when the server or the
 * network has stopped answering altogether.
 */
const CLIENT_TIMEOUT_MARGIN_MS = 1_000;

export interface DataSourceOptions {
  url: string;
  poolSize: number;
  applicationName?: string;
  /** statement_timeout of every connection; none when left out (migrations may legitimately run long). */
  statementTimeoutMs?: number;
}

/**
 * Compiled code finds the compiled migrations beside it (dist/migrations); the TypeScript sources
 * (tests, ts-node) find them at the repository root.
 */
function migrationsGlob(): string {
  const fromSource = __filename.endsWith('.ts');
  const dir = fromSource ? join(__dirname, '..', '..', 'migrations') : join(__dirname, '..', 'migrations');
  return join(dir, fromSource ? '*.ts' : '*.js');
}

/** A DataSource for the jobs schema. `synchronize` is off everywhere: only migrations change the schema. */
export function createDataSource(options: DataSourceOptions): DataSource {
  return new DataSource({
    type: 'postgres',
    url: options.url,
    entities: [JobEntity, JobAttemptEntity, CallbackDeliveryEntity],
    migrations: [migrationsGlob()],
    migrationsTableName: 'schema_migrations',
    migrationsTransactionMode: 'each',
    synchronize: false,
    logging: false,
    applicationName: options.applicationName ?? 'job-service',
    extra: {
      max: options.poolSize,
      // Fail fast instead of queueing forever when the database is unreachable.
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_IDLE_MS,
      ...(options.statementTimeoutMs
        ? {
            statement_timeout: options.statementTimeoutMs,
            // A connection that never answers (a black-holed network) fails the query instead of hanging
            // it, and with it a drain or a shutdown; pg-pool then discards that connection.
            query_timeout: options.statementTimeoutMs + CLIENT_TIMEOUT_MARGIN_MS,
          }
        : {}),
    },
  });
}

/** Applies every pending migration and returns their names; concurrent callers wait for each other. */
export async function runMigrations(url: string): Promise<string[]> {
  const dataSource = createDataSource({ url, poolSize: 2, applicationName: 'job-service-migrate' });
  await dataSource.initialize();
  try {
    // Serialise concurrent migrators (several replicas or test files) on one advisory lock.
    const runner = dataSource.createQueryRunner();
    await runner.connect();
    try {
      await runner.query('SELECT pg_advisory_lock(hashtext($1))', ['job-service-migrations']);
      const applied = await dataSource.runMigrations({ transaction: 'each' });
      return applied.map((migration) => migration.name);
    } finally {
      await runner
        .query('SELECT pg_advisory_unlock(hashtext($1))', ['job-service-migrations'])
        .catch(() => undefined);
      await runner.release();
    }
  } finally {
    await dataSource.destroy();
  }
}
