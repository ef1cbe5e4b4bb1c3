import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { parseAllowEntry } from '../outbound/target-allowlist';

export const APP_ROLES = ['api', 'worker', 'all', 'migrate'] as const;
export type AppRole = (typeof APP_ROLES)[number];

export const API_SCOPES = ['read', 'write', 'admin'] as const;
/** read: GET endpoints; write: read + creating jobs; admin: write + cancel, retry, pause and resume. */
export type ApiScope = (typeof API_SCOPES)[number];

/** One entry of API_KEYS. The key itself is a secret: never log it or put it in a message. */
export interface ApiKey {
  key: string;
  scope: ApiScope;
}
const DAY_MS = 86_400_000;
/** 128 bits of hex or base64 at least: a short HMAC key can be guessed from signed requests offline. */
const MIN_SIGNING_SECRET_LENGTH = 32;
/** Ten years: a longer retention is a typo, not a policy (0 keeps jobs forever). */
const MAX_RETENTION_MS = 3_650 * DAY_MS;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** The validated configuration of one process. Built once at boot by `loadConfig`; nothing else reads the environment. */
export interface AppConfig {
  production: boolean;
  /** Undefined outside production means: start the embedded PostgreSQL. */
  databaseUrl: string | undefined;
  /**
   * A direct connection for LISTEN, when DATABASE_URL goes through a transaction pooler (where LISTEN
   * cannot work). Undefined: LISTEN on DATABASE_URL if it reaches PostgreSQL directly, else poll.
   */
  databaseListenUrl: string | undefined;
  role: AppRole;
  port: number;
  dbPoolSize: number;
  /**
   * Run the hot-path statements as named prepared statements (parsed once per connection). Off for a
   * transaction pooler that does not keep them per client (PgBouncer before 1.21).
   */
  dbPreparedStatements: boolean;
  /** Server-side statement_timeout of every pool connection; the client gives up a little later. */
  dbStatementTimeoutMs: number;
  /** How long start-up keeps retrying a database that does not answer (0: fail at once). */
  dbConnectRetryMs: number;
  /** Apply pending migrations when the process starts (default: on outside production). */
  migrateOnStart: boolean;
  workerId: string;
  workerConcurrency: number;
  workerPollIntervalMs: number;
  leaseMs: number;
  sweepIntervalMs: number;
  shutdownGraceMs: number;
  /**
   * How long a process that serves the API keeps accepting and answering requests after SIGTERM, with
   * readiness failing, before it closes its listener: load balancers take a moment to stop sending.
   */
  shutdownDrainDelayMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  defaultMaxAttempts: number;
  defaultTimeoutMs: number;
  maxBodyBytes: number;
  apiKeys: ApiKey[];
  /** Serve every endpoint without a key even in production (AUTH_DISABLED=true, logged as a warning). */
  authDisabled: boolean;
  /** /metrics answers without a key (METRICS_PUBLIC=true). */
  metricsPublic: boolean;
  /** Origins allowed to call the API from a browser; empty: no CORS headers at all. */
  corsOrigins: string[];
  /** Requests per minute per key (per client address without one); undefined: no limit. */
  rateLimitPerMinute: number | undefined;
  /** How long terminal jobs are kept after they finished, per state; 0 keeps them forever. */
  retentionCompletedMs: number;
  retentionFailedMs: number;
  retentionCancelledMs: number;
  /** How often a worker looks for jobs past retention (one worker at a time across the fleet). */
  retentionSweepIntervalMs: number;
  logLevel: LogLevel;
  /** auto: human-readable on a terminal outside production, JSON otherwise. */
  logFormat: LogFormat;
  embeddedDataDir: string;
  /** Hosts, IPs and CIDRs outbound requests may reach (HTTP_TARGET_ALLOW); empty: none. */
  httpTargetAllow: string[];
  /** Signs every outbound request when set. A secret: never log it. */
  httpTargetSigningSecret: string | undefined;
  httpTargetFollowRedirects: boolean;
  /** How much of a response body is read; the rest is never received. */
  httpTargetMaxResponseBytes: number;
  /** How long one completion-callback request may take; its lease is twice this. */
  callbackTimeoutMs: number;
  /** Delivery attempts of a completion callback before it is given up (state `failed`). */
  callbackMaxAttempts: number;
  /** Backoff between callback attempts: base * 2^(attempt - 1), capped at the max. */
  callbackRetryBaseMs: number;
  callbackRetryMaxMs: number;
  /** Paths or package names of handler modules, loaded at boot (HANDLER_MODULES). */
  handlerModules: string[];
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

type Env = Record<string, string | undefined>;

/** Parses and validates the environment; throws one ConfigError naming every invalid variable. */
export function loadConfig(env: Env = process.env): AppConfig {
  const problems: string[] = [];
  const reader = new EnvReader(env, problems);

  const production = env.NODE_ENV === 'production';
  const databaseUrl = reader.databaseUrl('DATABASE_URL');
  if (production && databaseUrl === undefined) {
    problems.push(
      'DATABASE_URL is required when NODE_ENV=production (the embedded database is for development only)',
    );
  }
  const databaseListenUrl = reader.databaseUrl('DATABASE_LISTEN_URL');
  if (databaseListenUrl !== undefined && databaseUrl === undefined) {
    problems.push(
      'DATABASE_LISTEN_URL needs DATABASE_URL: it is the direct connection beside a pooled DATABASE_URL',
    );
  }
  const leaseMs = reader.integer('LEASE_MS', 30_000, 1_000, 3_600_000);
  const retryBaseMs = reader.integer('RETRY_BASE_MS', 1_000, 1, 86_400_000);
  const retryMaxMs = reader.integer('RETRY_MAX_MS', 3_600_000, 1, 604_800_000);
  if (retryMaxMs < retryBaseMs)
    problems.push(`RETRY_MAX_MS must be >= RETRY_BASE_MS (got ${retryMaxMs} < ${retryBaseMs})`);
  const callbackRetryBaseMs = reader.integer('CALLBACK_RETRY_BASE_MS', 1_000, 1, 3_600_000);
  const callbackRetryMaxMs = reader.integer('CALLBACK_RETRY_MAX_MS', 600_000, 1, 86_400_000);
  if (callbackRetryMaxMs < callbackRetryBaseMs) {
    problems.push(
      `CALLBACK_RETRY_MAX_MS must be >= CALLBACK_RETRY_BASE_MS (got ${callbackRetryMaxMs} < ${callbackRetryBaseMs})`,
    );
  }

  const config: AppConfig = {
    production,
    databaseUrl,
    databaseListenUrl,
    role: reader.oneOf('APP_ROLE', APP_ROLES, 'all'),
    port: reader.integer('PORT', 3000, 0, 65_535),
    dbPoolSize: reader.integer('DB_POOL_SIZE', 10, 2, 1_000),
    dbPreparedStatements: reader.boolean('DB_PREPARED_STATEMENTS', true),
    dbStatementTimeoutMs: reader.integer('DB_STATEMENT_TIMEOUT_MS', 30_000, 100, 3_600_000),
    dbConnectRetryMs: reader.integer('DB_CONNECT_RETRY_MS', 60_000, 0, 3_600_000),
    migrateOnStart: reader.boolean('MIGRATE_ON_START', !production),
    workerId: env.WORKER_ID?.trim() || `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    workerConcurrency: reader.integer('WORKER_CONCURRENCY', 10, 1, 10_000),
    workerPollIntervalMs: reader.integer('WORKER_POLL_INTERVAL_MS', 1_000, 10, 600_000),
    leaseMs,
    sweepIntervalMs: reader.integer('SWEEP_INTERVAL_MS', 5_000, 100, 3_600_000),
    shutdownGraceMs: reader.integer('SHUTDOWN_GRACE_MS', 25_000, 0, 3_600_000),
    shutdownDrainDelayMs: reader.integer('SHUTDOWN_DRAIN_DELAY_MS', production ? 5_000 : 0, 0, 300_000),
    retryBaseMs,
    retryMaxMs,
    defaultMaxAttempts: reader.integer('DEFAULT_MAX_ATTEMPTS', 3, 1, 1_000),
    defaultTimeoutMs: reader.integer('DEFAULT_TIMEOUT_MS', 300_000, 1, 86_400_000),
    maxBodyBytes: reader.integer('MAX_BODY_BYTES', 1_048_576, 1_024, 104_857_600),
    apiKeys: reader.apiKeys('API_KEYS'),
    authDisabled: reader.boolean('AUTH_DISABLED', false),
    metricsPublic: reader.boolean('METRICS_PUBLIC', false),
    corsOrigins: reader.origins('CORS_ORIGINS'),
    rateLimitPerMinute: reader.optionalInteger('RATE_LIMIT_PER_MINUTE', 1, 1_000_000),
    retentionCompletedMs: reader.integer('RETENTION_COMPLETED_MS', 7 * DAY_MS, 0, MAX_RETENTION_MS),
    retentionFailedMs: reader.integer('RETENTION_FAILED_MS', 30 * DAY_MS, 0, MAX_RETENTION_MS),
    retentionCancelledMs: reader.integer('RETENTION_CANCELLED_MS', 7 * DAY_MS, 0, MAX_RETENTION_MS),
    retentionSweepIntervalMs: reader.integer('RETENTION_SWEEP_INTERVAL_MS', 60_000, 100, 86_400_000),
    logLevel: reader.oneOf('LOG_LEVEL', LOG_LEVELS, 'info'),
    logFormat: reader.oneOf('LOG_FORMAT', LOG_FORMATS, 'auto'),
    embeddedDataDir: env.EMBEDDED_PG_DIR?.trim() || '.data/postgres',
    httpTargetAllow: reader.targetAllowlist('HTTP_TARGET_ALLOW'),
    httpTargetSigningSecret: reader.secret('HTTP_TARGET_SIGNING_SECRET', MIN_SIGNING_SECRET_LENGTH),
    httpTargetFollowRedirects: reader.boolean('HTTP_TARGET_FOLLOW_REDIRECTS', false),
    httpTargetMaxResponseBytes: reader.integer('HTTP_TARGET_MAX_RESPONSE_BYTES', 65_536, 1, 10_485_760),
    callbackTimeoutMs: reader.integer('CALLBACK_TIMEOUT_MS', 10_000, 100, 600_000),
    callbackMaxAttempts: reader.integer('CALLBACK_MAX_ATTEMPTS', 15, 1, 1_000),
    callbackRetryBaseMs,
    callbackRetryMaxMs,
    handlerModules: reader.list('HANDLER_MODULES'),
  };
  // An api that answers everyone is never what a production deployment meant by leaving API_KEYS out.
  if (production && runsApi(config.role) && config.apiKeys.length === 0 && !config.authDisabled) {
    problems.push(
      'API_KEYS is required when NODE_ENV=production (comma-separated key or key:scope entries); ' +
        'set AUTH_DISABLED=true to serve the API without keys on purpose',
    );
  }
  if (config.authDisabled && config.apiKeys.length > 0) {
    problems.push('AUTH_DISABLED=true and API_KEYS contradict each other: set one of them');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

class EnvReader {
  constructor(
    private readonly env: Env,
    private readonly problems: string[],
  ) {}

  private raw(name: string): string | undefined {
    const value = this.env[name]?.trim();
    return value === '' ? undefined : value;
  }

  integer(name: string, fallback: number, min: number, max: number): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    const parsed = /^-?\d+$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      this.problems.push(`${name} must be a whole number from ${min} to ${max} (got "${value}")`);
      return fallback;
    }
    return parsed;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(value)) {
      this.problems.push(`${name} must be one of ${allowed.join(', ')} (got "${value}")`);
      return fallback;
    }
    return value as T;
  }

  boolean(name: string, fallback: boolean): boolean {
    const value = this.raw(name)?.toLowerCase();
    if (value === undefined) return fallback;
    if (['true', '1', 'yes'].includes(value)) return true;
    if (['false', '0', 'no'].includes(value)) return false;
    this.problems.push(`${name} must be true or false (got "${value}")`);
    return fallback;
  }

  list(name: string): string[] {
    const value = this.raw(name);
    if (value === undefined) return [];
    return value
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item.length > 0);
  }

  optionalInteger(name: string, min: number, max: number): number | undefined {
    if (this.raw(name) === undefined) return undefined;
    return this.integer(name, min, min, max);
  }

  /**
   * `key` (scope admin) or `key:scope`. Messages name entries by position only: a key must not reach a log.
   * A key may itself hold colons; only a known scope after the last one is read as the scope.
   */
  apiKeys(name: string): ApiKey[] {
    const keys: ApiKey[] = [];
    for (const [index, entry] of this.list(name).entries()) {
      const colon = entry.lastIndexOf(':');
      const suffix = colon >= 0 ? entry.slice(colon + 1).trim() : '';
      const scoped = (API_SCOPES as readonly string[]).includes(suffix);
      const key = scoped ? entry.slice(0, colon).trim() : entry;
      if (colon >= 0 && !scoped) {
        this.problems.push(
          `${name} entry ${index + 1} must be key or key:scope with scope one of ${API_SCOPES.join(', ')}`,
        );
      } else if (key.length === 0 || /\s/.test(key)) {
        this.problems.push(`${name} entry ${index + 1} has an empty key or one with whitespace`);
      } else {
        keys.push({ key, scope: scoped ? (suffix as ApiScope) : 'admin' });
      }
    }
    return keys;
  }

  /** Comma-separated origins such as https://ops.example.com; each must be scheme://host[:port]. */
  origins(name: string): string[] {
    const origins = this.list(name);
    for (const origin of origins) {
      let valid = false;
      try {
        const url = new URL(origin);
        valid = (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === origin;
      } catch {
        valid = false;
      }
      if (!valid) {
        this.problems.push(`${name} must list origins such as https://ops.example.com (got "${origin}")`);
      }
    }
    return origins;
  }

  /** Comma-separated hosts, `*.domain`, `*`, IP addresses and CIDRs. */
  targetAllowlist(name: string): string[] {
    const entries = this.list(name);
    for (const entry of entries) {
      const parsed = parseAllowEntry(entry);
      if (typeof parsed === 'string') {
        this.problems.push(`${name} must list host names, *.domain, *, IP addresses or CIDRs (${parsed})`);
      }
    }
    return entries;
  }

  /** A secret of at least `minLength` characters; messages never show it. */
  secret(name: string, minLength: number): string | undefined {
    const value = this.raw(name);
    if (value !== undefined && value.length < minLength) {
      this.problems.push(`${name} must be at least ${minLength} characters long (e.g. openssl rand -hex 32)`);
      return undefined;
    }
    return value;
  }

  databaseUrl(name: string): string | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    try {
      const url = new URL(value);
      if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') throw new Error('protocol');
      return value;
    } catch {
      this.problems.push(`${name} must be a postgres:// or postgresql:// connection URL`);
      return undefined;
    }
  }
}

export function runsApi(role: AppRole): boolean {
  return role === 'api' || role === 'all';
}

export function runsWorker(role: AppRole): boolean {
  return role === 'worker' || role === 'all';
}
