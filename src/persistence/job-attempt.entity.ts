import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { ClosingOutcome, JobErrorBody } from './job-state';

/** A closed attempt that the job row alone cannot describe (failed, timed_out, lost, interrupted). */
@Entity({ name: 'job_attempts' })
export class JobAttemptEntity {
  @PrimaryColumn({ name: 'job_id', type: 'uuid' }) jobId!: string;
  @PrimaryColumn({ type: 'integer' }) attempt!: number;
  @Column({ name: 'worker_id', type: 'text' }) workerId!: string;
  @Column({ name: 'started_at', type: 'timestamptz' }) startedAt!: Date;
  @Column({ name: 'finished_at', type: 'timestamptz' }) finishedAt!: Date;
  @Column({ type: 'text' }) outcome!: ClosingOutcome;
  @Column({ type: 'jsonb' }) error!: JobErrorBody;
}
