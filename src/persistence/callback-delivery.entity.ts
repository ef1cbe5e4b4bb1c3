import { Column, Entity, PrimaryColumn } from 'typeorm';

/** Where a completion callback stands; the callback_deliveries_state_known CHECK mirrors this list. */
export enum CallbackDeliveryState {
  /** Not delivered yet: due, under way, or waiting for its next attempt. */
  Pending = 'pending',
  Delivered = 'delivered',
  /** Given up after CALLBACK_MAX_ATTEMPTS attempts, or refused by HTTP_TARGET_ALLOW. */
  Failed = 'failed',
}

/** One row of `callback_deliveries`, created by the database when a job with a callback_url finishes. */
@Entity({ name: 'callback_deliveries' })
export class CallbackDeliveryEntity {
  @PrimaryColumn({ name: 'job_id', type: 'uuid' }) jobId!: string;
  @Column({ type: 'text' }) url!: string;
  @Column({ type: 'text' }) state!: CallbackDeliveryState;
  @Column({ type: 'integer' }) attempts!: number;
}
