import { Inject, Injectable } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { JOBS_DATABASE, type JobsDatabase } from './jobs-database';
import { DatabaseUnavailableError, isConnectionError } from './persistence.errors';

/** What the database's schema lacks for this code; `missing` is empty when every migration is applied. */
export interface SchemaCheck {
  /** The migrations this code ships that the database has not applied, oldest first. */
  missing: string[];
  /** How many migrations this code ships. */
  expected: number;
}

/** undefined_table: a database no migration ever ran on has no migrations table. */
const UNDEFINED_TABLE = '42P01';

/**
 * Compares the migrations this build ships with those the database recorded as applied. A database that
 * is missing any of them (never migrated, or a migration step that failed halfway) would answer the
 * first request with a 500; readiness uses this to keep such a process out of a Service instead. A
 * database ahead of the code is fine: during a rollout the old pods run against the new schema, which
 * migrations keep compatible.
 */
@Injectable()
export class SchemaVersion {
  /** Once every migration is seen applied, it stays so: the service never undoes a migration. */
  private upToDate = false;
  /** The names of the migrations this build ships, oldest first; read once. */
  private shippedNames: string[] | undefined;

  private readonly dataSource: DataSource;

  constructor(@Inject(JOBS_DATABASE) database: JobsDatabase) {
    this.dataSource = database.dataSource;
  }

  /** Reads the applied migrations (one short query, skipped once seen up to date). Throws DatabaseUnavailableError. */
  async check(): Promise<SchemaCheck> {
    const shipped = (this.shippedNames ??= this.dataSource.migrations
      .map((migration) => migration.name ?? migration.constructor.name)
      .sort(byTimestamp));
    if (this.upToDate) return { missing: [], expected: shipped.length };
    const applied = new Set(await this.appliedMigrations());
    const missing = shipped.filter((name) => !applied.has(name));
    this.upToDate = missing.length === 0;
    return { missing, expected: shipped.length };
  }

  private async appliedMigrations(): Promise<string[]> {
    try {
      const table = this.dataSource.options.migrationsTableName ?? 'migrations';
      const rows = (await this.dataSource.query(`SELECT name FROM ${table}`)) as { name: string }[];
      return rows.map((row) => row.name);
    } catch (error) {
      if (isConnectionError(error)) throw new DatabaseUnavailableError(error);
      if ((error as { code?: unknown } | null)?.code === UNDEFINED_TABLE) return [];
      throw error;
    }
  }
}

/** Migration names end in their timestamp (`JobCounters1764700000000`), the order they apply in. */
function byTimestamp(a: string, b: string): number {
  const stamp = (name: string): number => Number(/(\d+)$/.exec(name)?.[1] ?? 0);
  return stamp(a) - stamp(b) || a.localeCompare(b);
}
