import { Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { LOGGER, type Logger } from '../logging/logger';
import { DatabaseNotifications } from './database-notifications';
import { JobRepository } from './job.repository';
import { JOBS_DATABASE, JobsDatabase } from './jobs-database';
import { SchemaVersion } from './schema-version';

@Module({
  providers: [
    {
      provide: JOBS_DATABASE,
      inject: [APP_CONFIG, LOGGER],
      useFactory: async (config: AppConfig, logger: Logger): Promise<JobsDatabase> => {
        if (!config.databaseUrl)
          throw new Error('DATABASE_URL must be resolved before the application starts');
        const database = await JobsDatabase.open({
          url: config.databaseUrl,
          poolSize: config.dbPoolSize,
          applicationName: `job-service-${config.role}`,
          statementTimeoutMs: config.dbStatementTimeoutMs,
          preparedStatements: config.dbPreparedStatements,
        });
        reportRoute(database, config, logger);
        return database;
      },
    },
    JobRepository,
    DatabaseNotifications,
    SchemaVersion,
  ],
  exports: [JobRepository, DatabaseNotifications, SchemaVersion],
})
export class PersistenceModule implements OnApplicationShutdown {
  constructor(@Inject(JOBS_DATABASE) private readonly database: JobsDatabase) {}

  /** Runs last on shutdown, after workers have written their final transitions. */
  async onApplicationShutdown(): Promise<void> {
    await this.database.close();
  }
}

/** Says what a pooler in front of the database changes, and what the operator has to do about it. */
function reportRoute(database: JobsDatabase, config: AppConfig, logger: Logger): void {
  const { pooled, serverStatementTimeoutMs } = database.route;
  if (!pooled) return;
  const fields = {
    prepared_statements: config.dbPreparedStatements,
    listen: config.databaseListenUrl ? 'DATABASE_LISTEN_URL' : 'none: polling',
  };
  if (config.dbPreparedStatements) {
    // Through PgBouncer 1.18 in transaction mode, about a third of POST /jobs failed this way (500).
    logger.warn(
      fields,
      'DATABASE_URL goes through a connection pooler with DB_PREPARED_STATEMENTS=true: this needs one that ' +
        'keeps prepared statements per client (PgBouncer 1.21+ with max_prepared_statements), else ' +
        'statements fail with "prepared statement ... does not exist"; set DB_PREPARED_STATEMENTS=false',
    );
  } else {
    logger.info(fields, 'DATABASE_URL goes through a connection pooler');
  }
  if (serverStatementTimeoutMs !== config.dbStatementTimeoutMs) {
    logger.warn(
      {
        server_statement_timeout_ms: serverStatementTimeoutMs,
        db_statement_timeout_ms: config.dbStatementTimeoutMs,
      },
      'a pooler does not carry statement_timeout to the server, whose own differs from DB_STATEMENT_TIMEOUT_MS: ' +
        'set it on the role (ALTER ROLE ... SET statement_timeout = ...)',
    );
  }
}
