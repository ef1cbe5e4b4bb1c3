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

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        address && typeof address === 'object' ? resolve(address.port) : reject(new Error('no port')),
      );
    });
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
