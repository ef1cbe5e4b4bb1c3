import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { LOGGER, type Logger } from '../logging/logger';
import { reachesServerDirectly, standaloneConnectionOptions } from './connection';
import { CALLBACKS_DUE_CHANNEL } from './callback.sql';
import { CANCEL_REQUESTED_CHANNEL, JOBS_DUE_CHANNEL, JOBS_FINISHED_CHANNEL } from './job.sql';
import { JOBS_DATABASE, JobsDatabase } from './jobs-database';

const RECONNECT_DELAY_MS = 1_000;
/** Without LISTEN, how often the finished-jobs subscribers (long polls) are told to look again. */
const LOOK_AGAIN_WITHOUT_LISTEN_MS = 1_000;
/** How long closing waits for the server to take its leave before the socket is dropped. */
const CLOSE_TIMEOUT_MS = 500;

/** Called with the epoch-ms time at which the notified jobs are due; undefined means "now". */
export type JobsDueSubscriber = (dueAtMs: number | undefined) => void;
/** Called with the id of a job whose cancel was requested. */
export type CancelRequestedSubscriber = (jobId: string) => void;
/** Called with the ids of jobs that reached a terminal state; undefined means "any may have" (reconnected). */
export type JobsFinishedSubscriber = (jobIds: string[] | undefined) => void;
/** Called when completion callbacks became due (or, after a reconnect, may have). */
export type CallbacksDueSubscriber = () => void;

/**
 * One LISTEN connection per process, for every channel the process needs: jobs due (workers claim at
 * once), cancel requests (the worker holding the job stops it), finished jobs (the API's long poll), and
 * new completion callbacks (workers deliver them at once).
 * It reconnects by itself; after each (re)connect it calls every subscriber once as if told of
 * everything, since notifications sent while it was away are lost. Polls stay as the safety net.
 *
 * LISTEN lives in a server session, so it needs a connection that keeps one: DATABASE_LISTEN_URL when
 * set, else DATABASE_URL when it reaches the server directly. Through a transaction pooler, LISTEN runs
 * in whichever session serves that one statement; the notifications then go to whatever client holds that
 * session later, never to us. So there is no LISTEN through a pooler: workers poll, long polls are told
 * to look again every LOOK_AGAIN_WITHOUT_LISTEN_MS, and a cancel reaches its worker with the next heartbeat.
 */
@Injectable()
export class DatabaseNotifications implements OnApplicationShutdown {
  private readonly jobsDue = new Set<JobsDueSubscriber>();
  private readonly cancelRequested = new Set<CancelRequestedSubscriber>();
  private readonly jobsFinished = new Set<JobsFinishedSubscriber>();
  private readonly callbacksDue = new Set<CallbacksDueSubscriber>();
  /**
   * The connection being opened or listening. Set as soon as it exists, not once it listens: a shutdown
   * that arrives while it is still connecting must be able to close it.
   */
  private client: Client | undefined;
  private running: Promise<void> | undefined;
  /** The LISTEN statements sent so far, in order (see listenOn). */
  private listenQueue: Promise<void> = Promise.resolve();
  private readonly stopping = new AbortController();
  private lookAgainTimer: NodeJS.Timeout | undefined;
  private warnedNotDirect = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(JOBS_DATABASE) private readonly database: JobsDatabase,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** Where LISTEN goes; undefined when nowhere (DATABASE_URL goes through a pooler and no other URL was given). */
  private listenUrl(): string | undefined {
    if (this.config.databaseListenUrl) return this.config.databaseListenUrl;
    return this.database.route.pooled ? undefined : this.config.databaseUrl;
  }

  onJobsDue(subscriber: JobsDueSubscriber): void {
    this.jobsDue.add(subscriber);
    this.start();
  }

  onCancelRequested(subscriber: CancelRequestedSubscriber): void {
    this.cancelRequested.add(subscriber);
    this.start();
  }

  /** True when finished jobs are announced to this process (it LISTENs), false when it only looks again. */
  announcesFinishedJobs(): boolean {
    return this.listenUrl() !== undefined;
  }

  onJobsFinished(subscriber: JobsFinishedSubscriber): void {
    this.jobsFinished.add(subscriber);
    this.start();
  }

  onCallbacksDue(subscriber: CallbacksDueSubscriber): void {
    this.callbacksDue.add(subscriber);
    this.start();
  }

  /** Closes the connection whatever state it is in; resolves once the listening loop has ended. */
  async onApplicationShutdown(): Promise<void> {
    this.stopping.abort();
    clearInterval(this.lookAgainTimer);
    if (this.client) await closeClient(this.client);
    await this.running;
  }

