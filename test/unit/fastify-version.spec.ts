import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * The README holds Fastify at 5.12.8 or later for the whole app: before it, Fastify wrapped every request
 * body's callback with AsyncResource.bind, which on Node.js 20 cost the api 6% of its CPU under POST /jobs.
 * The app serves through the Fastify that Nest's adapter loads, which pins a version of its own unless
 * package.json overrides it.
 */
describe('the Fastify the api serves with', () => {
  const versionSeenFrom = (directory: string): number[] => {
    const manifest = require.resolve('fastify/package.json', { paths: [directory] });
    const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string };
    return version.split('.').map(Number);
  };
  const atLeast = ([major, minor, patch]: number[], [wantMajor, wantMinor, wantPatch]: number[]) =>
    major !== wantMajor ? major > wantMajor : minor !== wantMinor ? minor > wantMinor : patch >= wantPatch;

  it("is 5.12.8 or later, Nest's adapter's copy included", () => {
    const adapter = dirname(require.resolve('@nestjs/platform-fastify/package.json'));
    expect(atLeast(versionSeenFrom(adapter), [5, 12, 8])).toBe(true);
    expect(atLeast(versionSeenFrom(process.cwd()), [5, 12, 8])).toBe(true);
  });
});
