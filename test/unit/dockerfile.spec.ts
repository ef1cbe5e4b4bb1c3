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
    expect(finalStage).toMatch(/^USER node$/m);
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

  it('leaves local state out of the build context', () => {
    const ignored = readFileSync(join(__dirname, '..', '..', '.dockerignore'), 'utf8').split('\n');
    for (const entry of ['node_modules', 'dist', '.data', '.git']) expect(ignored).toContain(entry);
  });
});
