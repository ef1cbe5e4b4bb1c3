import { Injectable } from '@nestjs/common';
import type { JobEntity } from '../persistence/job.entity';
import { JobRepository, type NewJob } from '../persistence/job.repository';
import { DatabaseUnavailableError } from '../persistence/persistence.errors';

/** At most this many insert statements in flight; requests arriving meanwhile share the next one. */
const MAX_CONCURRENT_INSERTS = 4;
const MAX_JOBS_PER_INSERT = 500;

interface Pending {
  job: NewJob;
  resolve: (row: JobEntity | null) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit for single-job creates: jobs from concurrent `POST /jobs` requests are inserted together,
 * in one statement and one transaction, so a burst of requests costs a few commits instead of one each.
 * Each request is answered only after its statement committed. Under light load a statement carries one
 * job and nothing waits. If a shared statement fails for a reason other than a lost connection, each of
 * its jobs is tried again on its own, so one job's problem never fails another's request.
 */
@Injectable()
export class JobInsertBatcher {
  private queue: Pending[] = [];
  private inFlight = 0;

  constructor(private readonly repository: JobRepository) {}

  /** Resolves with the stored row, or null when the job's idempotency key was already taken. */
  insert(job: NewJob): Promise<JobEntity | null> {
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.drain();
    });
  }

  private drain(): void {
    while (this.inFlight < MAX_CONCURRENT_INSERTS && this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_JOBS_PER_INSERT);
      this.inFlight++;
      void this.write(batch).finally(() => {
        this.inFlight--;
        this.drain();
      });
    }
  }

  private async write(batch: Pending[]): Promise<void> {
    try {
      const rows = await this.repository.insertJobs(batch.map((item) => item.job));
      const byId = new Map(rows.map((row) => [row.jobId, row]));
      for (const item of batch) item.resolve(byId.get(item.job.jobId) ?? null);
    } catch (error) {
      if (batch.length === 1 || error instanceof DatabaseUnavailableError) {
        for (const item of batch) item.reject(error);
        return;
      }
      await Promise.all(
        batch.map(async (item) => {
          try {
            const [row] = await this.repository.insertJobs([item.job]);
            item.resolve(row ?? null);
          } catch (single) {
            item.reject(single);
          }
        }),
      );
    }
  }
}
