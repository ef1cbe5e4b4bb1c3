import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { watchOrigin } from './openapi-contract';

const MAIN = join(__dirname, '..', '..', 'dist', 'main.js');

/** The built service (`node dist/main`) running as a real child process. */
export interface ServiceProcess {
  child: ChildProcess;
  port: number;
  baseUrl: string;
  /** Everything it printed so far. */
  output(): string;
  /** Resolves with the exit code (or signal) once it has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

/** Where the ports freePort hands out start: below Linux's ephemeral range (32768 and up by default). */
const FIRST_TEST_PORT = 20_000;
/** How many ports each Jest worker has to itself, and how many such blocks there are before they repeat. */
const PORTS_PER_WORKER = 500;
const WORKER_BLOCKS = 20;
let portsTried = Math.floor(Math.random() * PORTS_PER_WORKER);

/**
 * A port for a server that starts later, usually in another process. It comes from a block of ports of this
 * Jest worker's own, below the kernel's ephemeral range: a port the kernel gave out (`listen(0)`, or the local
 * end of an outgoing connection) was free for anyone to take again between this check and the service's
 * bind, and once another test's server took it, the test talked to that server. No other worker draws from
 * this block and the kernel never gives these ports out, so only a server this test file started itself can
 * hold one, and the check below sees it.
 */
export async function freePort(): Promise<number> {
  const worker = Number(process.env.JEST_WORKER_ID ?? '1');
  const blockStart = FIRST_TEST_PORT + ((worker - 1) % WORKER_BLOCKS) * PORTS_PER_WORKER;
  for (let tries = 0; tries < PORTS_PER_WORKER; tries++) {
    const port = blockStart + (portsTried++ % PORTS_PER_WORKER);
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port in ${blockStart}-${blockStart + PORTS_PER_WORKER - 1}`);
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export interface SpawnOptions {
  /** Arguments for node itself, before the script, e.g. `['-r', preload]`. */
  nodeArgs?: string[];
}

export async function spawnService(
  env: Record<string, string>,
  options: SpawnOptions = {},
): Promise<ServiceProcess> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  let output = '';
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      LOG_LEVEL: 'warn',
      MIGRATE_ON_START: 'false',
      ...env,
      PORT: String(port),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  // Its answers to the test's fetch() calls are checked against the OpenAPI document.
  watchOrigin(`http://127.0.0.1:${port}`, { servesApi: ['api', 'all', undefined].includes(env.APP_ROLE) });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    output: () => output,
    exited,
    kill: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** Waits until GET `path` answers `status`, or throws with the process output after `timeoutMs`. */
export async function waitForHttp(
  service: ServiceProcess,
  path: string,
  status = 200,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const response = await fetch(`${service.baseUrl}${path}`);
      if (response.status === status) return;
    } catch {
      // not listening yet
    }
    if (service.child.exitCode !== null) throw new Error(`the service exited early:\n${service.output()}`);
    if (Date.now() > deadline)
      throw new Error(`GET ${path} did not answer ${status} in time:\n${service.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
