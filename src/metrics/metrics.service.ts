import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { JOB_STATES } from '../persistence/job-state';
import { JobRepository } from '../persistence/job.repository';

const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800];
/** Collections this close together belong to one scrape. */
const SCRAPE_SHARE_MS = 1_000;
const LATENCY_BUCKETS = [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Prometheus metrics of one process, in a registry of its own. */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  readonly jobsCreated = new Counter({
    name: 'jobs_created_total',
    help: 'Jobs accepted by this process, by job type',
    labelNames: ['job_type'],
    registers: [this.registry],
  });

  readonly jobsFinished = new Counter({
    name: 'jobs_finished_total',
    help: 'Jobs this worker moved to a terminal state, by job type and state (completed, failed)',
    labelNames: ['job_type', 'state'],
    registers: [this.registry],
  });

  readonly attemptsFinished = new Counter({
    name: 'job_attempts_finished_total',
    help: 'Attempts this worker closed, by job type and outcome',
    labelNames: ['job_type', 'outcome'],
    registers: [this.registry],
  });

  readonly attemptDuration = new Histogram({
    name: 'job_attempt_duration_seconds',
    help: 'Wall time of one attempt, from handler start to its outcome',
    labelNames: ['job_type', 'outcome'],
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });

  readonly claimLatency = new Histogram({
    name: 'job_claim_latency_seconds',
    help: 'Time from a job becoming due to an attempt starting on it (database clock)',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly liveAttemptsHere = new Gauge({
    name: 'worker_live_attempts',
    help: 'Attempts running in this worker process',
    registers: [this.registry],
  });

  /** Both database gauges read one count per scrape: the first to collect starts it, the other shares it. */
  private counting: { startedAt: number; counts: ReturnType<JobRepository['countJobs']> } | undefined;

  constructor(private readonly repository: JobRepository) {
    collectDefaultMetrics({ register: this.registry });
    const counts = (): ReturnType<JobRepository['countJobs']> => this.countOncePerScrape();
    new Gauge({
      name: 'jobs_by_state',
      help: 'Jobs in each state (queue depth), read from the database at scrape time',
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        const { byState } = await counts();
        for (const state of JOB_STATES) this.set({ state }, byState[state]);
      },
    });
    new Gauge({
      name: 'jobs_live_attempts',
      help: 'Attempts holding a lease across all workers, read from the database at scrape time',
      registers: [this.registry],
      async collect() {
        this.set((await counts()).liveAttempts);
      },
    });
  }

  private countOncePerScrape(): ReturnType<JobRepository['countJobs']> {
    const now = Date.now();
    if (!this.counting || now - this.counting.startedAt > SCRAPE_SHARE_MS) {
      this.counting = { startedAt: now, counts: this.repository.countJobs() };
    }
    return this.counting.counts;
  }
}
