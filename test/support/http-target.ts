import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request as the target received it, body as raw bytes. */
export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
  at: number;
}

export type Responder = (request: ReceivedRequest, response: ServerResponse) => unknown;

/** A real HTTP server on this machine that records what it receives and answers as the test says. */
export interface HttpTarget {
  url: string;
  host: string;
  port: number;
  received: ReceivedRequest[];
  /** Replaces how the next requests are answered. */
  respond(responder: Responder): void;
  close(): Promise<void>;
}

export async function startHttpTarget(
  responder: Responder = (_request, response) => response.end('ok'),
  host = '127.0.0.1',
): Promise<HttpTarget> {
  let current = responder;
  const received: ReceivedRequest[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const record: ReceivedRequest = {
        method: request.method ?? '',
        path: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks),
        at: Date.now(),
      };
      received.push(record);
      Promise.resolve(current(record, response)).catch(() => response.destroy());
    });
  });
  // A client that gave up leaves its socket to us: an error on it is no failure of the test.
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    host,
    port,
    received,
    respond: (next) => (current = next),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
