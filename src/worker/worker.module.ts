import { Module } from '@nestjs/common';
import { HandlersModule } from '../handlers/handlers.module';
import { PersistenceModule } from '../persistence/persistence.module';
import { AttemptRecorder } from './attempt-recorder.service';
import { ClaimLoopService } from './claim-loop.service';
import { EventLoopWatchdog } from './event-loop-watchdog.service';
import { JobRunner } from './job-runner.service';
import { RescuerService } from './rescuer.service';
import { RetentionService } from './retention.service';

@Module({
  imports: [PersistenceModule, HandlersModule],
  providers: [
    ClaimLoopService,
    JobRunner,
    AttemptRecorder,
    RescuerService,
    EventLoopWatchdog,
    RetentionService,
  ],
  exports: [ClaimLoopService, RescuerService],
})
export class WorkerModule {}
