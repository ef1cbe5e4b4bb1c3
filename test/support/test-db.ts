import { randomBytes } from 'node:crypto';
import { Client, Pool } from 'pg';

/** A database of one test file, cloned from the migrated template; dropped by `drop()`. */
export interface TestDatabase {
  name: string;
  url: string;
  /** A pool for the test's own raw SQL (setup, assertions). */
  pool: Pool;
  /**
   * Deletes every job, for a clean start between tests. The database refuses TRUNCATE of jobs and their
   * history; a superuser's session can switch the triggers that refuse it off, as this test-only reset does.
   */
  reset(): Promise<void>;
  drop(): Promise<void>;
}

function adminUrl(): string {
  const url = process.env.TEST_PG_ADMIN_URL;
  if (!url) throw new Error('TEST_PG_ADMIN_URL is not set: run the tests through jest (npm test)');
  return url;
}

export function databaseUrl(name: string): string {
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

/** A migrated database of its own; `{ empty: true }` gives one with no schema at all. */
export async function createTestDatabase(options: { empty?: boolean } = {}): Promise<TestDatabase> {
  const name = `job_service_test_${randomBytes(6).toString('hex')}`;
  const template = options.empty ? 'template0' : process.env.TEST_PG_TEMPLATE;
  await admin(`CREATE DATABASE ${name} TEMPLATE ${template}`);
  const url = databaseUrl(name);
  const pool = new Pool({ connectionString: url, max: 5 });
  // An idle connection closed by the server (e.g. DROP DATABASE ... WITH (FORCE)) must not crash the run.
  pool.on('error', () => undefined);
  return {
    name,
    url,
    pool,
    reset: async () => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('SET LOCAL session_replication_role = replica');
        await client.query('TRUNCATE jobs, job_attempts, callback_deliveries, job_watches');
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    drop: async () => {
      await pool.end();
      await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

async function admin(sql: string): Promise<void> {
  const client = new Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
