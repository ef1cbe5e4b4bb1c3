import { ConfigError, loadConfig, runsApi, runsWorker } from '../../src/config/app-config';

describe('loadConfig', () => {
  it('uses the documented defaults when nothing is set', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      production: false,
      databaseUrl: undefined,
      role: 'all',
      port: 3000,
      dbPoolSize: 10,
      dbStatementTimeoutMs: 30_000,
      dbConnectRetryMs: 60_000,
      migrateOnStart: true,
      workerConcurrency: 10,
      workerPollIntervalMs: 1_000,
      leaseMs: 30_000,
      sweepIntervalMs: 5_000,
      shutdownGraceMs: 25_000,
      retryBaseMs: 1_000,
      retryMaxMs: 3_600_000,
      defaultMaxAttempts: 3,
      defaultTimeoutMs: 300_000,
      maxBodyBytes: 1_048_576,
      apiKeys: [],
      authDisabled: false,
      metricsPublic: false,
      corsOrigins: [],
      rateLimitPerMinute: undefined,
      logLevel: 'info',
      logFormat: 'auto',
      databaseListenUrl: undefined,
      dbPreparedStatements: true,
    });
  });

  it('reads every variable', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://u:p@db:5432/jobs',
      APP_ROLE: 'worker',
      PORT: '8080',
      DB_POOL_SIZE: '20',
      DB_STATEMENT_TIMEOUT_MS: '5000',
      DB_CONNECT_RETRY_MS: '0',
      WORKER_CONCURRENCY: '100',
      WORKER_POLL_INTERVAL_MS: '250',
      LEASE_MS: '10000',
      SWEEP_INTERVAL_MS: '2000',
      SHUTDOWN_GRACE_MS: '5000',
      RETRY_BASE_MS: '50',
      RETRY_MAX_MS: '500',
      DEFAULT_MAX_ATTEMPTS: '7',
      DEFAULT_TIMEOUT_MS: '1000',
      MAX_BODY_BYTES: '2048',
      API_KEYS: ' a , b:read,,c:write, d:admin ,e:f:read',
      METRICS_PUBLIC: 'true',
      CORS_ORIGINS: 'https://ops.example.com, http://localhost:8080',
      RATE_LIMIT_PER_MINUTE: '600',
      LOG_LEVEL: 'debug',
      LOG_FORMAT: 'json',
      MIGRATE_ON_START: 'false',
      WORKER_ID: 'worker-a',
      DATABASE_LISTEN_URL: 'postgresql://u:p@db-direct:5432/jobs',
      DB_PREPARED_STATEMENTS: 'false',
    });
    expect(config).toMatchObject({
      databaseUrl: 'postgres://u:p@db:5432/jobs',
      role: 'worker',
      port: 8080,
      dbPoolSize: 20,
      dbStatementTimeoutMs: 5_000,
      dbConnectRetryMs: 0,
      workerConcurrency: 100,
      workerPollIntervalMs: 250,
      leaseMs: 10_000,
      sweepIntervalMs: 2_000,
      shutdownGraceMs: 5_000,
      retryBaseMs: 50,
      retryMaxMs: 500,
      defaultMaxAttempts: 7,
      defaultTimeoutMs: 1_000,
      maxBodyBytes: 2_048,
      apiKeys: [
        { key: 'a', scope: 'admin' },
        { key: 'b', scope: 'read' },
        { key: 'c', scope: 'write' },
        { key: 'd', scope: 'admin' },
        { key: 'e:f', scope: 'read' },
      ],
      authDisabled: false,
      metricsPublic: true,
      corsOrigins: ['https://ops.example.com', 'http://localhost:8080'],
      rateLimitPerMinute: 600,
      logLevel: 'debug',
      logFormat: 'json',
      migrateOnStart: false,
      workerId: 'worker-a',
      databaseListenUrl: 'postgresql://u:p@db-direct:5432/jobs',
      dbPreparedStatements: false,
    });
  });

  it('names every invalid variable and what it accepts in one error', () => {
    let error: unknown;
    try {
      loadConfig({
        APP_ROLE: 'scheduler',
        PORT: 'eighty',
        LEASE_MS: '10',
        DATABASE_URL: 'mysql://x',
        LOG_LEVEL: 'loud',
      });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const { problems } = error as ConfigError;
    expect(problems).toHaveLength(5);
    expect(problems.join('\n')).toMatch(
      /APP_ROLE must be one of api, worker, all, migrate \(got "scheduler"\)/,
    );
    expect(problems.join('\n')).toMatch(/PORT must be a whole number from 0 to 65535 \(got "eighty"\)/);
    expect(problems.join('\n')).toMatch(/LEASE_MS must be a whole number from 1000/);
    expect(problems.join('\n')).toMatch(/DATABASE_URL must be a postgres/);
    expect(problems.join('\n')).toMatch(/LOG_LEVEL must be one of/);
  });

  it('validates DATABASE_LISTEN_URL, DB_PREPARED_STATEMENTS and LOG_FORMAT', () => {
    const problems = (env: Record<string, string>): string => {
      try {
        loadConfig(env);
        return '';
      } catch (error) {
        return (error as ConfigError).problems.join('\n');
      }
    };
    expect(
      problems({
        DATABASE_URL: 'postgres://db/jobs',
        DATABASE_LISTEN_URL: 'http://db/jobs',
        DB_PREPARED_STATEMENTS: 'sometimes',
        LOG_FORMAT: 'xml',
      }),
    ).toMatch(
      /DATABASE_LISTEN_URL must be a postgres[^\n]*\n.*DB_PREPARED_STATEMENTS must be true or false \(got "sometimes"\)\n.*LOG_FORMAT must be one of auto, json, pretty/,
    );
    expect(problems({ DATABASE_LISTEN_URL: 'postgres://db/jobs' })).toMatch(
      /DATABASE_LISTEN_URL needs DATABASE_URL/,
    );
  });

  it('refuses fractional and out-of-range numbers', () => {
    expect(() => loadConfig({ WORKER_CONCURRENCY: '2.5' })).toThrow(/WORKER_CONCURRENCY/);
    expect(() => loadConfig({ WORKER_CONCURRENCY: '0' })).toThrow(/WORKER_CONCURRENCY/);
    expect(() => loadConfig({ DEFAULT_MAX_ATTEMPTS: '-1' })).toThrow(/DEFAULT_MAX_ATTEMPTS/);
    expect(() => loadConfig({ DB_STATEMENT_TIMEOUT_MS: '0' })).toThrow(
      /DB_STATEMENT_TIMEOUT_MS must be a whole number from 100/,
    );
    expect(() => loadConfig({ DB_CONNECT_RETRY_MS: '-1' })).toThrow(
      /DB_CONNECT_RETRY_MS must be a whole number from 0/,
    );
  });

  it('requires DATABASE_URL in production and does not migrate on start there', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(
      /DATABASE_URL is required when NODE_ENV=production/,
    );
    expect(
      loadConfig({ NODE_ENV: 'production', DATABASE_URL: 'postgresql://db/jobs', API_KEYS: 'k' })
        .migrateOnStart,
    ).toBe(false);
  });

  it('refuses to serve the API in production without API_KEYS unless AUTH_DISABLED=true', () => {
    const production = { NODE_ENV: 'production', DATABASE_URL: 'postgresql://db/jobs' };
    for (const role of ['api', 'all']) {
      expect(() => loadConfig({ ...production, APP_ROLE: role })).toThrow(
        /API_KEYS is required when NODE_ENV=production.*AUTH_DISABLED=true/,
      );
    }
    expect(loadConfig({ ...production, AUTH_DISABLED: 'true' }).authDisabled).toBe(true);
    expect(loadConfig({ ...production, API_KEYS: 'k1:read' }).apiKeys).toEqual([
      { key: 'k1', scope: 'read' },
    ]);
    // A worker or a migration serves no API.
    expect(loadConfig({ ...production, APP_ROLE: 'worker' }).apiKeys).toEqual([]);
    expect(() => loadConfig({ API_KEYS: 'k1', AUTH_DISABLED: 'true' })).toThrow(/contradict/);
  });

  it('waits 5 s before closing the listener in production, not at all elsewhere, and validates the delay', () => {
    const production = {
      NODE_ENV: 'production',
      DATABASE_URL: 'postgresql://db/jobs',
      AUTH_DISABLED: 'true',
    };
    expect(loadConfig({}).shutdownDrainDelayMs).toBe(0);
    expect(loadConfig(production).shutdownDrainDelayMs).toBe(5_000);
    expect(loadConfig({ ...production, SHUTDOWN_DRAIN_DELAY_MS: '0' }).shutdownDrainDelayMs).toBe(0);
    expect(loadConfig({ SHUTDOWN_DRAIN_DELAY_MS: '1500' }).shutdownDrainDelayMs).toBe(1_500);
    for (const bad of ['-1', '2.5', 'soon', '300001']) {
      expect(() => loadConfig({ SHUTDOWN_DRAIN_DELAY_MS: bad })).toThrow(
        /SHUTDOWN_DRAIN_DELAY_MS must be a whole number from 0 to 300000/,
      );
    }
  });

  it('refuses a bad API_KEYS entry without repeating the key', () => {
    let error: unknown;
    try {
      loadConfig({ API_KEYS: 'good,s3cret-one:root,:read,s3cret two' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const { problems, message } = error as ConfigError;
    expect(problems).toEqual([
      expect.stringMatching(/API_KEYS entry 2 must be key or key:scope with scope one of read, write, admin/),
      expect.stringMatching(/API_KEYS entry 3 has an empty key/),
      expect.stringMatching(/API_KEYS entry 4 has an empty key or one with whitespace/),
    ]);
    expect(message).not.toMatch(/s3cret/);
  });

  it('validates CORS_ORIGINS, RATE_LIMIT_PER_MINUTE, METRICS_PUBLIC and AUTH_DISABLED', () => {
    expect(() => loadConfig({ CORS_ORIGINS: 'https://ok.example.com,*' })).toThrow(
      /CORS_ORIGINS must list origins/,
    );
    expect(() => loadConfig({ CORS_ORIGINS: 'https://x.example.com/path' })).toThrow(/CORS_ORIGINS/);
    expect(() => loadConfig({ RATE_LIMIT_PER_MINUTE: '0' })).toThrow(/RATE_LIMIT_PER_MINUTE must be a whole/);
    expect(() => loadConfig({ RATE_LIMIT_PER_MINUTE: 'lots' })).toThrow(/RATE_LIMIT_PER_MINUTE/);
    expect(() => loadConfig({ METRICS_PUBLIC: 'maybe' })).toThrow(/METRICS_PUBLIC must be true or false/);
    expect(() => loadConfig({ AUTH_DISABLED: 'sure' })).toThrow(/AUTH_DISABLED must be true or false/);
  });

  it('refuses a retry cap below the retry base', () => {
    expect(() => loadConfig({ RETRY_BASE_MS: '1000', RETRY_MAX_MS: '10' })).toThrow(
      /RETRY_MAX_MS must be >= RETRY_BASE_MS/,
    );
  });

  it('keeps finished jobs 7 days (failed: 30) by default, reads each retention, and takes 0 as forever', () => {
    expect(loadConfig({})).toMatchObject({
      retentionCompletedMs: 604_800_000,
      retentionFailedMs: 2_592_000_000,
      retentionCancelledMs: 604_800_000,
      retentionSweepIntervalMs: 60_000,
    });
    expect(
      loadConfig({
        RETENTION_COMPLETED_MS: '0',
        RETENTION_FAILED_MS: '86400000',
        RETENTION_CANCELLED_MS: '3600000',
        RETENTION_SWEEP_INTERVAL_MS: '500',
      }),
    ).toMatchObject({
      retentionCompletedMs: 0,
      retentionFailedMs: 86_400_000,
      retentionCancelledMs: 3_600_000,
      retentionSweepIntervalMs: 500,
    });
    for (const name of ['RETENTION_COMPLETED_MS', 'RETENTION_FAILED_MS', 'RETENTION_CANCELLED_MS']) {
      for (const bad of ['-1', '1.5', '7d', '999999999999999']) {
        expect(() => loadConfig({ [name]: bad })).toThrow(
          new RegExp(`${name} must be a whole number from 0 to`),
        );
      }
    }
    expect(() => loadConfig({ RETENTION_SWEEP_INTERVAL_MS: '0' })).toThrow(/RETENTION_SWEEP_INTERVAL_MS/);
  });

  it('reads the completion-callback settings, with documented defaults, and refuses a cap below the base', () => {
    expect(loadConfig({})).toMatchObject({
      callbackTimeoutMs: 10_000,
      callbackMaxAttempts: 15,
      callbackRetryBaseMs: 1_000,
      callbackRetryMaxMs: 600_000,
    });
    expect(
      loadConfig({
        CALLBACK_TIMEOUT_MS: '2500',
        CALLBACK_MAX_ATTEMPTS: '4',
        CALLBACK_RETRY_BASE_MS: '50',
        CALLBACK_RETRY_MAX_MS: '800',
      }),
    ).toMatchObject({
      callbackTimeoutMs: 2_500,
      callbackMaxAttempts: 4,
      callbackRetryBaseMs: 50,
      callbackRetryMaxMs: 800,
    });
    expect(() => loadConfig({ CALLBACK_TIMEOUT_MS: '0' })).toThrow(
      /CALLBACK_TIMEOUT_MS must be a whole number/,
    );
    expect(() => loadConfig({ CALLBACK_MAX_ATTEMPTS: 'many' })).toThrow(/CALLBACK_MAX_ATTEMPTS/);
    expect(() => loadConfig({ CALLBACK_RETRY_BASE_MS: '1000', CALLBACK_RETRY_MAX_MS: '10' })).toThrow(
      /CALLBACK_RETRY_MAX_MS must be >= CALLBACK_RETRY_BASE_MS/,
    );
  });

  it('maps roles to what they run', () => {
    expect([runsApi('api'), runsWorker('api')]).toEqual([true, false]);
    expect([runsApi('worker'), runsWorker('worker')]).toEqual([false, true]);
    expect([runsApi('all'), runsWorker('all')]).toEqual([true, true]);
    expect([runsApi('migrate'), runsWorker('migrate')]).toEqual([false, false]);
  });
});
