import type { DataSource } from 'typeorm';
import { createDataSource } from '../../src/persistence/data-source';
import { JobRepository } from '../../src/persistence/job.repository';

/** A JobRepository on a connection pool of its own, as one worker process would have. */
export async function openRepository(
  url: string,
  poolSize = 4,
): Promise<{ repository: JobRepository; close: () => Promise<void> }> {
  const dataSource: DataSource = await createDataSource({ url, poolSize }).initialize();
  return { repository: new JobRepository(dataSource), close: () => dataSource.destroy() };
}
