import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { freePort } from './service-process';

/** Where Debian's `pgbouncer` package puts the binary; PATH is looked at first. */
const DEBIAN_BINARY = '/usr/sbin/pgbouncer';

export interface PgBouncerOptions {
  /** Server connections per database and user (default_pool_size). */
  poolSize?: number;
}

/** A real PgBouncer in transaction pooling mode, started as a child process with a config of its own. */
export interface PgBouncer {
  port: number;
  /** The URL of `database` through PgBouncer. */
  url(database: string): string;
  /** Runs an admin console command (SHOW POOLS, SHOW STATS, ...) and returns its rows. */
  admin(command: string): Promise<Record<string, unknown>[]>;
  /** Everything it printed so far. */
  output(): string;
  stop(): Promise<void>;
}

function binary(): string {
  try {
    return execFileSync('sh', ['-c', 'command -v pgbouncer'], { encoding: 'utf8' }).trim();
  } catch {
    if (existsSync(DEBIAN_BINARY)) return DEBIAN_BINARY;
    throw new Error('PgBouncer is not installed: apt-get install pgbouncer (.ci/run installs it)');
  }
}

/**
 * Starts PgBouncer in front of the server of `serverUrl` (any database on it), listening on a free port
 * of 127.0.0.1, with trust authentication towards its clients and the server URL's user and password
 * towards the server. As root it drops to the `postgres` user (or `nobody`): PgBouncer refuses to run as root.
 */
export async function startPgBouncer(serverUrl: string, options: PgBouncerOptions = {}): Promise<PgBouncer> {
  const server = new URL(serverUrl);
  const user = decodeURIComponent(server.username || 'postgres');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'pgbouncer-'));
  chmodSync(dir, 0o755);
  const password = server.password ? ` password=${decodeURIComponent(server.password)}` : '';
  const config = [
    '[databases]',
    `* = host=${server.hostname} port=${server.port || 5432} user=${user}${password}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    'auth_type = trust',
    `auth_file = ${join(dir, 'users.txt')}`,
    `admin_users = ${user}`,
    'pool_mode = transaction',
    `default_pool_size = ${options.poolSize ?? 4}`,
    'max_client_conn = 1000',
    // Nothing else: in particular no ignore_startup_parameters, as in Debian's own configuration.
  ].join('\n');
  writeFileSync(join(dir, 'pgbouncer.ini'), `${config}\n`, { mode: 0o644 });
  writeFileSync(join(dir, 'users.txt'), `"${user}" ""\n`, { mode: 0o644 });

  const asRoot = process.getuid?.() === 0;
  const runAs = asRoot ? ['-u', userExists('postgres') ? 'postgres' : 'nobody'] : [];
  let output = '';
  const child: ChildProcess = spawn(binary(), [...runAs, join(dir, 'pgbouncer.ini')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const url = (database: string): string => {
    const through = new URL(serverUrl);
    through.host = `127.0.0.1:${port}`;
    through.pathname = `/${database}`;
    return through.toString();
  };
  const admin = async (command: string): Promise<Record<string, unknown>[]> => {
    const client = new Client({ connectionString: url('pgbouncer') });
    await client.connect();
    try {
      // Without parameters pg uses the simple protocol, the only one the admin console speaks.
      return (await client.query<Record<string, unknown>>(command)).rows;
    } finally {
      await client.end();
    }
  };
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await admin('SHOW VERSION');
      break;
    } catch (error) {
      if (child.exitCode !== null || Date.now() > deadline) {
        await stop();
        throw new Error(`PgBouncer did not start: ${String(error)}\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return { port, url, admin, output: () => output, stop };
}

function userExists(name: string): boolean {
  try {
    execFileSync('id', [name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
