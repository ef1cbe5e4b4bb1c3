import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { runMigrations } from '../../src/persistence/data-source';
import { createTestDatabase } from '../support/test-db';

describe('migrations', () => {
  it('apply each migration once when several replicas run them at the same moment', async () => {
    const db = await createTestDatabase({ empty: true });
    try {
      const applied = await Promise.all([1, 2, 3].map(() => runMigrations(db.url)));
      const files = readdirSync(join(__dirname, '..', '..', 'migrations')).sort();
      // One run applied everything; the others waited for it and found nothing left to do.
      expect(applied.map((names) => names.length).sort()).toEqual([0, 0, files.length]);
      const { rows } = await db.pool.query(`SELECT timestamp FROM schema_migrations ORDER BY timestamp`);
      expect(rows.map((row) => Number(row.timestamp))).toEqual(
        files.map((file) => Number(file.split('-')[0])),
      );
    } finally {
      await db.drop();
    }
  });
});
