import { Injectable } from '@nestjs/common';
import { HandlerRegistry } from '../handlers/handler-registry';
import { JobState } from '../persistence/job-state';
import { JobRepository } from '../persistence/job.repository';
import type { FinishesPerMinuteResponse } from './dto/finishes-per-minute.response';
import type { JobTypeStatsResponse, JobsByStateResponse, StatsResponse } from './dto/stats.response';

const noJobs = (): JobsByStateResponse => ({ pending: 0, running: 0, completed: 0, failed: 0, cancelled: 0 });

/** Queue health from the counters the database keeps: the same cost at any number of jobs. */
@Injectable()
export class StatsService {
  constructor(
    private readonly repository: JobRepository,
    private readonly handlers: HandlerRegistry,
  ) {}

  async stats(): Promise<StatsResponse> {
    const stats = await this.repository.readJobStats();
    const byState = noJobs();
    const byType = new Map<string, JobTypeStatsResponse>();
    const typeStats = (jobType: string): JobTypeStatsResponse => {
      let entry = byType.get(jobType);
      if (!entry) {
        entry = { job_type: jobType, ...noJobs(), paused: false };
        byType.set(jobType, entry);
      }
      return entry;
    };
    for (const jobType of this.handlers.types()) typeStats(jobType);
    for (const jobType of stats.pausedJobTypes) typeStats(jobType).paused = true;
    for (const { jobType, state, jobs } of stats.counts) {
      typeStats(jobType)[state] += jobs;
      byState[state] += jobs;
    }
    const finished = stats.finishedLastMinute;
    return {
      by_state: byState,
      by_type: [...byType.values()].sort((a, b) => (a.job_type < b.job_type ? -1 : 1)),
      oldest_due_age_ms: stats.oldestDueAgeMs,
      finished_last_minute: {
        completed: finished[JobState.Completed] ?? 0,
        failed: finished[JobState.Failed] ?? 0,
        cancelled: finished[JobState.Cancelled] ?? 0,
      },
    };
  }

  async finishesPerMinute(minutes: number): Promise<FinishesPerMinuteResponse> {
    const rows = await this.repository.readFinishesPerMinute(minutes);
    return {
      minutes: rows.map(({ minute, completed, failed, cancelled }) => ({
        minute: minute.toISOString(),
        completed,
        failed,
        cancelled,
      })),
    };
  }
}
