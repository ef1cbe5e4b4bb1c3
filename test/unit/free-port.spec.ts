import { createServer, type Server } from 'node:net';
import { freePort } from '../support/service-process';

/**
 * The ports the harness gives services that bind later: never one the kernel hands out by itself (it did
 * once, and a test then read another test's server), one per call, none already taken.
 */
describe('freePort', () => {
  const listening: Server[] = [];

  afterAll(async () => {
    await Promise.all(listening.map((server) => new Promise((resolve) => server.close(resolve))));
  });

  const listenOn = (port: number) =>
    new Promise<void>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
      listening.push(server);
    });

  it("hands out distinct ports below the kernel's ephemeral range, from this worker's own block", async () => {
    const ports = [await freePort(), await freePort(), await freePort()];
    expect(new Set(ports).size).toBe(3);
    const worker = Number(process.env.JEST_WORKER_ID ?? '1');
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(20_000 + ((worker - 1) % 20) * 500);
      expect(port).toBeLessThan(20_000 + (((worker - 1) % 20) + 1) * 500);
    }
  });

  it('skips a port a server already holds', async () => {
    const taken = await freePort();
    await listenOn(taken);
    // Every port of the block is handed out once before any comes round again.
    const next = await Promise.all(Array.from({ length: 499 }, () => freePort()));
    expect(next).not.toContain(taken);
    for (const port of next.slice(0, 20)) await listenOn(port);
  });
});
