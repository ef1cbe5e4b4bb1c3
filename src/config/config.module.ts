import { Global, Module, type DynamicModule } from '@nestjs/common';
import { ShutdownGrace } from '../common/shutdown-grace';
import type { AppConfig } from './app-config';

export const APP_CONFIG = Symbol('APP_CONFIG');

/**
 * Makes the one validated AppConfig injectable everywhere as APP_CONFIG, with the one shutdown grace period
 * (SHUTDOWN_GRACE_MS) that every part of a stopping process shares.
 */
@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: ConfigModule,
      providers: [
        { provide: APP_CONFIG, useValue: config },
        { provide: ShutdownGrace, useValue: new ShutdownGrace(config.shutdownGraceMs) },
      ],
      exports: [APP_CONFIG, ShutdownGrace],
    };
  }
}
