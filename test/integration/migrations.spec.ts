import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { CreateJobs1764300000000 } from '../../migrations/1764300000000-create-jobs';
import { TuneJobsForChurn1764400000000 } from '../../migrations/1764400000000-tune-jobs-for-churn';
import { runMigrations } from '../../src/persistence/data-source';
import { openRepository } from '../support/repository';
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

  it('gives a database migrated before rescue_sweeps was added to 1764400000000 its sweep table', async () => {
    const db = await createTestDatabase({ empty: true });
    try {
      // That database ran 1764400000000 as it first landed: the same, without rescue_sweeps.
      const early = new DataSource({
        type: 'postgres',
        url: db.url,
        migrations: [CreateJobs1764300000000, TuneJobsForChurn1764400000000],
        migrationsTableName: 'schema_migrations',
      });
      await early.initialize();
      await early.runMigrations({ transaction: 'each' });
      await early.query('DROP TABLE rescue_sweeps');
      await early.destroy();

      await runMigrations(db.url);
      const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM rescue_sweeps');
      expect(rows[0].n).toBe(1);
      const { repository, close } = await openRepository(db.url, 2);
      try {
        expect(await repository.rescueExpiredLeases(10)).toEqual({ rescued: [], refused: [] });
      } finally {
        await close();
      }
    } finally {
      await db.drop();
    }
  });
});
