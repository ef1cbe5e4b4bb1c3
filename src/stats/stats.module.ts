import { Module } from '@nestjs/common';
import { HandlersModule } from '../handlers/handlers.module';
import { PersistenceModule } from '../persistence/persistence.module';
import { StatsController } from './stats.controller';
import { StatsService } from './stats.service';

/** GET /stats, served by the api role. */
@Module({
  imports: [PersistenceModule, HandlersModule],
  controllers: [StatsController],
  providers: [StatsService],
})
export class StatsModule {}
