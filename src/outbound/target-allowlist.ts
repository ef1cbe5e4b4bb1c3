import * as ipaddr from 'ipaddr.js';
import { isIP } from 'node:net';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** One entry of HTTP_TARGET_ALLOW. */
type AllowEntry =
  | { kind: 'any-host' }
  | { kind: 'host'; name: string }
  | { kind: 'subdomains'; suffix: string }
  | { kind: 'range'; range: [Address, number]; text: string };

const HOST_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * Parses one HTTP_TARGET_ALLOW entry: `*` (any host name), `*.example.com` (every subdomain), a host name,
 * an IP address, or a CIDR. Returns the problem as text, for the configuration error, or the entry.
 */
export function parseAllowEntry(text: string): AllowEntry | string {
  const entry = text.trim().toLowerCase();
  if (entry === '*') return { kind: 'any-host' };
  if (entry.includes('/')) {
    const [network, prefix] = entry.split('/', 2);
    // isIP first: ipaddr.js also reads shorthand such as "10" as an address, which nobody means here.
    if (!isIP(network) || !/^\d{1,3}$/.test(prefix) || !ipaddr.isValidCIDR(entry)) {
      return `"${text}" is not a valid CIDR such as 10.0.0.0/8 or fd00::/8`;
    }
    const [address, bits] = ipaddr.parseCIDR(entry);
    const mapped = address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96;
    return {
      kind: 'range',
      range: mapped ? [(address as ipaddr.IPv6).toIPv4Address(), bits - 96] : [address, bits],
      text: entry,
    };
  }
  const literal = stripBrackets(entry);
  if (isIP(literal)) {
    const address = normalise(ipaddr.parse(literal));
    return { kind: 'range', range: [address, address.kind() === 'ipv4' ? 32 : 128], text: entry };
  }
  if (entry.startsWith('*.')) {
    const suffix = entry.slice(2);
    return isHostName(suffix) ? { kind: 'subdomains', suffix } : `"${text}" is not a valid *.domain entry`;
  }
  // Dotted numbers that are no IPv4 address (e.g. 127.1) are read as one by URL parsers: refuse them.
  if (!isHostName(entry) || /^[0-9.]+$/.test(entry)) {
    return `"${text}" is not a host name, IP address or CIDR`;
  }
  return { kind: 'host', name: stripTrailingDot(entry) };
}

/**
 * What outbound requests may reach (HTTP_TARGET_ALLOW). A URL passes when its host is listed by name (or
 * by `*` / `*.domain`), or when it is an IP address inside a listed IP or CIDR. An address a connection is
 * about to be made to passes when it is public unicast, or inside a listed IP or CIDR: so loopback,
 * private, link-local (cloud metadata), carrier-grade NAT, multicast, unspecified and reserved addresses
 * are reached only when an operator listed them, whatever name led there.
 */
export class TargetAllowlist {
  private readonly entries: AllowEntry[];

  /** `entries` were validated by the configuration; a bad one here is a programming error. */
  constructor(entries: readonly string[]) {
    this.entries = entries.map((text) => {
      const entry = parseAllowEntry(text);
      if (typeof entry === 'string') throw new Error(`HTTP_TARGET_ALLOW: ${entry}`);
      return entry;
    });
  }

  get empty(): boolean {
    return this.entries.length === 0;
  }

  /** Why `url` may not be requested, or null when it may. Says nothing about the entries themselves. */
  refusalOfUrl(url: URL): string | null {
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      return 'only http and https URLs can be called';
    if (url.username || url.password) {
      return 'a URL may not carry credentials; send them in a header instead';
    }
    if (this.empty) return 'no URL is allowed: HTTP_TARGET_ALLOW is empty';
    const host = stripTrailingDot(stripBrackets(url.hostname.toLowerCase()));
    const allowed = isIP(host) ? this.permitsAddressLiteral(host) : this.permitsName(host);
    return allowed ? null : `the host ${host} is not allowed by HTTP_TARGET_ALLOW`;
  }

  /**
   * True when a connection to `address` (as resolved) may be made: a public unicast address, or one an
   * entry lists. An IPv4 address written as IPv6 (::ffff:127.0.0.1) is judged as the IPv4 address.
   */
  permitsAddress(address: string): boolean {
    const parsed = parseAddress(address);
    if (!parsed) return false;
    return parsed.range() === 'unicast' || this.listsAddress(parsed);
  }

  private permitsAddressLiteral(literal: string): boolean {
    const parsed = parseAddress(literal);
    if (!parsed) return false;
    if (this.listsAddress(parsed)) return true;
    return this.entries.some((entry) => entry.kind === 'any-host') && parsed.range() === 'unicast';
  }

  private permitsName(host: string): boolean {
    return this.entries.some(
      (entry) =>
        entry.kind === 'any-host' ||
        (entry.kind === 'host' && entry.name === host) ||
        (entry.kind === 'subdomains' && host.endsWith(`.${entry.suffix}`)),
    );
  }

  private listsAddress(address: Address): boolean {
    return this.entries.some(
      (entry) =>
        entry.kind === 'range' &&
        entry.range[0].kind() === address.kind() &&
        address.match(entry.range as [ipaddr.IPv4, number] & [ipaddr.IPv6, number]),
    );
  }
}

/** The address in the form it is judged in, or null when it is no IP address. */
function parseAddress(text: string): Address | null {
  const bare = stripBrackets(text).replace(/%.*$/, '');
  if (!isIP(bare)) return null;
  return normalise(ipaddr.parse(bare));
}

/** IPv4-mapped IPv6 (::ffff:a.b.c.d) reaches the IPv4 host: judge it, and match it, as IPv4. */
function normalise(address: Address): Address {
  return address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()
    ? (address as ipaddr.IPv6).toIPv4Address()
    : address;
}

function isHostName(name: string): boolean {
  const labels = stripTrailingDot(name).split('.');
  return name.length <= 253 && labels.every((label) => HOST_LABEL.test(label));
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function stripTrailingDot(host: string): string {
  return host.endsWith('.') ? host.slice(0, -1) : host;
}
