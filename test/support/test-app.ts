import type { INestApplication } from '@nestjs/common';
import { createApp, fastifyOf, startWorker } from '../../src/app.factory';
import { loadConfig, runsApi, type AppConfig } from '../../src/config/app-config';
import { createLogger } from '../../src/logging/logger';
import { watchServer } from './openapi-contract';

/**
 * The application exactly as main.ts builds and starts it, for `role`, on the test's database, except that
 * it does not listen (supertest serves it): the worker starts the same way, once the app is up.
 */
export async function startTestApp(
  databaseUrl: string,
  overrides: Partial<AppConfig> = {},
): Promise<INestApplication> {
  const config: AppConfig = {
    ...loadConfig({ DATABASE_URL: databaseUrl, LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent' }),
    migrateOnStart: false,
    workerPollIntervalMs: 50,
    retryBaseMs: 20,
    retryMaxMs: 100,
    ...overrides,
  };
  const app = await createApp(config, createLogger(config.logLevel));
  await app.init();
  // Fastify builds its routes when it is ready; supertest serves the bare HTTP server.
  await fastifyOf(app).ready();
  startWorker(app, config);
  // fetch() to it, once a test makes it listen, is checked against the OpenAPI document too.
  watchServer(app.getHttpServer(), { servesApi: runsApi(config.role) });
  return app;
}
