import { Injectable } from '@nestjs/common';
import { IsBoolean, IsOptional, IsString, MaxLength } from 'class-validator';
import { JobHandler, PermanentJobError } from '../job-handler';

export class FailPayload {
  /** The error message to fail with. */
  @IsString()
  @MaxLength(10_000)
  message!: string;

  /** When true the job fails at once instead of being retried. */
  @IsOptional()
  @IsBoolean()
  permanent?: boolean;
}

/** Always throws: for exercising retries, backoff and permanent failures. */
@Injectable()
@JobHandler({
  type: 'fail',
  payload: FailPayload,
  description: 'Always fails with `message`; retried like any failure unless `permanent` is true.',
})
export class FailHandler implements JobHandler<FailPayload, never> {
  run(payload: FailPayload): never {
    if (payload.permanent) throw new PermanentJobError(payload.message);
    throw Object.assign(new Error(payload.message), { code: 'requested_failure' });
  }
}
