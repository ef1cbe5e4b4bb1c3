import { JobRepository } from '../../src/persistence/job.repository';
import { JobsDatabase } from '../../src/persistence/jobs-database';

/** A JobRepository on a connection pool of its own, as one worker process would have. */
export async function openRepository(
  url: string,
  poolSize = 4,
): Promise<{ repository: JobRepository; database: JobsDatabase; close: () => Promise<void> }> {
  const database = await JobsDatabase.open({ url, poolSize, preparedStatements: true });
  return { repository: new JobRepository(database), database, close: () => database.close() };
}
