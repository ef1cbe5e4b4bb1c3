import { Module } from '@nestjs/common';
import { HandlersModule } from '../handlers/handlers.module';
import { PersistenceModule } from '../persistence/persistence.module';
import { JobsController } from './jobs.controller';
import { JobsService } from './jobs.service';

@Module({
  imports: [PersistenceModule, HandlersModule],
  controllers: [JobsController],
  providers: [JobsService],
})
export class JobsModule {}
