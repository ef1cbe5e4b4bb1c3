import { Injectable } from '@nestjs/common';
import { JobHandler } from '../job-handler';

export class NoopPayload {}

/** Does nothing and returns null: for smoke tests and for measuring the queue itself. */
@Injectable()
@JobHandler({
  type: 'noop',
  payload: NoopPayload,
  description: 'Does nothing; completes with a null result.',
})
export class NoopHandler implements JobHandler<NoopPayload, null> {
  run(): null {
    return null;
  }
}
