import { loadConfig } from '../../src/config/app-config';
import { parseAllowEntry, TargetAllowlist } from '../../src/outbound/target-allowlist';

const refusal = (allow: string[], url: string): string | null =>
  new TargetAllowlist(allow).refusalOfUrl(new URL(url));

describe('HTTP_TARGET_ALLOW', () => {
  it('reads host names, *.domain, *, IP addresses and CIDRs', () => {
    for (const entry of [
      'example.com',
      'API.Example.com.',
      '*.example.com',
      '*',
      '10.0.0.0/8',
      'fd00::/8',
      '::1',
    ]) {
      expect(parseAllowEntry(entry)).not.toEqual(expect.any(String));
    }
    expect(parseAllowEntry('[2001:db8::1]')).not.toEqual(expect.any(String));
  });

  it('refuses entries that are none of those, including numbers a URL parser would read as an address', () => {
    for (const entry of [
      'http://example.com',
      'exa mple.com',
      '10.0.0.0/33',
      '10/8',
      '127.1',
      '*.',
      'a..b',
      '-a.com',
    ]) {
      expect(parseAllowEntry(entry)).toEqual(expect.any(String));
    }
  });

  it('stops the configuration with a message naming the variable and the bad entry', () => {
    expect(() => loadConfig({ HTTP_TARGET_ALLOW: 'example.com, 10.0.0.0/99' })).toThrow(
      /HTTP_TARGET_ALLOW.*"10\.0\.0\.0\/99"/,
    );
    expect(() => loadConfig({ HTTP_TARGET_SIGNING_SECRET: 'short' })).toThrow(
      /HTTP_TARGET_SIGNING_SECRET must be at least 32 characters/,
    );
    expect(() => loadConfig({ HTTP_TARGET_MAX_RESPONSE_BYTES: '0' })).toThrow(
      /HTTP_TARGET_MAX_RESPONSE_BYTES/,
    );
    expect(() => loadConfig({ HTTP_TARGET_FOLLOW_REDIRECTS: 'sometimes' })).toThrow(
      /HTTP_TARGET_FOLLOW_REDIRECTS/,
    );
    const config = loadConfig({ HTTP_TARGET_ALLOW: ' api.example.com ,10.0.0.0/8' });
    expect(config).toMatchObject({
      httpTargetAllow: ['api.example.com', '10.0.0.0/8'],
      httpTargetSigningSecret: undefined,
      httpTargetFollowRedirects: false,
      httpTargetMaxResponseBytes: 65_536,
    });
  });
});

describe('which URLs may be called', () => {
  it('refuses every URL when the allowlist is empty', () => {
    expect(refusal([], 'https://example.com/')).toMatch(/HTTP_TARGET_ALLOW is empty/);
    expect(refusal([], 'http://127.0.0.1/')).toMatch(/HTTP_TARGET_ALLOW is empty/);
  });

  it('takes only http and https, and no credentials in the URL', () => {
    expect(refusal(['*'], 'ftp://example.com/')).toMatch(/only http and https/);
    expect(refusal(['*'], 'file:///etc/passwd')).toMatch(/only http and https/);
    expect(refusal(['*'], 'https://user:secret@example.com/')).toMatch(/credentials/);
  });

  it('matches host names exactly, ignoring case and a trailing dot; *.domain matches subdomains only', () => {
    expect(refusal(['api.example.com'], 'https://API.example.com./x')).toBeNull();
    expect(refusal(['api.example.com'], 'https://example.com/')).toMatch(/not allowed/);
    expect(refusal(['api.example.com'], 'https://api.example.com.evil.net/')).toMatch(/not allowed/);
    expect(refusal(['*.example.com'], 'https://a.b.example.com/')).toBeNull();
    expect(refusal(['*.example.com'], 'https://example.com/')).toMatch(/not allowed/);
    expect(refusal(['*.example.com'], 'https://badexample.com/')).toMatch(/not allowed/);
  });

  it('lets an IP address through only inside a listed IP or CIDR, whatever way it is written', () => {
    const onlyNames = ['example.com', '*'];
    for (const url of [
      'http://127.0.0.1/',
      'http://2130706433/',
      'http://0x7f.1/',
      'http://127.1/',
      'http://[::1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://[::ffff:a9fe:a9fe]/',
      'http://169.254.169.254/latest/meta-data/',
      'http://[fd00:ec2::254]/',
      'http://0.0.0.0/',
      'http://10.1.2.3/',
    ]) {
      expect([url, refusal(onlyNames, url)]).toEqual([url, expect.stringMatching(/not allowed/)]);
    }
    expect(refusal(['127.0.0.1'], 'http://127.0.0.1:8080/')).toBeNull();
    expect(refusal(['127.0.0.1'], 'http://2130706433/')).toBeNull();
    expect(refusal(['127.0.0.1'], 'http://[::ffff:127.0.0.1]/')).toBeNull();
    expect(refusal(['10.0.0.0/8'], 'http://10.200.0.1/')).toBeNull();
    expect(refusal(['10.0.0.0/8'], 'http://11.0.0.1/')).toMatch(/not allowed/);
    expect(refusal(['fd00::/8'], 'http://[fd12::1]/')).toBeNull();
    // `*` means any host name, and any public address; never a private one.
    expect(refusal(['*'], 'http://93.184.215.14/')).toBeNull();
    expect(refusal(['*'], 'http://[2606:4700::1111]/')).toBeNull();
  });
});

describe('which resolved addresses may be connected to', () => {
  const refused = [
    '127.0.0.1',
    '127.255.0.9',
    '::1',
    '0.0.0.0',
    '::',
    '10.0.0.1',
    '172.16.5.4',
    '192.168.1.1',
    '169.254.169.254',
    'fe80::1',
    'fe80::1%eth0',
    'fd00:ec2::254',
    '100.100.100.200',
    '224.0.0.1',
    'ff02::1',
    '255.255.255.255',
    '::ffff:127.0.0.1',
    '::ffff:169.254.169.254',
    '::ffff:10.0.0.1',
    '64:ff9b::a9fe:a9fe',
    '2002:a9fe:a9fe::1',
    '192.0.2.1',
    'not-an-address',
  ];

  it('refuses loopback, private, link-local, metadata, multicast, unspecified and reserved ones', () => {
    const allowlist = new TargetAllowlist(['*']);
    for (const address of refused)
      expect([address, allowlist.permitsAddress(address)]).toEqual([address, false]);
  });

  it('accepts public unicast ones, IPv4-mapped included', () => {
    const allowlist = new TargetAllowlist(['example.com']);
    for (const address of ['93.184.215.14', '8.8.8.8', '2606:4700::1111', '::ffff:8.8.8.8']) {
      expect([address, allowlist.permitsAddress(address)]).toEqual([address, true]);
    }
  });

  it('accepts a non-public one only when an IP or CIDR entry covers it', () => {
    const allowlist = new TargetAllowlist(['127.0.0.1', '10.0.0.0/8', '::ffff:192.168.0.0/112', 'localhost']);
    expect(allowlist.permitsAddress('127.0.0.1')).toBe(true);
    expect(allowlist.permitsAddress('::ffff:127.0.0.1')).toBe(true);
    expect(allowlist.permitsAddress('127.0.0.2')).toBe(false);
    expect(allowlist.permitsAddress('::1')).toBe(false);
    expect(allowlist.permitsAddress('10.9.9.9')).toBe(true);
    expect(allowlist.permitsAddress('192.168.4.4')).toBe(true);
    expect(allowlist.permitsAddress('172.16.0.1')).toBe(false);
    expect(allowlist.permitsAddress('169.254.169.254')).toBe(false);
  });
});
