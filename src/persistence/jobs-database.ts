import type { Pool } from 'pg';
import type { DataSource } from 'typeorm';
import { probeDatabaseRoute, type DatabaseRoute } from './connection';
import { createDataSource, createLeasePool } from './data-source';

export const JOBS_DATABASE = Symbol('JOBS_DATABASE');

export interface JobsDatabaseOptions {
  url: string;
  poolSize: number;
  applicationName?: string;
  statementTimeoutMs?: number;
  /** Named prepared statements on the hot path (see JobRepository); off for a transaction pooler. */
  preparedStatements: boolean;
}

/**
 * The connections of one process: the main pool (TypeORM's, used through pg), a pool of its own for lease
 * renewals, and what was learnt about the route to the server when they were opened.
 */
export class JobsDatabase {
  private constructor(
    readonly dataSource: DataSource,
    readonly leasePool: Pool,
    readonly route: DatabaseRoute,
    readonly preparedStatements: boolean,
  ) {}

  /** Probes the route (direct or through a pooler), then opens the pools to suit it. */
  static async open(options: JobsDatabaseOptions): Promise<JobsDatabase> {
    const route = await probeDatabaseRoute(options.url);
    const settings = { ...options, pooled: route.pooled };
    const dataSource = await createDataSource(settings).initialize();
    return new JobsDatabase(dataSource, createLeasePool(settings), route, options.preparedStatements);
  }

  async close(): Promise<void> {
    await Promise.allSettled([
      this.leasePool.end(),
      this.dataSource.isInitialized ? this.dataSource.destroy() : undefined,
    ]);
  }
}
