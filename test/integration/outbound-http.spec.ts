import { createHmac, timingSafeEqual } from 'node:crypto';
import { loadConfig } from '../../src/config/app-config';
import { OutboundHttpClient, type OutboundRequest } from '../../src/outbound/outbound-http.client';
import { TargetRefusedError } from '../../src/outbound/outbound.errors';
import { startHttpTarget, type HttpTarget } from '../support/http-target';

const SECRET = 'a-signing-secret-of-at-least-32-characters';

function client(env: Record<string, string>): OutboundHttpClient {
  return new OutboundHttpClient(loadConfig(env));
}

function post(url: string, body = '{"hello":"world"}'): OutboundRequest {
  return {
    url,
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: Buffer.from(body),
    signal: AbortSignal.timeout(10_000),
  };
}

/** The receiver's side of Job-Signature, written from the contract, not from the service's code. */
function verifySignature(
  header: string | undefined,
  rawBody: Buffer,
  secret: string,
  nowSeconds: number,
): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!match || Math.abs(nowSeconds - Number(match[1])) > 300) return false;
  const expected = createHmac('sha256', secret).update(`${match[1]}.`).update(rawBody).digest();
  return timingSafeEqual(expected, Buffer.from(match[2], 'hex'));
}

describe('OutboundHttpClient against real local servers', () => {
  const clients: OutboundHttpClient[] = [];
  const targets: HttpTarget[] = [];
  const use = <T extends OutboundHttpClient | HttpTarget>(thing: T, list: T[]): T => (
    list.push(thing),
    thing
  );
  const newClient = (env: Record<string, string>) => use(client(env), clients);
  const newTarget = async (...args: Parameters<typeof startHttpTarget>) =>
    use(await startHttpTarget(...args), targets);

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((one) => one.onApplicationShutdown()));
    await Promise.all(targets.splice(0).map((one) => one.close()));
  });

  it('sends the body as given with a signature the receiver can verify, and reads the answer', async () => {
    const target = await newTarget((_request, response) => {
      response.setHeader('Content-Type', 'application/json');
      response.end('{"ok":true}');
    });
    const http = newClient({ HTTP_TARGET_ALLOW: '127.0.0.1', HTTP_TARGET_SIGNING_SECRET: SECRET });
    const body = '{"hello":"wörld"}';
    const response = await http.send(post(`${target.url}/hook?x=1`, body));

    expect(response).toMatchObject({ status: 200, truncated: false, url: `${target.url}/hook?x=1` });
    expect(response.headers['content-type']).toBe('application/json');
    expect(response.body.toString()).toBe('{"ok":true}');
    const [received] = target.received;
    expect(received.method).toBe('POST');
    expect(received.path).toBe('/hook?x=1');
    expect(received.body.equals(Buffer.from(body))).toBe(true);
    const now = Math.floor(Date.now() / 1000);
    expect(verifySignature(received.headers['job-signature'] as string, received.body, SECRET, now)).toBe(
      true,
    );
    // Any other body or secret does not verify: the check is real.
    expect(verifySignature(received.headers['job-signature'] as string, Buffer.from('{}'), SECRET, now)).toBe(
      false,
    );
    expect(
      verifySignature(received.headers['job-signature'] as string, received.body, `${SECRET}x`, now),
    ).toBe(false);
  });

  it('sends no signature without a secret, and never one a caller forged', async () => {
    const target = await newTarget();
    const http = newClient({ HTTP_TARGET_ALLOW: '127.0.0.1' });
    const request = post(target.url);
    request.headers['Job-Signature'] = 't=1,v1=forged';
    await http.send(request);
    expect(target.received[0].headers['job-signature']).toBeUndefined();
  });

  it('refuses every URL with an empty allowlist, before connecting', async () => {
    const target = await newTarget();
    const http = newClient({});
    expect(http.refusalOfUrl(target.url)).toMatch(/HTTP_TARGET_ALLOW is empty/);
    await expect(http.send(post(target.url))).rejects.toThrow(TargetRefusedError);
    expect(target.received).toHaveLength(0);
  });

  it('refuses a listed host name that resolves to a loopback address, at connect time', async () => {
    const target = await newTarget();
    const url = `http://localhost:${target.port}/`;
    for (const allow of ['localhost', '*']) {
      const http = newClient({ HTTP_TARGET_ALLOW: allow });
      expect(http.refusalOfUrl(url)).toBeNull();
      const error = await http.send(post(url)).catch((thrown: unknown) => thrown);
      expect(error).toBeInstanceOf(TargetRefusedError);
      expect((error as Error).message).toMatch(/localhost \((127\.0\.0\.1|::1)\) is refused/);
    }
    expect(target.received).toHaveLength(0);
  });

  it('reaches that name once its loopback addresses are listed explicitly', async () => {
    const target = await newTarget();
    const http = newClient({ HTTP_TARGET_ALLOW: 'localhost,127.0.0.0/8,::1' });
    const response = await http.send(post(`http://localhost:${target.port}/`));
    expect(response.status).toBe(200);
    expect(target.received).toHaveLength(1);
  });

  it('refuses a loopback IP address that is not listed, however it is written', async () => {
    const target = await newTarget();
    const http = newClient({ HTTP_TARGET_ALLOW: '*' });
    for (const host of ['127.0.0.1', '2130706433', '0x7f000001', '[::ffff:127.0.0.1]']) {
      await expect(http.send(post(`http://${host}:${target.port}/`))).rejects.toThrow(TargetRefusedError);
    }
    expect(target.received).toHaveLength(0);
  });

  it('does not follow redirects by default: the 3xx is the answer', async () => {
    const internal = await newTarget((_request, response) => response.end('secret'), '127.0.0.2');
    const target = await newTarget((_request, response) => {
      response.statusCode = 302;
      response.setHeader('Location', `${internal.url}/admin`);
      response.end();
    });
    const http = newClient({ HTTP_TARGET_ALLOW: '127.0.0.1,127.0.0.2' });
    const response = await http.send(post(target.url));
    expect(response.status).toBe(302);
    expect(response.headers.location).toBe(`${internal.url}/admin`);
    expect(internal.received).toHaveLength(0);
  });

  it('checks every redirect like the first URL: a redirect to a private address is refused', async () => {
    const internal = await newTarget((_request, response) => response.end('secret'), '127.0.0.2');
    const target = await newTarget((_request, response) => {
      response.statusCode = 307;
      response.setHeader('Location', `${internal.url}/admin`);
      response.end();
    }, '127.0.0.3');
    const http = newClient({ HTTP_TARGET_ALLOW: '127.0.0.3,*', HTTP_TARGET_FOLLOW_REDIRECTS: 'true' });
    await expect(http.send(post(target.url))).rejects.toThrow(/redirect .* is refused/);
    expect(target.received).toHaveLength(1);
    expect(internal.received).toHaveLength(0);
  });

  it('checks the address a redirect resolves to at connect time as well', async () => {
    const internal = await newTarget((_request, response) => response.end('secret'));
    const target = await newTarget((_request, response) => {
      response.statusCode = 308;
      response.setHeader('Location', `http://localhost:${internal.port}/admin`);
      response.end();
    }, '127.0.0.3');
    const http = newClient({
      HTTP_TARGET_ALLOW: '127.0.0.3,localhost',
      HTTP_TARGET_FOLLOW_REDIRECTS: 'true',
    });
    await expect(http.send(post(target.url))).rejects.toThrow(/localhost \(.*\) is refused/);
    expect(internal.received).toHaveLength(0);
  });

  it('follows allowed redirects when enabled: 307 keeps the method and body, 303 turns into a GET', async () => {
    const final = await newTarget((request, response) => response.end(`${request.method} ${request.body}`));
    const target = await newTarget((request, response) => {
      response.statusCode = request.path === '/see-other' ? 303 : 307;
      response.setHeader('Location', `${final.url}/done`);
      response.end();
    }, '127.0.0.3');
    const http = newClient({
      HTTP_TARGET_ALLOW: '127.0.0.1,127.0.0.3',
      HTTP_TARGET_FOLLOW_REDIRECTS: 'true',
      HTTP_TARGET_SIGNING_SECRET: SECRET,
    });
    const kept = await http.send({ ...post(target.url, 'payload'), headers: { Authorization: 'Bearer t' } });
    expect(kept).toMatchObject({ status: 200, url: `${final.url}/done` });
    expect(kept.body.toString()).toBe('POST payload');
    // Another origin: the credentials stayed behind; the new request is signed on its own.
    expect(final.received[0].headers.authorization).toBeUndefined();
    const now = Math.floor(Date.now() / 1000);
    expect(
      verifySignature(
        final.received[0].headers['job-signature'] as string,
        final.received[0].body,
        SECRET,
        now,
      ),
    ).toBe(true);

    const changed = await http.send(post(`${target.url}/see-other`, 'payload'));
    expect(changed.body.toString()).toBe('GET ');
    expect(final.received[1].headers['content-type']).toBeUndefined();
  });

  it('gives up after five redirects', async () => {
    const target = await newTarget((request, response) => {
      response.statusCode = 302;
      response.setHeader('Location', `/loop${request.path.length}`);
      response.end();
    });
    const http = newClient({ HTTP_TARGET_ALLOW: '127.0.0.1', HTTP_TARGET_FOLLOW_REDIRECTS: 'true' });
    await expect(http.send(post(target.url))).rejects.toThrow(/more than 5 redirects/);
    expect(target.received).toHaveLength(6);
  });

  it('reads a huge response only up to the bound and hangs up on the rest', async () => {
    let sent = 0;
    let closed = false;
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const target = await newTarget((_request, response) => {
      // Ten gigabytes announced, and written for as long as anyone reads.
      response.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': String(10 * 1024 ** 3) });
      response.on('close', () => (closed = true));
      const pump = (): void => {
        while (!closed && sent < 10 * 1024 ** 3) {
          sent += chunk.length;
          if (!response.write(chunk)) return void response.once('drain', pump);
        }
      };
      pump();
    });
    const http = newClient({ HTTP_TARGET_ALLOW: '127.0.0.1', HTTP_TARGET_MAX_RESPONSE_BYTES: '1000' });
    const heapBefore = process.memoryUsage().heapUsed;
    const response = await http.send(post(target.url));
    expect(response.truncated).toBe(true);
    expect(response.body.length).toBe(1000);
    const deadline = Date.now() + 5_000;
    while (!closed && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(closed).toBe(true);
    expect(sent).toBeLessThan(64 * 1024 ** 2);
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 ** 2);
  });

  it('stops waiting when its signal fires, for a server that answers slowly', async () => {
    const target = await newTarget((_request, response) => {
      response.writeHead(200);
      response.write('partial');
      // and never ends
    });
    const http = newClient({ HTTP_TARGET_ALLOW: '127.0.0.1' });
    const started = Date.now();
    await expect(http.send({ ...post(target.url), signal: AbortSignal.timeout(300) })).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});
