import { Module, type DynamicModule } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { PersistenceModule } from '../persistence/persistence.module';
import { WorkerModule } from '../worker/worker.module';
import { HealthController } from './health.controller';

@Module({})
export class HealthModule {
  /** With the worker, readiness also checks that the claim loop is turning. */
  static forRole(withWorker: boolean): DynamicModule {
    return {
      module: HealthModule,
      imports: [
        TerminusModule.forRoot({ gracefulShutdownTimeoutMs: 0 }),
        PersistenceModule,
        ...(withWorker ? [WorkerModule] : []),
      ],
      controllers: [HealthController],
    };
  }
}
