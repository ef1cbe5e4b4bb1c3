import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { LOGGER, type Logger } from '../logging/logger';
import { JOBS_DUE_CHANNEL } from './job.sql';

const RECONNECT_DELAY_MS = 1_000;

/** Called with the epoch-ms time at which the notified jobs are due; undefined means "now". */
export type JobsDueSubscriber = (dueAtMs: number | undefined) => void;

/**
 * One LISTEN connection per process that calls its subscribers whenever jobs are committed or scheduled
 * for a retry. It reconnects by itself; after each (re)connect it calls the subscribers once, since
 * notifications sent while it was away are lost. The worker's poll stays as the safety net.
 */
@Injectable()
export class JobsDueListener implements OnApplicationShutdown {
  private readonly subscribers = new Set<JobsDueSubscriber>();
  private client: Client | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  subscribe(onJobsDue: JobsDueSubscriber): void {
    this.subscribers.add(onJobsDue);
    this.running ??= this.listen();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    await this.client?.end().catch(() => undefined);
    await this.running;
  }

  private notify(payload?: string): void {
    const dueAtMs = payload ? Number(payload) : NaN;
    for (const subscriber of this.subscribers) subscriber(Number.isFinite(dueAtMs) ? dueAtMs : undefined);
  }

  private async listen(): Promise<void> {
    while (!this.stopped) {
      const client = new Client({
        connectionString: this.config.databaseUrl,
        connectionTimeoutMillis: 5_000,
        keepAlive: true,
        application_name: 'job-service-listener',
      });
      // `on`, not `once`: a dropped connection can emit more than one error, and an error event without
      // a listener would crash the process.
      const closed = new Promise<void>((resolve) => {
        client.once('end', resolve);
        client.on('error', (error) => {
          if (!this.stopped) this.logger.warn({ err: error }, 'the LISTEN connection dropped; reconnecting');
          resolve();
        });
      });
      try {
        await client.connect();
        client.on('notification', (message) => this.notify(message.payload));
        await client.query(`LISTEN ${JOBS_DUE_CHANNEL}`);
        this.client = client;
        this.notify();
        await closed;
      } catch (error) {
        if (!this.stopped) this.logger.warn({ err: error }, 'cannot LISTEN for new jobs; retrying');
      } finally {
        this.client = undefined;
        await client.end().catch(() => undefined);
      }
      if (!this.stopped) await sleep(RECONNECT_DELAY_MS);
    }
  }
}
