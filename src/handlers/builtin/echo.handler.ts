import { Injectable } from '@nestjs/common';
import { JobHandler } from '../job-handler';

/** Returns its payload as its result. Accepts any JSON object. */
@Injectable()
@JobHandler({ type: 'echo', description: 'Completes with its payload (any JSON object) as the result.' })
export class EchoHandler implements JobHandler<Record<string, unknown>, Record<string, unknown>> {
  run(payload: Record<string, unknown>): Record<string, unknown> {
    return payload;
  }
}
