import { Module, type DynamicModule } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { PersistenceModule } from '../persistence/persistence.module';
import { WorkerModule } from '../worker/worker.module';
import { HealthController } from './health.controller';
import { ShutdownState } from './shutdown-state';

@Module({})
export class HealthModule {
  /** With the worker, readiness also checks that the claim loop is turning. */
  static forRole(withWorker: boolean): DynamicModule {
    return {
      module: HealthModule,
      imports: [TerminusModule, PersistenceModule, ...(withWorker ? [WorkerModule] : [])],
      controllers: [HealthController],
      providers: [ShutdownState],
      exports: [ShutdownState],
    };
  }
}
