import { connect, createServer, type Server, type Socket } from 'node:net';
import { freePort } from './service-process';

/**
 * A TCP proxy in front of PostgreSQL that a test can make misbehave the way networks do: refuse
 * connections (nothing listening on its port yet), hold chosen connections back before forwarding them
 * (a slow connect), or stop forwarding altogether: connections stay open and bytes are accepted, but no
 * answer ever comes back (a black-holed network).
 */
export class TcpProxy {
  /** Milliseconds to hold a new connection back, chosen from the first bytes the client sent; 0: none. */
  holdBack: (firstBytes: Buffer) => number = () => 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly forwarding = new Set<{ client: Socket; upstream: Socket }>();
  private blackholed = false;
  private held = 0;
  private readonly holds = new Set<NodeJS.Timeout>();

  private constructor(
    private readonly target: URL,
    readonly port: number,
  ) {}

  /** A proxy to `targetUrl`'s server; it refuses connections until `listen()` unless `listening` is true. */
  static async create(targetUrl: string, options: { listening: boolean }): Promise<TcpProxy> {
    const proxy = new TcpProxy(new URL(targetUrl), await freePort());
    if (options.listening) await proxy.listen();
    return proxy;
  }

  /** `targetUrl` with its host and port replaced by the proxy's. */
  url(targetUrl: string): string {
    const url = new URL(targetUrl);
    url.hostname = '127.0.0.1';
    url.port = String(this.port);
    return url.toString();
  }

  /** Connections being held back right now. */
  get heldBack(): number {
    return this.held;
  }

  async listen(): Promise<void> {
    const server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  /** From now on nothing is forwarded either way, on open connections and new ones; nothing is closed. */
  blackhole(): void {
    this.blackholed = true;
    for (const { client, upstream } of this.forwarding) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      swallow(client);
      swallow(upstream);
    }
  }

  async close(): Promise<void> {
    for (const hold of this.holds) clearTimeout(hold);
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => this.sockets.delete(socket));
  }

  private accept(client: Socket): void {
    this.track(client);
    if (this.blackholed) return swallow(client);
    client.once('data', (first: Buffer) => {
      client.pause();
      const holdMs = this.holdBack(first);
      if (holdMs <= 0) return this.forward(client, first);
      this.held++;
      const hold = setTimeout(() => {
        this.holds.delete(hold);
        this.held--;
        this.forward(client, first);
      }, holdMs);
      this.holds.add(hold);
    });
  }

  private forward(client: Socket, first: Buffer): void {
    if (client.destroyed) return;
    if (this.blackholed) return swallow(client);
    const upstream = connect(Number(this.target.port || 5432), this.target.hostname);
    this.track(upstream);
    const pair = { client, upstream };
    this.forwarding.add(pair);
    client.once('close', () => {
      this.forwarding.delete(pair);
      upstream.destroy();
    });
    upstream.once('close', () => {
      this.forwarding.delete(pair);
      if (!this.blackholed) client.destroy();
    });
    upstream.write(first);
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  }
}

/** Reads and drops whatever arrives, so the sender never notices that nobody listens. */
function swallow(socket: Socket): void {
  socket.on('data', () => undefined);
  socket.resume();
}