  private start(): void {
    if (this.stopping.signal.aborted) return;
    const url = this.listenUrl();
    if (!url) return this.lookAgainInstead();
    // Subscribers come at start-up, before the connection is made; one made later needs its LISTEN now.
    if (this.running && this.client) void this.listenOn(this.client).catch(() => undefined);
    this.running ??= this.listen(url);
  }

  private lookAgainInstead(): void {
    if (this.lookAgainTimer) return;
    this.logger.info(
      {
        poll_interval_ms: this.config.workerPollIntervalMs,
        long_poll_look_again_ms: LOOK_AGAIN_WITHOUT_LISTEN_MS,
      },
      'no LISTEN: DATABASE_URL goes through a pooler and DATABASE_LISTEN_URL is not set; polling instead',
    );
    this.lookAgainTimer = setInterval(() => {
      for (const subscriber of this.jobsFinished) subscriber(undefined);
    }, LOOK_AGAIN_WITHOUT_LISTEN_MS);
    this.lookAgainTimer.unref();
  }

  /** Warns once when the LISTEN connection does not keep a server session of its own (a pooler in between). */
  private async checkSessionIsOurs(client: Client): Promise<void> {
    if (this.warnedNotDirect) return;
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    if (reachesServerDirectly(client, rows[0].pid)) return;
    this.warnedNotDirect = true;
    this.logger.warn(
      'DATABASE_LISTEN_URL goes through a pooler: LISTEN only works through one in session mode; ' +
        'point it at the server itself',
    );
  }

  /**
   * LISTENs on every channel that has subscribers. Calls are chained, one statement at a time on the
   * connection: a subscriber that arrives while the loop's own LISTEN is in flight must not send a second
   * query beside it (pg does not allow a client two at once). Each call reads the subscribers when its turn
   * comes, so the last one covers all.
   */
  private listenOn(client: Client): Promise<void> {
    const turn = this.listenQueue.then(async () => {
      const channels = [
        ...(this.jobsDue.size > 0 ? [JOBS_DUE_CHANNEL] : []),
        ...(this.cancelRequested.size > 0 ? [CANCEL_REQUESTED_CHANNEL] : []),
        ...(this.jobsFinished.size > 0 ? [JOBS_FINISHED_CHANNEL] : []),
        ...(this.callbacksDue.size > 0 ? [CALLBACKS_DUE_CHANNEL] : []),
      ];
      await client.query(channels.map((channel) => `LISTEN ${channel}`).join('; '));
    });
    this.listenQueue = turn.catch(() => undefined);
    return turn;
  }

  private dispatch(channel: string, payload: string | undefined): void {
    if (channel === JOBS_DUE_CHANNEL) {
      const dueAtMs = payload ? Number(payload) : NaN;
      for (const subscriber of this.jobsDue) subscriber(Number.isFinite(dueAtMs) ? dueAtMs : undefined);
    } else if (channel === CANCEL_REQUESTED_CHANNEL && payload) {
      for (const subscriber of this.cancelRequested) subscriber(payload);
    } else if (channel === JOBS_FINISHED_CHANNEL && payload) {
      const jobIds = payload.split(',');
      for (const subscriber of this.jobsFinished) subscriber(jobIds);
    } else if (channel === CALLBACKS_DUE_CHANNEL) {
      for (const subscriber of this.callbacksDue) subscriber();
    }
  }

  /** After a (re)connect: whatever was announced meanwhile is lost, so everyone looks again. */
  private reconnected(): void {
    for (const subscriber of this.jobsDue) subscriber(undefined);
    for (const subscriber of this.jobsFinished) subscriber(undefined);
    for (const subscriber of this.callbacksDue) subscriber();
  }

  private async listen(url: string): Promise<void> {
    const stopped = this.stopping.signal;
    const untilStopped = new Promise<void>((resolve) =>
      stopped.addEventListener('abort', () => resolve(), { once: true }),
    );
    while (!stopped.aborted) {
      const client = new Client(standaloneConnectionOptions(url, `job-service-${this.config.role}-listener`));
      this.client = client;
      // A new connection owes nothing to the last one's statements, even one that never settled.
      this.listenQueue = Promise.resolve();
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
        if (url === this.config.databaseListenUrl) await this.checkSessionIsOurs(client);
        client.on('notification', (message) => this.dispatch(message.channel, message.payload));
        await this.listenOn(client);
        if (stopped.aborted) continue;
        this.reconnected();
        await closed;
      } catch (error) {
        if (!stopped.aborted) this.logger.warn({ err: error }, 'cannot LISTEN for notifications; retrying');
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
