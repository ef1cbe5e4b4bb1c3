import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { CallbackDeliveryEntity } from './callback-delivery.entity';
import type { JobErrorBody } from './job-state';
import { JobState } from './job-state';

/** One row of `jobs`. The schema is owned by migrations/; this mapping is for reads. */
@Entity({ name: 'jobs' })
export class JobEntity {
  @PrimaryColumn({ name: 'job_id', type: 'uuid' }) jobId!: string;
  @Column({ name: 'job_type', type: 'text' }) jobType!: string;
  @Column({ type: 'text' }) state!: JobState;
  @Column({ type: 'jsonb' }) payload!: Record<string, unknown>;
  @Column({ type: 'jsonb', nullable: true }) result!: unknown;
  @Column({ type: 'jsonb', nullable: true }) error!: JobErrorBody | null;
  @Column({ type: 'integer' }) priority!: number;
  @Column({ name: 'run_at', type: 'timestamptz' }) runAt!: Date;
  @Column({ name: 'available_at', type: 'timestamptz', nullable: true }) availableAt!: Date | null;
  @Column({ type: 'integer' }) attempts!: number;
  @Column({ name: 'failed_attempts', type: 'integer' }) failedAttempts!: number;
  @Column({ name: 'max_attempts', type: 'integer' }) maxAttempts!: number;
  @Column({ name: 'timeout_ms', type: 'integer' }) timeoutMs!: number;
  @Column({ name: 'worker_id', type: 'text', nullable: true }) workerId!: string | null;
  @Column({ name: 'attempt_started_at', type: 'timestamptz', nullable: true }) attemptStartedAt!: Date | null;
  @Column({ name: 'lease_expires_at', type: 'timestamptz', nullable: true }) leaseExpiresAt!: Date | null;
  @Column({ name: 'idempotency_key', type: 'text', nullable: true }) idempotencyKey!: string | null;
  @Column({ name: 'request_hash', type: 'text', nullable: true }) requestHash!: string | null;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @Column({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
  @Column({ name: 'started_at', type: 'timestamptz', nullable: true }) startedAt!: Date | null;
  @Column({ name: 'finished_at', type: 'timestamptz', nullable: true }) finishedAt!: Date | null;
  @Column({ name: 'cancel_requested_at', type: 'timestamptz', nullable: true })
  cancelRequestedAt!: Date | null;
  @Column({ name: 'cancel_reason', type: 'text', nullable: true }) cancelReason!: string | null;
  @Column({ name: 'retry_of', type: 'uuid', nullable: true }) retryOf!: string | null;
  @Column({ name: 'callback_url', type: 'text', nullable: true }) callbackUrl!: string | null;
  /**
   * The delivery of the completion callback, when the job has finished with a callback_url; read with
   * the job (one statement), not a column of jobs.
   */
  callbackDelivery?: CallbackDeliveryEntity | null;
}
