import { Module } from '@nestjs/common';
import { HandlersModule } from '../handlers/handlers.module';
import { OutboundModule } from '../outbound/outbound.module';
import { PersistenceModule } from '../persistence/persistence.module';
import { JobFinishWaiters } from './job-finish-waiters';
import { JobInsertBatcher } from './job-insert-batcher';
import { JobsController } from './jobs.controller';
import { JobsService } from './jobs.service';

@Module({
  imports: [PersistenceModule, HandlersModule, OutboundModule],
  controllers: [JobsController],
  providers: [JobsService, JobFinishWaiters, JobInsertBatcher],
})
export class JobsModule {}
