import { join } from 'node:path';
import { Client, Pool, type PoolConfig } from 'pg';
import { DataSource } from 'typeorm';
import { CONNECT_TIMEOUT_MS, KEEPALIVE_IDLE_MS, standaloneConnectionOptions } from './connection';
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
  /**
   * The URL goes through a connection pooler. Then statement_timeout is not sent at connect time: a
   * transaction pooler refuses startup parameters it does not know (PgBouncer: "unsupported startup
   * parameter"), and one told to ignore them drops them, since its server sessions are shared; the
   * server's own setting (the role's) applies. The client-side bound stays.
   */
  pooled?: boolean;
}

/** The pg pool settings shared by the main pool and the lease pool. */
function poolSettings(options: DataSourceOptions): PoolConfig {
  const { statementTimeoutMs, pooled } = options;
  return {
    max: options.poolSize,
    // Fail fast instead of queueing forever when the database is unreachable.
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_IDLE_MS,
    ...(statementTimeoutMs
      ? {
          ...(pooled ? {} : { statement_timeout: statementTimeoutMs }),
          // A connection that never answers (a black-holed network) fails the query instead of hanging
          // it, and with it a drain or a shutdown; pg-pool then discards that connection.
          query_timeout: statementTimeoutMs + CLIENT_TIMEOUT_MARGIN_MS,
        }
      : {}),
  };
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
    extra: poolSettings(options),
  });
}

/**
 * A pool of one connection for lease renewals alone. Job writes (claims, completions, retries) can take
 * every connection of the main pool and queue behind each other; a heartbeat queued behind them would let
 * the leases of running jobs run out. pg connects lazily, so a process that never renews a lease (an api)
 * never opens it.
 */
export function createLeasePool(options: DataSourceOptions): Pool {
  const pool = new Pool({
    ...poolSettings({ ...options, poolSize: 1 }),
    connectionString: options.url,
    application_name: `${options.applicationName ?? 'job-service'}-leases`,
  });
  // An idle connection the server ends (a restart) emits an error: without a listener it would crash us.
  pool.on('error', () => undefined);
  return pool;
}

/**
 * Applies every pending migration and returns their names; concurrent callers wait for each other. The
 * lock that serialises them is transaction-scoped, held by a transaction of its own that stays open
 * while the migrations run on other connections: a session lock would not survive a transaction pooler
 * (its unlock could land in another server session, and the lock would stay with the first one for good).
 */
export async function runMigrations(url: string): Promise<string[]> {
  const lock = new Client(standaloneConnectionOptions(url, 'job-service-migrate-lock'));
  // Ending the connection (or losing it) ends the transaction, and with it the lock.
  lock.on('error', () => undefined);
  await lock.connect();
  try {
    await lock.query('BEGIN');
    await lock.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['job-service-migrations']);
    const dataSource = createDataSource({ url, poolSize: 2, applicationName: 'job-service-migrate' });
    await dataSource.initialize();
    try {
      const applied = await dataSource.runMigrations({ transaction: 'each' });
      return applied.map((migration) => migration.name);
    } finally {
      await dataSource.destroy();
    }
  } finally {
    await lock.query('COMMIT').catch(() => undefined);
    await lock.end().catch(() => undefined);
  }
}
