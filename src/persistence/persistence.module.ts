import { Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { createDataSource } from './data-source';
import { JOBS_DATA_SOURCE, JobRepository } from './job.repository';
import { DatabaseNotifications } from './database-notifications';
import { SchemaVersion } from './schema-version';

@Module({
  providers: [
    {
      provide: JOBS_DATA_SOURCE,
      inject: [APP_CONFIG],
      useFactory: async (config: AppConfig): Promise<DataSource> => {
        if (!config.databaseUrl)
          throw new Error('DATABASE_URL must be resolved before the application starts');
        const dataSource = createDataSource({
          url: config.databaseUrl,
          poolSize: config.dbPoolSize,
          applicationName: `job-service-${config.role}`,
          statementTimeoutMs: config.dbStatementTimeoutMs,
        });
        return dataSource.initialize();
      },
    },
    JobRepository,
    DatabaseNotifications,
    SchemaVersion,
  ],
  exports: [JobRepository, DatabaseNotifications, SchemaVersion],
})
export class PersistenceModule implements OnApplicationShutdown {
  constructor(@Inject(JOBS_DATA_SOURCE) private readonly dataSource: DataSource) {}

  /** Runs last on shutdown, after workers have written their final transitions. */
  async onApplicationShutdown(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}
