import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** No Docker engine runs here, so the image recipe is checked by reading it. */
describe('Dockerfile', () => {
  const dockerfile = readFileSync(join(__dirname, '..', '..', 'Dockerfile'), 'utf8');
  const stages = dockerfile.split(/^FROM /m).slice(1);
  const finalStage = stages[stages.length - 1];

  it('is multi-stage and builds in a stage of its own', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/RUN npm ci/);
    expect(dockerfile).toMatch(/RUN npm run build/);
  });

  it('ships production dependencies only, as a non-root user, running node dist/main', () => {
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(finalStage).not.toMatch(/RUN npm run build/);
    // Numeric: Kubernetes can check runAsNonRoot only against a user id, not a name.
    expect(finalStage).toMatch(/^USER 1000(:1000)?$/m);
    expect(finalStage).not.toMatch(/^USER (root|0)\b/m);
    expect(finalStage).toMatch(/^CMD \["node", "dist\/main"\]$/m);
    expect(finalStage).toMatch(/NODE_ENV=production/);
  });

  it('builds the operator dashboard into dist, which the final stage copies', () => {
    expect(stages[0]).toMatch(/^COPY ui \.\/ui$/m);
    expect(finalStage).toMatch(/^COPY --from=build .*\/app\/dist \.\/dist$/m);
  });

  it('sets the memory options the benchmark measures with', () => {
    expect(finalStage).toMatch(/^ENV NODE_OPTIONS="--max-old-space-size=\d+ --max-semi-space-size=\d+"$/m);
  });

  it('builds on a Node.js LTS line that is still supported, while the code keeps accepting Node.js 20.19', () => {
    const image = /^ARG NODE_IMAGE=(\S+)$/m.exec(dockerfile)?.[1];
    expect(image).toMatch(/^node:\d+-[a-z]+-slim$/);
    for (const stage of stages) expect(stage).toMatch(/^\$\{NODE_IMAGE\}/);
    const major = Number(/^node:(\d+)/.exec(image!)![1]);
    // End of life of each LTS line (Node.js release schedule); from 27 on every line becomes LTS.
    const endOfLife: Record<number, string> = { 22: '2027-04-30', 24: '2028-04-30', 26: '2029-04-30' };
    if (major <= 26) {
      expect(endOfLife[major]).toBeDefined();
      expect(new Date(endOfLife[major]).getTime()).toBeGreaterThan(Date.now());
    }
    expect(major).toBeGreaterThanOrEqual(24);
    const engines = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')).engines;
    expect(engines.node).toBe('>=20.19.0');
  });

  it('leaves local state out of the build context', () => {
    const ignored = readFileSync(join(__dirname, '..', '..', '.dockerignore'), 'utf8').split('\n');
    for (const entry of ['node_modules', 'dist', '.data', '.git']) expect(ignored).toContain(entry);
  });
});
