import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { request, type Agent } from 'undici';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { discard, readBounded } from './bounded-body';
import { createGuardedAgent } from './guarded-agent';
import { TargetRefusedError } from './outbound.errors';
import { jobSignature } from './request-signature';
import { TargetAllowlist } from './target-allowlist';

/** A request to a URL outside the service, e.g. an `http` job's target or a completion callback. */
export interface OutboundRequest {
  url: string;
  method: string;
  /** Header names in any case; the signature header is added here, never taken from the caller. */
  headers: Record<string, string>;
  /** The raw bytes sent, and signed, exactly as they are. */
  body?: Buffer;
  signal: AbortSignal;
}

export interface OutboundResponse {
  status: number;
  /** Lower-case names; a repeated header's values joined with ", ". */
  headers: Record<string, string>;
  /** At most HTTP_TARGET_MAX_RESPONSE_BYTES of the body. */
  body: Buffer;
  truncated: boolean;
  /** The URL that answered: the request's own, or the last redirect's. */
  url: string;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
/** Credentials meant for one origin do not travel to another on a redirect (as browsers do). */
const ORIGIN_BOUND_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];

/**
 * Every request the service makes to a URL it was given goes through here, under the same rules:
 * HTTP_TARGET_ALLOW checked on the URL and again, at connect time, on the address it resolves to;
 * redirects followed only when HTTP_TARGET_FOLLOW_REDIRECTS is on, each checked like the first URL;
 * a `Job-Signature` when HTTP_TARGET_SIGNING_SECRET is set; and a response body read only up to
 * HTTP_TARGET_MAX_RESPONSE_BYTES.
 */
@Injectable()
export class OutboundHttpClient implements OnApplicationShutdown {
  private readonly allowlist: TargetAllowlist;
  private agent: Agent | undefined;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {
    this.allowlist = new TargetAllowlist(config.httpTargetAllow);
  }

  /** Why `url` may not be called, or null when it may (its address is judged later, at connect time). */
  refusalOfUrl(url: string): string | null {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return 'must be an absolute http or https URL';
    }
    return this.allowlist.refusalOfUrl(parsed);
  }

  /**
   * Sends the request and reads the answer, following redirects when allowed. Rejects with
   * TargetRefusedError when the URL, a redirect or a resolved address is not allowed (nothing is sent
   * to it), and with undici's error for a network failure or an abort.
   */
  async send(outbound: OutboundRequest): Promise<OutboundResponse> {
    let url = this.checkedUrl(outbound.url, 'the URL');
    let { method, body } = outbound;
    let headers = { ...outbound.headers };
    for (let redirects = 0; ; redirects++) {
      const response = await request(url, {
        dispatcher: this.dispatcher(),
        method: method as 'POST',
        headers: this.signed(headers, body),
        body,
        signal: outbound.signal,
      });
      const location = response.headers.location;
      const follow =
        this.config.httpTargetFollowRedirects &&
        REDIRECT_STATUSES.has(response.statusCode) &&
        typeof location === 'string';
      if (!follow) {
        const read = await readBounded(response.body, this.config.httpTargetMaxResponseBytes);
        return {
          status: response.statusCode,
          headers: flattenHeaders(response.headers),
          body: read.bytes,
          truncated: read.truncated,
          url: url.href,
        };
      }
      discard(response.body);
      if (redirects === MAX_REDIRECTS) {
        throw new TargetRefusedError(`more than ${MAX_REDIRECTS} redirects, the last to ${location}`);
      }
      const next = this.checkedUrl(location, `the redirect from ${url.href} to ${location}`, url);
      if (next.origin !== url.origin) headers = withoutHeaders(headers, ORIGIN_BOUND_HEADERS);
      // 303 always, and 301/302 after a POST (what every client does), continue as a GET without a body.
      if (response.statusCode === 303 || ([301, 302].includes(response.statusCode) && method === 'POST')) {
        method = 'GET';
        body = undefined;
        headers = withoutHeaders(headers, ['content-type', 'content-length']);
      }
      url = next;
    }
  }

  /**
   * Only after the worker's drain (beforeApplicationShutdown): by then every attempt has finished or been
   * aborted and released, so whatever is still open belongs to nobody. Closing earlier, in
   * onModuleDestroy, would wait for requests the drain has not aborted yet, past the exit deadline.
   */
  async onApplicationShutdown(): Promise<void> {
    await this.agent?.destroy();
  }

  /** Created on first use: a process that never calls out opens nothing. */
  private dispatcher(): Agent {
    return (this.agent ??= createGuardedAgent(this.allowlist));
  }

  private checkedUrl(text: string, what: string, base?: URL): URL {
    let url: URL;
    try {
      url = new URL(text, base);
    } catch {
      throw new TargetRefusedError(`${what} is not a valid URL`);
    }
    const refusal = this.allowlist.refusalOfUrl(url);
    if (refusal) throw new TargetRefusedError(`${what} is refused: ${refusal}`);
    return url;
  }

  private signed(headers: Record<string, string>, body: Buffer | undefined): Record<string, string> {
    const unsigned = withoutHeaders(headers, ['job-signature']);
    const secret = this.config.httpTargetSigningSecret;
    if (!secret) return unsigned;
    const unixSeconds = Math.floor(Date.now() / 1000);
    return { ...unsigned, 'Job-Signature': jobSignature(secret, body ?? Buffer.alloc(0), unixSeconds) };
  }
}

function withoutHeaders(headers: Record<string, string>, names: string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !names.includes(name.toLowerCase())));
}

function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return flat;
}
