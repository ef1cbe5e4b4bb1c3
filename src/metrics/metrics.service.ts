import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { JOB_STATES } from '../persistence/job-state';
import { JobRepository, type JobStats } from '../persistence/job.repository';
import { PerJobHistogram, TalliedCounter } from './per-job-metrics';

const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800];
/** Collections this close together belong to one scrape. */
const SCRAPE_SHARE_MS = 1_000;
/** How often the event loop's delay is sampled for nodejs_eventloop_lag_*. */
const EVENT_LOOP_SAMPLE_MS = 100;
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

  private readonly jobsFinished = new TalliedCounter(
    this.registry,
    'jobs_finished_total',
    'Jobs this worker moved to a terminal state, by job type and state (completed, failed)',
    ['job_type', 'state'],
  );

  private readonly attemptsFinished = new TalliedCounter(
    this.registry,
    'job_attempts_finished_total',
    'Attempts this worker closed, by job type and outcome',
    ['job_type', 'outcome'],
  );

  private readonly attemptDuration = new PerJobHistogram(
    this.registry,
    'job_attempt_duration_seconds',
    'Wall time of one attempt, from handler start to its outcome',
    ['job_type', 'outcome'],
    DURATION_BUCKETS,
  );

  private readonly claimLatency = new PerJobHistogram(
    this.registry,
    'job_claim_latency_seconds',
    'Time from a job becoming due to an attempt starting on it (database clock)',
    [],
    LATENCY_BUCKETS,
  );

  private liveAttemptsRead: () => number = () => 0;

  readonly rescueSweepFailures = new Counter({
    name: 'rescue_sweep_failures_total',
    help: 'Rescue sweeps of this worker that failed before going through every expired lease',
    registers: [this.registry],
  });

  readonly rescueRefusals = new Counter({
    name: 'rescue_refused_leases_total',
    help: 'Expired leases the database refused to close, each passed over by the sweep that met it',
    registers: [this.registry],
  });

  readonly jobsDeleted = new Counter({
    name: 'jobs_deleted_total',
    help: 'Terminal jobs this worker deleted once past their retention, by state',
    labelNames: ['state'],
    registers: [this.registry],
  });

  readonly retentionSweepFailures = new Counter({
    name: 'retention_sweep_failures_total',
    help: 'Retention passes of this worker that failed before reaching their horizon',
    registers: [this.registry],
  });

  readonly callbackAttempts = new Counter({
    name: 'callback_attempts_total',
    help: 'Completion-callback requests this worker made, by outcome (delivered, retry, failed, lost)',
    labelNames: ['outcome'],
    registers: [this.registry],
  });

  /** The database gauges read one snapshot per scrape: the first to collect starts it, the others share it. */
  private reading: { startedAt: number; stats: Promise<JobStats> } | undefined;

  constructor(private readonly repository: JobRepository) {
    // The event loop's delay sampled every 100 ms instead of prom-client's 10: a timer every 10 ms woke an
    // idle process a hundred times a second and was most of what an idle worker spent.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    const liveAttempts = (): number => this.liveAttemptsRead();
    new Gauge({
      name: 'worker_live_attempts',
      help: 'Attempts running in this worker process',
      registers: [this.registry],
      collect() {
        this.set(liveAttempts());
      },
    });
    const stats = (): Promise<JobStats> => this.readOncePerScrape();
    new Gauge({
      name: 'jobs_by_state',
      help: 'Jobs in each state (queue depth), from the counters the database keeps',
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        const { counts } = await stats();
        for (const state of JOB_STATES) {
          this.set(
            { state },
            counts.reduce((sum, count) => sum + (count.state === state ? count.jobs : 0), 0),
          );
        }
      },
    });
    new Gauge({
      name: 'jobs_live_attempts',
      help: 'Attempts holding a lease across all workers, from the counters the database keeps',
      registers: [this.registry],
      async collect() {
        const { counts } = await stats();
        this.set(counts.reduce((sum, count) => sum + count.live, 0));
      },
    });
    new Gauge({
      name: 'jobs_oldest_due_age_seconds',
      help: 'How long the longest-waiting claimable job has been due; 0 when none is',
      registers: [this.registry],
      async collect() {
        this.set(((await stats()).oldestDueAgeMs ?? 0) / 1000);
      },
    });
  }

  /** An attempt started `latencySeconds` after its job became due (database clock). */
  attemptClaimed(latencySeconds: number): void {
    this.claimLatency.observe(latencySeconds);
  }

  /** This worker closed an attempt of a `jobType` job with `outcome`, `seconds` after its handler began. */
  attemptFinished(jobType: string, outcome: string, seconds: number): void {
    this.attemptDuration.observe(seconds, jobType, outcome);
    this.attemptsFinished.add(jobType, outcome);
  }

  /** This worker moved a `jobType` job to the terminal `state`. */
  jobFinished(jobType: string, state: string): void {
    this.jobsFinished.add(jobType, state);
  }

  /** `worker_live_attempts` reads `read` when scraped (0 in a process that runs no worker). */
  trackLiveAttempts(read: () => number): void {
    this.liveAttemptsRead = read;
  }

  /**
   * Reports, per job type, the due jobs this worker cannot run (no handler here): they wait for a worker
   * that has one, and a type that no worker runs shows as a count that only grows.
   */
  trackDueWithoutHandler(jobTypes: () => readonly string[]): void {
    const repository = this.repository;
    new Gauge({
      name: 'worker_due_jobs_without_handler',
      help: 'Due jobs of types this worker has no handler for, by job type (they wait for a worker that has one)',
      labelNames: ['job_type'],
      registers: [this.registry],
      async collect() {
        const due = await repository.countDueWithoutHandler(jobTypes());
        this.reset();
        for (const [jobType, count] of due) this.set({ job_type: jobType }, count);
      },
    });
  }

  /** Reports how long ago a rescue sweep last went through every expired lease, as `read` knows it. */
  trackSweepAge(read: () => number | null): void {
    new Gauge({
      name: 'rescue_last_completed_age_seconds',
      help: 'Seconds since a rescue sweep (by any worker) last went through every expired lease; -1 if none has',
      registers: [this.registry],
      collect() {
        const ageMs = read();
        this.set(ageMs === null ? -1 : ageMs / 1000);
      },
    });
  }

  private readOncePerScrape(): Promise<JobStats> {
    const now = Date.now();
    if (!this.reading || now - this.reading.startedAt > SCRAPE_SHARE_MS) {
      this.reading = { startedAt: now, stats: this.repository.readJobStats() };
    }
    return this.reading.stats;
  }
}
