import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, type ClientConfig } from 'pg';
import { DatabaseUnreachableError, isConnectionError } from './persistence.errors';

// Connection settings shared by the pool and the single connections, and the start-up wait for the
// database. Only `pg` here, not TypeORM: start-up waits for the database before loading the rest, so that
// a signal during that wait is acted on at once.

export const CONNECT_TIMEOUT_MS = 5_000;
/** TCP keepalive probes start after this much silence, so a dead peer is noticed without any query. */
export const KEEPALIVE_IDLE_MS = 10_000;
const FIRST_CONNECT_RETRY_MS = 500;
const MAX_CONNECT_RETRY_MS = 5_000;

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

/** How a connection URL reaches PostgreSQL, as seen from one connection made through it. */
export interface DatabaseRoute {
  /**
   * True when a connection pooler stands between us and the server (PgBouncer, a CloudNativePG Pooler):
   * consecutive transactions of one client connection may run in different server sessions, so nothing
   * that lives in a session (LISTEN, session settings, named prepared statements before PgBouncer 1.21)
   * can be relied on across them.
   */
  pooled: boolean;
  /** The statement_timeout a server session on this route starts with, in ms (0: none). */
  serverStatementTimeoutMs: number;
}

/**
 * Connects once through `url` and tells whether it reaches PostgreSQL directly. A server announces its
 * own process id at connect time (BackendKeyData), the one pg_backend_pid() returns; a pooler answers the
 * connect itself, with a made-up id of its own, before it has picked any server session.
 */
export async function probeDatabaseRoute(url: string): Promise<DatabaseRoute> {
  const client = new Client({
    ...standaloneConnectionOptions(url, 'job-service-start'),
    query_timeout: CONNECT_TIMEOUT_MS,
  });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number; statement_timeout_ms: string }>(
      `SELECT pg_backend_pid() AS pid,
              (SELECT setting FROM pg_settings WHERE name = 'statement_timeout') AS statement_timeout_ms`,
    );
    return {
      pooled: !reachesServerDirectly(client, rows[0].pid),
      serverStatementTimeoutMs: Number(rows[0].statement_timeout_ms),
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** True when `client` talks to the server session whose pg_backend_pid() is `backendPid` (see probeDatabaseRoute). */
export function reachesServerDirectly(client: Client, backendPid: number): boolean {
  return (client as unknown as { processID: number | null }).processID === backendPid;
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
