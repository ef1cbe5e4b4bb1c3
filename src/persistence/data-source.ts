import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, type ClientConfig } from 'pg';
import { DataSource } from 'typeorm';
import { JobAttemptEntity } from './job-attempt.entity';
import { JobEntity } from './job.entity';
import { DatabaseUnreachableError, isConnectionError } from './persistence.errors';

const CONNECT_TIMEOUT_MS = 5_000;
/**
 * How much longer than the server's statement_timeout the client waits for an answer. The server's own
 * timeout normally fires first (and keeps the connection); the client's only fires when the server or the
 * network has stopped answering altogether.
 */
const CLIENT_TIMEOUT_MARGIN_MS = 1_000;
/** TCP keepalive probes start after this much silence, so a dead peer is noticed without any query. */
const KEEPALIVE_IDLE_MS = 10_000;
const FIRST_CONNECT_RETRY_MS = 500;
const MAX_CONNECT_RETRY_MS = 5_000;

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
    entities: [JobEntity, JobAttemptEntity],
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

/** Options of a single connection of its own (LISTEN), with the same bounds as the pool's. */
export function standaloneConnectionOptions(url: string, applicationName: string): ClientConfig {
  return {
    connectionString: url,
    application_name: applicationName,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_IDLE_MS,
  };
}

export interface WaitForDatabaseOptions {
  /** How long to keep retrying a database that does not answer; 0 tries once. */
  retryForMs: number;
  /** Aborting ends the wait at once: the promise rejects with the signal's reason. */
  signal: AbortSignal;
  /** Told about each failed try before the wait that follows it. */
  onRetry: (error: unknown, retryInMs: number, attempt: number) => void;
}

/**
 * Resolves once the database answers. While it cannot be reached (refused, no answer, still starting) it
 * tries again after 0.5 s, doubling up to 5 s, for up to `retryForMs`, then throws DatabaseUnreachableError.
 * A server that answers with a refusal (wrong password, unknown database) is reported at once: waiting
 * would not change it.
 */
export async function waitForDatabase(url: string, options: WaitForDatabaseOptions): Promise<void> {
  const { retryForMs, signal, onRetry } = options;
  const giveUpAt = performance.now() + retryForMs;
  let delayMs = FIRST_CONNECT_RETRY_MS;
  for (let attempt = 1; ; attempt++) {
    signal.throwIfAborted();
    try {
      await answerOnce(url, signal);
      return;
    } catch (error) {
      signal.throwIfAborted();
      if (!isUnreachable(error)) throw error;
      const leftMs = giveUpAt - performance.now();
      if (leftMs <= 0) throw new DatabaseUnreachableError(error, retryForMs);
      const waitMs = Math.round(Math.min(delayMs, leftMs));
      onRetry(error, waitMs, attempt);
      await sleep(waitMs, undefined, { signal }).catch(() => signal.throwIfAborted());
      delayMs = Math.min(2 * delayMs, MAX_CONNECT_RETRY_MS);
    }
  }
}

async function answerOnce(url: string, signal: AbortSignal): Promise<void> {
  const client = new Client({
    ...standaloneConnectionOptions(url, 'job-service-start'),
    query_timeout: CONNECT_TIMEOUT_MS,
  });
  // An error after this function has given up on the client must not crash the process.
  client.on('error', () => undefined);
  const answered = client.connect().then(() => client.query('SELECT 1'));
  answered.catch(() => undefined);
  let onAbort = (): void => undefined;
  const aborted = new Promise<never>((_, reject) => (onAbort = () => reject(signal.reason)));
  aborted.catch(() => undefined);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    await Promise.race([answered, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
    // Not awaited: ending a connection the server never accepted waits for the connect timeout.
    void client.end().catch(() => undefined);
  }
}

/** True when the error means "no answer from a server", as opposed to an answer that refuses us. */
function isUnreachable(error: unknown): boolean {
  if (isConnectionError(error)) return true;
  const code = (error as { code?: unknown } | null)?.code;
  // A PostgreSQL answer carries a five-character SQLSTATE; the network's errors (refused, reset, timed
  // out) carry none or a system code.
  return !(typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code));
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
