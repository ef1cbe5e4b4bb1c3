import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { LOGGER, type Logger } from '../logging/logger';
import { standaloneConnectionOptions } from './connection';
import { JOBS_DUE_CHANNEL } from './job.sql';

const RECONNECT_DELAY_MS = 1_000;
/** How long closing waits for the server to take its leave before the socket is dropped. */
const CLOSE_TIMEOUT_MS = 500;

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
  /**
   * The connection being opened or listening. Set as soon as it exists, not once it listens: a shutdown
   * that arrives while it is still connecting must be able to close it.
   */
  private client: Client | undefined;
  private running: Promise<void> | undefined;
  private readonly stopping = new AbortController();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  subscribe(onJobsDue: JobsDueSubscriber): void {
    this.subscribers.add(onJobsDue);
    if (!this.stopping.signal.aborted) this.running ??= this.listen();
  }

  /** Closes the connection whatever state it is in; resolves once the listening loop has ended. */
  async onApplicationShutdown(): Promise<void> {
    this.stopping.abort();
    if (this.client) await closeClient(this.client);
    await this.running;
  }

  private notify(payload?: string): void {
    const dueAtMs = payload ? Number(payload) : NaN;
    for (const subscriber of this.subscribers) subscriber(Number.isFinite(dueAtMs) ? dueAtMs : undefined);
  }

  private async listen(): Promise<void> {
    const stopped = this.stopping.signal;
    const untilStopped = new Promise<void>((resolve) =>
      stopped.addEventListener('abort', () => resolve(), { once: true }),
    );
    while (!stopped.aborted) {
      const client = new Client(
        standaloneConnectionOptions(this.config.databaseUrl!, 'job-service-listener'),
      );
      this.client = client;
      // `on`, not `once`: a dropped connection can emit more than one error, and an error event without
      // a listener would crash the process.
      const closed = new Promise<void>((resolve) => {
        client.once('end', resolve);
        client.on('error', (error) => {
          if (!stopped.aborted)
            this.logger.warn({ err: error }, 'the LISTEN connection dropped; reconnecting');
          resolve();
        });
      });
      try {
        // Shutdown may come during any of these awaits; after each, nothing more is started. The connect
        // is raced against it because pg never settles connect() on a client ended while connecting.
        const connecting = client.connect();
        connecting.catch(() => undefined);
        await Promise.race([connecting, untilStopped]);
        if (stopped.aborted) continue;
        client.on('notification', (message) => this.notify(message.payload));
        await client.query(`LISTEN ${JOBS_DUE_CHANNEL}`);
        if (stopped.aborted) continue;
        this.notify();
        await closed;
      } catch (error) {
        if (!stopped.aborted) this.logger.warn({ err: error }, 'cannot LISTEN for new jobs; retrying');
      } finally {
        this.client = undefined;
        await closeClient(client);
      }
      await sleep(RECONNECT_DELAY_MS, undefined, { signal: stopped }).catch(() => undefined);
    }
  }
}

/**
 * Takes leave of the server, but never waits long: a connection still being opened, or one whose server
 * has stopped answering, would otherwise keep shutdown waiting for as long as it stays silent.
 */
async function closeClient(client: Client): Promise<void> {
  const ended = await Promise.race([
    client.end().then(
      () => true,
      () => true,
    ),
    sleep(CLOSE_TIMEOUT_MS, false),
  ]);
  if (!ended) client.connection.stream.destroy();
}
