import { Module, type DynamicModule } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { ThrottlerModule } from '@nestjs/throttler';
import { AuthModule } from './auth/auth.module';
import { CallbacksModule } from './callbacks/callbacks.module';
import { ApiKeyGuard } from './common/api-key.guard';
import { RateLimitGuard } from './common/rate-limit.guard';
import { runsApi, runsWorker, type AppConfig } from './config/app-config';
import { ConfigModule } from './config/config.module';
import { HealthModule } from './health/health.module';
import { JobsModule } from './jobs/jobs.module';
import { LoggingModule, type Logger } from './logging/logger';
import { MetricsModule } from './metrics/metrics.module';
import { StatsModule } from './stats/stats.module';
import { WorkerModule } from './worker/worker.module';

/** The modules one process runs: the API, the worker, or both (APP_ROLE). Every role serves health and metrics. */
@Module({})
export class AppModule {
  static forRole(config: AppConfig, logger: Logger): DynamicModule {
    const api = runsApi(config.role);
    const worker = runsWorker(config.role);
    const rateLimit = config.rateLimitPerMinute;
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        LoggingModule.forRoot(logger),
        ScheduleModule.forRoot(),
        MetricsModule,
        HealthModule.forRole(worker),
        ...(api ? [JobsModule, StatsModule, AuthModule] : []),
        ...(worker ? [WorkerModule, CallbacksModule] : []),
        ...(rateLimit ? [ThrottlerModule.forRoot({ throttlers: [{ ttl: 60_000, limit: rateLimit }] })] : []),
      ],
      // In this order: the rate limit counts per key, so the key guard names the caller first.
      providers: [
        { provide: APP_GUARD, useClass: ApiKeyGuard },
        ...(rateLimit ? [{ provide: APP_GUARD, useClass: RateLimitGuard }] : []),
      ],
    };
  }
}
