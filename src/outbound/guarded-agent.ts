import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { Agent, buildConnector } from 'undici';
import { TargetRefusedError } from './outbound.errors';
import type { TargetAllowlist } from './target-allowlist';

/**
 * An undici Agent that judges every address at the moment it connects, after DNS resolution: a host
 * name that resolves (or re-resolves, DNS rebinding) to an address the allowlist does not permit is
 * refused before a single byte is sent. The URL check alone cannot see this: the name was fine, the
 * address it leads to is not.
 */
export function createGuardedAgent(allowlist: TargetAllowlist): Agent {
  const lookup = guardedLookup(allowlist);
  const connectVia = buildConnector({ lookup });
  const connect: buildConnector.connector = (options, callback) => {
    // net.connect skips `lookup` for an IP address: such a host is judged here, as it is.
    if (isIP(options.hostname) && !allowlist.permitsAddress(options.hostname)) {
      callback(refusal(options.hostname, options.hostname), null);
      return;
    }
    connectVia(options, callback);
  };
  return new Agent({ connect });
}

/** dns.lookup, then a refusal if any address the name resolves to is not permitted. */
function guardedLookup(allowlist: TargetAllowlist): LookupFunction {
  return (hostname: string, options: LookupOptions, callback: (...args: never[]) => void): void => {
    const reply = callback as unknown as (
      error: Error | null,
      address?: string | LookupAddress[],
      family?: number,
    ) => void;
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return reply(error);
      // Every address, not only the first: with several, the connection may go to any of them.
      const refused = addresses.find((entry) => !allowlist.permitsAddress(entry.address));
      if (refused) return reply(refusal(hostname, refused.address));
      if (addresses.length === 0) return reply(new Error(`${hostname} resolved to no address`));
      if (options.all) return reply(null, addresses);
      return reply(null, addresses[0].address, addresses[0].family);
    });
  };
}

function refusal(hostname: string, address: string): TargetRefusedError {
  const named = hostname === address ? address : `${hostname} (${address})`;
  return new TargetRefusedError(
    `connecting to ${named} is refused: loopback, private, link-local and other non-public addresses ` +
      'are reached only when HTTP_TARGET_ALLOW lists them',
  );
}
